"""Planes from TIFF and OME-TIFF through tifffile, and from multi-file OME-TIFF sets.

Pyramid levels come from ``series.levels``; big planes are read strided through
``series.aszarr`` + zarr, else the one page of the plane is decoded (below the size limit).
Multi-file sets are located through the ``TiffData`` entries of their companion OME-XML.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from defusedxml import ElementTree as SafeET

# The package, not its names: MAX_PLANE_BYTES, DIRECT_READ_BYTES and _zarr are looked up
# there at call time, so that setting them on node.harvest.thumbnails (as tests do) applies.
from node.harvest import thumbnails
from node.harvest.thumbnails.errors import ThumbnailError
from node.harvest.thumbnails.planes import (
    MAX_CHANNELS,
    MAX_XML_BYTES,
    _check_plane_claim,
    _inside,
    _middle,
    _Planes,
    _step,
)
from node.records import Image

# TIFF-based formats tifffile reads natively (with their pyramids: SVS, NDPI, SCN).
_TIFF_FORMATS = {"ome-tiff", "tiff", "tif", "ome-tif", "imagej", "lsm", "svs", "ndpi", "scn"}
_TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf2", ".tf8", ".lsm", ".svs", ".ndpi", ".scn")
_COMPANION_SUFFIXES = (".companion.ome", ".ome.xml", ".ome")


def _page_bytes(page: Any) -> int:
    return int(np.prod(page.shape, dtype=np.int64)) * np.dtype(page.dtype).itemsize


def _page_asarray(page: Any) -> np.ndarray:
    """Decode one page; pages of other members of a multi-file OME-TIFF sit in files that
    tifffile closed after parsing, so open them for the read (as tifffile's own series
    reader does) instead of letting tifffile warn and reopen."""
    fh = page.parent.filehandle
    was_closed = fh.closed
    if was_closed:
        fh.open()
    try:
        return page.asarray(maxworkers=1)
    finally:
        if was_closed:
            fh.close()


def _check_page_complete(page: Any, name: str) -> None:
    """Refuse a page whose data runs past the end of its file.

    tifffile reads a truncated strip or tile as zeros (it only logs), which would give a
    black thumbnail that looks like a valid one; a truncated file is an error to report.
    """
    size = page.parent.filehandle.size
    offsets, counts = page.dataoffsets, page.databytecounts
    end = max((int(o) + int(n) for o, n in zip(offsets, counts, strict=False) if n), default=0)
    if end > size:
        raise ThumbnailError(
            f"{name}: file is truncated: TIFF page {page.index} of "
            f"{Path(page.parent.filehandle.path).name} needs {end} bytes, the file has {size}"
        )


def _read_tiff(
    image: Image, path: Path, source_root: Path, max_side: int, *, follow: bool = True
) -> _Planes:
    name = image.path
    with tifffile.TiffFile(path) as tif:
        if tif.is_ome and tif.ome_metadata and "BinaryOnly" in tif.ome_metadata:
            # A member of a multi-file set that carries no dimensions of its own: the
            # companion OME-XML or the master OME-TIFF says which file holds which plane.
            metadata_file = _binary_only_metadata_file(tif.ome_metadata)
            if metadata_file and follow:
                target = _inside(source_root, metadata_file, name, base=path.parent)
                if target.name.lower().endswith(_TIFF_SUFFIXES):
                    # tifffile follows the UUID links from the master; follow only one hop
                    # so that two members pointing at each other cannot loop.
                    return _read_tiff(image, target, source_root, max_side, follow=False)
                return _read_companion(image, target, source_root, max_side)
        if not tif.series or not tif.pages:
            raise ThumbnailError(f"{name}: no image in the file (invalid or truncated TIFF)")
        if image.series >= len(tif.series):
            raise ThumbnailError(
                f"{name}: series {image.series} does not exist (file has {len(tif.series)})"
            )
        series = tif.series[image.series]
        axes = series.axes
        if "Y" not in axes or "X" not in axes:
            raise ThumbnailError(f"{name}: series {image.series} has no YX plane (axes {axes})")
        iy, ix = axes.index("Y"), axes.index("X")
        full = series.levels[0].shape
        _check_plane_claim(name, full[iy], full[ix])
        level = 0
        for i, lvl in enumerate(series.levels):
            if lvl.axes == axes and max(lvl.shape[iy], lvl.shape[ix]) >= max_side:
                level = i  # levels shrink: the last one still big enough wins
        return _read_tiff_level(name, series, level, (full[iy], full[ix]), max_side)


def _read_tiff_level(
    name: str, series: Any, level: int, full_shape: tuple[int, int], max_side: int
) -> _Planes:
    level_series = series.levels[level]
    axes: str = level_series.axes
    sizes = dict(zip(axes, level_series.shape, strict=True))
    ly, lx = sizes["Y"], sizes["X"]
    step = _step((ly, lx), max_side)
    # Which axis carries the channels: C when present, else the samples of an RGB(A) image.
    rgb = False
    channel_axis: str | None = None
    if "C" in sizes:
        channel_axis = "C"
    elif "S" in sizes:
        channel_axis, rgb = "S", sizes["S"] in (3, 4)
    n_channels = min(MAX_CHANNELS, sizes[channel_axis]) if channel_axis else 1

    def selection(c: int, plane_axes: str) -> tuple[int | slice, ...]:
        sel: list[int | slice] = []
        for ax in plane_axes:
            if ax in "YX":
                sel.append(slice(None, None, step))
            elif ax == channel_axis:
                sel.append(c)
            elif ax == "S":
                sel.append(slice(None))  # samples that are not channels: averaged below
            elif ax == "Z":
                sel.append(_middle(sizes.get("Z", 1)))
            else:  # T, and any other axis (positions, angles, ...): the first one
                sel.append(0)
        return tuple(sel)

    def to_plane(data: np.ndarray) -> np.ndarray:
        return data.mean(axis=-1) if data.ndim == 3 else np.ascontiguousarray(data)

    itemsize = np.dtype(level_series.dtype).itemsize
    plane_bytes = ly * lx * itemsize * sizes.get("S", 1)
    # Find the page holding each channel's plane: to check it is complete before reading,
    # and to decode only that page when reading without zarr. One page per plane is how
    # OME-TIFF, ImageJ and most writers lay planes out.
    page_axes = [ax for ax in axes if ax not in "YXS"]
    page_shape = [sizes[ax] for ax in page_axes]
    pages = level_series.pages
    keyframe = level_series.keyframe
    n_pages = int(np.prod(page_shape, dtype=np.int64))
    one_plane_per_page = (
        len(pages) == n_pages
        and (keyframe.imagelength, keyframe.imagewidth) == (ly, lx)
        and getattr(keyframe, "imagedepth", 1) == 1
    )
    plane_pages: list[Any] = []
    for c in range(n_channels):
        if not one_plane_per_page:
            for page in pages:
                if page is not None:
                    _check_page_complete(page, name)
            break
        sel = dict(zip(axes, selection(c, axes), strict=True))
        k = int(np.ravel_multi_index([sel[a] for a in page_axes], page_shape)) if page_axes else 0
        page = pages[k]
        if page is None:
            raise ThumbnailError(f"{name}: the TIFF page of the plane (index {k}) is missing")
        _check_page_complete(page, name)
        plane_pages.append(page)

    chunk_bytes = int(np.prod(keyframe.chunks, dtype=np.int64)) * itemsize
    if chunk_bytes > thumbnails.MAX_PLANE_BYTES:
        # Even a chunked read would decode this one strip/tile whole.
        raise ThumbnailError(
            f"{name}: plane too large without a pyramid: {lx}x{ly} stored in chunks of "
            f"{chunk_bytes / 2**20:.0f} MiB decoded "
            f"(limit {thumbnails.MAX_PLANE_BYTES / 2**20:.0f} MiB)"
        )
    zarr = thumbnails._zarr()
    channels: list[np.ndarray] = []
    if zarr is not None and (plane_bytes > thumbnails.DIRECT_READ_BYTES or not one_plane_per_page):
        # Strided read through the chunked zarr view: one tile/strip is decoded at a time.
        with series.aszarr(level=level) as store:
            arr = zarr.open(store, mode="r")
            for c in range(n_channels):
                channels.append(to_plane(np.asarray(arr[selection(c, axes)])))
        return _Planes(channels, full_shape, rgb)

    if plane_bytes > thumbnails.MAX_PLANE_BYTES:
        raise ThumbnailError(
            f"{name}: plane too large without a pyramid: {lx}x{ly} "
            f"({plane_bytes / 2**20:.0f} MiB decoded > "
            f"{thumbnails.MAX_PLANE_BYTES / 2**20:.0f} MiB) "
            "and zarr is not installed for a strided read"
        )
    if not one_plane_per_page:
        # Unusual layouts (several planes in one page, ...) without zarr: only a small
        # series may be read whole.
        series_bytes = int(np.prod(level_series.shape, dtype=np.int64)) * itemsize
        if series_bytes > thumbnails.MAX_PLANE_BYTES:
            raise ThumbnailError(
                f"{name}: planes are not one per TIFF page and the series is "
                f"{series_bytes / 2**20:.0f} MiB decoded; install zarr for a strided read"
            )
        data = level_series.asarray(maxworkers=1)
        channels = [to_plane(np.asarray(data[selection(c, axes)])) for c in range(n_channels)]
        return _Planes(channels, full_shape, rgb)
    last: tuple[int, np.ndarray] | None = None
    for c, page in enumerate(plane_pages):
        if last is None or last[0] != page.index:
            last = None  # drop the previous page before decoding the next one
            last = (page.index, _page_asarray(page))
        data = last[1]
        page_plane_axes = keyframe.axes  # e.g. "YX", "YXS" (contig) or "SYX" (planar)
        if data.ndim != len(page_plane_axes):
            data = data.reshape(keyframe.shape)
        sel = dict(zip(axes, selection(c, axes), strict=True))
        plane = np.asarray(data[tuple(sel.get(ax, 0) for ax in page_plane_axes)])
        if plane.ndim == 3 and page_plane_axes.index("S") == 0:
            plane = np.moveaxis(plane, 0, -1)
        channels.append(to_plane(plane))
    return _Planes(channels, full_shape, rgb)


# --------------------------------------------------------------------------- multi-file OME-TIFF

_OME_NS = re.compile(r"^\{[^}]*\}")


def _local(tag: str) -> str:
    return _OME_NS.sub("", tag)


def _binary_only_metadata_file(omexml: str) -> str | None:
    root = SafeET.fromstring(omexml.encode("utf-8") if isinstance(omexml, str) else omexml)
    for el in root.iter():
        if _local(el.tag) == "BinaryOnly":
            return el.get("MetadataFile")
    return None


def _read_companion(image: Image, xml_path: Path, source_root: Path, max_side: int) -> _Planes:
    """Read a plane of a multi-file OME-TIFF whose layout is described by OME-XML.

    The ``TiffData`` entries map (z, c, t) planes to an IFD of a member file (named by
    ``UUID/@FileName``, relative to the XML file). Only the member pages needed are opened.
    """
    name = image.path
    if not xml_path.exists():
        raise ThumbnailError(f"{name}: OME-XML metadata file not found ({xml_path})")
    if xml_path.stat().st_size > MAX_XML_BYTES:
        raise ThumbnailError(f"{name}: OME-XML file {xml_path.name} is larger than 64 MiB")
    root = SafeET.fromstring(xml_path.read_bytes())
    images = [el for el in root if _local(el.tag) == "Image"]
    if image.series >= len(images):
        raise ThumbnailError(
            f"{name}: series {image.series} does not exist (OME-XML has {len(images)} images)"
        )
    pixels = next((el for el in images[image.series] if _local(el.tag) == "Pixels"), None)
    if pixels is None:
        raise ThumbnailError(f"{name}: OME-XML image {image.series} has no Pixels element")
    size = {a: int(pixels.get(f"Size{a}", "1")) for a in "XYZCT"}
    _check_plane_claim(name, size["Y"], size["X"])
    order = (pixels.get("DimensionOrder") or "XYZCT").upper()[2:]
    if sorted(order) != ["C", "T", "Z"]:
        raise ThumbnailError(f"{name}: bad DimensionOrder {pixels.get('DimensionOrder')!r}")
    if any(_local(el.tag) == "MetadataOnly" for el in pixels):
        raise ThumbnailError(f"{name}: no pixel data (OME-XML Pixels are MetadataOnly)")

    def plane_index(z: int, c: int, t: int) -> int:
        pos = {"Z": z, "C": c, "T": t}
        idx, mul = 0, 1
        for ax in order:
            idx += pos[ax] * mul
            mul *= size[ax]
        return idx

    # plane index -> (file name or None for "this file", IFD)
    locations: dict[int, tuple[str | None, int]] = {}
    for td in pixels:
        if _local(td.tag) != "TiffData":
            continue
        uuid = next((el for el in td if _local(el.tag) == "UUID"), None)
        fname = uuid.get("FileName") if uuid is not None else None
        ifd = int(td.get("IFD", "0"))
        start = plane_index(int(td.get("FirstZ", "0")), int(td.get("FirstC", "0")),
                            int(td.get("FirstT", "0")))  # fmt: skip
        has_attrs = any(k in td.attrib for k in ("IFD", "FirstZ", "FirstC", "FirstT"))
        default_count = 1 if has_attrs else size["Z"] * size["C"] * size["T"]
        count = int(td.get("PlaneCount", str(default_count)))
        for k in range(min(count, size["Z"] * size["C"] * size["T"])):
            locations.setdefault(start + k, (fname, ifd + k))
    if not locations:
        raise ThumbnailError(f"{name}: no pixel data (OME-XML has no TiffData entries)")

    step = _step((size["Y"], size["X"]), max_side)
    z = _middle(size["Z"])
    n_channels = min(MAX_CHANNELS, size["C"])
    channels: list[np.ndarray] = []
    with ExitStack() as stack:
        opened: dict[Path, tifffile.TiffFile] = {}
        for c in range(n_channels):
            where = locations.get(plane_index(z, c, 0))
            if where is None:
                raise ThumbnailError(f"{name}: OME-XML does not say where plane z={z} c={c} is")
            fname, ifd = where
            if fname is None:
                raise ThumbnailError(f"{name}: OME-XML TiffData for z={z} c={c} names no file")
            member = _inside(source_root, fname, name, base=xml_path.parent).resolve()
            if not member.exists():
                raise ThumbnailError(f"{name}: member file {fname} is missing ({member})")
            if member not in opened:
                opened[member] = stack.enter_context(tifffile.TiffFile(member))
            tif = opened[member]
            if ifd >= len(tif.pages):
                raise ThumbnailError(f"{name}: {member.name} has no IFD {ifd}")
            page = tif.pages[ifd]
            _check_page_complete(page, name)
            if _page_bytes(page) > thumbnails.MAX_PLANE_BYTES:
                raise ThumbnailError(
                    f"{name}: plane too large without a pyramid: {member.name} IFD {ifd} "
                    f"is {_page_bytes(page) / 2**20:.0f} MiB decoded"
                )
            data = _page_asarray(page)
            if data.ndim == 3:
                data = data.mean(axis=2)
            channels.append(np.ascontiguousarray(data[::step, ::step]))
            del data
    return _Planes(channels, (size["Y"], size["X"]))
