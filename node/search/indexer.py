"""Keeping the index in step with the catalog: draining the queue, and full rebuilds.

Every catalog write queues its dataset id in ``search_queue`` in the same transaction
(RecordService.queue_for_search), so the catalog is the truth and the index can always catch
up: a crashed writer leaves the queue as it was, and the next drain indexes it again
(indexing is idempotent). A queue entry is deleted only if it was not queued again while its
batch was being indexed (``queued_at`` unchanged). Failed batches stay queued with the error
and an attempt count (``fairnode reindex`` or the next drain retries them).

Only one process writes at a time: the ``search:index`` lease in the catalog (the same lease
mechanism harvest sources use; source names are slugs, so the name cannot collide).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, Text, cast, delete, func, select, tuple_, update

from node.catalog.db import session_factory
from node.catalog.models import DatasetRow, SearchQueueRow
from node.catalog.runs import RunStore, lock_holder
from node.catalog.service import SavedDatasets
from node.search.backend import RecordJSON, SearchBackend

log = logging.getLogger(__name__)

LEASE = "search:index"
LEASE_TIME = timedelta(minutes=10)
LEASE_RENEW_S = 60.0  # a LiveIndexer with nothing to commit renews its lease this often


class IndexBusyError(RuntimeError):
    """Another process holds the search writer lease."""


@dataclass
class DrainReport:
    indexed: int = 0
    deleted: int = 0
    failed: int = 0
    remaining: int = 0
    skipped: bool = False  # another process was writing: nothing done


@dataclass
class QueueState:
    pending: int
    failing: int
    oldest: datetime | None
    last_error: str | None


def queue_state(engine: Engine) -> QueueState:
    with session_factory(engine)() as s:
        pending, oldest = s.execute(select(func.count(), func.min(SearchQueueRow.queued_at))).one()
        failing = s.scalar(select(func.count()).where(SearchQueueRow.attempts > 0)) or 0
        last_error = s.scalar(
            select(SearchQueueRow.last_error)
            .where(SearchQueueRow.last_error.is_not(None))
            .order_by(SearchQueueRow.queued_at.desc())
            .limit(1)
        )
    return QueueState(pending or 0, failing, oldest, last_error)


# The lease is held per process (host:pid); threads of one process (the worker's jobs) take
# turns through this lock.
_IN_PROCESS = threading.Lock()


class _Lease:
    def __init__(self, engine: Engine):
        self.runs = RunStore(engine)
        self.holder = lock_holder()

    def __enter__(self) -> _Lease:
        if not _IN_PROCESS.acquire(blocking=False):
            raise IndexBusyError("the search index is being written by this process already")
        try:
            acquired = self.runs.acquire(LEASE, self.holder, LEASE_TIME)
        except BaseException:
            _IN_PROCESS.release()
            raise
        if not acquired:
            _IN_PROCESS.release()
            raise IndexBusyError(
                f"the search index is being written by {self.runs.lock_holder_of(LEASE)}"
            )
        return self

    def renew(self) -> None:
        self.runs.heartbeat(LEASE, self.holder, LEASE_TIME)

    def __exit__(self, *exc: object) -> None:
        try:
            self.runs.release(LEASE, self.holder)
        finally:
            _IN_PROCESS.release()


def drain(
    engine: Engine,
    backend: SearchBackend,
    *,
    batch_size: int = 1000,
    max_batches: int | None = None,
) -> DrainReport:
    """Index every dataset queued before this call (or up to ``max_batches`` batches); what is
    queued meanwhile waits for the next drain, so a busy harvest cannot keep one drain going
    forever. Returns what was done; ``skipped`` when another process holds the writer lease
    (it drains for us)."""
    report = DrainReport()
    started = datetime.now(UTC)
    sessions = session_factory(engine)
    try:
        lease = _Lease(engine)
        lease.__enter__()
    except IndexBusyError as e:
        log.info("search queue not drained: %s", e)
        report.skipped = True
        return report
    try:
        batches = 0
        while max_batches is None or batches < max_batches:
            with sessions() as s:
                queued = s.execute(
                    select(SearchQueueRow.dataset_id, SearchQueueRow.queued_at)
                    .where(SearchQueueRow.queued_at <= started)
                    .order_by(SearchQueueRow.attempts, SearchQueueRow.queued_at)
                    .limit(batch_size)
                ).all()
                if not queued:
                    break
                ids = [q.dataset_id for q in queued]
                # The JSON as text, parsed by orjson: the JSON type's json.loads cost three
                # times as much (see catalog_records).
                docs = dict(
                    s.execute(
                        select(DatasetRow.id, cast(DatasetRow.doc, Text)).where(
                            DatasetRow.id.in_(ids)
                        )
                    ).all()
                )
            records = [orjson.loads(docs[i]) for i in ids if i in docs]
            gone = [i for i in ids if i not in docs]
            try:
                if records:
                    backend.index(records)
                if gone:
                    backend.delete(gone)
            except Exception as e:  # the batch stays queued, with the reason, for a retry
                log.exception("indexing %d queued datasets failed", len(ids))
                with sessions() as s:
                    s.execute(
                        update(SearchQueueRow)
                        .where(SearchQueueRow.dataset_id.in_(ids))
                        .values(
                            attempts=SearchQueueRow.attempts + 1,
                            last_error=f"{type(e).__name__}: {e}"[:2000],
                        )
                    )
                    s.commit()
                report.failed += len(ids)
                break
            with sessions() as s:
                s.execute(
                    delete(SearchQueueRow).where(
                        tuple_(SearchQueueRow.dataset_id, SearchQueueRow.queued_at).in_(
                            [(q.dataset_id, q.queued_at) for q in queued]
                        )
                    )
                )
                s.commit()
            report.indexed += len(records)
            report.deleted += len(gone)
            batches += 1
            lease.renew()
    finally:
        lease.__exit__(None, None, None)
    report.remaining = queue_state(engine).pending
    return report


class LiveIndexer:
    """Indexes a writer's batches as soon as they commit, in a thread beside the writer.

    For bulk writers (a federation harvest) that would otherwise leave all their records to a
    drain at the end, which reads every record back from the catalog: here the records are
    indexed from the JSON the writer just stored, while the writer goes on with its next batch
    (waiting on the peer, SQLite and tantivy's own threads let go of the GIL). A backend with a
    ``bulk_writer`` (tantivy) keeps one writer open and commits every ``COMMIT_RECORDS`` records
    or ``COMMIT_SECONDS`` seconds; others get ``index`` calls of the batches waiting.

    The queue stays the truth, exactly as for ``drain``: ``submit`` is called only after the
    batch's transaction (which queued its ids) committed, and an entry is deleted only after the
    index committed the document and only if it was not queued again meanwhile (``queued_at``
    unchanged). When indexing fails the entries stay queued with the error (the next drain
    retries them) and live indexing stops for this writer. It holds the ``search:index`` lease
    from ``start`` to ``close``; when another writer holds it, ``start`` returns None and the
    queue is left to the drain, as before."""

    MAX_WAITING = 20  # batches waiting to be indexed before submit() blocks the writer
    COMMIT_RECORDS = 10_000
    COMMIT_SECONDS = 5.0

    def __init__(self, engine: Engine, backend: SearchBackend, lease: _Lease):
        self.engine = engine
        self.backend = backend
        self.sessions = session_factory(engine)
        self._lease = lease
        self._waiting: queue.Queue[SavedDatasets | None] = queue.Queue(self.MAX_WAITING)
        self._pending: list[SavedDatasets] = []  # added to the writer, not committed yet
        self._writer: Any = None
        self.report = DrainReport()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="live-indexer", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, engine: Engine, backend: SearchBackend) -> LiveIndexer | None:
        """A running live indexer, or None when another writer holds the index."""
        lease = _Lease(engine)
        try:
            lease.__enter__()
        except IndexBusyError as e:
            log.info("records left to the search queue: %s", e)
            return None
        return cls(engine, backend, lease)

    def submit(self, saved: SavedDatasets) -> None:
        """Index what a committed transaction wrote (``RecordService.save_datasets``)."""
        if saved.docs and self.error is None:
            self._waiting.put(saved)

    def close(self) -> DrainReport:
        """Index and commit what was submitted, stop the thread and give the lease back."""
        try:
            self._waiting.put(None)
            self._thread.join()
        finally:
            self._lease.__exit__(None, None, None)
        return self.report

    def _run(self) -> None:
        last_commit = time.monotonic()
        done = False
        while not done:
            try:
                batches = [self._waiting.get(timeout=self.COMMIT_SECONDS)]
            except queue.Empty:
                batches = []
            while True:  # and every batch that arrived meanwhile
                try:
                    batches.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            if None in batches:
                done = True
                batches = batches[: batches.index(None)]
            if self.error is not None:
                continue  # the queue keeps them for the drain
            try:
                if batches:
                    self._add(batches)
                waiting = sum(len(b.docs) for b in self._pending)
                if waiting and (
                    done
                    or waiting >= self.COMMIT_RECORDS
                    or time.monotonic() - last_commit >= self.COMMIT_SECONDS
                ):
                    self._commit()
                    last_commit = time.monotonic()
                elif time.monotonic() - last_commit >= LEASE_RENEW_S:  # a slow peer: keep it
                    self._lease.renew()
                    last_commit = time.monotonic()
            except Exception as e:  # never the writer's problem: the queue keeps the records
                log.exception("live indexing failed; the search queue keeps the records")
                self.error = f"{type(e).__name__}: {e}"[:2000]
                self._failed(self.error)
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # what was committed is kept; nothing else to do
                log.exception("closing the search writer failed")

    def _add(self, batches: list[SavedDatasets]) -> None:
        self._pending.extend(batches)
        opener = getattr(self.backend, "bulk_writer", None)
        if opener is None:  # no bulk writer: one index() call (one commit) per round
            return
        if self._writer is None:
            self._writer = opener()
        # A record written twice is added twice; the second add replaces the first.
        self._writer.add([d for b in batches for d in b.docs.values()])

    def _commit(self) -> None:
        if self._writer is not None:
            self._writer.commit()
        else:
            docs: dict[str, str] = {}
            for b in self._pending:
                docs.update(b.docs)  # a record written twice: its last version
            self.backend.index(orjson.loads(d) for d in docs.values())
        with self.sessions() as s:
            for b in self._pending:
                ids = list(b.docs)
                for i in range(0, len(ids), 500):
                    s.execute(
                        delete(SearchQueueRow).where(
                            SearchQueueRow.queued_at == b.queued_at,
                            SearchQueueRow.dataset_id.in_(ids[i : i + 500]),
                        )
                    )
            s.commit()
        self.report.indexed += sum(len(b.docs) for b in self._pending)
        self._pending = []
        self._lease.renew()

    def _failed(self, error: str) -> None:
        """The records not committed to the index stay queued, with the reason."""
        if self._writer is not None:
            try:
                self._writer.rollback()
            except Exception:
                log.exception("rolling the search writer back failed")
        try:
            with self.sessions() as s:
                for b in self._pending:
                    ids = list(b.docs)
                    for i in range(0, len(ids), 500):
                        s.execute(
                            update(SearchQueueRow)
                            .where(
                                SearchQueueRow.queued_at == b.queued_at,
                                SearchQueueRow.dataset_id.in_(ids[i : i + 500]),
                            )
                            .values(attempts=SearchQueueRow.attempts + 1, last_error=error)
                        )
                s.commit()
        except Exception:
            log.exception("could not record the indexing failure in the search queue")
        self.report.failed += sum(len(b.docs) for b in self._pending)
        self._pending = []


def catalog_records(engine: Engine, *, batch_size: int = 1000) -> Iterator[RecordJSON]:
    """Every dataset record (JSON form) of the catalog, streamed in storage order.

    One streaming query over a consistent snapshot, fetched ``batch_size`` rows at a time
    (server-side cursor on PostgreSQL): storage order reads the table sequentially, where an
    ``ORDER BY id`` keyset over hashed ids read a random page per row (a quarter of a 1M-record
    reindex). The record comes as JSON text parsed with orjson on a Core connection: the ORM
    and the JSON type's stdlib json.loads cost five times as much per record."""
    with engine.connect() as c:
        result = c.execution_options(stream_results=True, yield_per=batch_size).execute(
            select(DatasetRow.id, cast(DatasetRow.doc, Text))
        )
        for batch in result.partitions():
            for row in batch:
                yield orjson.loads(row[1])


def count_records(engine: Engine) -> int:
    with session_factory(engine)() as s:
        return s.scalar(select(func.count()).select_from(DatasetRow)) or 0


def reindex(
    engine: Engine,
    backend: SearchBackend,
    *,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rebuild the index from the catalog and swap it in; then drain the queue.

    Raises IndexBusyError when another process writes the index (try again when it is done)."""
    with _Lease(engine):
        n = backend.reindex(catalog_records(engine, batch_size=batch_size), progress)
    # What was queued before or during the rebuild is drained again: a write committed while
    # the catalog was being read may be missing from the new index, and indexing twice is
    # harmless where missing a change is not.
    drain(engine, backend, batch_size=batch_size)
    return n
