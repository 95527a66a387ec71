"""Thumbnails for catalogued images, made without ever loading a whole large image (DESIGN §4).

``make_thumbnail`` turns one :class:`~node.records.Image` into a small RGB PNG for the portal.
It reads *one plane set* only: t=0, the middle z, up to three channels. Each channel is taken
from the smallest pyramid level that is still at least ``max_side`` pixels on its longest side,
and read strided (every n-th pixel) so that a huge plane is never decoded as a whole:

- TIFF / OME-TIFF through tifffile: pyramid levels from ``series.levels``; big planes strided
  through ``series.aszarr`` + zarr (chunk by chunk); without zarr the one page of the plane is
  decoded, but only below :data:`MAX_PLANE_BYTES`.
- Multi-file OME-TIFF with a ``.companion.ome`` (or binary-only members pointing at one): the
  plane is located through the OME-XML ``TiffData`` entries and read from the member holding it.
- OME-Zarr (v2 ``.zarray`` and v3 ``zarr.json``): through zarr when importable, else through a
  small built-in chunk reader (uncompressed, zlib, gzip; blosc/zstd when imagecodecs is present).
- Anything else (CZI, ND2, LIF, DV, ...) through bioio plugins, strided with dask before compute.

Each channel is auto-contrasted (0.5–99.5 percentiles), tinted with its colour and the channels
are added up into an 8-bit RGB image, which is written atomically as ``<image.id>.png``.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import re
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from defusedxml import ElementTree as SafeET
from PIL import Image as PILImage

from node.records import Image, ReadStatus

log = logging.getLogger(__name__)

#: Largest decoded plane read in one piece when it cannot be read strided (no zarr).
MAX_PLANE_BYTES = 256 * 2**20
#: Planes up to this size are decoded directly: cheaper than a chunked strided read.
DIRECT_READ_BYTES = 16 * 2**20
#: A claimed plane with more pixels than this is a broken or hostile header, not an image.
ABSURD_PLANE_PIXELS = 2**34
#: Companion OME-XML files are small; a bigger one is refused before parsing.
MAX_XML_BYTES = 64 * 2**20
MAX_CHANNELS = 3

GREY = (255, 255, 255)
#: Colours for channels without one of their own, in channel order (when there are several).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 0, 255),  # magenta
    (0, 255, 0),  # green
    (0, 255, 255),  # cyan
)

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_COLOR = re.compile(r"^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")
# TIFF-based formats tifffile reads natively (with their pyramids: SVS, NDPI, SCN).
_TIFF_FORMATS = {"ome-tiff", "tiff", "tif", "ome-tif", "imagej", "lsm", "svs", "ndpi", "scn"}
_TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf2", ".tf8", ".lsm", ".svs", ".ndpi", ".scn")
_COMPANION_SUFFIXES = (".companion.ome", ".ome.xml", ".ome")


class ThumbnailError(Exception):
    """A thumbnail could not be made; the message names the file and the reason."""


class PixelReadError(ThumbnailError):
    """The reader failed on the pixel data itself: the metadata was readable, the pixels not.

    Reading one plane for the thumbnail is the only time the node touches pixels, so this is
    how a harvest learns that an image is really ``metadata_only`` (e.g. bioio-lif on lambda
    scans). Refusals (size caps, unsupported layouts) are plain ThumbnailErrors.
    """


@dataclass
class _Planes:
    """What a reader hands back: one strided 2-D plane per channel (at most three)."""

    channels: list[np.ndarray]
    full_shape: tuple[int, int]  # (y, x) of the plane at full resolution, for the aspect ratio
    rgb: bool = False  # channels are the R, G, B samples of a colour image: no tinting


# --------------------------------------------------------------------------- public API


def make_thumbnail(image: Image, source_root: Path, out_dir: Path, *, max_side: int = 256) -> str:
    """Write ``out_dir/<image.id>.png`` for ``image`` and return the file name.

    Raises :class:`ThumbnailError` (naming the file and the reason) when the image has no
    pixels, claims an absurd size, cannot be read, or the format is not supported. No partial
    PNG is ever left in ``out_dir``.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    name = image.path
    if not _SAFE_ID.match(image.id):
        # The id becomes a file name: refuse anything that could escape out_dir.
        raise ThumbnailError(f"{name}: image id {image.id!r} is not usable as a file name")
    if image.status is ReadStatus.failed:
        raise ThumbnailError(f"{name}: image status is failed ({image.error}); no thumbnail")
    if image.status is ReadStatus.metadata_only:
        raise ThumbnailError(f"{name}: no pixel data (status metadata_only)")
    if image.size is not None:
        _check_plane_claim(name, image.size.y, image.size.x)

    source_root = Path(source_root)
    path = _inside(source_root, image.path, name)
    if not path.exists():
        raise ThumbnailError(f"{name}: file not found ({path})")

    try:
        planes = _read_planes(image, path, source_root, max_side)
    except ThumbnailError:
        raise
    except MemoryError as exc:
        raise ThumbnailError(f"{name}: out of memory reading a plane ({exc})") from exc
    except Exception as exc:  # readers raise anything from OSError to struct.error
        raise PixelReadError(f"{name}: cannot read pixels: {type(exc).__name__}: {exc}") from exc

    rgb = _composite(planes, image)
    picture = _resize(rgb, planes.full_shape, max_side)
    return _write_png(picture, Path(out_dir), image.id, name)


# --------------------------------------------------------------------------- checks and helpers


def _check_plane_claim(name: str, y: int, x: int) -> None:
    if x * y > ABSURD_PLANE_PIXELS:
        raise ThumbnailError(
            f"{name}: claimed plane of {x}x{y} pixels is absurd (> 2**34); not reading it"
        )


def _inside(root: Path, rel: str, name: str, *, base: Path | None = None) -> Path:
    """``(base or root)/rel``, refusing paths that climb out of ``root`` (the source root):
    file names inside metadata are data, not trusted paths."""
    path = (base if base is not None else root) / rel
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise ThumbnailError(f"{name}: path {rel!r} lies outside the source root") from None
    return path


def _step(shape: Sequence[int], max_side: int) -> int:
    """Stride that keeps the longest side at least ``2 * max_side``: the final Lanczos resize
    then still averages over a few samples, which keeps aliasing (noise, moire) down while
    the strided plane stays tiny (at most ~4 * max_side**2 pixels per channel)."""
    return max(1, max(shape) // (2 * max_side))


def _middle(n: int) -> int:
    return max(0, (n - 1) // 2) if n > 1 else 0


def _parse_color(value: str | None) -> tuple[int, int, int] | None:
    if not value:
        return None
    m = _COLOR.match(value.strip())
    if not m:
        return None
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _channel_colors(image: Image, n: int) -> list[tuple[int, int, int]]:
    colors = []
    for i in range(n):
        own = _parse_color(image.channels[i].color) if i < len(image.channels) else None
        if own is not None and own != (0, 0, 0):  # black would hide the channel entirely
            colors.append(own)
        elif n == 1:
            colors.append(GREY)
        else:
            colors.append(PALETTE[i % len(PALETTE)])
    return colors


def _normalise(plane: np.ndarray) -> np.ndarray:
    """Auto-contrast one channel to 0..1 (float32) from its 0.5 and 99.5 percentiles.

    Works for signed, unsigned and float data alike because the limits come from the data, not
    the dtype. NaN/inf pixels are ignored for the limits and shown black. A constant plane has
    no contrast to stretch and becomes flat mid-grey instead of dividing by zero.
    """
    data = np.asarray(plane)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if np.iscomplexobj(data):
        data = np.abs(data)
    data = data.astype(np.float64, copy=False)
    finite = np.isfinite(data)
    values = data[finite]
    if values.size == 0:
        return np.zeros(data.shape, np.float32)
    lo, hi = np.percentile(values, [0.5, 99.5])
    if not hi > lo:
        # Sparse signal (most pixels equal): the percentiles collapse, min/max still differ.
        lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        return np.full(data.shape, 0.5, np.float32)
    out = (data - lo) / (hi - lo)
    out[~finite] = 0.0
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _composite(planes: _Planes, image: Image) -> np.ndarray:
    """Tint each channel with its colour and add them up into an (y, x, 3) uint8 array."""
    shape = planes.channels[0].shape
    for ch in planes.channels:
        if ch.shape != shape:
            raise ThumbnailError(
                f"{image.path}: channel planes differ in shape ({ch.shape} vs {shape})"
            )
    if planes.rgb:
        colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)][: len(planes.channels)]
    else:
        colors = _channel_colors(image, len(planes.channels))
    rgb = np.zeros((*shape, 3), np.float32)
    for plane, color in zip(planes.channels, colors, strict=True):
        if planes.rgb and plane.dtype == np.uint8:
            norm = plane.astype(np.float32) / 255.0  # colour photographs keep their own balance
        else:
            norm = _normalise(plane)
        rgb += norm[..., None] * (np.asarray(color, np.float32) / 255.0)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _resize(rgb: np.ndarray, full_shape: tuple[int, int], max_side: int) -> PILImage.Image:
    """Scale to fit ``max_side``; the target size comes from the full-resolution plane so that
    pyramid levels and strides (which round) do not skew the aspect ratio. Never enlarges."""
    fy, fx = full_shape
    scale = min(1.0, max_side / max(fy, fx))
    width = max(1, min(max_side, round(fx * scale)))
    height = max(1, min(max_side, round(fy * scale)))
    picture = PILImage.fromarray(rgb, "RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), PILImage.Resampling.LANCZOS)
    return picture


def _write_png(picture: PILImage.Image, out_dir: Path, image_id: str, name: str) -> str:
    """Write atomically: a temp file in the same folder, then os.replace (no half PNGs)."""
    filename = f"{image_id}.png"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{image_id}.", suffix=".tmp", dir=out_dir)
    except OSError as exc:
        raise ThumbnailError(f"{name}: cannot write thumbnail to {out_dir}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            picture.save(fh, format="PNG", optimize=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out_dir / filename)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ThumbnailError(f"{name}: cannot write thumbnail {filename}: {exc}") from exc
        raise
    return filename


def _zarr() -> Any | None:
    """The zarr module (v3 or later, which tifffile's ``aszarr`` stores speak), or None when it
    is not installed: it is optional and every reader here has a fallback without it."""
    try:
        import zarr
    except ImportError:
        return None
    major = str(getattr(zarr, "__version__", "0")).split(".")[0]
    return zarr if major.isdigit() and int(major) >= 3 else None


# --------------------------------------------------------------------------- dispatch


def _read_planes(image: Image, path: Path, source_root: Path, max_side: int) -> _Planes:
    fmt = image.format.strip().lower()
    lower = path.name.lower()
    if fmt == "ome-zarr" or (path.is_dir() and lower.endswith(".zarr")):
        return _read_ome_zarr(image, path, max_side)
    if lower.endswith(_COMPANION_SUFFIXES):
        return _read_companion(image, path, source_root, max_side)
    if fmt == "ome-xml":
        raise ThumbnailError(f"{image.path}: no pixel data (OME-XML without TIFF members)")
    if fmt in _TIFF_FORMATS or lower.endswith(_TIFF_SUFFIXES):
        return _read_tiff(image, path, source_root, max_side)
    return _read_bioio(image, path, max_side)


# --------------------------------------------------------------------------- TIFF


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
    if chunk_bytes > MAX_PLANE_BYTES:
        # Even a chunked read would decode this one strip/tile whole.
        raise ThumbnailError(
            f"{name}: plane too large without a pyramid: {lx}x{ly} stored in chunks of "
            f"{chunk_bytes / 2**20:.0f} MiB decoded (limit {MAX_PLANE_BYTES / 2**20:.0f} MiB)"
        )
    zarr = _zarr()
    channels: list[np.ndarray] = []
    if zarr is not None and (plane_bytes > DIRECT_READ_BYTES or not one_plane_per_page):
        # Strided read through the chunked zarr view: one tile/strip is decoded at a time.
        with series.aszarr(level=level) as store:
            arr = zarr.open(store, mode="r")
            for c in range(n_channels):
                channels.append(to_plane(np.asarray(arr[selection(c, axes)])))
        return _Planes(channels, full_shape, rgb)

    if plane_bytes > MAX_PLANE_BYTES:
        raise ThumbnailError(
            f"{name}: plane too large without a pyramid: {lx}x{ly} "
            f"({plane_bytes / 2**20:.0f} MiB decoded > {MAX_PLANE_BYTES / 2**20:.0f} MiB) "
            "and zarr is not installed for a strided read"
        )
    if not one_plane_per_page:
        # Unusual layouts (several planes in one page, ...) without zarr: only a small
        # series may be read whole.
        series_bytes = int(np.prod(level_series.shape, dtype=np.int64)) * itemsize
        if series_bytes > MAX_PLANE_BYTES:
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
            if _page_bytes(page) > MAX_PLANE_BYTES:
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


# --------------------------------------------------------------------------- OME-Zarr


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        data = json.loads(fh.read(MAX_XML_BYTES))
    return data if isinstance(data, dict) else None


def _zarr_attrs(group: Path) -> dict[str, Any] | None:
    """Group attributes of a v2 (``.zattrs``) or v3 (``zarr.json``) group; OME v0.5 nests
    them under ``ome``."""
    meta = _read_json(group / "zarr.json")
    if meta is not None:
        attrs = meta.get("attributes") or {}
        return attrs.get("ome", attrs)
    return _read_json(group / ".zattrs")


def _axis_names(multiscale: dict[str, Any], ndim: int) -> str:
    axes = multiscale.get("axes")
    if not axes:
        return "TCZYX"[-ndim:]  # v0.1/v0.2 fixed order
    names = [(a.get("name") if isinstance(a, dict) else a) or "?" for a in axes]
    return "".join(str(n)[:1].upper() for n in names)


def _read_ome_zarr(image: Image, path: Path, max_side: int) -> _Planes:
    name = image.path
    if not path.is_dir():
        raise ThumbnailError(f"{name}: OME-Zarr path is not a directory")
    attrs = _zarr_attrs(path)
    if attrs is None:
        raise ThumbnailError(f"{name}: not a zarr group (no zarr.json or .zattrs)")
    group, index = path, image.series
    if "multiscales" not in attrs and "bioformats2raw.layout" in attrs:
        # bioformats2raw puts each series in a numbered subgroup with one multiscale.
        group, index = _inside(path, str(image.series), name), 0
        attrs = _zarr_attrs(group)
        if attrs is None:
            raise ThumbnailError(f"{name}: series {image.series} does not exist")
    multiscales = attrs.get("multiscales") if attrs else None
    if not multiscales:
        # e.g. an HCS plate root: the wells' images are catalogued as their own images
        raise ThumbnailError(f"{name}: no OME-Zarr multiscales metadata (no image here)")
    if index >= len(multiscales):
        raise ThumbnailError(
            f"{name}: series {image.series} does not exist ({len(multiscales)} multiscales)"
        )
    ms = multiscales[index]
    datasets = [d["path"] for d in ms.get("datasets", []) if isinstance(d, dict) and "path" in d]
    if not datasets:
        raise ThumbnailError(f"{name}: OME-Zarr multiscales lists no datasets")

    arrays = [_open_zarr_array(_inside(path, d, name, base=group), name) for d in datasets]
    ndim = len(arrays[0].shape)
    axes = _axis_names(ms, ndim)
    if len(axes) != ndim or "Y" not in axes or "X" not in axes:
        raise ThumbnailError(f"{name}: OME-Zarr axes {axes!r} do not fit array of {ndim} dims")
    iy, ix = axes.index("Y"), axes.index("X")
    fy, fx = arrays[0].shape[iy], arrays[0].shape[ix]
    _check_plane_claim(name, fy, fx)
    level = 0
    for i, arr in enumerate(arrays):
        if max(arr.shape[iy], arr.shape[ix]) >= max_side:
            level = i
    arr = arrays[level]
    chunk_bytes = int(np.prod(arr.chunks, dtype=np.int64)) * np.dtype(arr.dtype).itemsize
    if chunk_bytes > MAX_PLANE_BYTES:
        # zarr decodes whole chunks: a strided read of one huge chunk is a whole read.
        raise ThumbnailError(
            f"{name}: OME-Zarr level {datasets[level]!r} has chunks of "
            f"{chunk_bytes / 2**20:.0f} MiB decoded (limit {MAX_PLANE_BYTES / 2**20:.0f} MiB)"
        )
    shape = dict(zip(axes, arr.shape, strict=True))
    step = _step((shape["Y"], shape["X"]), max_side)
    n_channels = min(MAX_CHANNELS, shape.get("C", 1))
    channels = []
    for c in range(n_channels):
        sel: list[int | slice] = []
        for ax in axes:
            if ax in "YX":
                sel.append(slice(None, None, step))
            elif ax == "C":
                sel.append(c)
            elif ax == "Z":
                sel.append(_middle(shape[ax]))
            else:
                sel.append(0)
        channels.append(np.asarray(arr[tuple(sel)]))
    return _Planes(channels, (fy, fx))


def _open_zarr_array(path: Path, name: str) -> Any:
    zarr = _zarr()
    if zarr is not None:
        return zarr.open_array(str(path), mode="r")
    return _MiniZarrArray(path, name)


def _codec_decoder(name: str, config: dict[str, Any], label: str) -> Callable[[bytes], bytes]:
    if name in ("zlib",):
        return zlib.decompress
    if name == "gzip":
        return gzip.decompress
    try:
        import imagecodecs
    except ImportError:
        imagecodecs = None
    if imagecodecs is not None and name == "blosc":
        return imagecodecs.blosc_decode
    if imagecodecs is not None and name == "zstd":
        return imagecodecs.zstd_decode
    raise ThumbnailError(f"{label}: zarr codec {name!r} needs the zarr package")


class _MiniZarrArray:
    """Just enough of a zarr v2/v3 array reader to take a strided 2-D plane, chunk by chunk.

    Used when the zarr package is not installed. Supports C order, regular chunk grids,
    uncompressed/zlib/gzip chunks (blosc and zstd through imagecodecs) and missing chunks
    (fill value); refuses sharding and filters with a message naming the array.
    """

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        label = f"{name}: {path.name}"
        self.label = label
        self.decoders: list[Callable[[bytes], bytes]] = []
        v3 = _read_json(path / "zarr.json")
        if v3 is not None:
            if v3.get("node_type") != "array":
                raise ThumbnailError(f"{label}: zarr.json does not describe an array")
            self.shape = tuple(int(s) for s in v3["shape"])
            grid = v3.get("chunk_grid", {})
            if grid.get("name") != "regular":
                raise ThumbnailError(f"{label}: zarr chunk grid {grid.get('name')!r} unsupported")
            self.chunks = tuple(int(s) for s in grid["configuration"]["chunk_shape"])
            endian = "<"
            for codec in v3.get("codecs", []):
                cname, cfg = codec.get("name"), codec.get("configuration") or {}
                if cname == "bytes":
                    endian = ">" if cfg.get("endian") == "big" else "<"
                elif cname in ("sharding_indexed", "transpose"):
                    raise ThumbnailError(f"{label}: zarr codec {cname!r} needs the zarr package")
                else:
                    self.decoders.append(_codec_decoder(cname, cfg, label))
            dtype = np.dtype(v3["data_type"])
            self.dtype = dtype.newbyteorder(endian) if dtype.itemsize > 1 else dtype
            enc = v3.get("chunk_key_encoding") or {"name": "default"}
            sep = (enc.get("configuration") or {}).get(
                "separator", "/" if enc.get("name") == "default" else "."
            )
            prefix = "c" + sep if enc.get("name", "default") == "default" else ""
            self._key = lambda idx: prefix + sep.join(map(str, idx)) if idx else prefix + "0"
            fill = v3.get("fill_value", 0)
        else:
            v2 = _read_json(path / ".zarray")
            if v2 is None:
                raise ThumbnailError(f"{label}: not a zarr array (no zarr.json or .zarray)")
            self.shape = tuple(int(s) for s in v2["shape"])
            self.chunks = tuple(int(s) for s in v2["chunks"])
            self.dtype = np.dtype(v2["dtype"])
            if v2.get("order", "C") != "C" or v2.get("filters"):
                raise ThumbnailError(f"{label}: zarr order/filters need the zarr package")
            comp = v2.get("compressor")
            if comp:
                self.decoders.append(_codec_decoder(comp.get("id"), comp, label))
            sep = v2.get("dimension_separator", ".")
            self._key = lambda idx: sep.join(map(str, idx)) if idx else "0"
            fill = v2.get("fill_value", 0)
        self.fill = 0 if fill is None or isinstance(fill, str) else fill
        chunk_bytes = int(np.prod(self.chunks, dtype=np.int64)) * self.dtype.itemsize
        if chunk_bytes > MAX_PLANE_BYTES:
            raise ThumbnailError(
                f"{label}: zarr chunks of {chunk_bytes / 2**20:.0f} MiB decoded are too large"
            )

    def _chunk(self, idx: tuple[int, ...]) -> np.ndarray:
        key = self.path / self._key(idx)
        if not key.is_file():
            return np.full(self.chunks, self.fill, self.dtype)
        raw = key.read_bytes()
        for decode in reversed(self.decoders):
            raw = decode(raw)
        return np.frombuffer(raw, self.dtype).reshape(self.chunks)

    def __getitem__(self, sel: tuple[int | slice, ...]) -> np.ndarray:
        """Only what the thumbnail needs: integers on all axes but two strided ``::step``."""
        if len(sel) != len(self.shape):
            raise ThumbnailError(f"{self.label}: selection {sel} does not fit shape {self.shape}")
        sliced = [i for i, s in enumerate(sel) if isinstance(s, slice)]
        out_shape = [math.ceil(self.shape[i] / (sel[i].step or 1)) for i in sliced]
        out = np.empty(out_shape, self.dtype)
        ranges: list[Iterator[int] | list[int]] = []
        for i, s in enumerate(sel):
            if isinstance(s, slice):
                ranges.append(range(math.ceil(self.shape[i] / self.chunks[i])))
            else:
                if not 0 <= s < self.shape[i]:
                    raise ThumbnailError(f"{self.label}: index {s} out of range on axis {i}")
                ranges.append([s // self.chunks[i]])
        for cidx in np.ndindex(*[len(r) for r in ranges]):
            chunk_index = tuple(list(r)[k] for r, k in zip(ranges, cidx, strict=True))
            chunk = self._chunk(chunk_index)
            src: list[int | slice] = []
            dst: list[slice] = []
            for i, s in enumerate(sel):
                c0 = chunk_index[i] * self.chunks[i]
                if isinstance(s, slice):
                    step = s.step or 1
                    c1 = min(c0 + self.chunks[i], self.shape[i])
                    first = -(-c0 // step) * step  # first multiple of step inside this chunk
                    if first >= c1:
                        break
                    src.append(slice(first - c0, c1 - c0, step))
                    n = len(range(first, c1, step))
                    dst.append(slice(first // step, first // step + n))
                else:
                    src.append(s - c0)
            else:
                out[tuple(dst)] = chunk[tuple(src)]
            del chunk  # one chunk in memory at a time
        return out


# --------------------------------------------------------------------------- other formats


def _read_bioio(image: Image, path: Path, max_side: int) -> _Planes:
    """CZI, ND2, LIF, DV, ... through bioio plugins (optional dependency, imported lazily)."""
    name = image.path
    # Plugins emit deprecation and metadata warnings at import and read time; they are not
    # our errors (and the test suite turns warnings into errors), so they are logged instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            from bioio import BioImage
        except ImportError as exc:
            raise ThumbnailError(
                f"{name}: format {image.format!r} needs bioio and its plugins ({exc})"
            ) from exc
        img = BioImage(path)
        scenes = img.scenes
        if image.series >= len(scenes):
            raise ThumbnailError(
                f"{name}: series {image.series} does not exist (file has {len(scenes)} scenes)"
            )
        if image.series:
            img.set_scene(image.series)
        dims = img.dims
        fy, fx = int(dims.Y), int(dims.X)
        _check_plane_claim(name, fy, fx)
        _pick_bioio_level(img, max_side)
        dims = img.dims
        step = _step((int(dims.Y), int(dims.X)), max_side)
        order = dims.order
        samples = int(dims.S) if "S" in order else 1
        z = _middle(int(dims.Z)) if "Z" in order else 0
        n_channels = min(MAX_CHANNELS, int(dims.C)) if "C" in order else 1
        channels: list[np.ndarray] = []
        rgb = samples in (3, 4)
        if rgb:
            data = img.get_image_dask_data("YXS", T=0, C=0, Z=z)
            _check_dask_chunks(name, data)
            data = np.asarray(data[::step, ::step, :3].compute(scheduler="synchronous"))
            channels = [np.ascontiguousarray(data[:, :, s]) for s in range(3)]
        else:
            for c in range(n_channels):
                data = img.get_image_dask_data("YX", T=0, C=c, Z=z)
                _check_dask_chunks(name, data)
                # The synchronous scheduler decodes one chunk after the other, not several
                # planes' worth in parallel threads.
                channels.append(np.asarray(data[::step, ::step].compute(scheduler="synchronous")))
    for w in caught:
        log.debug("bioio warning while thumbnailing %s: %s", name, w.message)
    return _Planes(channels, (fy, fx), rgb)


def _check_dask_chunks(name: str, data: Any) -> None:
    """Plugins chunk by plane or by tile; a strided compute still decodes whole chunks."""
    chunk_bytes = int(np.prod(data.chunksize, dtype=np.int64)) * np.dtype(data.dtype).itemsize
    if chunk_bytes > MAX_PLANE_BYTES:
        raise ThumbnailError(
            f"{name}: plane too large without a pyramid: {'x'.join(map(str, data.shape))} read "
            f"in chunks of {chunk_bytes / 2**20:.0f} MiB decoded "
            f"(limit {MAX_PLANE_BYTES / 2**20:.0f} MiB)"
        )


def _pick_bioio_level(img: Any, max_side: int) -> None:
    """Switch to the smallest resolution level still >= max_side, when the reader has levels."""
    try:
        levels = img.resolution_levels
        level_dims = img.resolution_level_dims
    except Exception:  # plugins without pyramid support raise assorted errors here
        return
    if not levels or len(levels) < 2:
        return
    best = 0
    for lvl in levels:
        shape = level_dims.get(lvl) if isinstance(level_dims, dict) else None
        if shape is None or len(shape) < 2:
            continue
        if len(shape) >= 3 and shape[-1] in (3, 4):
            shape = shape[:-1]  # trailing RGB(A) samples
        if max(shape[-1], shape[-2]) >= max_side:
            best = max(best, lvl)
    if best:
        img.set_resolution_level(best)
