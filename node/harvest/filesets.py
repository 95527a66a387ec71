"""Group the files of one directory into filesets (the unit that is read as one).

Rules: only image files are returned (sidecars, notes, hidden files are not); an OME-Zarr
directory is one fileset; a multi-file OME-TIFF is one fileset, found by following the
``BinaryOnly/@MetadataFile`` and ``TiffData/UUID/@FileName`` links or a ``.companion.ome``;
a BinaryOnly member is never a fileset of its own making. Grouping reads the first IFD's
ImageDescription of TIFFs and the companion XML, never pixels, because the walker calls it
for millions of files.
"""

from __future__ import annotations

import html
import os
import posixpath
import re

import tifffile

from node.harvest.entries import FileEntry, Fileset
from node.harvest.extractors.ome_xml import local
from node.harvest.extractors.ome_zarr import is_ome_zarr, metadata_files
from node.harvest.xml import XmlError, read_xml_file

TIFF_SUFFIXES = (".tif", ".tiff", ".tf2", ".tf8", ".btf", ".lsm", ".svs", ".ndpi", ".scn")
OME_XML_SUFFIXES = (".companion.ome", ".ome.xml", ".ome")
# Vendor formats read through bioio plugins.
BIOIO_SUFFIXES = (
    ".czi",
    ".nd2",
    ".lif",
    ".dv",
    ".r3d",
    ".ims",
    ".oib",
    ".oif",
    ".vsi",
    ".lei",
    ".zvi",
    ".sld",
    ".ics",
)
# Data files that belong to another file of the same stem (ICS 1.0: .ics header + .ids data).
_COMPANION_DATA = {".ids": ".ics"}

# Grouping only needs the link attributes, so TIFF descriptions are scanned with regexes
# instead of being parsed (an order of magnitude cheaper; no entity is ever expanded).
_ATTR = r"""\s*=\s*(?:"([^"]*)"|'([^']*)')"""
_BINARY_ONLY_RE = re.compile(r"<(?:\w+:)?BinaryOnly\b[^>]*?\bMetadataFile" + _ATTR)
_UUID_FILE_RE = re.compile(r"<(?:\w+:)?UUID\b[^>]*?\bFileName" + _ATTR)
_DESC_SCAN = 8 * 1024 * 1024  # links sit near the top; a giant description is cut for the scan


def is_ome_zarr_dir(path: str) -> bool:
    """True if ``path`` is an OME-Zarr image (v0.4 .zattrs / v0.5 zarr.json with multiscales)."""
    return os.path.isdir(path) and is_ome_zarr(path)


def zarr_metadata_files(path: str) -> list[str]:
    """The small JSON files that describe the OME-Zarr at ``path`` (stat them to see changes)."""
    return metadata_files(path)


def _kind_of(name: str) -> str | None:
    low = name.lower()
    if low.endswith(OME_XML_SUFFIXES):
        return "ome-xml"
    if low.endswith(TIFF_SUFFIXES):
        return "tiff"
    if low.endswith(BIOIO_SUFFIXES):
        return "bioio"
    return None


def _attr(m: re.Match[str]) -> str:
    return html.unescape(m[1] if m[1] is not None else m[2])


def _tiff_links(path: str) -> tuple[str, str | None, list[str]]:
    """(kind, BinaryOnly metadata file, referenced file names) from a TIFF's first IFD."""
    try:
        with tifffile.TiffFile(path) as tif:
            desc = tif.pages.first.description or ""
    except Exception:  # unreadable here means a standalone fileset; extraction reports why
        return "tiff", None, []
    head = desc[:_DESC_SCAN]
    if "<OME" not in head and ":OME" not in head:
        return "tiff", None, []
    m = _BINARY_ONLY_RE.search(head)
    if m:
        return "ome-tiff", _attr(m), []
    return "ome-tiff", None, [_attr(m) for m in _UUID_FILE_RE.finditer(head)]


def _xml_links(path: str) -> list[str]:
    """File names referenced by TiffData/UUID in an OME-XML (companion) file."""
    try:
        root = read_xml_file(path)
    except (XmlError, OSError):
        return []
    if local(root.tag) != "OME":
        return []
    names = []
    for img in root.findall("{*}Image"):
        for px in img.findall("{*}Pixels"):
            for td in px.findall("{*}TiffData"):
                for u in td.findall("{*}UUID"):
                    fn = u.get("FileName")
                    if fn:
                        names.append(fn)
    return names


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_filesets(entries: list[FileEntry]) -> list[Fileset]:
    """Filesets for the entries of ONE directory, sorted by main file; non-images are left out."""
    by_name: dict[str, FileEntry] = {}
    kind: dict[str, str] = {}
    out: list[Fileset] = []
    for e in entries:
        name = posixpath.basename(e.rel.rstrip("/"))
        if not name or name.startswith("."):
            continue  # hidden files: .DS_Store, ._AppleDouble, editor backups
        if e.is_dir:
            out.append(Fileset(main=e, members=[e], kind="ome-zarr"))
            continue
        k = _kind_of(name)
        if k is None:
            low = name.lower()
            ext = os.path.splitext(low)[1]
            if ext in _COMPANION_DATA:
                by_name[name] = e
                kind[name] = "data"
            continue
        by_name[name] = e
        kind[name] = k

    uf = _Union()
    rank: dict[str, int] = {}  # lower = better main file of its group
    orphans: dict[str, list[str]] = {}  # BinaryOnly members whose metadata file is not here

    def link(a: str, b: str) -> bool:
        if b in by_name and kind.get(b) != "data":
            uf.union(a, b)
            return True
        return False

    for name, k in kind.items():
        path = by_name[name].abs
        if k == "ome-xml":
            refs = [posixpath.basename(r.replace("\\", "/")) for r in _xml_links(path)]
            linked = [r for r in refs if r != name and link(name, r)]
            if linked:
                kind[name] = "ome-tiff"
            rank[name] = 0 if name.lower().endswith(".companion.ome") else 1
        elif k == "tiff":
            k2, meta, refs = _tiff_links(path)
            kind[name] = k2
            if meta is not None:
                mname = posixpath.basename(meta.replace("\\", "/"))
                rank[name] = 9
                if not (mname and mname != name and link(name, mname)):
                    orphans.setdefault(mname, []).append(name)
                continue
            rank[name] = 2 if refs else 3
            for r in refs:
                r = posixpath.basename(r.replace("\\", "/"))
                if r != name:
                    link(name, r)
        elif k == "data":
            header = os.path.splitext(name)[0] + _COMPANION_DATA[os.path.splitext(name)[1].lower()]
            for cand in by_name:
                if cand.lower() == header.lower():
                    uf.union(cand, name)

    # Binary-only members that lost their metadata file stay together as one failed fileset.
    for members in orphans.values():
        for m in members[1:]:
            uf.union(members[0], m)

    groups: dict[str, list[str]] = {}
    for name in by_name:
        groups.setdefault(uf.find(name), []).append(name)
    for names in groups.values():
        if all(kind[n] == "data" for n in names):
            continue  # an .ids without its .ics header is not an image
        names.sort()
        main = min(names, key=lambda n: (rank.get(n, 5), n))
        k = kind[main]
        if len(names) > 1 and k in ("ome-xml", "tiff"):
            k = "ome-tiff"
        members = [by_name[main]] + [by_name[n] for n in names if n != main]
        out.append(Fileset(main=by_name[main], members=members, kind=k))
    out.sort(key=lambda fs: fs.main.rel)
    return out


__all__ = ["group_filesets", "is_ome_zarr_dir", "zarr_metadata_files"]
