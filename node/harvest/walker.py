"""Streaming walk of a source folder, one directory at a time.

Memory is bounded by the largest single directory plus the stack of folders
still to visit, never by the size of the tree. Symlinked folders are followed
at most once (a visited set of device/inode pairs breaks loops); entries that
cannot be read are reported and the walk goes on.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from node.harvest.entries import FileEntry
from node.harvest.sidecars import SIDECAR_NAMES


def display_name(name: str) -> str:
    """A name that is valid UTF-8 text: undecodable bytes become ``\\xNN`` escapes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class DirListing:
    """What one directory holds."""

    rel: str  # POSIX path relative to the root, "" for the root
    abs: str
    files: list[FileEntry]
    sidecar: str | None = None  # file name of the sidecar in this folder
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (rel path, reason, level)
    complete: bool = True  # False when the folder could not be listed: keep what the catalog has

    @property
    def depth(self) -> int:
        return 0 if not self.rel else self.rel.count("/") + 1


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def walk(
    root: str,
    *,
    follow_symlinks: bool = True,
    exclude: list[str] | tuple[str, ...] = (),
    is_zarr_dir: Callable[[str], bool] | None = None,
    zarr_metadata_files: Callable[[str], list[str]] | None = None,
) -> Iterator[DirListing]:
    """Yield a DirListing per directory, parents before children, siblings in name order."""
    root = os.path.abspath(root)
    # One compiled pattern instead of an fnmatch call per pattern per entry (hot on rescans).
    excluded = (
        re.compile("|".join(fnmatch.translate(p) for p in exclude)).match if exclude else None
    )
    try:
        st = os.stat(root)
    except OSError as e:
        yield DirListing(
            "",
            root,
            [],
            problems=[("", f"cannot open source root: {e.strerror}", "error")],
            complete=False,
        )
        return
    visited: set[tuple[int, int]] = {(st.st_dev, st.st_ino)}
    stack: list[tuple[str, str]] = [("", root)]
    while stack:
        rel, path = stack.pop()
        listing = DirListing(rel, path, [])
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            continue  # vanished since its parent was listed: the sweep removes its records
        except OSError as e:
            listing.problems.append((rel or ".", f"cannot list folder: {e.strerror}", "error"))
            listing.complete = False
            yield listing
            continue
        subdirs: list[tuple[str, str]] = []
        sidecars: list[str] = []
        for entry in entries:
            name = entry.name
            if excluded is not None and excluded(name):
                continue
            # Fast path: almost every name is ASCII, and ASCII is always valid UTF-8.
            shown = name if name.isascii() else display_name(name)
            erel = f"{rel}/{shown}" if rel else shown
            if shown != name:
                listing.problems.append(
                    (
                        erel,
                        "name is not valid UTF-8; catalogued with \\x escapes for the bad bytes",
                        "warning",
                    )
                )
            try:
                if not follow_symlinks and entry.is_symlink():
                    continue
                est = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                if entry.is_symlink():
                    listing.problems.append((erel, "broken symbolic link", "warning"))
                continue  # otherwise it vanished mid-walk: nothing to catalog
            except OSError as e:
                listing.problems.append((erel, f"cannot stat: {e.strerror}", "error"))
                continue
            if stat.S_ISDIR(est.st_mode):
                key = (est.st_dev, est.st_ino)
                if key in visited:
                    reason = "symbolic link loop" if entry.is_symlink() else "folder reached twice"
                    listing.problems.append((erel, f"{reason}: already walked, skipped", "warning"))
                    continue
                visited.add(key)
                if is_zarr_dir is not None and is_zarr_dir(entry.path):
                    listing.files.append(_zarr_entry(erel, entry.path, zarr_metadata_files))
                else:
                    subdirs.append((erel, entry.path))
            elif stat.S_ISREG(est.st_mode):
                listing.files.append(FileEntry(erel, entry.path, est.st_size, est.st_mtime_ns))
                if name in SIDECAR_NAMES:
                    sidecars.append(name)
            # FIFOs, sockets and devices are never opened: reading one could block forever.
        if sidecars:
            sidecars.sort(key=SIDECAR_NAMES.index)
            listing.sidecar = sidecars[0]
            for extra in sidecars[1:]:
                listing.problems.append(
                    (
                        _join(rel, extra),
                        f"ignored: {sidecars[0]} in the same folder takes precedence",
                        "warning",
                    )
                )
        yield listing
        stack.extend(reversed(subdirs))


def _zarr_entry(
    rel: str, path: str, metadata_files: Callable[[str], list[str]] | None
) -> FileEntry:
    """An OME-Zarr directory as one entry; its identity is its small metadata files."""
    size, mtime = 0, 0
    for f in metadata_files(path) if metadata_files else []:
        try:
            st = os.stat(f)
        except OSError:
            continue
        size += st.st_size
        mtime = max(mtime, st.st_mtime_ns)
    return FileEntry(rel, path, size, mtime, is_dir=True)
