"""The catalog queries behind OAI-PMH: which records are served, in which sets, page by page.

The access policy decides what a harvester sees (``node.auth.policy.export_scope``): anonymous
harvesters get published public records, an authenticated federation peer also `federation`
ones; the withdrawn records the same caller could harvest before (``export_tombstone_scope``)
are served as deleted records that keep their identifier and datestamp. Drafts, `institution`
and `private` records never appear, for anyone, not even as identifiers.

Lists are ordered by (modified, id) and paged by key: a page is the records after the last key
served and below the upper bound the list froze when it started (see ``node.oai.tokens``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Text,
    and_,
    cast,
    false,
    func,
    or_,
    select,
    true,
    tuple_,
)

from node.auth.policy import (
    ANONYMOUS,
    Identity,
    ReadScope,
    export_scope,
    export_tombstone_scope,
)
from node.catalog.db import session_factory
from node.catalog.models import DatasetRow
from node.catalog.sqlhints import unindexed
from node.records import Dataset, Lifecycle

# The set families (the first part of a setSpec) and the column each filters on.
ORIGIN = "origin"
VISIBILITY = "visibility"
ACCESS = "access"
_SET_COLUMNS = {
    ORIGIN: DatasetRow.origin_node,
    VISIBILITY: DatasetRow.visibility,
    ACCESS: DatasetRow.data_access,
}


@dataclass(frozen=True)
class Item:
    """One record as OAI-PMH shows it: header facts, and the record unless it is deleted."""

    id: str
    modified: datetime
    deleted: bool
    origin_node: str
    visibility: str
    data_access: str
    doc: dict | None = None
    text: str | None = None  # the stored JSON itself, when read ``raw``

    @property
    def set_specs(self) -> list[str]:
        return [
            f"{ORIGIN}:{self.origin_node}",
            f"{VISIBILITY}:{self.visibility}",
            f"{ACCESS}:{self.data_access}",
        ]

    def dataset(self) -> Dataset:
        if self.doc is None:
            raise ValueError(f"record {self.id!r} was read without its document")
        return Dataset.model_validate(self.doc)


@dataclass(frozen=True)
class Query:
    """The records of one list request: a set, and a ``modified`` range [from_, upper)."""

    set_spec: str | None
    from_: datetime | None
    upper: datetime


def _column(column: Any, keyed: bool) -> Any:
    return unindexed(column) if keyed else column


def _in_scope(scope: ReadScope, keyed: bool) -> ColumnElement[bool]:
    return and_(
        _column(DatasetRow.lifecycle, keyed).in_(sorted(lc.value for lc in scope.lifecycles)),
        _column(DatasetRow.visibility, keyed).in_(sorted(v.value for v in scope.visibilities)),
    )


def served(identity: Identity = ANONYMOUS, keyed: bool = False) -> ColumnElement[bool]:
    """Every record ``identity`` may harvest: readable ones, and the tombstones of readable
    ones. ``keyed``: for a query that reads in (modified, id) order (see ``unindexed``)."""
    return or_(
        _in_scope(export_scope(identity), keyed),
        _in_scope(export_tombstone_scope(identity), keyed),
    )


def set_filter(set_spec: str | None, keyed: bool = False) -> ColumnElement[bool]:
    """The records of a set: ``family`` (all records that have that property, so all), or
    ``family:value``; any other well-formed setSpec names an empty set."""
    if set_spec is None:
        return true()
    family, sep, value = set_spec.partition(":")
    column = _SET_COLUMNS.get(family)
    if column is None or ":" in value:
        return false()
    return _column(column, keyed) == value if sep else true()


class OAIStore:
    """The records served to ``identity`` (anonymous unless a peer authenticated)."""

    def __init__(self, engine: Engine, identity: Identity = ANONYMOUS):
        self.sessions = session_factory(engine)
        self.identity = identity

    @property
    def audience(self) -> frozenset[str]:
        """The visibilities served to this store's identity (resumption tokens bind them)."""
        return frozenset(v.value for v in export_scope(self.identity).visibilities)

    def _columns(self, with_doc: bool, raw: bool = False) -> Sequence:
        cols = [
            DatasetRow.id,
            DatasetRow.modified,
            DatasetRow.lifecycle,
            DatasetRow.origin_node,
            DatasetRow.visibility,
            DatasetRow.data_access,
        ]
        if not with_doc:
            return cols
        # raw: the JSON text as stored, for a format that serves it unparsed
        return [*cols, cast(DatasetRow.doc, Text).label("text") if raw else DatasetRow.doc]

    @staticmethod
    def _item(row, with_doc: bool, raw: bool = False) -> Item:
        deleted = row.lifecycle == Lifecycle.withdrawn.value
        return Item(
            id=row.id,
            modified=row.modified,
            deleted=deleted,
            origin_node=row.origin_node,
            visibility=row.visibility,
            data_access=row.data_access,
            doc=row.doc if with_doc and not raw and not deleted else None,
            text=row.text if with_doc and raw and not deleted else None,
        )

    def earliest(self) -> datetime | None:
        """The oldest datestamp served (Identify's earliestDatestamp)."""
        # The first served row of the (modified, id) index, not min() over the served rows:
        # SQLite would read every public record through the visibility index (0.3 s at 100k).
        with self.sessions() as s:
            return s.scalar(
                select(DatasetRow.modified)
                .where(served(self.identity, keyed=True))
                .order_by(DatasetRow.modified, DatasetRow.id)
                .limit(1)
            )

    def get(self, dataset_id: str, *, with_doc: bool = True) -> Item | None:
        with self.sessions() as s:
            row = s.execute(
                select(*self._columns(with_doc)).where(
                    DatasetRow.id == dataset_id, served(self.identity)
                )
            ).first()
        return None if row is None else self._item(row, with_doc)

    def set_values(self) -> dict[str, list[str]]:
        """The values of each set family that served records have (ListSets)."""
        out: dict[str, list[str]] = {}
        with self.sessions() as s:
            for family, column in _SET_COLUMNS.items():
                out[family] = list(
                    s.scalars(
                        select(column).where(served(self.identity)).distinct().order_by(column)
                    )
                )
        return out

    def _where(self, q: Query, *, keyed: bool = False) -> list[ColumnElement[bool]]:
        """The conditions of ``q``; ``keyed`` when the query reads a page in key order."""
        where = [
            served(self.identity, keyed),
            set_filter(q.set_spec, keyed),
            DatasetRow.modified < q.upper,
        ]
        if q.from_ is not None:
            where.append(DatasetRow.modified >= q.from_)
        return where

    def count(self, q: Query) -> int:
        with self.sessions() as s:
            # keyed: an incremental list counts the index range since `from`, not every
            # public record through the visibility index.
            where = self._where(q, keyed=True)
            return s.scalar(select(func.count()).select_from(DatasetRow).where(*where))

    def page(
        self,
        q: Query,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        with_doc: bool,
        raw: bool = False,
    ) -> list[Item]:
        """Up to ``limit`` records of ``q`` after the key ``after``, in (modified, id) order."""
        where = self._where(q, keyed=True)
        if after is not None:
            # A row value, not (m > x OR (m = x AND id > y)): both planners turn it into a
            # range seek on the (modified, id) index.
            where.append(tuple_(DatasetRow.modified, DatasetRow.id) > tuple_(*after))
        stmt = (
            select(*self._columns(with_doc, raw))
            .where(*where)
            .order_by(DatasetRow.modified, DatasetRow.id)
            .limit(limit)
        )
        with self.sessions() as s:
            rows = s.execute(stmt).all()
        return [self._item(r, with_doc, raw) for r in rows]
