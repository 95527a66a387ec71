"""Harvest runs, their per-file errors, and the per-source lease that keeps runs apart."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from node.catalog.db import session_factory
from node.catalog.models import HarvestErrorRow, HarvestRunRow, SourceLockRow
from node.catalog.service import Page, decode_cursor, encode_cursor
from node.errors import BadRequestError, NotFoundError


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class HarvestError:
    """One file the run could not (fully) read, and why."""

    path: str
    reason: str
    level: str = "error"  # "error" or "warning"

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "level": self.level}


@dataclass
class HarvestRun:
    id: int
    source: str
    kind: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    counts: dict[str, int]
    message: str | None = None
    errors: list[HarvestError] = field(default_factory=list)
    error_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "start": self.started_at.isoformat(),
            "end": self.ended_at.isoformat() if self.ended_at else None,
            "status": self.status,
            "counts": self.counts,
            "message": self.message,
            "error_total": self.error_total,
            "errors": [e.to_json() for e in self.errors],
        }


def lock_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_dead(holder: str) -> bool:
    """Whether ``holder`` names a process of this host that no longer runs (killed or crashed)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host: only the lease's expiry can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


class RunStore:
    """Persistence of runs, errors and source leases."""

    MAX_ERRORS_LISTED = 1000  # per run in the API; the table keeps them all

    def __init__(self, engine: Engine):
        self.sessions = session_factory(engine)

    # ------------------------------------------------------------------ leases

    def acquire(self, source: str, holder: str, lease: timedelta) -> bool:
        """Take the lease of ``source`` if it is free or expired; atomic across processes."""
        t = now()
        with self.sessions() as s:
            try:
                s.add(SourceLockRow(source=source, holder=holder, expires_at=t + lease))
                s.commit()
                return True
            except IntegrityError:
                s.rollback()
            res = s.execute(
                update(SourceLockRow)
                .where(
                    SourceLockRow.source == source,
                    or_(SourceLockRow.expires_at < t, SourceLockRow.holder == holder),
                )
                .values(holder=holder, expires_at=t + lease)
            )
            s.commit()
            if res.rowcount == 1:
                return True
            # A holder killed on this very host (SIGKILL, OOM) need not block until expiry.
            current = s.get(SourceLockRow, source)
            if current is None or not holder_is_dead(current.holder):
                return False
            res = s.execute(
                update(SourceLockRow)
                .where(SourceLockRow.source == source, SourceLockRow.holder == current.holder)
                .values(holder=holder, expires_at=t + lease)
            )
            s.commit()
            return res.rowcount == 1

    def heartbeat(self, source: str, holder: str, lease: timedelta) -> bool:
        """Extend the lease; False if another process took it over (ours had expired)."""
        with self.sessions() as s:
            res = s.execute(
                update(SourceLockRow)
                .where(SourceLockRow.source == source, SourceLockRow.holder == holder)
                .values(expires_at=now() + lease)
            )
            s.commit()
            return res.rowcount == 1

    def release(self, source: str, holder: str) -> None:
        with self.sessions() as s:
            s.execute(
                delete(SourceLockRow).where(
                    SourceLockRow.source == source, SourceLockRow.holder == holder
                )
            )
            s.commit()

    def lock_holder_of(self, source: str) -> str | None:
        with self.sessions() as s:
            row = s.get(SourceLockRow, source)
            return row.holder if row and row.expires_at > now() else None

    # ------------------------------------------------------------------ runs

    def start_run(self, source: str, kind: str = "files") -> int:
        with self.sessions() as s:
            # A run still marked running while we hold the lease was killed: say so.
            s.execute(
                update(HarvestRunRow)
                .where(HarvestRunRow.source == source, HarvestRunRow.status == "running")
                .values(
                    status="interrupted",
                    ended_at=now(),
                    message="the process ended before the run finished",
                )
            )
            row = HarvestRunRow(
                source=source, kind=kind, started_at=now(), status="running", counts={}
            )
            s.add(row)
            s.commit()
            return row.id

    def add_errors(self, run_id: int, errors: list[HarvestError]) -> None:
        if not errors:
            return
        with self.sessions() as s:
            s.add_all(
                HarvestErrorRow(run_id=run_id, path=e.path, reason=e.reason, level=e.level)
                for e in errors
            )
            s.commit()

    def update_counts(self, run_id: int, counts: dict[str, int]) -> None:
        with self.sessions() as s:
            s.execute(
                update(HarvestRunRow).where(HarvestRunRow.id == run_id).values(counts=dict(counts))
            )
            s.commit()

    def finish_run(
        self, run_id: int, status: str, counts: dict[str, int], message: str | None = None
    ) -> None:
        with self.sessions() as s:
            s.execute(
                update(HarvestRunRow)
                .where(HarvestRunRow.id == run_id)
                .values(status=status, counts=dict(counts), ended_at=now(), message=message)
            )
            s.commit()

    def _to_run(self, s: Any, row: HarvestRunRow, *, with_errors: bool) -> HarvestRun:
        total = s.scalar(
            select(func.count())
            .select_from(HarvestErrorRow)
            .where(HarvestErrorRow.run_id == row.id)
        )
        errors = []
        if with_errors:
            errors = [
                HarvestError(e.path, e.reason, e.level)
                for e in s.scalars(
                    select(HarvestErrorRow)
                    .where(HarvestErrorRow.run_id == row.id)
                    .order_by(HarvestErrorRow.id)
                    .limit(self.MAX_ERRORS_LISTED)
                )
            ]
        return HarvestRun(
            id=row.id,
            source=row.source,
            kind=row.kind,
            started_at=row.started_at,
            ended_at=row.ended_at,
            status=row.status,
            counts=row.counts or {},
            message=row.message,
            errors=errors,
            error_total=total or 0,
        )

    def get_run(self, run_id: int) -> HarvestRun:
        with self.sessions() as s:
            row = s.get(HarvestRunRow, run_id)
            if row is None:
                raise NotFoundError(f"no harvest run {run_id!r}")
            return self._to_run(s, row, with_errors=True)

    def list_runs(
        self, *, limit: int, cursor: str | None = None, source: str | None = None
    ) -> Page[HarvestRun]:
        """Runs, newest first, each with its errors."""
        with self.sessions() as s:
            q = select(HarvestRunRow)
            count_q = select(func.count()).select_from(HarvestRunRow)
            if source:
                q = q.where(HarvestRunRow.source == source)
                count_q = count_q.where(HarvestRunRow.source == source)
            if cursor:
                (last_id,) = decode_cursor(cursor, 1)
                if not isinstance(last_id, int) or isinstance(last_id, bool):
                    raise BadRequestError(f"cursor {cursor[:60]!r} is not valid")
                q = q.where(and_(HarvestRunRow.id < last_id))
            rows = s.scalars(q.order_by(HarvestRunRow.id.desc()).limit(limit + 1)).all()
            total = s.scalar(count_q) or 0
            items = [self._to_run(s, r, with_errors=True) for r in rows[:limit]]
        nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
        return Page(items, nxt, total)
