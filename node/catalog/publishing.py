"""Publishing and withdrawing datasets: lifecycle, dates and the PID, in one transaction.

``publish`` sets lifecycle ``published``, ``issued`` (when unset), mints the PID when the dataset
has none, bumps ``modified`` and saves through ``RecordService.save_dataset``, which queues the
record for search in the same transaction. ``withdraw`` sets lifecycle ``withdrawn`` and the
reason, bumps ``modified`` and keeps the PID: the PID then resolves to a tombstone (HTTP 410) that
keeps the citation. A withdrawn dataset is never published again by accident: ``publish`` refuses
it unless ``reinstate=True`` says so explicitly.

A record harvested from a peer (federation) belongs to its origin node: only that node may
withdraw or reinstate it, and the change then travels here with the next harvest. Both refuse
such a record with a message naming the node (``_refuse_harvested``); a local change would be
overwritten by the next harvest anyway, or, worse, would hide a record its owner still serves.

Both take an Engine (their own transaction) or a Session (the caller's transaction, e.g. a
curator page that changes more in the same commit). Used by ``fairnode publish`` / ``withdraw``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from node.catalog.models import DatasetRow
from node.catalog.service import RecordService
from node.config import Config
from node.errors import BadRequestError, ConflictError, NotFoundError
from node.pid.service import ACTIVE, WITHDRAWN, PidService
from node.records import Dataset, Lifecycle


@dataclass(frozen=True)
class Outcome:
    """What publish/withdraw did: the record as saved, whether it changed, a message for people."""

    dataset: Dataset
    changed: bool
    message: str

    @property
    def pid(self) -> str | None:
        return self.dataset.identifier


@contextmanager
def _transaction(target: Engine | Session) -> Iterator[Session]:
    if isinstance(target, Session):
        yield target  # the caller's transaction: the caller commits
        return
    with Session(target, expire_on_commit=False) as s, s.begin():
        yield s


def _load(s: Session, dataset_id: str) -> tuple[DatasetRow, Dataset]:
    row = s.get(DatasetRow, dataset_id, with_for_update=True)
    if row is None:
        raise NotFoundError(
            f"no dataset {dataset_id!r} in the catalog (dataset ids are shown on its page and "
            "in /api/v1/datasets)"
        )
    return row, Dataset.model_validate(row.doc)


def _refuse_harvested(row: DatasetRow, ds: Dataset, config: Config, action: str) -> None:
    """ConflictError when ``ds`` was harvested from another node (see the module docstring).

    Harvested rows are the ones without a file source (node/federation/ingest.py stores them
    so) whose origin is another node; a file-harvested record keeps its source name, so a node
    whose id changed after harvesting its files still owns them."""
    origin = ds.provenance.origin_node
    if row.source is not None or not origin or origin == config.node.id:
        return
    via = [n for n in ds.provenance.harvested_via if n != origin]
    came = f" (harvested through {', '.join(via)})" if via else ""
    where = f" ({ds.provenance.source_record_url})" if ds.provenance.source_record_url else ""
    raise ConflictError(
        f"dataset {row.id!r} was harvested from another node: it belongs to node {origin!r}"
        f"{came} and must be {action} there{where}; the change reaches this node with the "
        "next federation harvest"
    )


def _save(s: Session, row: DatasetRow, ds: Dataset) -> None:
    RecordService(s.get_bind()).save_dataset(s, ds, source=row.source, folder=row.folder)


def publish(
    target: Engine | Session,
    dataset_id: str,
    *,
    config: Config,
    pids: PidService | None = None,
    reinstate: bool = False,
    now: datetime | None = None,
) -> Outcome:
    """Publish ``dataset_id`` with a PID. Idempotent: an already published dataset with a PID is
    left alone. A withdrawn one is refused unless ``reinstate`` (same PID, reason cleared)."""
    now = now or datetime.now(UTC)
    with _transaction(target) as s:
        pids = pids or PidService(config, s.get_bind())
        row, ds = _load(s, dataset_id)
        if not (ds.lifecycle is Lifecycle.published and ds.identifier):
            # Reinstating a harvested tombstone, or minting our PID for a harvested record
            # that has none, is its origin node's business (already published: a no-op below).
            action = "reinstated" if ds.lifecycle is Lifecycle.withdrawn else "published"
            _refuse_harvested(row, ds, config, action)
        if ds.lifecycle is Lifecycle.withdrawn and not reinstate:
            raise ConflictError(
                f"dataset {dataset_id!r} was withdrawn"
                + (f" ({ds.withdrawn_reason})" if ds.withdrawn_reason else "")
                + f"; it stays withdrawn, its PID showing a tombstone. To make it public again "
                f"under the same PID, run: fairnode publish {dataset_id} --reinstate"
            )
        if ds.lifecycle is Lifecycle.published and ds.identifier:
            return Outcome(
                ds, False, f"dataset {dataset_id!r} is already published as {ds.identifier}"
            )
        was = ds.lifecycle
        ds = ds.model_copy(
            update={
                "lifecycle": Lifecycle.published,
                "issued": ds.issued or now,
                "withdrawn_reason": None,
                "modified": now,
            }
        )
        pid = ds.identifier or pids.mint(s, ds)
        ds = ds.model_copy(update={"identifier": pid})
        pids.set_status(s, pid, ACTIVE)
        _save(s, row, ds)
    if was is Lifecycle.withdrawn:
        message = f"dataset {dataset_id!r} reinstated: published again as {pid}"
    elif was is Lifecycle.published:
        message = f"dataset {dataset_id!r} was published without a PID; it now has {pid}"
    else:
        message = f"dataset {dataset_id!r} published as {pid}"
    return Outcome(ds, True, message)


def withdraw(
    target: Engine | Session,
    dataset_id: str,
    *,
    reason: str,
    config: Config,
    now: datetime | None = None,
) -> Outcome:
    """Withdraw the published dataset ``dataset_id`` for ``reason``; it keeps its PID, which then
    resolves to a tombstone with the citation and the reason."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise BadRequestError(
            "a withdrawal needs a reason: it is shown on the tombstone that replaces the "
            "dataset's page (e.g. --reason 'consent withdrawn by the donor')"
        )
    now = now or datetime.now(UTC)
    with _transaction(target) as s:
        row, ds = _load(s, dataset_id)
        _refuse_harvested(row, ds, config, "withdrawn")
        if ds.lifecycle is Lifecycle.draft:
            raise ConflictError(
                f"dataset {dataset_id!r} is a draft: it was never published, so there is no "
                "citation to keep and nothing to withdraw (drafts are already hidden)"
            )
        if ds.lifecycle is Lifecycle.withdrawn and ds.withdrawn_reason == reason:
            return Outcome(ds, False, f"dataset {dataset_id!r} is already withdrawn ({reason})")
        was = ds.lifecycle
        ds = ds.model_copy(
            update={"lifecycle": Lifecycle.withdrawn, "withdrawn_reason": reason, "modified": now}
        )
        PidService.set_status(s, ds.identifier, WITHDRAWN)
        _save(s, row, ds)
    if was is Lifecycle.withdrawn:
        return Outcome(ds, True, f"dataset {dataset_id!r} stays withdrawn; reason now: {reason}")
    kept = f"; {ds.identifier} now shows its tombstone" if ds.identifier else ""
    return Outcome(ds, True, f"dataset {dataset_id!r} withdrawn ({reason}){kept}")
