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
import struct

from node.harvest.entries import FileEntry, Fileset
from node.harvest.extractors.ome_zarr import is_ome_zarr, metadata_files

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
_ATTR_VALUE_RE = {a: re.compile(a + _ATTR) for a in ("MetadataFile", "FileName")}
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


# TIFF field types that can hold an ImageDescription: BYTE, ASCII, UNDEFINED, UTF-8.
_TEXT_TYPES = {1, 2, 7, 129}


def first_description(path: str, limit: int = _DESC_SCAN) -> str | None:
    """The ImageDescription of the first IFD (at most ``limit`` bytes); None if not a TIFF.

    Hand-read rather than through tifffile, which parses every tag of the first page (all
    strip offsets included): grouping only needs this one tag, and reading it directly is
    ~20x cheaper. Extraction still opens the file with tifffile. Any inconsistency gives None.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
            order = {b"II": "<", b"MM": ">"}.get(head[:2])
            if order is None or len(head) < 8:
                return None
            magic = struct.unpack(order + "H", head[2:4])[0]
            if magic == 42:  # classic TIFF
                ifd, nfmt, nsize, esize, cfmt, inline = (
                    struct.unpack(order + "I", head[4:8])[0],
                    "H",
                    2,
                    12,
                    "I",
                    4,
                )
            elif magic == 43 and len(head) == 16:  # BigTIFF
                ifd, nfmt, nsize, esize, cfmt, inline = (
                    struct.unpack(order + "Q", head[8:16])[0],
                    "Q",
                    8,
                    20,
                    "Q",
                    8,
                )
            else:
                return None
            fh.seek(ifd)
            raw = fh.read(nsize)
            if len(raw) != nsize:
                return None
            n = struct.unpack(order + nfmt, raw)[0]
            if not 0 < n <= 4096:
                return None
            entries = fh.read(n * esize)
            csize = struct.calcsize(cfmt)
            for i in range(0, len(entries) - esize + 1, esize):
                tag, typ = struct.unpack_from(order + "HH", entries, i)
                if tag != 270:
                    continue
                if typ not in _TEXT_TYPES:
                    return None
                count = struct.unpack_from(order + cfmt, entries, i + 4)[0]
                if count <= inline:
                    value = entries[i + 4 + csize : i + 4 + csize + count]
                else:
                    fh.seek(struct.unpack_from(order + cfmt, entries, i + 4 + csize)[0])
                    value = fh.read(min(count, limit))
                return value.split(b"\0", 1)[0].decode("utf-8", "replace")
            return ""
    except (OSError, struct.error, OverflowError, ValueError):
        return None


def _attr_in_tag(text: str, element: str, attr: str) -> list[str]:
    """Values of ``attr`` on every <``element``> start tag (any namespace prefix) in ``text``.

    ``str.find`` on the attribute name, then a check of the enclosing tag: a regex that
    tries every ``<`` costs milliseconds on a 300 kB header full of vendor XML.
    """
    out: list[str] = []
    value_re = _ATTR_VALUE_RE[attr]
    i = text.find(attr)
    while i >= 0:
        lt = text.rfind("<", 0, i)
        tag = text[lt + 1 : i].split(None, 1) if lt >= 0 else []
        if tag and tag[0].rsplit(":", 1)[-1] == element:
            m = value_re.match(text, i)
            if m:
                out.append(html.unescape(m[1] if m[1] is not None else m[2]))
        i = text.find(attr, i + len(attr))
    return out


def _links(text: str) -> tuple[str | None, list[str]]:
    """(BinaryOnly/@MetadataFile, TiffData/UUID/@FileName values) found in OME-XML text."""
    meta = _attr_in_tag(text, "BinaryOnly", "MetadataFile") if "BinaryOnly" in text else []
    if meta:
        return meta[0], []
    return None, list(dict.fromkeys(_attr_in_tag(text, "UUID", "FileName")))


def _tiff_links(path: str) -> tuple[str, str | None, list[str]]:
    """(kind, BinaryOnly metadata file, referenced file names) from a TIFF's first IFD."""
    head = first_description(path)
    if not head or ("<OME" not in head and ":OME" not in head):
        return "tiff", None, []  # unreadable files stay standalone; extraction says why
    meta, refs = _links(head)
    return "ome-tiff", meta, refs


def _xml_links(path: str) -> list[str]:
    """File names referenced by TiffData/UUID in an OME-XML (companion) file."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(_DESC_SCAN).decode("utf-8", "replace")
    except OSError:
        return []  # extraction reports it
    return _links(text)[1] if "<OME" in text or ":OME" in text else []


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
            rank[name] = 8  # never the main file: its header is
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
