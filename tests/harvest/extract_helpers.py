"""Helpers for the extraction tests: turn a folder into FileEntry lists and extract it."""

from __future__ import annotations

import os
from pathlib import Path

from node.harvest.entries import FileEntry, Fileset
from node.harvest.extractors import extract_fileset
from node.harvest.filesets import group_filesets
from node.records import Image

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def entries_of(folder: Path, prefix: str | None = None) -> list[FileEntry]:
    """The FileEntry of every file in ``folder`` (not recursive), rel = prefix/name."""
    prefix = folder.name if prefix is None else prefix
    out = []
    for name in sorted(os.listdir(folder)):
        p = folder / name
        st = p.stat()
        rel = f"{prefix}/{name}" if prefix else name
        out.append(FileEntry(rel=rel, abs=str(p), size=st.st_size, mtime_ns=st.st_mtime_ns))
    return out


def single(path: Path, kind: str, rel: str | None = None) -> Fileset:
    """A one-file fileset, bypassing grouping."""
    size = path.stat().st_size if path.is_file() else 0
    e = FileEntry(rel=rel or path.name, abs=str(path), size=size, mtime_ns=0)
    return Fileset(main=e, members=[e], kind=kind)


def extract_folder(folder: Path) -> dict[str, list[Image]]:
    """Group ``folder`` and extract every fileset: main file name → its images."""
    return {
        Path(fs.main.rel).name: extract_fileset(fs, "test")
        for fs in group_filesets(entries_of(folder))
    }
