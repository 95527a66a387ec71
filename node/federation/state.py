"""What the node remembers of harvesting each peer: ``peer_state`` (watermark, last success,
last error, counts) and ``federated_records`` (which catalog record each remote id became)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from node.auth.policy import ReadScope
from node.catalog.db import session_factory
from node.catalog.models import DatasetRow, FederatedRecordRow, PeerStateRow


@dataclass
class PeerState:
    peer_id: str
    watermark: datetime | None = None
    last_started: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_counts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "last_started": iso(self.last_started),
            "last_success": iso(self.last_success),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "last_counts": dict(self.last_counts),
        }


def _state(row: PeerStateRow) -> PeerState:
    return PeerState(
        peer_id=row.peer_id,
        watermark=row.watermark,
        last_started=row.last_started,
        last_success=row.last_success,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        last_counts=dict(row.last_counts or {}),
    )


class PeerStateStore:
    """Reads and writes ``peer_state`` and ``federated_records``; each write commits alone."""

    def __init__(self, engine: Engine):
        self.sessions = session_factory(engine)

    @staticmethod
    def empty_json() -> dict[str, Any]:
        return PeerState("").to_json()

    def get(self, peer_id: str) -> PeerState:
        with self.sessions() as s:
            row = s.get(PeerStateRow, peer_id)
            return _state(row) if row else PeerState(peer_id)

    def all(self) -> dict[str, PeerState]:
        with self.sessions() as s:
            return {r.peer_id: _state(r) for r in s.scalars(select(PeerStateRow))}

    def _row(self, s: Session, peer_id: str) -> PeerStateRow:
        row = s.get(PeerStateRow, peer_id)
        if row is None:
            row = PeerStateRow(peer_id=peer_id, last_counts={})
            s.add(row)
        return row

    def started(self, peer_id: str, at: datetime | None = None) -> None:
        with self.sessions() as s, s.begin():
            self._row(s, peer_id).last_started = at or datetime.now(UTC)

    def succeeded(
        self, peer_id: str, watermark: datetime | None, counts: dict[str, Any], at: datetime
    ) -> None:
        """A run ended well: the next incremental read starts from ``watermark`` (None: full).
        The last error stays visible (with its time) until the admin reads a newer success."""
        with self.sessions() as s, s.begin():
            row = self._row(s, peer_id)
            row.watermark = watermark
            row.last_success = at
            row.last_counts = dict(counts)

    def failed(self, peer_id: str, message: str, counts: dict[str, Any], at: datetime) -> None:
        """A run failed: the watermark stays, so the next run reads again from there."""
        with self.sessions() as s, s.begin():
            row = self._row(s, peer_id)
            row.last_error = message
            row.last_error_at = at
            row.last_counts = dict(counts)

    def forget(self, peer_id: str) -> None:
        """Drop the state of a removed peer (its records and their mapping stay)."""
        with self.sessions() as s, s.begin():
            row = s.get(PeerStateRow, peer_id)
            if row is not None:
                s.delete(row)

    # ------------------------------------------------------------------ federated_records

    def remote_ids(self, peer_id: str) -> list[str]:
        """The remote ids this node holds a record for (DCAT readers turn the missing ones into
        deletions)."""
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(FederatedRecordRow.remote_id).where(
                        FederatedRecordRow.peer_id == peer_id
                    )
                )
            )

    def record_counts(self, scope: ReadScope) -> dict[str, int]:
        """Per peer: how many of the records harvested from it the caller may read now."""
        with self.sessions() as s:
            rows = s.execute(
                select(FederatedRecordRow.peer_id, func.count(func.distinct(DatasetRow.id)))
                .join(DatasetRow, DatasetRow.id == FederatedRecordRow.dataset_id)
                .where(
                    DatasetRow.lifecycle.in_([lc.value for lc in scope.lifecycles]),
                    DatasetRow.visibility.in_([v.value for v in scope.visibilities]),
                )
                .group_by(FederatedRecordRow.peer_id)
            ).all()
        return {peer: n for peer, n in rows}
