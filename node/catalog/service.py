"""RecordService: reading and writing canonical records in the catalog database.

Every read takes a ``ReadScope`` from the access policy; the service turns it
into a SQL filter so that lists, counts and single reads all obey it alike.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import Engine, Text, and_, bindparam, cast, delete, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from node.auth.policy import ReadScope
from node.catalog.db import session_factory
from node.catalog.models import DatasetRow, ImageRow, SearchQueueRow
from node.catalog.sqlhints import unindexed
from node.errors import BadRequestError, NotFoundError
from node.records import Dataset, Image

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of a list: the items, the cursor of the next page (or None) and the total."""

    items: list[T]
    next: str | None
    total: int


def encode_cursor(*keys: object) -> str:
    raw = json.dumps([k.isoformat() if isinstance(k, datetime) else k for k in keys])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list:
    """The keys in ``cursor``; BadRequestError naming the cursor when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        keys = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        keys = None
    if not isinstance(keys, list) or len(keys) != n:
        raise BadRequestError(
            f"cursor {cursor[:60]!r} is not valid; use the 'next' value of a previous page"
        )
    return keys


def dataset_row_values(ds: Dataset, *, source: str | None, folder: str | None) -> dict:
    """The columns derived from a dataset record (the JSON doc stays the truth)."""
    return {**_dataset_columns(ds, source=source, folder=folder), "doc": ds.to_json()}


def _dataset_columns(ds: Dataset, *, source: str | None, folder: str | None) -> dict:
    return {
        "id": ds.id,
        "source": source,
        "folder": folder,
        "identifier": ds.identifier,
        "title": ds.title,
        "lifecycle": ds.lifecycle.value,
        "visibility": ds.visibility.value,
        "data_access": ds.data_access.value,
        "origin_node": ds.provenance.origin_node,
        "modified": ds.modified,
    }


@dataclass
class SavedDatasets:
    """What ``save_datasets`` wrote: each record's JSON text by id, and its queue time."""

    queued_at: datetime
    docs: dict[str, str]


def image_row_values(im: Image, *, source: str | None) -> dict:
    return {
        "id": im.id,
        "dataset_id": im.dataset_id,
        "source": source,
        "path": im.path,
        "series": im.series,
        "status": im.status.value,
        "doc": im.model_dump(mode="json"),
    }


class RecordService:
    """Catalog reads for the web and API layers, and simple writes."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sessions = session_factory(engine)

    # ------------------------------------------------------------------ reads

    @staticmethod
    def _scope_filter(scope: ReadScope):
        return and_(
            DatasetRow.lifecycle.in_([lc.value for lc in scope.lifecycles]),
            DatasetRow.visibility.in_([v.value for v in scope.visibilities]),
        )

    def list_datasets(
        self, scope: ReadScope, *, limit: int, cursor: str | None = None
    ) -> Page[Dataset]:
        """Datasets newest first, keyset-paged so pages stay correct while records change."""
        where = self._scope_filter(scope)
        with self.sessions() as s:
            total = s.scalar(select(func.count()).select_from(DatasetRow).where(where)) or 0
            q = select(DatasetRow.doc, DatasetRow.modified, DatasetRow.id).where(where)
            if cursor:
                mod_s, last_id = decode_cursor(cursor, 2)
                try:
                    mod = datetime.fromisoformat(mod_s)
                except (TypeError, ValueError):
                    mod = None
                # A forged cursor must not reach SQL with the wrong types (a 500 otherwise).
                if mod is None or mod.tzinfo is None or not isinstance(last_id, str):
                    raise BadRequestError(f"cursor {cursor[:60]!r} is not valid")
                q = q.where(
                    or_(
                        DatasetRow.modified < mod,
                        and_(DatasetRow.modified == mod, DatasetRow.id < last_id),
                    )
                )
            rows = s.execute(
                q.order_by(DatasetRow.modified.desc(), DatasetRow.id.desc()).limit(limit + 1)
            ).all()
        items = [Dataset.model_validate(r.doc) for r in rows[:limit]]
        nxt = (
            encode_cursor(rows[limit - 1].modified, rows[limit - 1].id)
            if len(rows) > limit
            else None
        )
        return Page(items, nxt, total)

    def get_dataset(self, dataset_id: str, scope: ReadScope) -> Dataset:
        with self.sessions() as s:
            doc = s.scalar(
                select(DatasetRow.doc).where(DatasetRow.id == dataset_id, self._scope_filter(scope))
            )
        if doc is None:
            # The same answer for "absent" and "not yours": existence is not leaked.
            raise NotFoundError(f"no dataset {dataset_id!r}")
        return Dataset.model_validate(doc)

    def catalog_page(
        self,
        scope: ReadScope,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        modified_since: datetime | None = None,
    ) -> tuple[list[Dataset], int]:
        """The datasets readable in ``scope`` after the key ``after`` in (modified, id) order
        (oldest change first, the order a harvester wants), and how many there are in all.

        Keyset paging, as the OAI-PMH lists: a record changed while a harvester walks the
        pages moves to the end (it is served again, newest), and no unchanged record shifts
        into a page already served, as it would with an offset."""
        where = [
            unindexed(DatasetRow.lifecycle).in_(sorted(lc.value for lc in scope.lifecycles)),
            unindexed(DatasetRow.visibility).in_(sorted(v.value for v in scope.visibilities)),
        ]
        if modified_since is not None:
            where.append(DatasetRow.modified >= modified_since)
        with self.sessions() as s:
            total = s.scalar(select(func.count()).select_from(DatasetRow).where(*where)) or 0
            if after is not None:
                where.append(tuple_(DatasetRow.modified, DatasetRow.id) > tuple_(*after))
            docs = s.scalars(
                select(DatasetRow.doc)
                .where(*where)
                .order_by(DatasetRow.modified, DatasetRow.id)
                .limit(limit)
            ).all()
        return [Dataset.model_validate(d) for d in docs], total

    def sitemap_entries(
        self, scope: ReadScope, *, offset: int, limit: int
    ) -> list[tuple[str, datetime]]:
        """(id, modified) of the readable datasets in id order: what a sitemap lists."""
        with self.sessions() as s:
            rows = s.execute(
                select(DatasetRow.id, DatasetRow.modified)
                .where(self._scope_filter(scope))
                .order_by(DatasetRow.id)
                .offset(offset)
                .limit(limit)
            ).all()
        return [(r.id, r.modified) for r in rows]

    def datasets_by_ids(self, ids: Iterable[str], scope: ReadScope) -> dict[str, Dataset]:
        """The datasets of ``ids`` readable in ``scope`` (others are simply absent).

        Looked up by primary key alone and filtered by the policy here: with the policy in the
        WHERE clause, SQLite (without ANALYZE statistics) chose the lifecycle index and scanned
        most of a million rows to find twenty (1.3 s instead of 1 ms)."""
        ids = list(ids)
        if not ids:
            return {}
        lifecycles = {lc.value for lc in scope.lifecycles}
        visibilities = {v.value for v in scope.visibilities}
        with self.sessions() as s:
            rows = s.execute(
                select(
                    DatasetRow.id, DatasetRow.lifecycle, DatasetRow.visibility, DatasetRow.doc
                ).where(DatasetRow.id.in_(ids))
            ).all()
        return {
            r.id: Dataset.model_validate(r.doc)
            for r in rows
            if r.lifecycle in lifecycles and r.visibility in visibilities
        }

    def images_of(self, dataset_id: str) -> list[Image]:
        """The images of a dataset the caller was already allowed to read."""
        with self.sessions() as s:
            docs = s.scalars(
                select(ImageRow.doc)
                .where(ImageRow.dataset_id == dataset_id)
                .order_by(ImageRow.path, ImageRow.series)
            ).all()
        return [Image.model_validate(d) for d in docs]

    def get_image(self, image_id: str, scope: ReadScope) -> tuple[Image, Dataset]:
        """An image and its dataset, when the dataset is readable in ``scope``."""
        with self.sessions() as s:
            row = s.execute(
                select(ImageRow.doc, DatasetRow.doc.label("ds"))
                .join(DatasetRow, DatasetRow.id == ImageRow.dataset_id)
                .where(ImageRow.id == image_id, self._scope_filter(scope))
            ).first()
        if row is None:
            raise NotFoundError(f"no image {image_id!r}")
        return Image.model_validate(row.doc), Dataset.model_validate(row.ds)

    def counts(self, scope: ReadScope) -> dict[str, int]:
        """Totals for the home page."""
        where = self._scope_filter(scope)
        with self.sessions() as s:
            datasets = s.scalar(select(func.count()).select_from(DatasetRow).where(where)) or 0
            images = (
                s.scalar(
                    select(func.count())
                    .select_from(ImageRow)
                    .join(DatasetRow, DatasetRow.id == ImageRow.dataset_id)
                    .where(where)
                )
                or 0
            )
        return {"datasets": datasets, "images": images}

    # ------------------------------------------------------------------ writes

    @staticmethod
    def queue_for_search(s: Session, dataset_ids: Iterable[str]) -> None:
        """Mark datasets as needing a fresh search document, in the caller's transaction: the
        queue commits with the record or not at all (node.search.indexer drains it)."""
        rows = [
            {"dataset_id": i, "queued_at": datetime.now(UTC), "attempts": 0}
            for i in dict.fromkeys(dataset_ids)
        ]
        if not rows:
            return
        dialect = s.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(SearchQueueRow).values(rows)
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=[SearchQueueRow.dataset_id],
                set_={"queued_at": stmt.excluded.queued_at, "attempts": 0, "last_error": None},
            )
        )

    def save_dataset(
        self, s: Session, ds: Dataset, *, source: str | None = None, folder: str | None = None
    ) -> None:
        """Insert or replace a dataset record (in the caller's transaction)."""
        values = dataset_row_values(ds, source=source, folder=folder)
        row = s.get(DatasetRow, ds.id)
        if row is None:
            s.add(DatasetRow(dirty=False, **values))
        else:
            for k, v in values.items():
                setattr(row, k, v)
        self.queue_for_search(s, [ds.id])

    def save_datasets(self, s: Session, datasets: Iterable[Dataset]) -> SavedDatasets:
        """Insert or replace many records without a source or folder (federation's harvested
        records), queued for search in the caller's transaction like ``save_dataset``. Returns
        what it wrote (the JSON text of each record and the time it was queued at), so the
        caller can index the records once the transaction commits (node.search.indexer).

        Two executemany upserts on the tables (not the ORM classes): their SQL is compiled once
        and cached, where a multi-row VALUES statement is compiled anew for every batch. The
        record's JSON is written by pydantic (``model_dump_json``, in Rust) and bound as text:
        the JSON column's own path (``model_dump`` to Python, then ``json.dumps``) cost five
        times as much and was the largest part of a federation batch."""
        rows = []
        docs: dict[str, str] = {}
        for ds in datasets:
            values = _dataset_columns(ds, source=None, folder=None)
            values["doc_json"] = docs[ds.id] = ds.model_dump_json()
            values["dirty"] = False
            rows.append(values)
        t = datetime.now(UTC)
        if not rows:
            return SavedDatasets(t, docs)
        dialect = s.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = DatasetRow.__table__
        # The doc bound as text: PostgreSQL casts it to jsonb; SQLite stores JSON as text.
        doc = bindparam("doc_json", type_=Text)
        stmt = insert(table).values(doc=cast(doc, JSONB) if dialect == "postgresql" else doc)
        updated = [k for k in rows[0] if k not in ("id", "dirty", "doc_json")] + ["doc"]
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.id], set_={k: stmt.excluded[k] for k in updated}
        )
        s.execute(stmt, rows)
        queue = SearchQueueRow.__table__
        qstmt = insert(queue)
        qstmt = qstmt.on_conflict_do_update(
            index_elements=[queue.c.dataset_id],
            set_={"queued_at": qstmt.excluded.queued_at, "attempts": 0, "last_error": None},
        )
        s.execute(qstmt, [{"dataset_id": i, "queued_at": t, "attempts": 0} for i in docs])
        return SavedDatasets(t, docs)

    def save_images(
        self, s: Session, images: Iterable[Image], *, source: str | None = None
    ) -> None:
        for im in images:
            values = image_row_values(im, source=source)
            row = s.get(ImageRow, im.id)
            if row is None:
                s.add(ImageRow(thumb_state="pending", **values))
            else:
                for k, v in values.items():
                    setattr(row, k, v)

    def delete_dataset(self, s: Session, dataset_id: str) -> None:
        s.execute(delete(ImageRow).where(ImageRow.dataset_id == dataset_id))
        s.execute(delete(DatasetRow).where(DatasetRow.id == dataset_id))
        self.queue_for_search(s, [dataset_id])
