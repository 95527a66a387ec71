"""Ingest (node/federation/ingest.py): what a harvested record becomes in the catalog, rule by rule,
against the real catalog database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from node.catalog import publishing
from node.catalog.models import DatasetRow, FederatedRecordRow, PidRow, SearchQueueRow
from node.config import Config, parse_config
from node.federation.ingest import Ingester, federated_id
from node.federation.model import IngestCounts, RecordProblem, RemoteRecord
from node.records import DataAccess, Dataset, Lifecycle, Provenance, Visibility

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
PID = "ark:/99999/fk4inst00a1"


def remote(
    remote_id: str = "oai:inst-a:ds-1",
    *,
    modified: datetime = T0,
    pid: str | None = PID,
    origin: str = "inst-a",
    title: str = "Mitotic spindles in HeLa",
    visibility: Visibility = Visibility.public,
    via: tuple[str, ...] = (),
    url: str | None = "http://inst-a.test/datasets/ds-1",
    **fields,
) -> RemoteRecord:
    ds = Dataset(
        id="ds-1",
        identifier=pid,
        title=title,
        modified=modified,
        lifecycle=Lifecycle.published,
        data_access=fields.pop("data_access", DataAccess.open),
        provenance=Provenance(origin_node=origin, source="microscopy"),
        **fields,
    )
    return RemoteRecord(
        remote_id=remote_id,
        datestamp=modified,
        dataset=ds,
        visibility=visibility,
        source_record_url=url,
        harvested_via=via,
    )


def deletion(remote_id: str = "oai:inst-a:ds-1", at: datetime = T0) -> RemoteRecord:
    return RemoteRecord(remote_id=remote_id, datestamp=at, dataset=None)


def rows(engine: Engine) -> list[DatasetRow]:
    with engine.connect() as c:
        return list(c.execute(select(DatasetRow).order_by(DatasetRow.id)).all())


def stored(engine: Engine, dataset_id: str) -> Dataset:
    with engine.connect() as c:
        doc = c.execute(select(DatasetRow.doc).where(DatasetRow.id == dataset_id)).scalar_one()
    return Dataset.model_validate(doc)


def only_id(engine: Engine) -> str:
    (row,) = rows(engine)
    return row.id


def test_a_new_record_is_stored_published_with_its_origin_pid_and_provenance(
    config: Config, engine: Engine
):
    ing = Ingester(config, engine)
    assert ing.apply("uni", remote(via=("inst-a",))) == "added"
    (row,) = rows(engine)
    assert row.id == federated_id(remote().dataset, "inst-a", "oai:inst-a:ds-1")
    assert row.id.startswith("fed-")
    assert len(row.id) <= 64
    # The file harvester only touches rows of its own source: federated rows have none.
    assert row.source is None
    assert row.folder is None
    ds = stored(engine, row.id)
    assert ds.identifier == PID  # the origin's PID, not one of ours
    assert ds.lifecycle is Lifecycle.published
    assert ds.data_access is DataAccess.open  # as mapped
    assert ds.provenance.origin_node == "inst-a"
    assert ds.provenance.harvested_via == ["inst-a", "uni"]  # nearest-origin first, no repeats
    assert ds.provenance.source_record_url == "http://inst-a.test/datasets/ds-1"
    assert ds.provenance.first_seen is not None
    assert ds.provenance.last_harvested == ds.provenance.first_seen
    with engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(PidRow)) == 0  # nothing minted
        mapping = c.execute(select(FederatedRecordRow)).one()
    assert (mapping.peer_id, mapping.remote_id, mapping.dataset_id) == (
        "uni",
        "oai:inst-a:ds-1",
        row.id,
    )


def test_publishing_never_mints_or_republishes_a_harvested_record(config: Config, engine: Engine):
    Ingester(config, engine).apply("inst-a", remote())
    out = publishing.publish(engine, only_id(engine), config=config)
    assert not out.changed
    assert out.pid == PID
    with engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(PidRow)) == 0


def test_saving_queues_the_record_for_search_in_the_same_transaction(
    config: Config, engine: Engine
):
    Ingester(config, engine).apply("inst-a", remote())
    with engine.connect() as c:
        queued = set(c.scalars(select(SearchQueueRow.dataset_id)))
    assert queued == {only_id(engine)}


def test_own_records_are_never_imported_back(config: Config, engine: Engine):
    ing = Ingester(config, engine)
    assert ing.apply("uni", remote(origin=config.node.id)) == "own"
    # Born elsewhere, but it already came through this node: a cycle.
    assert ing.apply("uni", remote("oai:uni:x", via=("inst-a", config.node.id))) == "own"
    assert rows(engine) == []
    with engine.connect() as c:
        assert c.execute(select(FederatedRecordRow)).all() == []


def test_a_peer_claiming_one_of_our_pids_never_overwrites_our_record(
    config: Config, engine: Engine, catalog
):
    catalog.add(catalog.dataset("ds-ours", identifier=PID))
    assert Ingester(config, engine).apply("uni", remote(modified=T0 + timedelta(days=900))) == "own"
    assert stored(engine, "ds-ours").title == "Dataset ds-ours"
    assert len(rows(engine)) == 1


def test_newest_modified_wins_both_ways(config: Config, engine: Engine):
    ing = Ingester(config, engine)
    assert ing.apply("inst-a", remote(title="Version 2", modified=T0)) == "added"
    first = stored(engine, only_id(engine))
    # An older version (a slow peer, or another path) changes nothing.
    older = remote("oai:b:1", title="Version 1", modified=T0 - timedelta(hours=1))
    assert ing.apply("uni", older) == "unchanged"
    assert stored(engine, only_id(engine)).title == "Version 2"
    # The same version again: unchanged too.
    assert ing.apply("inst-a", remote(title="Version 2", modified=T0)) == "unchanged"
    # A newer one replaces it; first_seen is kept, last_harvested moves.
    newer = remote(title="Version 3", modified=T0 + timedelta(hours=1))
    assert ing.apply("inst-a", newer) == "updated"
    ds = stored(engine, only_id(engine))
    assert ds.title == "Version 3"
    assert ds.modified == T0 + timedelta(hours=1)
    assert ds.provenance.first_seen == first.provenance.first_seen
    assert ds.provenance.last_harvested > first.provenance.last_harvested
    # Even the unchanged answer records which remote id names the record at that peer.
    with engine.connect() as c:
        peers = set(c.scalars(select(FederatedRecordRow.peer_id)))
    assert peers == {"inst-a", "uni"}


def test_two_paths_to_one_record_land_on_one_row(config: Config, engine: Engine):
    ing = Ingester(config, engine)
    direct = remote("oai:inst-a:ds-1")
    transitive = remote("oai:uni:fed-abc", via=("inst-a",), url="http://uni.test/datasets/x")
    assert ing.apply("inst-a", direct) == "added"
    assert ing.apply("uni", transitive) == "unchanged"
    assert len(rows(engine)) == 1
    # And within one batch, round a cycle, with a newer copy second: still one row, the newest.
    counts = IngestCounts()
    cyc = remote("oai:nat:1", via=("inst-a", "uni"), modified=T0 + timedelta(minutes=1))
    out = ing.apply_batch("nat", [transitive, cyc, direct], counts)
    assert out == ["unchanged", "updated", "unchanged"]
    (row,) = rows(engine)
    assert stored(engine, row.id).provenance.harvested_via == ["inst-a", "uni", "nat"]
    with engine.connect() as c:
        targets = set(c.scalars(select(FederatedRecordRow.dataset_id)))
    assert targets == {row.id}


def test_records_without_a_pid_are_keyed_by_origin_and_remote_id(config: Config, engine: Engine):
    ing = Ingester(config, engine)
    ing.apply("zenodo", remote("oai:zenodo.org:1", pid=None, origin="zenodo"))
    ing.apply("zenodo", remote("oai:zenodo.org:2", pid=None, origin="zenodo"))
    ing.apply("zenodo", remote("oai:zenodo.org:1", pid=None, origin="zenodo"))
    assert len(rows(engine)) == 2
    assert all(r.identifier is None for r in rows(engine))


def test_a_deletion_withdraws_the_record_into_a_tombstone_served_as_deleted(
    config: Config, engine: Engine, client
):
    ing = Ingester(config, engine)
    ing.apply("inst-a", remote())
    dataset_id = only_id(engine)
    # A deletion older than what we hold changes nothing (a newer copy came by another path).
    assert ing.apply("inst-a", deletion(at=T0 - timedelta(seconds=1))) == "unchanged"
    assert stored(engine, dataset_id).lifecycle is Lifecycle.published
    gone = T0 + timedelta(days=2)
    assert ing.apply("inst-a", deletion(at=gone)) == "withdrawn"
    ds = stored(engine, dataset_id)
    assert ds.lifecycle is Lifecycle.withdrawn
    assert ds.withdrawn_reason == "withdrawn at its origin node inst-a"
    assert ds.modified == gone
    assert ds.identifier == PID
    # Served upstream as an OAI deleted record: the tombstone propagates.
    r = client.get(
        "/oai",
        query_string={
            "verb": "GetRecord",
            "identifier": f"oai:node.test:{dataset_id}",
            "metadataPrefix": "oai_dc",
        },
    )
    assert r.status_code == 200
    assert b'status="deleted"' in r.data
    # Applying the deletion again is harmless; an unknown remote id is ignored.
    assert ing.apply("inst-a", deletion(at=gone)) == "unchanged"
    assert ing.apply("inst-a", deletion("oai:inst-a:never-seen", gone)) == "unchanged"
    assert len(rows(engine)) == 1


def test_a_deletion_by_a_peer_that_is_not_the_origin_says_so(config: Config, engine: Engine):
    ing = Ingester(config, engine)
    ing.apply("uni", remote("oai:uni:1", via=("inst-a",)))
    assert ing.apply("uni", deletion("oai:uni:1", T0 + timedelta(hours=1))) == "withdrawn"
    reason = stored(engine, only_id(engine)).withdrawn_reason
    assert reason == "deleted by peer uni (origin node inst-a)"


def test_a_record_updated_after_its_withdrawal_is_published_again(config: Config, engine: Engine):
    ing = Ingester(config, engine)
    ing.apply("inst-a", remote())
    ing.apply("inst-a", deletion(at=T0 + timedelta(hours=1)))
    back = remote(title="Back again", modified=T0 + timedelta(hours=2))
    assert ing.apply("inst-a", back) == "updated"
    ds = stored(engine, only_id(engine))
    assert ds.lifecycle is Lifecycle.published
    assert ds.withdrawn_reason is None
    assert ds.title == "Back again"


def test_a_deletion_inferred_from_absence_is_undone_when_the_record_is_served_again(
    config: Config, engine: Engine
):
    """DCAT has no deletions: a record missing from one complete read becomes a tombstone. If
    it was merely skipped (a catalog paged by offset while it changed) and comes back unchanged,
    older than its tombstone, it is published again, dated after the tombstone so that nodes
    upstream take it back too. A stated deletion is not undone by an older copy."""
    ing = Ingester(config, engine)
    ing.apply("fdp", remote("https://fdp.test/ds/1", modified=T0))
    dataset_id = only_id(engine)
    read = T0 + timedelta(days=1)
    absent = RemoteRecord("https://fdp.test/ds/1", read, None, inferred=True)
    assert ing.apply("fdp", absent) == "withdrawn"
    ds = stored(engine, dataset_id)
    assert ds.lifecycle is Lifecycle.withdrawn
    assert ds.withdrawn_reason.startswith("no longer listed in the catalog of peer fdp")
    assert ing.apply("fdp", remote("https://fdp.test/ds/1", modified=T0)) == "updated"
    back = stored(engine, dataset_id)
    assert back.lifecycle is Lifecycle.published
    assert back.withdrawn_reason is None
    assert back.modified > read
    assert ing.apply("fdp", remote("https://fdp.test/ds/1", modified=T0)) == "unchanged"
    # A deletion the peer stated stays, whatever older copy comes later.
    stated = datetime.now(UTC) + timedelta(minutes=1)  # after the revival, as it would be
    assert ing.apply("fdp", deletion("https://fdp.test/ds/1", stated)) == "withdrawn"
    assert ing.apply("fdp", remote("https://fdp.test/ds/1", modified=T0)) == "unchanged"
    assert stored(engine, dataset_id).lifecycle is Lifecycle.withdrawn


def test_visibility_is_never_more_open_than_the_peer_said(config: Config, engine: Engine, client):
    ing = Ingester(config, engine)
    assert ing.apply("inst-a", remote(visibility=Visibility.federation)) == "added"
    dataset_id = only_id(engine)
    assert stored(engine, dataset_id).visibility is Visibility.federation
    # Anonymous callers do not see it; the peers that present a token would.
    assert client.get(f"/api/v1/datasets/{dataset_id}").status_code == 404
    # A peer that leaks an institution-only record: reported and skipped, never stored.
    counts = IngestCounts()
    leaked = remote("oai:inst-a:2", pid="ark:/99999/fk4leak", visibility=Visibility.institution)
    assert ing.apply_batch("inst-a", [leaked], counts) == ["skipped"]
    assert counts.skipped == 1
    assert "never leaves its node" in counts.problems[0].reason
    assert len(rows(engine)) == 1


def test_record_problems_are_counted_as_skipped(config: Config, engine: Engine):
    counts = IngestCounts()
    problem = RecordProblem("oai:inst-a:bad", "no title")
    out = Ingester(config, engine).apply_batch("inst-a", [problem, remote()], counts)
    assert out == ["skipped", "added"]
    assert (counts.skipped, counts.added, counts.read) == (1, 1, 2)
    assert counts.problems == [problem]


def test_ingest_streams_in_batches_and_is_idempotent(config: Config, engine: Engine):
    ing = Ingester(config, engine, batch_size=7)
    items = [
        remote(f"oai:inst-a:{i}", pid=f"ark:/99999/fk4n{i:04d}", modified=T0 + timedelta(seconds=i))
        for i in range(30)
    ]
    snapshots = [c.read for c in ing.ingest("inst-a", items)]
    assert snapshots == [7, 14, 21, 28, 30]
    first = {r.id: r.modified for r in rows(engine)}
    assert len(first) == 30
    again = list(ing.ingest("inst-a", items))[-1]
    assert (again.unchanged, again.added, again.updated) == (30, 0, 0)
    assert {r.id: r.modified for r in rows(engine)} == first


def test_the_file_harvester_never_touches_federated_records(
    config: Config, engine: Engine, tmp_path: Path
):
    """A file harvest withdraws datasets of *its source* whose files vanished: federated rows
    (source None) are not among them, even when the source folder is empty."""
    Ingester(config, engine).apply("inst-a", remote())
    (tmp_path / "store").mkdir()
    with_source = parse_config(
        {
            "node": {"id": config.node.id, "name": "n", "data_dir": str(tmp_path / "data")},
            "database": {"url": config.database.url},
            "harvest": {"sources": [{"name": "microscopy", "path": str(tmp_path / "store")}]},
        },
        env=False,
    )
    from node.harvest.runner import Harvester

    run = Harvester(with_source, engine).run("microscopy")
    assert run.status == "completed"
    ds = stored(engine, only_id(engine))
    assert ds.lifecycle is Lifecycle.published
    assert ds.identifier == PID


def test_the_peers_thumbnail_file_name_is_not_kept(config: Config, engine: Engine):
    """A peer's record names a file of the peer's thumbnail folder: meaningless here (this node
    would look for it among its own images), so it is dropped."""
    ing = Ingester(config, engine)
    assert ing.apply("inst-a", remote(thumbnail="im-abc.png")) == "added"
    assert stored(engine, only_id(engine)).thumbnail is None
