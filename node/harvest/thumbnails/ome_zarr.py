"""Planes from OME-Zarr (v2 ``.zarray`` and v3 ``zarr.json``), levels picked by size.

Read through zarr when it is importable, else through :class:`_MiniZarrArray`, a small
built-in chunk reader (uncompressed, zlib, gzip; blosc/zstd when imagecodecs is present).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

# The package, not its names: MAX_PLANE_BYTES and _zarr are looked up there at call time,
# so that setting them on node.harvest.thumbnails (as tests do) applies.
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
    if chunk_bytes > thumbnails.MAX_PLANE_BYTES:
        # zarr decodes whole chunks: a strided read of one huge chunk is a whole read.
        raise ThumbnailError(
            f"{name}: OME-Zarr level {datasets[level]!r} has chunks of "
            f"{chunk_bytes / 2**20:.0f} MiB decoded "
            f"(limit {thumbnails.MAX_PLANE_BYTES / 2**20:.0f} MiB)"
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
    zarr = thumbnails._zarr()
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
        if chunk_bytes > thumbnails.MAX_PLANE_BYTES:
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
