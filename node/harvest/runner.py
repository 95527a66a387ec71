"""One harvest run of one source: walk, compare, extract what changed, keep the catalog in step.

The unit of work is a directory. A directory whose files are all unchanged
(path, size and mtime) costs one indexed query. When anything in it changed,
it is regrouped, the touched filesets are re-extracted, and the directory's
file rows, images and the "dirty" mark of its dataset are committed in ONE
transaction. A run killed at any point therefore leaves whole directories
behind, and the next run finishes the rest (dirty datasets are finalised
first). Datasets are finalised (sidecar + image aggregates) as soon as the
walk leaves their folder.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from node.catalog.db import session_factory
from node.catalog.models import DatasetRow, FileRow, ImageRow
from node.catalog.publishing import withdraw
from node.catalog.runs import HarvestError, HarvestRun, RunStore, lock_holder
from node.catalog.service import RecordService, image_row_values
from node.config import Config, SourceSettings
from node.errors import ConflictError
from node.harvest import datasets as dataset_builder
from node.harvest.entries import FileEntry, Fileset
from node.harvest.extractors import extract_fileset
from node.harvest.filesets import group_filesets, is_ome_zarr_dir, zarr_metadata_files
from node.harvest.ids import dataset_id as make_dataset_id
from node.harvest.sidecars import SIDECAR_NAMES
from node.harvest.walker import DirListing, walk
from node.pid.service import ACTIVE, PidService
from node.records import Dataset, Image, Lifecycle, ReadStatus

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 30.0

# Progress callback: (files seen so far, errors so far, current folder)
Progress = Callable[[int, int, str], None]
# Thumbnail progress callback: (thumbnails handled so far, how many were pending at the start)
ThumbnailProgress = Callable[[int, int], None]


@dataclass
class Counts:
    files_seen: int = 0
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    filesets_extracted: int = 0
    images_written: int = 0
    images_failed: int = 0
    images_removed: int = 0
    datasets_updated: int = 0
    datasets_removed: int = 0
    errors: int = 0
    warnings: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _OpenDataset:
    folder: str
    id: str
    sidecar: str | None  # relative path of its sidecar


@dataclass
class _RunState:
    run_id: int
    source: SourceSettings
    root: str
    counts: Counts = field(default_factory=Counts)
    pending_errors: list[HarvestError] = field(default_factory=list)
    reported: set[tuple[str, str]] = field(default_factory=set)
    updated_datasets: set[str] = field(default_factory=set)
    dirtied: set[str] = field(default_factory=set)  # datasets this run marked dirty
    reader: Connection | None = None  # reused for the per-folder file query
    visited_dirs: set[str] = field(default_factory=set)
    incomplete_dirs: list[str] = field(default_factory=list)
    open_datasets: list[_OpenDataset] = field(default_factory=list)
    # Stack of (folder, sidecar file name) for the folders above the walk that hold a sidecar.
    sidecar_dirs: list[tuple[str, str]] = field(default_factory=list)
    last_beat: float = field(default_factory=time.monotonic)


class Harvester:
    """Runs file harvests for the sources of one node."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        *,
        progress: Progress | None = None,
        thumbnail_progress: ThumbnailProgress | None = None,
    ):
        self.config = config
        self.engine = engine
        self.sessions = session_factory(engine)
        self.records = RecordService(engine)
        self.runs = RunStore(engine)
        self.pids = PidService(config, engine)  # mints for publish = "auto" sources
        self.progress = progress
        self.thumbnail_progress = thumbnail_progress
        self.holder = lock_holder()
        self.lease = timedelta(seconds=config.harvest.lease_seconds)

    # ------------------------------------------------------------------ public

    def run(self, source_name: str) -> HarvestRun:
        """Harvest one source now; ConflictError if another process is harvesting it."""
        source = self.config.source(source_name)
        if not self.runs.acquire(source.name, self.holder, self.lease):
            other = self.runs.lock_holder_of(source.name) or "another process"
            raise ConflictError(
                f"source {source.name!r} is being harvested by {other}; try again when it ends"
            )
        run_id = self.runs.start_run(source.name)
        state = _RunState(run_id, source, str(self.config.resolve(source.path)))
        status, message = "completed", None
        try:
            self._finalise_dirty(state)  # left over by a killed run
            self._walk(state)
            self._sweep(state)
            self._finalise_dirty(state)
            if self.config.harvest.thumbnails:
                self._thumbnails(state)
        except BaseException as e:  # record even KeyboardInterrupt, then re-raise it
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            message = f"{type(e).__name__}: {e}"
            log.exception("harvest of %s failed", source.name)
            raise
        finally:
            if state.reader is not None:
                state.reader.close()
            self._flush_errors(state)
            self.runs.finish_run(run_id, status, state.counts.as_dict(), message)
            self.runs.release(source.name, self.holder)
        return self.runs.get_run(run_id)

    # ------------------------------------------------------------------ walk

    def _walk(self, st: _RunState) -> None:
        src = st.source
        for listing in walk(
            st.root,
            follow_symlinks=src.follow_symlinks,
            exclude=src.exclude,
            is_zarr_dir=is_ome_zarr_dir,
            zarr_metadata_files=zarr_metadata_files,
        ):
            for path, reason, level in listing.problems:
                self._problem(st, path, reason, level)
            if not listing.complete:
                st.incomplete_dirs.append(listing.rel)
                continue
            st.visited_dirs.add(listing.rel)
            self._close_datasets(st, listing.rel)
            self._enter_sidecars(st, listing)
            ds_folder = self._dataset_folder(st, listing.rel)
            if not st.open_datasets or st.open_datasets[-1].folder != ds_folder:
                sidecar = self._sidecar_of(st, ds_folder)
                st.open_datasets.append(
                    _OpenDataset(ds_folder, make_dataset_id(src.name, ds_folder), sidecar)
                )
            self._dir(st, listing, st.open_datasets[-1])
            st.counts.files_seen += len(listing.files)
            if self.progress:
                self.progress(st.counts.files_seen, st.counts.errors, listing.rel)
            self._beat(st)
        self._close_datasets(st, None)

    def _enter_sidecars(self, st: _RunState, listing: DirListing) -> None:
        while st.sidecar_dirs and not _is_under(listing.rel, st.sidecar_dirs[-1][0]):
            st.sidecar_dirs.pop()
        if listing.sidecar:
            st.sidecar_dirs.append((listing.rel, listing.sidecar))

    def _dataset_folder(self, st: _RunState, rel: str) -> str:
        if st.sidecar_dirs:
            return st.sidecar_dirs[-1][0]
        parts = PurePosixPath(rel).parts if rel else ()
        return "/".join(parts[: st.source.dataset_depth])

    def _sidecar_of(self, st: _RunState, folder: str) -> str | None:
        """The sidecar that marks ``folder``, as the walker listed it (no second look on disk)."""
        if st.sidecar_dirs and st.sidecar_dirs[-1][0] == folder:
            name = st.sidecar_dirs[-1][1]
            return f"{folder}/{name}" if folder else name
        return None

    def _close_datasets(self, st: _RunState, rel: str | None) -> None:
        """Finalise the datasets whose folder the walk has left."""
        while st.open_datasets and (rel is None or not _is_under(rel, st.open_datasets[-1].folder)):
            ods = st.open_datasets.pop()
            # Only what this run touched can be dirty here: a killed run's leftovers were
            # finalised at the start. Skipping the others keeps a no-change rescan cheap.
            if ods.id in st.dirtied:
                self._finalise(st, ods.id, ods.folder, ods.sidecar, only_if_dirty=True)

    # ------------------------------------------------------------------ one directory

    _files_query = select(
        FileRow.name, FileRow.size, FileRow.mtime_ns, FileRow.fileset, FileRow.dataset_id
    ).where(FileRow.source == bindparam("src"), FileRow.dir == bindparam("dir"))

    def _reader(self, st: _RunState) -> Connection:
        if st.reader is None:
            st.reader = self.engine.connect()
        return st.reader

    def _dir(self, st: _RunState, listing: DirListing, ods: _OpenDataset) -> None:
        src = st.source.name
        # Core on one reused connection, plain column rows: this runs for every folder of
        # every rescan. Ending the read transaction at once holds no snapshot across folders.
        reader = self._reader(st)
        rows = {
            r[0]: r for r in reader.execute(self._files_query, {"src": src, "dir": listing.rel})
        }
        reader.rollback()
        # One pass over the folder: the hot loop of a rescan where nothing changed.
        cut = len(listing.rel) + 1 if listing.rel else 0
        current: dict[str, FileEntry] = {}
        new: list[str] = []
        changed: list[str] = []
        moved = False
        for f in listing.files:
            n = f.rel[cut:]
            current[n] = f
            r = rows.get(n)
            if r is None:
                new.append(n)
            else:
                if r[1] != f.size or r[2] != f.mtime_ns:
                    changed.append(n)
                if r[4] != ods.id:
                    moved = True
        removed = (
            [n for n in rows if n not in current] if len(rows) > len(current) - len(new) else []
        )
        st.counts.files_new += len(new)
        st.counts.files_changed += len(changed)
        st.counts.files_removed += len(removed)
        st.counts.files_unchanged += len(current) - len(new) - len(changed)
        if not (new or changed or removed or moved):
            return
        touched = set(new) | set(changed) | set(removed)
        sidecar_touched = any(n in SIDECAR_NAMES for n in touched)
        old_members: dict[str, set[str]] = {}
        for n, r in rows.items():
            if r.fileset:
                old_members.setdefault(r.fileset, set()).add(n)
        filesets = group_filesets(list(current.values())) if (new or changed or removed) else []
        fileset_of: dict[str, str] = {}
        to_extract: list[Fileset] = []
        for fs in filesets:
            names = {_name(m.rel) for m in fs.members}
            for n in names:
                fileset_of[n] = fs.main.rel
            if names & touched or old_members.get(fs.main.rel) != names:
                to_extract.append(fs)
        if not (new or changed or removed):  # only the dataset assignment changed
            fileset_of = {n: r.fileset for n, r in rows.items() if r.fileset}
        new_mains = {fs.main.rel for fs in filesets}
        gone_mains = [m for m in old_members if m not in new_mains]
        images: list[Image] = []
        for fs in to_extract:
            for im in extract_fileset(fs, src):
                if im.status is ReadStatus.failed and not os.path.lexists(fs.main.abs):
                    self._problem(st, fs.main.rel, "vanished during the harvest", "warning")
                    break
                images.append(im.model_copy(update={"dataset_id": ods.id}))
        st.counts.filesets_extracted += len(to_extract)
        with self.sessions() as s, s.begin():
            old_ids = {
                r.dataset_id for r in rows.values() if r.dataset_id and r.dataset_id != ods.id
            }
            mains_to_clear = [fs.main.rel for fs in to_extract] + gone_mains
            for chunk in _chunks(mains_to_clear):
                s.execute(delete(ImageRow).where(ImageRow.source == src, ImageRow.path.in_(chunk)))
            self._mark_dirty(s, ods.id, ods.folder, st)  # first: images need their dataset row
            if moved:
                self._move_images(s, src, listing.rel, rows, ods.id)
            # Bulk inserts: the rows of these filesets and of this folder were just deleted.
            if images:
                s.execute(
                    insert(ImageRow),
                    [
                        {
                            **image_row_values(im, source=src),
                            # Only readable pixels make a thumbnail: the rest is never pending.
                            "thumb_state": "pending" if im.status is ReadStatus.ok else "skipped",
                        }
                        for im in images
                    ],
                )
            s.execute(delete(FileRow).where(FileRow.source == src, FileRow.dir == listing.rel))
            if current:
                s.execute(
                    insert(FileRow),
                    [
                        {
                            "source": src,
                            "dir": listing.rel,
                            "name": n,
                            "size": f.size,
                            "mtime_ns": f.mtime_ns,
                            "fileset": fileset_of.get(n),
                            "dataset_id": ods.id,
                        }
                        for n, f in current.items()
                    ],
                )
            for old in old_ids:
                s.execute(update(DatasetRow).where(DatasetRow.id == old).values(dirty=True))
                st.dirtied.add(old)
            if sidecar_touched:
                s.execute(update(DatasetRow).where(DatasetRow.id == ods.id).values(dirty=True))
        for im in images:
            st.counts.images_written += 1
            if im.status is ReadStatus.failed:
                st.counts.images_failed += 1
                self._problem(st, im.path, im.error or "unreadable", "error")
            elif im.status is ReadStatus.metadata_only and im.error:
                self._problem(st, im.path, im.error, "warning")

    def _move_images(
        self, s: Session, src: str, rel: str, rows: dict[str, Any], ds_id: str
    ) -> None:
        """A sidecar appeared or vanished above: the folder's images change dataset."""
        mains = sorted({r.fileset for r in rows.values() if r.fileset})
        for chunk in _chunks(mains):
            for row in s.scalars(
                select(ImageRow).where(ImageRow.source == src, ImageRow.path.in_(chunk))
            ):
                row.dataset_id = ds_id
                row.doc = {**row.doc, "dataset_id": ds_id}

    def _mark_dirty(self, s: Session, ds_id: str, folder: str, st: _RunState) -> None:
        row = s.get(DatasetRow, ds_id)
        if row is None:
            # A placeholder until the dataset is finalised; drafts are invisible to readers.
            ds = dataset_builder.placeholder(ds_id, folder, st.source, self.config.node.id)
            self.records.save_dataset(s, ds, source=st.source.name, folder=folder)
            s.flush()
            row = s.get(DatasetRow, ds_id)
        row.dirty = True
        st.dirtied.add(ds_id)

    # ------------------------------------------------------------------ datasets

    def _finalise(
        self, st: _RunState, ds_id: str, folder: str, sidecar: str | None, *, only_if_dirty: bool
    ) -> None:
        with self.sessions() as s, s.begin():
            row = s.get(DatasetRow, ds_id)
            if row is None or (only_if_dirty and not row.dirty):
                return
            images = [
                Image.model_validate(d)
                for d in s.scalars(select(ImageRow.doc).where(ImageRow.dataset_id == ds_id))
            ]
            if not images:
                self._remove(s, st, ds_id, folder)
                return
            abs_sidecar = os.path.join(st.root, sidecar) if sidecar else None
            was_gone = dataset_builder.is_files_gone(Dataset.model_validate(row.doc))
            ds, problems = dataset_builder.build(
                ds_id,
                folder,
                st.source,
                self.config.node,
                images,
                row.doc,
                abs_sidecar,
                sidecar,
                # A published dataset's PID is minted in this transaction, with the record.
                mint=lambda d: self.pids.mint(s, d),
            )
            for p in problems:
                self._problem(
                    st,
                    p.file,
                    p.why
                    if not p.field
                    else f"{p.field}: {p.why}" + (f" (line {p.line})" if p.line else ""),
                    "error",
                )
            if was_gone and ds.lifecycle is Lifecycle.published and ds.identifier:
                PidService.set_status(s, ds.identifier, ACTIVE)  # its files came back
            self.records.save_dataset(s, ds, source=st.source.name, folder=folder)
            s.flush()
            s.get(DatasetRow, ds_id).dirty = False
            st.updated_datasets.add(ds_id)
            st.counts.datasets_updated = len(st.updated_datasets)

    def _remove(self, s: Session, st: _RunState, ds_id: str, folder: str) -> None:
        """A dataset whose images are all gone. A draft is deleted; a published one is withdrawn
        instead: its PID and citation stay, resolving to a tombstone, and harvesters see it as
        deleted (OAI-PMH deletedRecord=persistent). A curator can reinstate it
        (`fairnode publish ID --reinstate`) if the files come back."""
        doc = s.get(DatasetRow, ds_id).doc
        lifecycle = doc.get("lifecycle")
        if lifecycle == Lifecycle.draft.value:
            self.records.delete_dataset(s, ds_id)
        elif lifecycle == Lifecycle.published.value:
            reason = dataset_builder.files_gone_reason(st.source.name, folder)
            withdraw(s, ds_id, reason=reason, config=self.config)
            s.get(DatasetRow, ds_id).dirty = False
        else:
            s.get(DatasetRow, ds_id).dirty = False  # withdrawn already: the tombstone stays
        st.counts.datasets_removed += 1

    def _finalise_dirty(self, st: _RunState) -> None:
        with self.sessions() as s:
            dirty = s.execute(
                select(DatasetRow.id, DatasetRow.folder).where(
                    DatasetRow.source == st.source.name, DatasetRow.dirty.is_(True)
                )
            ).all()
        for ds_id, folder in dirty:
            sidecar = _find_sidecar(st.root, folder or "")
            self._finalise(st, ds_id, folder or "", sidecar, only_if_dirty=True)

    # ------------------------------------------------------------------ sweep

    def _sweep(self, st: _RunState) -> None:
        """Remove what lives in folders that no longer exist (but never below an unreadable one)."""
        src = st.source.name
        with self.sessions() as s:
            known = s.scalars(select(FileRow.dir).where(FileRow.source == src).distinct()).all()
        vanished = [
            d
            for d in known
            if d not in st.visited_dirs and not any(_is_under(d, bad) for bad in st.incomplete_dirs)
        ]
        for d in vanished:
            with self.sessions() as s, s.begin():
                rows = s.scalars(
                    select(FileRow).where(FileRow.source == src, FileRow.dir == d)
                ).all()
                mains = sorted({r.fileset for r in rows if r.fileset})
                ds_ids = {r.dataset_id for r in rows if r.dataset_id}
                for chunk in _chunks(mains):
                    st.counts.images_removed += s.execute(
                        delete(ImageRow).where(ImageRow.source == src, ImageRow.path.in_(chunk))
                    ).rowcount
                s.execute(delete(FileRow).where(FileRow.source == src, FileRow.dir == d))
                st.counts.files_removed += len(rows)
                for ds_id in ds_ids:
                    s.execute(update(DatasetRow).where(DatasetRow.id == ds_id).values(dirty=True))

    # ------------------------------------------------------------------ thumbnails

    def _thumbnails(self, st: _RunState) -> None:
        from node.harvest.thumbnails import PixelReadError, ThumbnailError, make_thumbnail

        out = self.config.thumbnail_dir
        out.mkdir(parents=True, exist_ok=True)
        pending = (
            select(func.count())
            .select_from(ImageRow)
            .where(ImageRow.source == st.source.name, ImageRow.thumb_state == "pending")
        )
        with self.sessions() as s:
            total = s.scalar(pending) or 0
        done = 0
        while True:
            with self.sessions() as s:
                batch = s.execute(
                    select(ImageRow.id, ImageRow.doc)
                    .where(ImageRow.source == st.source.name, ImageRow.thumb_state == "pending")
                    .limit(100)
                ).all()
            if not batch:
                return
            for image_id, doc in batch:
                im = Image.model_validate(doc)
                state, name, unreadable = "failed", None, None
                if im.status is ReadStatus.ok:
                    try:
                        name = make_thumbnail(
                            im, Path(st.root), out, max_side=self.config.harvest.thumbnail_size
                        )
                        state = "done"
                    except PixelReadError as e:
                        unreadable = str(e).removeprefix(f"{im.path}: ")
                        self._problem(st, im.path, f"metadata read, but {unreadable}", "warning")
                    except ThumbnailError as e:
                        self._problem(st, im.path, f"thumbnail: {e}", "warning")
                    except Exception as e:  # a decoder bug must not stop the run
                        self._problem(st, im.path, f"thumbnail: {type(e).__name__}: {e}", "warning")
                else:
                    state = "skipped"
                with self.sessions() as s, s.begin():
                    row = s.get(ImageRow, image_id)
                    if row is None:
                        continue
                    row.thumb_state = state
                    if name:
                        row.doc = {**row.doc, "thumbnail": name}
                    if unreadable:
                        # "Metadata OK, pixels broken" is a normal outcome, not a failure.
                        row.status = ReadStatus.metadata_only.value
                        row.doc = {**row.doc, "status": row.status, "error": unreadable}
                    if (name or unreadable) and row.dataset_id:
                        s.execute(
                            update(DatasetRow)
                            .where(DatasetRow.id == row.dataset_id)
                            .values(dirty=True)
                        )
                done += 1
                if self.thumbnail_progress:
                    self.thumbnail_progress(done, total)
                self._beat(st)
            self._finalise_dirty(st)

    # ------------------------------------------------------------------ bookkeeping

    def _problem(self, st: _RunState, path: str, reason: str, level: str) -> None:
        # Readers name the file in their messages; the run's list has the path in its own column.
        reason = reason.removeprefix(f"{path}: ")
        key = (path, reason)
        if key in st.reported:  # e.g. one message for each of a file's 22 images: say it once
            return
        st.reported.add(key)
        if level == "error":
            st.counts.errors += 1
        else:
            st.counts.warnings += 1
        st.pending_errors.append(HarvestError(path, reason, level))
        if len(st.pending_errors) >= 500:
            self._flush_errors(st)

    def _flush_errors(self, st: _RunState) -> None:
        self.runs.add_errors(st.run_id, st.pending_errors)
        st.pending_errors = []

    def _beat(self, st: _RunState) -> None:
        t = time.monotonic()
        if t - st.last_beat < HEARTBEAT_EVERY_S:
            return
        st.last_beat = t
        self._flush_errors(st)
        self.runs.update_counts(st.run_id, st.counts.as_dict())
        if not self.runs.heartbeat(st.source.name, self.holder, self.lease):
            raise ConflictError(
                f"lost the lease of source {st.source.name!r}; another run took over"
            )


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """Slices of ``items``: a folder may hold more filesets than one statement takes parameters."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def _find_sidecar(root: str, folder: str) -> str | None:
    """The relative path of the sidecar that marks ``folder`` as a dataset, if there is one."""
    base = os.path.join(root, folder) if folder else root
    for name in SIDECAR_NAMES:
        if os.path.isfile(os.path.join(base, name)):
            return f"{folder}/{name}" if folder else name
    return None


def _name(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


def _is_under(rel: str, folder: str) -> bool:
    """Whether ``rel`` is ``folder`` or below it ("" is the root, above everything)."""
    return folder == "" or rel == folder or rel.startswith(folder + "/")
