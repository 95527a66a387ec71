"""The catalog and the index never drift: writes queue their dataset in the same transaction,
drains index them (retrying failures), and reindex rebuilds from the catalog at any time.
Runs on SQLite and PostgreSQL (the ``engine`` fixture) with the tantivy backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from search_helpers import corpus
from sqlalchemy import Engine, func, select

from node.catalog.models import SearchQueueRow
from node.catalog.runs import RunStore
from node.catalog.service import RecordService
from node.config import Config
from node.records import Visibility
from node.search.backend import SearchQuery
from node.search.factory import open_backend
from node.search.indexer import (
    LEASE,
    IndexBusyError,
    catalog_records,
    drain,
    queue_state,
    reindex,
)


def _queued(engine: Engine) -> int:
    with engine.connect() as c:
        return c.scalar(select(func.count()).select_from(SearchQueueRow))


def _write(engine: Engine, datasets) -> None:
    records = RecordService(engine)
    with records.sessions() as s, s.begin():
        for ds in datasets:
            records.save_dataset(s, ds, source="microscopy", folder=ds.id)


def _all(backend) -> set[str]:
    return {h.id for h in backend.search(SearchQuery(limit=100, facets=False)).hits}


def test_writes_are_queued_with_the_record_and_drained(config: Config, engine: Engine):
    _write(engine, corpus())
    assert _queued(engine) == len(corpus())
    backend = open_backend(config)
    report = drain(engine, backend, batch_size=5)
    assert (report.indexed, report.deleted, report.failed, report.remaining) == (12, 0, 0, 0)
    assert _queued(engine) == 0
    assert "d01" in _all(backend)
    # an update and a delete are queued and reach the index at the next drain
    records = RecordService(engine)
    with records.sessions() as s, s.begin():
        hidden = corpus()[0].model_copy(update={"visibility": Visibility.private})
        records.save_dataset(s, hidden, source="microscopy", folder="d01")
        records.delete_dataset(s, "d02")
    assert _queued(engine) == 2
    report = drain(engine, backend)
    assert (report.indexed, report.deleted) == (1, 1)
    assert {"d01", "d02"}.isdisjoint(_all(backend))


def test_a_rolled_back_write_queues_nothing(config: Config, engine: Engine):
    records = RecordService(engine)
    with records.sessions() as s:
        records.save_dataset(s, corpus()[0], source="microscopy", folder="d01")
        s.rollback()
    assert _queued(engine) == 0


class _Broken:
    """A backend whose writes fail, like an index on a full disk or an unreachable cluster."""

    name = "broken"

    def index(self, records):
        list(records)
        raise OSError("No space left on device")

    def delete(self, ids):
        raise OSError("No space left on device")


def test_a_failed_drain_loses_nothing_and_says_why(config: Config, engine: Engine):
    _write(engine, corpus()[:3])
    report = drain(engine, _Broken(), batch_size=10)  # type: ignore[arg-type]
    assert report.failed == 3
    assert report.indexed == 0
    state = queue_state(engine)
    assert state.pending == 3
    assert state.failing == 3
    assert "No space left on device" in (state.last_error or "")
    # the real backend catches up on the next drain
    backend = open_backend(config)
    assert drain(engine, backend).indexed == 3
    assert _all(backend) == {"d01", "d02", "d03"}
    assert queue_state(engine).pending == 0


def test_a_write_during_indexing_stays_queued(config: Config, engine: Engine):
    """An entry re-queued while its batch is being indexed is not deleted with the batch."""
    _write(engine, corpus()[:1])
    backend = open_backend(config)

    class Racing:
        name = "racing"

        def index(self, records):
            n = backend.index(records)
            renamed = corpus()[0].model_copy(update={"title": "Renamed while indexing"})
            _write(engine, [renamed])  # a harvest commits meanwhile
            return n

        def delete(self, ids):
            return backend.delete(ids)

    assert drain(engine, Racing()).indexed == 1  # type: ignore[arg-type]
    assert _queued(engine) == 1
    drain(engine, backend)
    hits = backend.search(SearchQuery(clauses=(), limit=5, facets=False)).hits
    assert [h.id for h in hits] == ["d01"]
    from node.search.query import parse_text

    renamed = backend.search(SearchQuery(clauses=parse_text("renamed"), facets=False))
    assert [h.id for h in renamed.hits] == ["d01"]


def test_one_writer_at_a_time(config: Config, engine: Engine):
    _write(engine, corpus()[:2])
    runs = RunStore(engine)
    assert runs.acquire(LEASE, "elsewhere:1", timedelta(minutes=5))
    backend = open_backend(config)
    report = drain(engine, backend)
    assert report.skipped
    assert _queued(engine) == 2  # left for the process that holds the lease
    with pytest.raises(IndexBusyError, match="elsewhere:1"):
        reindex(engine, backend)
    runs.release(LEASE, "elsewhere:1")
    assert drain(engine, backend).indexed == 2


def test_reindex_rebuilds_from_the_catalog(config: Config, engine: Engine):
    _write(engine, corpus())
    backend = open_backend(config)
    # an index that drifted (a stray document, a missing one) is made whole again
    backend.index([corpus()[0].model_copy(update={"id": "stray"}).to_json()])
    seen: list[int] = []
    n = reindex(engine, backend, batch_size=5, progress=seen.append)
    assert n == len(corpus()) == sum(seen)
    assert "stray" not in _all(backend)
    assert len(_all(backend)) == 10  # every public, published record
    assert _queued(engine) == 0
    assert backend.health().ok


def test_catalog_records_stream_in_batches(config: Config, engine: Engine):
    _write(engine, corpus())
    got = [r["id"] for r in catalog_records(engine, batch_size=5)]
    assert sorted(got) == sorted(d.id for d in corpus())  # each once, in storage order


def test_migration_queues_datasets_that_existed_before(tmp_path, db_url: str):
    """Catalogs made before the search queue existed get every dataset indexed."""
    from alembic import command

    from node.catalog.db import alembic_config, make_engine

    engine = make_engine(db_url)
    try:
        command.upgrade(alembic_config(engine), "0001")
        with engine.begin() as c:
            c.exec_driver_sql(
                "INSERT INTO datasets (id, title, lifecycle, visibility, data_access, "
                "origin_node, modified, dirty, doc) VALUES ('old', 'Old', 'published', 'public', "
                "'open', 'n', '2024-01-01 00:00:00', false, '{}')"
            )
        command.upgrade(alembic_config(engine), "head")
        assert _queued(engine) == 1
    finally:
        engine.dispose()


def test_a_writer_killed_mid_batch_loses_nothing(config: Config, engine: Engine, tmp_path):
    """SIGKILL a process in the middle of indexing (lease held, tantivy writer open, documents
    added but not committed): the next drain takes over and the index matches the catalog."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    _write(engine, corpus())
    backend = open_backend(config)
    drain(engine, backend, max_batches=1, batch_size=3)  # an index exists, 9 entries queued
    assert _queued(engine) == 9
    script = textwrap.dedent(
        """
        import sys, time
        from node.config import parse_config
        from node.catalog.db import open_catalog
        from node.search.indexer import _Lease
        from node.search.tantivy_index import TantivyBackend
        node = {"id": "test-node", "name": "T", "data_dir": sys.argv[1]}
        config = parse_config({"node": node, "database": {"url": sys.argv[2]}}, env=False)
        engine = open_catalog(config.database.url)
        lease = _Lease(engine)
        lease.__enter__()
        backend = TantivyBackend(config)
        writer = backend._writable().writer(heap_size=32_000_000, num_threads=1)
        writer.add_json('{"id": "half-written", "title": "never committed"}')
        print("ready", flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(config.data_dir), config.database.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(os.getcwd())},
    )
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    report = drain(engine, backend)  # the dead holder's lease and writer lock are taken over
    assert not report.skipped
    assert report.indexed == 9
    assert _queued(engine) == 0
    assert _all(backend) == {d.id for d in corpus() if d.id not in ("d07", "d08")}
    assert backend.health().ok
