"""A harvested record belongs to its origin node: `fairnode withdraw` and `fairnode publish
--reinstate` refuse it here, naming the node where it must be changed
(node/catalog/publishing.py), directly and through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from config_file import write_config
from sqlalchemy import Engine, func, select

from node.catalog import publishing
from node.catalog.models import DatasetRow, PidRow
from node.catalog.service import RecordService
from node.config import Config
from node.errors import ConflictError
from node.federation.ingest import Ingester
from node.federation.model import RemoteRecord
from node.records import DataAccess, Dataset, Lifecycle, Provenance

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
ORIGIN = "inst-a"
LANDING = "http://inst-a.test/datasets/ds-1"


def harvested(engine: Engine, config: Config, *, pid: str | None = "ark:/99999/fk4inst00a1") -> str:
    """One record of ``inst-a`` harvested through ``uni``, stored by the real ingest; its id."""
    ds = Dataset(
        id="ds-1",
        identifier=pid,
        title="Mitotic spindles in HeLa",
        modified=T0,
        lifecycle=Lifecycle.published,
        data_access=DataAccess.open,
        provenance=Provenance(origin_node=ORIGIN, source="microscopy"),
    )
    rec = RemoteRecord(
        "oai:inst-a:ds-1", T0, ds, source_record_url=LANDING, harvested_via=(ORIGIN,)
    )
    assert Ingester(config, engine).apply("uni", rec) == "added"
    with engine.connect() as c:
        return c.execute(select(DatasetRow.id)).scalar_one()


def stored(engine: Engine, dataset_id: str) -> Dataset:
    with RecordService(engine).sessions() as s:
        return Dataset.model_validate(s.get(DatasetRow, dataset_id).doc)


def tombstone(engine: Engine, config: Config) -> str:
    """A harvested record its origin withdrew (the deletion applied by ingest)."""
    dataset_id = harvested(engine, config)
    gone = RemoteRecord("oai:inst-a:ds-1", T0 + timedelta(hours=1), None)
    assert Ingester(config, engine).apply("uni", gone) == "withdrawn"
    return dataset_id


def test_withdrawing_a_harvested_record_is_refused_naming_its_node(config: Config, engine: Engine):
    dataset_id = harvested(engine, config)
    before = stored(engine, dataset_id)
    with pytest.raises(ConflictError) as e:
        publishing.withdraw(engine, dataset_id, reason="duplicate", config=config)
    msg = e.value.message
    assert f"dataset {dataset_id!r} was harvested from another node" in msg
    assert f"it belongs to node {ORIGIN!r}" in msg
    assert "must be withdrawn there" in msg
    assert LANDING in msg  # where to go
    assert "harvested through uni" in msg
    assert stored(engine, dataset_id) == before  # nothing changed


def test_reinstating_a_harvested_tombstone_is_refused_naming_its_node(
    config: Config, engine: Engine
):
    dataset_id = tombstone(engine, config)
    before = stored(engine, dataset_id)
    assert before.lifecycle is Lifecycle.withdrawn
    for reinstate in (True, False):  # without --reinstate too: not "run --reinstate"
        with pytest.raises(ConflictError) as e:
            publishing.publish(engine, dataset_id, config=config, reinstate=reinstate)
        assert f"it belongs to node {ORIGIN!r}" in e.value.message
        assert "must be reinstated there" in e.value.message
        assert "--reinstate" not in e.value.message
    assert stored(engine, dataset_id) == before


def test_a_harvested_record_without_pid_never_gets_one_of_ours(config: Config, engine: Engine):
    dataset_id = harvested(engine, config, pid=None)
    with pytest.raises(
        ConflictError, match=f"belongs to node {ORIGIN!r}.* must be published there"
    ):
        publishing.publish(engine, dataset_id, config=config)
    with engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(PidRow)) == 0
    assert stored(engine, dataset_id).identifier is None


def test_publishing_an_already_published_harvested_record_stays_a_no_op(
    config: Config, engine: Engine
):
    dataset_id = harvested(engine, config)
    out = publishing.publish(engine, dataset_id, config=config)
    assert not out.changed
    assert "already published" in out.message


def test_own_records_are_still_withdrawn_and_reinstated(config: Config, engine: Engine):
    # A record of this node (a file-harvested one, with its source) is not guarded.
    ds = Dataset(
        id="ds-own",
        identifier="ark:/99999/fk4own0001",
        title="Own record",
        modified=T0,
        lifecycle=Lifecycle.published,
        provenance=Provenance(origin_node=config.node.id, source="microscopy"),
    )
    records = RecordService(engine)
    with records.sessions() as s, s.begin():
        records.save_dataset(s, ds, source="microscopy", folder="ds-own")
    assert publishing.withdraw(engine, "ds-own", reason="duplicate", config=config).changed
    assert publishing.publish(engine, "ds-own", config=config, reinstate=True).changed
    assert stored(engine, "ds-own").lifecycle is Lifecycle.published


def fairnode(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``fairnode`` command as a real process (its engine ends with it)."""
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "--config", str(path), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )


def test_the_cli_refuses_with_the_reason_on_stderr(config: Config, engine: Engine, tmp_path: Path):
    path = write_config(tmp_path, config)
    dataset_id = harvested(engine, config)
    res = fairnode(path, "withdraw", dataset_id, "--reason", "duplicate")
    assert res.returncode == 1
    assert res.stdout == ""
    assert res.stderr.startswith(f"error: dataset {dataset_id!r} was harvested from another node")
    assert f"belongs to node {ORIGIN!r}" in res.stderr
    assert "must be withdrawn there" in res.stderr
    assert stored(engine, dataset_id).lifecycle is Lifecycle.published

    # The origin withdrew it; the tombstone here cannot be reinstated either.
    gone = RemoteRecord("oai:inst-a:ds-1", T0 + timedelta(hours=1), None)
    assert Ingester(config, engine).apply("uni", gone) == "withdrawn"
    res = fairnode(path, "publish", dataset_id, "--reinstate")
    assert res.returncode == 1
    assert f"belongs to node {ORIGIN!r}" in res.stderr
    assert "must be reinstated there" in res.stderr
    assert stored(engine, dataset_id).lifecycle is Lifecycle.withdrawn
