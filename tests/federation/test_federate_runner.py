"""The federation runner (node/federation/runner.py) against a REAL source: a second node's Flask
app, with its own configuration and catalog, served on a loopback werkzeug server; harvested
over OAI-PMH (dcat_ap) by the node under test, first fully then incrementally.

(Named test_federate_runner.py: tests/harvest/test_runner.py already owns the module name.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from werkzeug.serving import make_server

from node.catalog.db import open_catalog
from node.catalog.models import DatasetRow, FederatedRecordRow, HarvestRunRow, SearchQueueRow
from node.catalog.runs import RunStore
from node.catalog.service import RecordService
from node.config import Config, parse_config
from node.federation.runner import federate, run_key
from node.federation.state import PeerStateStore
from node.oai.views import PAGE_SIZE_SETTING
from node.records import DataAccess, Dataset, Lifecycle, Person, Provenance, Visibility

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SOURCE_ID = "inst-a"
TOKEN = "federation-test-token-7"


def record(n: int, visibility: Visibility = Visibility.public, **fields: Any) -> Dataset:
    values: dict[str, Any] = {
        "id": f"ds-{n:03d}",
        "identifier": f"ark:/99999/fk4t{n:04d}",
        "title": f"Confocal stack {n}",
        "description": f"Record {n} of the source node.",
        "creators": [Person(name="Doe, Jane", orcid="0000-0002-1825-0097")],
        "keywords": ["mitosis"],
        "license": "CC-BY-4.0",
        "issued": T0,
        "modified": T0 + timedelta(minutes=n),
        "lifecycle": Lifecycle.published,
        "visibility": visibility,
        "data_access": DataAccess.open,
        "provenance": Provenance(origin_node=SOURCE_ID, source="microscopy"),
    }
    values.update(fields)
    return Dataset(**values)


class SourceNode:
    """A second fairnode on loopback: its own config, SQLite catalog and Flask app."""

    def __init__(self, tmp: Path, *, page_size: int = 4, delay: float = 0.0):
        self.tmp = tmp
        self.delay = delay
        self._app: Any = None
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.config = parse_config(
            {
                "node": {
                    "id": SOURCE_ID,
                    "name": "Institute A",
                    "base_url": self.url,
                    "data_dir": str(tmp / "data"),
                },
                "database": {"url": f"sqlite:///{tmp / 'source.sqlite3'}"},
            },
            env=False,
        )
        self.engine = open_catalog(self.config.database.url)
        from node.app import create_app

        self._app = create_app(self.config, engine=self.engine)
        self._app.config[PAGE_SIZE_SETTING] = page_size
        self.records = RecordService(self.engine)
        self.thread = Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def _wsgi(self, environ: dict, start_response: Callable) -> Any:
        if self.delay and environ.get("PATH_INFO") == "/oai":
            time.sleep(self.delay)  # a slow peer: each OAI page takes this long
        return self._app(environ, start_response)

    def add(self, *datasets: Dataset) -> None:
        with self.records.sessions() as s, s.begin():
            for ds in datasets:
                self.records.save_dataset(s, ds, source="microscopy", folder=ds.id)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.engine.dispose()


@contextmanager
def source_node(tmp: Path, **kw: Any) -> Iterator[SourceNode]:
    node = SourceNode(tmp, **kw)
    try:
        yield node
    finally:
        node.close()


def harvester_config(config: Config, peers: list[dict[str, Any]]) -> Config:
    """The test node's configuration with these [[federation.peers]]."""
    return parse_config(
        {
            "node": {
                "id": config.node.id,
                "name": config.node.name,
                "base_url": config.node.base_url,
                "data_dir": str(config.data_dir),
            },
            "database": {"url": config.database.url},
            "federation": {"max_retries": 0, "timeout_seconds": 5, "peers": peers},
        },
        env=False,
    )


def catalog_state(engine: Engine) -> set[tuple]:
    with engine.connect() as c:
        return set(
            c.execute(
                select(
                    DatasetRow.id,
                    DatasetRow.identifier,
                    DatasetRow.title,
                    DatasetRow.lifecycle,
                    DatasetRow.visibility,
                    DatasetRow.modified,
                    DatasetRow.origin_node,
                )
            ).all()
        )


def populate(src: SourceNode, n: int = 10) -> None:
    src.add(*(record(i) for i in range(n)))
    src.add(
        record(100, Visibility.federation),
        record(101, Visibility.institution),
        record(102, Visibility.private),
        record(103, lifecycle=Lifecycle.draft, identifier=None),
    )


# "": the native `fairnode` record the peer offers; dcat_ap: forced by metadata_prefix.
@pytest.mark.parametrize("prefix", ["", "dcat_ap"])
def test_full_then_incremental_harvest_of_a_real_node(
    config: Config, engine: Engine, tmp_path: Path, prefix: str
):
    with source_node(tmp_path / "src") as src:
        populate(src)
        cfg = harvester_config(
            config, [{"id": SOURCE_ID, "url": src.url, "metadata_prefix": prefix}]
        )
        seen: list[int] = []
        runs = federate(cfg, engine, progress=lambda _p, c: seen.append(c.read))
        run = runs[SOURCE_ID]
        assert run.status == "completed", run.message
        # Anonymous: only the ten public records travel; federation, institution, private and
        # draft records never leave the source.
        assert (run.counts.added, run.counts.skipped) == (10, 0)
        assert seen[-1] == run.counts.read
        state = catalog_state(engine)
        assert {row[1] for row in state} == {f"ark:/99999/fk4t{i:04d}" for i in range(10)}
        assert {row[3] for row in state} == {"published"}
        assert {row[4] for row in state} == {"public"}
        assert {row[6] for row in state} == {SOURCE_ID}
        with engine.connect() as c:
            h = c.execute(select(HarvestRunRow)).one()
            assert (h.source, h.kind, h.status) == (run_key(SOURCE_ID), "federation", "completed")
            # federate() drained the search queue at the end.
            assert c.scalar(select(func.count()).select_from(SearchQueueRow)) == 0
        peer_state = PeerStateStore(engine).get(SOURCE_ID)
        assert peer_state.watermark is not None
        assert peer_state.last_success is not None
        assert peer_state.last_counts["added"] == 10

        # Nothing changed: the incremental run reads only the overlap window, changes nothing.
        again = federate(cfg, engine)[SOURCE_ID]
        assert again.status == "completed"
        assert again.counts.added == again.counts.updated == again.counts.withdrawn == 0
        assert catalog_state(engine) == state

        # An update and a withdrawal at the source arrive with the next run.
        later = datetime.now(UTC) - timedelta(seconds=1)  # the source serves up to its now
        src.add(
            record(3, title="Confocal stack 3, revised", modified=later),
            record(
                4,
                lifecycle=Lifecycle.withdrawn,
                withdrawn_reason="consent withdrawn",
                modified=later,
            ),
        )
        third = federate(cfg, engine)[SOURCE_ID]
        assert (third.counts.updated, third.counts.withdrawn) == (1, 1), third.counts
        by_pid = {row[1]: row for row in catalog_state(engine)}
        assert by_pid["ark:/99999/fk4t0003"][2] == "Confocal stack 3, revised"
        assert by_pid["ark:/99999/fk4t0004"][3] == "withdrawn"


def test_a_peer_presenting_the_token_is_served_federation_records(
    config: Config, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAIRNODE_FEDERATION_TOKEN", TOKEN)  # the source's configured token
    monkeypatch.setenv("INST_A_TOKEN", TOKEN)  # what this node presents
    with source_node(tmp_path / "src") as src:
        populate(src, 3)
        cfg = harvester_config(
            config, [{"id": SOURCE_ID, "url": src.url, "token_env": "INST_A_TOKEN"}]
        )
        run = federate(cfg, engine)[SOURCE_ID]
        assert run.status == "completed", run.message
    vis = {row[1]: row[4] for row in catalog_state(engine)}
    # The federation record arrives, kept at federation visibility; institution/private never.
    assert vis == {
        "ark:/99999/fk4t0000": "public",
        "ark:/99999/fk4t0001": "public",
        "ark:/99999/fk4t0002": "public",
        "ark:/99999/fk4t0100": "federation",
    }


def test_a_wrong_token_fails_the_run_saying_so(
    config: Config, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAIRNODE_FEDERATION_TOKEN", TOKEN)
    monkeypatch.setenv("INST_A_TOKEN", TOKEN + "-stale")
    with source_node(tmp_path / "src") as src:
        populate(src, 3)
        cfg = harvester_config(
            config, [{"id": SOURCE_ID, "url": src.url, "token_env": "INST_A_TOKEN"}]
        )
        run = federate(cfg, engine)[SOURCE_ID]
    assert run.status == "failed"
    assert f"peer {SOURCE_ID!r}" in run.message
    assert "HTTP 401: the peer refused the bearer token this node presented" in run.message
    assert "Bearer" in run.message  # the peer's challenge, quoted
    assert TOKEN not in run.message
    assert catalog_state(engine) == set()  # nothing read without the right token


def test_a_down_peer_fails_with_its_error_while_another_succeeds(
    config: Config, engine: Engine, tmp_path: Path
):
    # A port that was just free: nothing listens there.
    probe = make_server("127.0.0.1", 0, lambda e, s: [])
    dead = f"http://127.0.0.1:{probe.server_port}"
    probe.server_close()
    with source_node(tmp_path / "src") as src:
        populate(src, 3)
        cfg = harvester_config(
            config,
            [
                {"id": "gone", "url": dead},
                {"id": SOURCE_ID, "url": src.url},
            ],
        )
        runs = federate(cfg, engine)
    assert runs["gone"].status == "failed"
    assert dead in runs["gone"].message
    assert runs[SOURCE_ID].status == "completed"
    assert runs[SOURCE_ID].counts.added == 3
    states = PeerStateStore(engine)
    gone = states.get("gone")
    assert gone.last_error == runs["gone"].message
    assert gone.last_error_at is not None
    assert gone.watermark is None  # kept: the next run reads everything again
    assert gone.last_success is None
    with engine.connect() as c:
        failed = c.execute(
            select(HarvestRunRow).where(HarvestRunRow.source == run_key("gone"))
        ).one()
    assert failed.status == "failed"
    assert failed.message == runs["gone"].message


def test_a_peer_being_harvested_elsewhere_is_skipped_not_run_twice(
    config: Config, engine: Engine, tmp_path: Path
):
    with source_node(tmp_path / "src") as src:
        cfg = harvester_config(config, [{"id": SOURCE_ID, "url": src.url}])
        RunStore(engine).acquire(run_key(SOURCE_ID), "elsewhere:1", timedelta(minutes=5))
        run = federate(cfg, engine)[SOURCE_ID]
    assert run.status == "busy"
    assert "elsewhere:1" in run.message
    with engine.connect() as c:
        assert c.execute(select(HarvestRunRow)).all() == []


def _write_toml(path: Path, cfg: Config, peer_url: str) -> Path:
    path.write_text(
        f"""[node]
id = "{cfg.node.id}"
name = "Harvester"
base_url = "{cfg.node.base_url}"
data_dir = "{cfg.data_dir}"

[database]
url = "{cfg.database.url}"

[federation]
max_retries = 0

[[federation.peers]]
id = "{SOURCE_ID}"
url = "{peer_url}"
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
def test_a_run_killed_with_sigkill_and_rerun_ends_like_an_uninterrupted_one(
    config: Config, engine: Engine, tmp_path: Path
):
    with source_node(tmp_path / "src", page_size=3, delay=0.4) as src:
        populate(src, 30)
        toml = _write_toml(tmp_path / "node.toml", config, src.url)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--config", str(toml), "federate", "--quiet"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # Kill it once some, not all, records are committed: mid-run, by construction.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                with engine.connect() as c:
                    n = c.scalar(select(func.count()).select_from(FederatedRecordRow)) or 0
                if n > 0:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
            proc.stdout.close()
            proc.stderr.close()
        with engine.connect() as c:
            partial = c.scalar(select(func.count()).select_from(DatasetRow))
        assert 0 < partial < 30
        src.delay = 0.0
        cfg = harvester_config(config, [{"id": SOURCE_ID, "url": src.url}])
        rerun = federate(cfg, engine)[SOURCE_ID]  # the dead holder's lease is taken over
        assert rerun.status == "completed", rerun.message
        # The reference: one uninterrupted run into a fresh catalog.
        ref_engine = open_catalog(f"sqlite:///{tmp_path / 'reference.sqlite3'}")
        try:
            ref_cfg = parse_config(
                {
                    "node": {"id": config.node.id, "name": "ref", "data_dir": str(tmp_path / "r")},
                    "database": {"url": f"sqlite:///{tmp_path / 'reference.sqlite3'}"},
                    "federation": {"peers": [{"id": SOURCE_ID, "url": src.url}]},
                },
                env=False,
            )
            assert federate(ref_cfg, ref_engine)[SOURCE_ID].status == "completed"
            assert catalog_state(engine) == catalog_state(ref_engine)
            assert len(catalog_state(engine)) == 30
        finally:
            ref_engine.dispose()
    with engine.connect() as c:
        statuses = [
            r.status for r in c.execute(select(HarvestRunRow).order_by(HarvestRunRow.id)).all()
        ]
    assert statuses == ["interrupted", "completed"]
