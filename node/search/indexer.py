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
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import Engine, Text, cast, delete, func, select, tuple_, update

from node.catalog.db import session_factory
from node.catalog.models import DatasetRow, SearchQueueRow
from node.catalog.runs import RunStore, lock_holder
from node.search.backend import RecordJSON, SearchBackend

log = logging.getLogger(__name__)

LEASE = "search:index"
LEASE_TIME = timedelta(minutes=10)


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
                docs = dict(
                    s.execute(
                        select(DatasetRow.id, DatasetRow.doc).where(DatasetRow.id.in_(ids))
                    ).all()
                )
            records = [docs[i] for i in ids if i in docs]
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
