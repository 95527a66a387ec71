"""OME-Zarr (NGFF v0.1–v0.5) → Image records, from the small JSON metadata files only.

No zarr library and no chunk is read: the group attributes (.zattrs or zarr.json) give axes,
scales, units, channels and pyramid levels; level 0's .zarray / zarr.json gives shape and
dtype. A bioformats2raw layout (series groups 0/, 1/, ... below the root) gives one image
per series.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from node.harvest.entries import Fileset
from node.harvest.extractors.ome_xml import real_channel_name
from node.harvest.ids import image_id
from node.harvest.units import physical_size, to_seconds
from node.records import Channel, Image, PhysicalSize, ReadStatus, Size5D

MAX_JSON_BYTES = 16 * 1024 * 1024  # attributes of a group with thousands of channels stay far below


class ZarrError(ValueError):
    """Unreadable or non-OME-Zarr metadata; the message names the file."""


def read_json(path: str, label: str) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if the file does not exist. Raises ZarrError if bad."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(data) > MAX_JSON_BYTES:
        raise ZarrError(f"{label}: larger than {MAX_JSON_BYTES} bytes; not read")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ZarrError(f"{label}: not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ZarrError(f"{label}: expected a JSON object, found {type(obj).__name__}")
    return obj


@dataclass(slots=True)
class _Group:
    version: int  # zarr format 2 or 3
    attrs: dict[str, Any]  # the OME attributes (v0.5: attributes.ome)
    files: list[str]  # metadata files read for it


def read_group(path: str, label: str = "") -> _Group | None:
    """The OME attributes of the zarr group at ``path``, or None if it is not a zarr group."""
    label = label or path
    zj = read_json(os.path.join(path, "zarr.json"), f"{label}/zarr.json")
    if zj is not None:
        attrs = zj.get("attributes") or {}
        ome = attrs.get("ome") if isinstance(attrs, dict) else None
        # v0.5 keeps OME keys under "ome"; tolerate writers that put them at the top level.
        return _Group(3, ome if isinstance(ome, dict) else attrs, ["zarr.json"])
    za = read_json(os.path.join(path, ".zattrs"), f"{label}/.zattrs")
    files = [".zattrs"] if za is not None else []
    if os.path.exists(os.path.join(path, ".zgroup")):
        files.append(".zgroup")
    if not files:
        return None
    return _Group(2, za or {}, files)


def _is_ome(attrs: dict[str, Any]) -> bool:
    return any(k in attrs for k in ("multiscales", "bioformats2raw.layout", "plate"))


def is_ome_zarr(path: str) -> bool:
    try:
        g = read_group(path)
    except (ZarrError, OSError):
        return False
    return g is not None and _is_ome(g.attrs)


def _series_paths(path: str, g: _Group) -> list[str]:
    """Image group paths: "" for a plain image; "0", "1", ... for a bioformats2raw layout."""
    if "multiscales" in g.attrs:
        return [""]
    if "bioformats2raw.layout" in g.attrs:
        out = []
        n = 0
        while os.path.isdir(os.path.join(path, str(n))):
            out.append(str(n))
            n += 1
        return out
    return []


def metadata_files(path: str) -> list[str]:
    """Absolute paths of the small JSON files that describe the OME-Zarr at ``path``."""
    out: list[str] = []
    try:
        g = read_group(path)
    except (ZarrError, OSError):
        g = None
    if g is None:
        return out
    out += [os.path.join(path, f) for f in g.files]
    for sp in _series_paths(path, g):
        spath = os.path.join(path, sp) if sp else path
        try:
            sg = read_group(spath) if sp else g
        except (ZarrError, OSError):
            continue
        if sg is None:
            continue
        if sp:
            out += [os.path.join(spath, f) for f in sg.files]
        for ms in sg.attrs.get("multiscales") or []:
            for ds in (ms.get("datasets") or [])[:1] if isinstance(ms, dict) else []:
                p = os.path.join(spath, str(ds.get("path", "")))
                for f in ("zarr.json", ".zarray", ".zattrs"):
                    if os.path.isfile(os.path.join(p, f)):
                        out.append(os.path.join(p, f))
    return out


_OME_DTYPE = {
    ("u", 1): "uint8",
    ("u", 2): "uint16",
    ("u", 4): "uint32",
    ("i", 1): "int8",
    ("i", 2): "int16",
    ("i", 4): "int32",
    ("f", 4): "float",
    ("f", 8): "double",
    ("c", 8): "complex",
    ("c", 16): "double-complex",
    ("b", 1): "bit",
}


def ome_pixel_type(dtype: Any) -> str | None:
    """numpy dtype (or its string) → OME pixel type name; None if OME has no name for it."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return None
    return _OME_DTYPE.get((dt.kind, dt.itemsize), str(dt))


def _axes(ms: dict[str, Any], ndim: int) -> list[tuple[str, str | None, str | None]]:
    """(name, type, unit) per axis; v0.1/0.2 had no axes and were always (t, c, z, y, x)."""
    raw = ms.get("axes")
    if not raw:
        return [(a, None, None) for a in "tczyx"[-ndim:]]
    out = []
    for a in raw:
        if isinstance(a, str):
            out.append((a.lower(), None, None))
        else:
            out.append((str(a.get("name", "")).lower(), a.get("type"), a.get("unit")))
    return out


def _scale(transforms: Any) -> list[float] | None:
    for t in transforms or []:
        if isinstance(t, dict) and t.get("type") == "scale" and isinstance(t.get("scale"), list):
            return [float(v) for v in t["scale"]]
    return None


def _one_image(
    spath: str, label: str, sg: _Group, ms: dict[str, Any], notes: list[str]
) -> tuple[dict[str, Any], ReadStatus, str | None]:
    datasets = ms.get("datasets") or []
    f: dict[str, Any] = {"pyramid_levels": max(1, len(datasets))}
    f["name"] = ms.get("name") or (sg.attrs.get("omero") or {}).get("name")
    if not datasets:
        return f, ReadStatus.failed, f"{label}: multiscales has no datasets"
    lvl = str(datasets[0].get("path", ""))
    lpath = os.path.join(spath, lvl)
    arr = read_json(os.path.join(lpath, "zarr.json"), f"{label}/{lvl}/zarr.json")
    if arr is None:
        arr = read_json(os.path.join(lpath, ".zarray"), f"{label}/{lvl}/.zarray")
    if arr is None:
        return f, ReadStatus.metadata_only, f"{label}: level {lvl!r} array metadata is missing"
    shape = arr.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        return f, ReadStatus.failed, f"{label}/{lvl}: invalid array shape {shape!r}"
    f["pixel_type"] = ome_pixel_type(arr.get("data_type") or arr.get("dtype"))
    axes = _axes(ms, len(shape))
    if len(axes) != len(shape):
        return f, ReadStatus.failed, f"{label}: {len(axes)} axes but level 0 has shape {shape}"
    scale = _scale(datasets[0].get("coordinateTransformations"))
    glob = _scale(ms.get("coordinateTransformations"))
    if scale and glob and len(glob) == len(scale):
        scale = [a * b for a, b in zip(scale, glob, strict=True)]
    sizes = {"x": 1, "y": 1, "z": 1, "c": 1, "t": 1}
    phys: dict[str, PhysicalSize] = {}
    order = ""
    for i, (name, typ, unit) in enumerate(axes):
        key = "c" if typ == "channel" else "t" if typ == "time" else name
        if key not in sizes:
            notes.append(f"axis {name!r} ({shape[i]}) is not one of x, y, z, c, t; folded into z")
            key = "z"
        sizes[key] *= max(1, shape[i])
        order += key.upper()
        s = scale[i] if scale and i < len(scale) else None
        if s is None:
            continue
        if key in ("x", "y", "z"):
            if unit:
                ps = physical_size(s, unit, "ome-zarr", placeholder_check=key != "z")
            else:
                ps = PhysicalSize(
                    original_value=s, source="ome-zarr", suspicious="axis has no unit"
                )
            if ps is not None:
                phys[key] = ps
        elif key == "t" and s > 0:
            f["time_increment_s"] = to_seconds(s, unit) if unit else None
    if sizes["x"] < 1 or sizes["y"] < 1 or 0 in shape:
        return f, ReadStatus.failed, f"{label}: empty array shape {shape}"
    f["size"] = Size5D(**sizes)
    f["dimension_order"] = order[::-1]  # OME order is fastest-first; zarr is slowest-first
    f["physical_size"] = phys
    chans = []
    for ch in (sg.attrs.get("omero") or {}).get("channels") or []:
        if not isinstance(ch, dict):
            continue
        col = ch.get("color")
        color = f"#{col.lower()}" if isinstance(col, str) and len(col) == 6 else None
        chans.append(Channel(name=real_channel_name(ch.get("label"), None), color=color))
    f["channels"] = chans
    return f, ReadStatus.ok, None


def extract_ome_zarr(fs: Fileset, source: str) -> list[Image]:
    root, rel = fs.main.abs, fs.main.rel
    g = read_group(root, rel)
    if g is None:
        raise ZarrError(f"{rel}: not a zarr group (no zarr.json, .zattrs or .zgroup)")
    if not _is_ome(g.attrs):
        raise ZarrError(f"{rel}: zarr group without OME 'multiscales' metadata")
    if "plate" in g.attrs and "multiscales" not in g.attrs:
        raise ZarrError(f"{rel}: OME-Zarr HCS plate layout is not supported yet")
    images: list[Image] = []
    series = 0
    for sp in _series_paths(root, g):
        spath = os.path.join(root, sp) if sp else root
        label = f"{rel}/{sp}" if sp else rel
        sg = read_group(spath, label) if sp else g
        if sg is None:
            continue
        for ms in sg.attrs.get("multiscales") or []:
            notes: list[str] = []
            if not isinstance(ms, dict):
                continue
            fields, status, error = _one_image(spath, label, sg, ms, notes)
            fields = {k: v for k, v in fields.items() if v is not None}
            images.append(
                Image(
                    id=image_id(source, rel, series),
                    path=rel,
                    files=[m.rel for m in fs.members] or [rel],
                    series=series,
                    format="OME-Zarr",
                    file_size=fs.total_size,
                    status=status,
                    error=error,
                    notes=notes,
                    **fields,
                )
            )
            series += 1
    if not images:
        raise ZarrError(f"{rel}: OME-Zarr without any multiscales image")
    return images
