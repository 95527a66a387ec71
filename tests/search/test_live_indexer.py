"""LiveIndexer: a bulk writer's batches are indexed as they commit, and the search queue stays
the truth (an entry leaves it only once the index committed that version of the record).
Runs on SQLite and PostgreSQL (the ``engine`` fixture) with the tantivy backend, whose bulk
writer runs in a child process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from search_helpers import corpus
from sqlalchemy import Engine, func, select

from node.catalog.models import SearchQueueRow
from node.catalog.runs import RunStore
from node.catalog.service import RecordService, SavedDatasets
from node.config import Config
from node.search.backend import SearchQuery
from node.search.factory import open_backend
from node.search.indexer import LEASE, LiveIndexer, drain, queue_state


def _save(engine: Engine, datasets) -> SavedDatasets:
    records = RecordService(engine)
    with records.sessions() as s, s.begin():
        return records.save_datasets(s, datasets)


def _queued(engine: Engine) -> int:
    with engine.connect() as c:
        return c.scalar(select(func.count()).select_from(SearchQueueRow))


def _all(backend) -> set[str]:
    return {h.id for h in backend.search(SearchQuery(limit=100, facets=False)).hits}


def test_batches_are_indexed_and_leave_the_queue(config: Config, engine: Engine):
    backend = open_backend(config)
    live = LiveIndexer.start(engine, backend)
    assert live is not None
    live.submit(_save(engine, corpus()[:6]))
    live.submit(_save(engine, corpus()[6:]))
    report = live.close()
    assert report.indexed == len(corpus())
    assert _queued(engine) == 0
    # every public, published record is found (d07 private, d08 a draft are not)
    assert _all(backend) == {d.id for d in corpus() if d.id not in ("d07", "d08")}
    # the lease was given back: a drain can run
    assert not drain(engine, backend).skipped
    backend.close()


def test_a_record_written_twice_ends_as_its_last_version(config: Config, engine: Engine):
    backend = open_backend(config)
    live = LiveIndexer.start(engine, backend)
    assert live is not None
    first = corpus()[0]
    live.submit(_save(engine, [first]))
    live.submit(_save(engine, [first.model_copy(update={"title": "Renamed zebrafish record"})]))
    live.close()
    assert _queued(engine) == 0
    from node.search.query import parse_text

    hits = backend.search(SearchQuery(clauses=parse_text("renamed"), facets=False)).hits
    assert [h.id for h in hits] == [first.id]
    backend.close()


class _Broken:
    """A backend whose writes fail, like an index on a full disk (and no bulk writer)."""

    name = "broken"

    def index(self, records):
        list(records)
        raise OSError("No space left on device")

    def delete(self, ids):
        raise OSError("No space left on device")


def test_a_failure_leaves_the_records_queued_with_the_reason(config: Config, engine: Engine):
    live = LiveIndexer.start(engine, _Broken())  # type: ignore[arg-type]
    assert live is not None
    live.submit(_save(engine, corpus()[:3]))
    report = live.close()
    assert (report.failed, report.indexed) == (3, 0)
    assert "No space left on device" in (live.error or "")
    state = queue_state(engine)
    assert (state.pending, state.failing) == (3, 3)
    assert "No space left on device" in (state.last_error or "")
    # the next drain catches up
    backend = open_backend(config)
    assert drain(engine, backend).indexed == 3
    assert _all(backend) == {"d01", "d02", "d03"}
    backend.close()


def test_a_write_while_indexing_stays_queued(config: Config, engine: Engine):
    """A record written again while its batch is being indexed keeps its (newer) entry."""
    backend = open_backend(config)

    class Racing:  # no bulk writer: one index() call per round
        name = "racing"

        def index(self, records):
            n = backend.index(records)
            _save(engine, [corpus()[0].model_copy(update={"title": "Renamed meanwhile"})])
            return n

        def delete(self, ids):
            return backend.delete(ids)

    live = LiveIndexer.start(engine, Racing())  # type: ignore[arg-type]
    assert live is not None
    live.submit(_save(engine, corpus()[:2]))
    assert live.close().indexed == 2
    assert _queued(engine) == 1  # d01's newer version, for the next drain
    assert drain(engine, backend).indexed == 1
    assert _queued(engine) == 0
    backend.close()


def test_busy_index_leaves_everything_to_the_queue(config: Config, engine: Engine):
    runs = RunStore(engine)
    assert runs.acquire(LEASE, "elsewhere:1", timedelta(minutes=5))
    backend = open_backend(config)
    assert LiveIndexer.start(engine, backend) is None
    _save(engine, corpus()[:2])
    assert _queued(engine) == 2
    runs.release(LEASE, "elsewhere:1")
    backend.close()


def test_a_bulk_writer_whose_process_died_fails_its_commit(config: Config, engine: Engine):
    backend = open_backend(config)
    writer = backend.bulk_writer()
    writer.add([corpus()[0].model_dump_json()])
    writer.proc.kill()
    writer.proc.wait()
    with pytest.raises(RuntimeError, match="search indexing process ended"):
        writer.commit()
    writer.close()
    assert _all(backend) == set()  # nothing half-written became visible
    backend.close()
