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

The package: this module (``make_thumbnail``, the format dispatch and the tunable limits),
``errors``, ``planes`` (what readers return, shared checks), ``compose`` (contrast, colours,
PNG), and one reader module per family: ``tiff``, ``ome_zarr``, ``vendor`` (bioio).
"""

from __future__ import annotations

import re
from pathlib import Path

from node.harvest.thumbnails.compose import GREY, PALETTE, _composite, _resize, _write_png
from node.harvest.thumbnails.errors import PixelReadError, ThumbnailError
from node.harvest.thumbnails.ome_zarr import _read_ome_zarr
from node.harvest.thumbnails.planes import (
    ABSURD_PLANE_PIXELS,
    MAX_CHANNELS,
    MAX_XML_BYTES,
    _check_plane_claim,
    _inside,
    _Planes,
)

# Re-exported so that it can be replaced here: tiff and ome_zarr call thumbnails._zarr().
from node.harvest.thumbnails.planes import _zarr as _zarr
from node.harvest.thumbnails.tiff import (
    _COMPANION_SUFFIXES,
    _TIFF_FORMATS,
    _TIFF_SUFFIXES,
    _read_companion,
    _read_tiff,
)
from node.harvest.thumbnails.vendor import _read_bioio
from node.records import Image, ReadStatus

__all__ = [
    "ABSURD_PLANE_PIXELS",
    "DIRECT_READ_BYTES",
    "GREY",
    "MAX_CHANNELS",
    "MAX_PLANE_BYTES",
    "MAX_XML_BYTES",
    "PALETTE",
    "PixelReadError",
    "ThumbnailError",
    "make_thumbnail",
]

# The readers look MAX_PLANE_BYTES, DIRECT_READ_BYTES and _zarr up here, on the package, each
# time they run: setting them on node.harvest.thumbnails (as the tests do with monkeypatch)
# changes what the readers use.

#: Largest decoded plane read in one piece when it cannot be read strided (no zarr).
MAX_PLANE_BYTES = 256 * 2**20
#: Planes up to this size are decoded directly: cheaper than a chunked strided read.
DIRECT_READ_BYTES = 16 * 2**20

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


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
