"""What a record harvested from a peer becomes in the catalog (DESIGN §7).

One record, one row, whatever the path it came by: the local id is derived from the record's
origin identity (its PID, else its origin node and remote id), so a record reaching this node
through two peers, or round a cycle, lands on the same row, and the newest ``modified`` wins.
Records born here, or that already came through here, are never imported back.

Harvested rows have no ``source`` (column None): the file harvester only ever touches rows of
its own source name (node/harvest/runner.py selects by ``DatasetRow.source``), so it never
withdraws or rewrites a federated record; they are stored already published with their origin
PID, so node.catalog.publishing never mints them one (it mints only when ``identifier`` is None,
and only when a curator runs ``fairnode publish``).

Writes are batched: ``Batch`` collects up to ``batch_size`` items, looks the rows they touch up
in three queries and writes them in one transaction (bulk upsert + search queue + the
peer-to-record mapping). A run killed mid-way loses at most the batch in flight, which the next
run reads again (from the old watermark); applying a record twice changes nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from node.catalog.db import session_factory
from node.catalog.models import DatasetRow, FederatedRecordRow
from node.catalog.service import RecordService, SavedDatasets
from node.config import Config
from node.federation.model import IngestCounts, RecordProblem, RemoteRecord
from node.records import Dataset, Lifecycle, Visibility

ADDED, UPDATED, UNCHANGED, WITHDRAWN, OWN, SKIPPED = (
    "added",
    "updated",
    "unchanged",
    "withdrawn",
    "own",
    "skipped",
)
BATCH_SIZE = 1000  # records per transaction: fewer commits (WAL checkpoints) and statements
BATCH_SECONDS = 1.0
# From most open to most closed: a harvested record is stored no more open than its peer said.
_OPENNESS = [Visibility.public, Visibility.federation, Visibility.institution, Visibility.private]
_MAY_TRAVEL = {Visibility.public, Visibility.federation}
ABSENT_REASON = "no longer listed in the catalog of peer"


@functools.lru_cache(maxsize=4096)  # a batch derives each id twice (lookup, then apply)
def _digest(*parts: str) -> str:
    # The style of node/harvest/ids.py: 80 bits of SHA-256 in lower-case base32.
    h = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogateescape")).digest()
    return base64.b32encode(h[:10]).decode("ascii").lower()


def federated_id(dataset: Dataset, origin_node: str, remote_id: str) -> str:
    """The local id of a harvested record: from its PID when it has one (the same on every
    path), else from (origin node, remote id). "fed-" + 16 characters: fits String(64) and can
    never collide with a file harvest's "ds-" ids."""
    if dataset.identifier:
        return "fed-" + _digest("pid", dataset.identifier.strip())
    return "fed-" + _digest("origin", origin_node, remote_id)


def chain(incoming: Iterable[str], peer_id: str) -> list[str]:
    """The nodes a record came through, nearest-origin first, this peer last, no repeats."""
    return list(dict.fromkeys([*incoming, peer_id]))


@dataclass
class _Stored:
    """What a batch needs to know of a row it may touch."""

    id: str
    modified: datetime
    lifecycle: str
    origin_node: str
    doc: dict | None = None  # as read from the row, or
    dataset: Dataset | None = None  # as this batch wrote it

    def as_dataset(self) -> Dataset:
        return self.dataset if self.dataset is not None else Dataset.model_validate(self.doc)

    def withdrawn_by_absence(self) -> bool:
        """A tombstone made because a complete read of the peer's catalog lacked the record
        (``RemoteRecord.inferred``), not because anyone withdrew it."""
        if self.lifecycle != Lifecycle.withdrawn.value:
            return False
        reason = (
            self.dataset.withdrawn_reason
            if self.dataset is not None
            else (self.doc or {}).get("withdrawn_reason")
        )
        return bool(reason) and reason.startswith(ABSENT_REASON)

    def first_seen(self) -> datetime | None:
        if self.dataset is not None:
            return self.dataset.provenance.first_seen
        raw = ((self.doc or {}).get("provenance") or {}).get("first_seen")
        return datetime.fromisoformat(raw) if raw else None


class Ingester:
    """Applies a peer's remote records to the catalog (``config`` is this node's)."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        *,
        batch_size: int = BATCH_SIZE,
        committed: Callable[[SavedDatasets], None] | None = None,
    ):
        """``committed`` is called with what each batch wrote, once it committed (the runner
        hands it to the search index: node.search.indexer.LiveIndexer)."""
        self.committed = committed
        self.config = config
        self.node_id = config.node.id
        self.engine = engine
        self.sessions = session_factory(engine)
        self.records = RecordService(engine)
        self.batch_size = batch_size

    def apply(self, peer: str, item: RemoteRecord | RecordProblem) -> str:
        """Apply one item in its own transaction and return its outcome (added, updated,
        unchanged, withdrawn, own, skipped). Runs use ``apply_batch`` / ``ingest``."""
        return self.apply_batch(peer, [item])[0]

    def ingest(
        self,
        peer: str,
        items: Iterable[RemoteRecord | RecordProblem],
        counts: IngestCounts | None = None,
    ) -> Iterator[IngestCounts]:
        """Apply ``items`` in batches; yields the running counts after each committed batch
        (the caller reports progress and heartbeats there)."""
        counts = counts if counts is not None else IngestCounts()
        batch: list[RemoteRecord | RecordProblem] = []
        started = time.monotonic()
        for item in items:
            batch.append(item)
            # A slow peer's records are committed at least every BATCH_SECONDS too: progress
            # shows, and a killed run has less to read again.
            if len(batch) >= self.batch_size or time.monotonic() - started >= BATCH_SECONDS:
                self.apply_batch(peer, batch, counts)
                batch = []
                started = time.monotonic()
                yield counts
        if batch:
            self.apply_batch(peer, batch, counts)
        yield counts

    def apply_batch(
        self,
        peer: str,
        items: list[RemoteRecord | RecordProblem],
        counts: IngestCounts | None = None,
    ) -> list[str]:
        """Apply ``items`` (in order) in ONE transaction; the outcome of each, in order."""
        counts = counts if counts is not None else IngestCounts()
        now = datetime.now(UTC)
        with self.sessions() as s, s.begin():
            stored = self._lookup(s, peer, items)
            out: list[str] = []
            writes: dict[str, Dataset] = {}
            mappings: dict[str, dict] = {}
            for item in items:
                if isinstance(item, RecordProblem):
                    counts.skipped += 1
                    counts.problems.append(item)
                    out.append(SKIPPED)
                    continue
                outcome = self._one(peer, item, now, stored, writes, mappings, counts)
                setattr(counts, outcome, getattr(counts, outcome) + 1)
                out.append(outcome)
            saved = self.records.save_datasets(s, writes.values())
            self._save_mappings(s, list(mappings.values()))
        if self.committed is not None and saved.docs:
            self.committed(saved)
        return out

    # ------------------------------------------------------------------ one record

    def _one(
        self,
        peer: str,
        rec: RemoteRecord,
        now: datetime,
        stored: _Lookup,
        writes: dict[str, Dataset],
        mappings: dict[str, dict],
        counts: IngestCounts,
    ) -> str:
        def mapped(dataset_id: str) -> None:
            mappings[rec.remote_id] = {
                "peer_id": peer,
                "remote_id": rec.remote_id,
                "dataset_id": dataset_id,
                "datestamp": rec.datestamp,
            }

        if rec.dataset is None:
            return self._deletion(peer, rec, stored, writes, mapped, now)
        ds = rec.dataset
        origin = ds.provenance.origin_node or peer
        via = [*rec.harvested_via, *ds.provenance.harvested_via]
        if origin == self.node_id or self.node_id in via:
            return OWN
        visibility = max(rec.visibility, ds.visibility, key=_OPENNESS.index)
        if visibility not in _MAY_TRAVEL:
            counts.problems.append(
                RecordProblem(
                    rec.remote_id,
                    f"the peer served a record marked {visibility.value!r}, which never leaves "
                    "its node; not stored",
                )
            )
            return SKIPPED
        # The PID may already be on a row (first seen by another path): that row is the record.
        by_pid = stored.by_pid.get(ds.identifier.strip()) if ds.identifier else None
        if by_pid is not None and by_pid.origin_node == self.node_id:
            return OWN  # a peer claims one of our own PIDs: never overwrite our record
        local_id = by_pid.id if by_pid is not None else federated_id(ds, origin, rec.remote_id)
        current = stored.by_id.get(local_id)
        mapped(local_id)
        revived = current is not None and current.withdrawn_by_absence()
        if current is not None and current.modified >= ds.modified and not revived:
            return UNCHANGED
        if revived and current is not None and current.modified >= ds.modified:
            # It was only missing from one read (a catalog paged by offset while it changed):
            # back, with a date after its tombstone's so that upstream nodes take it back too.
            ds = ds.model_copy(update={"modified": max(now, current.modified)})
        first_seen = current.first_seen() if current is not None else None
        provenance = ds.provenance.model_copy(
            update={
                "origin_node": origin,
                "harvested_via": chain(rec.harvested_via, peer),
                "source_record_url": rec.source_record_url or ds.provenance.source_record_url,
                "first_seen": first_seen or now,
                "last_harvested": now,
            }
        )
        record = ds.model_copy(
            update={
                "id": local_id,
                "identifier": ds.identifier.strip() if ds.identifier else None,
                "lifecycle": Lifecycle.published,
                "withdrawn_reason": None,
                "visibility": visibility,
                "provenance": provenance,
                "thumbnail": None,  # a file of the peer's thumbnail folder, not of ours
            }
        )
        writes[local_id] = record
        stored.remember(record)
        return ADDED if current is None else UPDATED

    def _deletion(self, peer, rec, stored, writes, mapped, now) -> str:
        dataset_id = stored.mapped.get(rec.remote_id)
        current = stored.by_id.get(dataset_id) if dataset_id else None
        if current is None:
            return UNCHANGED  # never stored (or a deletion we never saw the record of)
        mapped(current.id)
        if current.modified > rec.datestamp or current.lifecycle == Lifecycle.withdrawn.value:
            return UNCHANGED  # a newer version came by another path, or already a tombstone
        ds = current.as_dataset()
        origin = ds.provenance.origin_node
        if rec.inferred:
            reason = f"{ABSENT_REASON} {peer} (read {rec.datestamp:%Y-%m-%d %H:%M} UTC)"
        elif origin == peer:
            reason = f"withdrawn at its origin node {origin}"
        else:
            reason = f"deleted by peer {peer} (origin node {origin})"
        record = ds.model_copy(
            update={
                "lifecycle": Lifecycle.withdrawn,
                "withdrawn_reason": reason,
                "modified": rec.datestamp,
                "provenance": ds.provenance.model_copy(update={"last_harvested": now}),
            }
        )
        writes[record.id] = record
        stored.remember(record)
        return WITHDRAWN

    # ------------------------------------------------------------------ batch I/O

    def _lookup(self, s: Session, peer: str, items: list) -> _Lookup:
        """Every row the batch may touch, in three queries (mapping, PIDs, ids)."""
        recs = [i for i in items if isinstance(i, RemoteRecord)]
        found = _Lookup()
        deleted = [r.remote_id for r in recs if r.dataset is None]
        for chunk in _chunks(deleted):
            rows = s.execute(
                select(FederatedRecordRow.remote_id, FederatedRecordRow.dataset_id).where(
                    FederatedRecordRow.peer_id == peer, FederatedRecordRow.remote_id.in_(chunk)
                )
            ).all()
            found.mapped.update({r.remote_id: r.dataset_id for r in rows})
        pids = {r.dataset.identifier.strip() for r in recs if r.dataset and r.dataset.identifier}
        ids = set(found.mapped.values())
        for r in recs:
            if r.dataset is not None:
                origin = r.dataset.provenance.origin_node or peer
                ids.add(federated_id(r.dataset, origin, r.remote_id))
        cols = (
            DatasetRow.id,
            DatasetRow.modified,
            DatasetRow.lifecycle,
            DatasetRow.origin_node,
            DatasetRow.identifier,
            DatasetRow.doc,
        )
        for chunk in _chunks(sorted(pids)):
            for row in s.execute(select(*cols).where(DatasetRow.identifier.in_(chunk))):
                found.add(row)
        missing = sorted(ids - set(found.by_id))
        for chunk in _chunks(missing):
            for row in s.execute(select(*cols).where(DatasetRow.id.in_(chunk))):
                found.add(row)
        return found

    @staticmethod
    def _save_mappings(s: Session, rows: list[dict]) -> None:
        if not rows:
            return
        insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
        table = FederatedRecordRow.__table__  # Core executemany: compiled once, cached
        stmt = insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.peer_id, table.c.remote_id],
            set_={"dataset_id": stmt.excluded.dataset_id, "datestamp": stmt.excluded.datestamp},
        )
        s.execute(stmt, rows)


class _Lookup:
    """The rows of one batch, kept current as the batch applies records in memory."""

    def __init__(self) -> None:
        self.by_id: dict[str, _Stored] = {}
        self.by_pid: dict[str, _Stored] = {}
        self.mapped: dict[str, str] = {}  # remote id → dataset id (this peer's deletions)

    def add(self, row) -> None:
        st = _Stored(row.id, row.modified, row.lifecycle, row.origin_node, doc=row.doc)
        self.by_id[row.id] = st
        if row.identifier:
            self.by_pid[row.identifier] = st

    def remember(self, ds: Dataset) -> None:
        st = _Stored(ds.id, ds.modified, ds.lifecycle.value, ds.provenance.origin_node, dataset=ds)
        self.by_id[ds.id] = st
        if ds.identifier:
            self.by_pid[ds.identifier] = st


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
