"""The data that flows from the walker to grouping and extraction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class FileEntry(NamedTuple):
    """One file (or one OME-Zarr directory) found by the walker.

    ``rel`` is the path relative to the source root with POSIX separators; it is
    the file's identity in the catalog. Names that are not valid UTF-8 are kept
    readable with backslash escapes (``\\xff``) and ``abs`` keeps the real path.
    A NamedTuple, not a dataclass: the walker makes one per file on every rescan,
    and a frozen dataclass costs several times more to build.
    """

    rel: str
    abs: str
    size: int
    mtime_ns: int
    is_dir: bool = False  # True for an OME-Zarr directory treated as one file


@dataclass(slots=True)
class Fileset:
    """Files that belong together and are read as one (e.g. a multi-file OME-TIFF)."""

    main: FileEntry
    members: list[FileEntry] = field(default_factory=list)  # includes ``main``
    kind: str = "unknown"  # "ome-tiff", "tiff", "ome-xml", "ome-zarr", "bioio"

    @property
    def total_size(self) -> int:
        return sum(m.size for m in self.members)
