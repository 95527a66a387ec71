"""CZI, ND2, LIF, DV and any other format bioio has a plugin for → one Image per scene.

This is the slow path (tens of ms per file): bioio is imported lazily, so the node runs
without it and only vendor formats pay for it. Only metadata is touched (dims, dtype,
physical sizes, channel names, standard metadata); no pixel is read. Plugin warnings are
recorded as image notes rather than escaping.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from node.harvest.entries import Fileset
from node.harvest.extractors.common import (
    ExtractError,
    captured_logs,
    captured_warnings,
    check_regular_file,
    format_for,
)
from node.harvest.extractors.ome_xml import real_channel_name
from node.harvest.extractors.ome_zarr import ome_pixel_type
from node.harvest.ids import image_id
from node.harvest.units import physical_size
from node.records import Channel, Image, Objective, PhysicalSize, ReadStatus, Size5D

# bioio's standard_metadata.objective is a short text such as "20x/0.8Air" or "60x/0.95".
_OBJECTIVE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*/\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
_SYNTHETIC_SCENE_RE = re.compile(r"^Image:\d+$")


def _objective(text: Any) -> Objective | None:
    if not text:
        return None
    text = str(text)
    m = _OBJECTIVE_RE.match(text)
    if not m:
        return Objective(model=text)
    return Objective(model=text, magnification=float(m[1]), na=float(m[2]), immersion=m[3] or None)


def _standard(img: Any, notes: list[str]) -> dict[str, Any]:
    """Acquisition date, objective and time step from bioio's StandardMetadata, if it has it."""
    out: dict[str, Any] = {}
    try:
        sm = img.standard_metadata
    except Exception as exc:  # plugins raise anything; it is optional metadata
        notes.append(f"bioio standard metadata unavailable: {type(exc).__name__}: {exc}")
        return out
    if getattr(sm, "imaging_datetime", None) is not None:
        out["acquired_at"] = sm.imaging_datetime
    obj = _objective(getattr(sm, "objective", None))
    if obj is not None:
        out["objective"] = obj
    ti = getattr(sm, "timelapse_interval", None)
    if isinstance(ti, timedelta) and ti.total_seconds() > 0:
        out["time_increment_s"] = ti.total_seconds()
    return out


# Loggers of bioio and its plugins, whose complaints about a file become its notes.
BIOIO_LOGGERS = ("bioio", "bioio_base", "bioio_czi", "bioio_nd2", "bioio_lif", "bioio_dv")


def extract_bioio(fs: Fileset, source: str) -> list[Image]:
    rel = fs.main.rel
    check_regular_file(fs.main.abs, rel)
    fmt = format_for(rel, fs.kind)
    notes: list[str] = []
    images: list[Image] = []
    with (
        captured_warnings(notes, "bioio"),
        captured_logs(*BIOIO_LOGGERS) as logs,
    ):
        try:
            from bioio import BioImage  # lazy: optional dependency, slow to import
        except ImportError as exc:
            raise ExtractError(
                f"{rel}: {fmt} needs bioio, which is not installed ({exc})"
            ) from None
        try:
            img = BioImage(fs.main.abs)
            scenes = list(img.scenes)
        except Exception as exc:  # any plugin failure is a per-file outcome
            raise ExtractError(
                f"{rel}: bioio could not read {fmt} metadata: {type(exc).__name__}: {exc}"
            ) from None
        for n, scene in enumerate(scenes):
            scene_notes: list[str] = []
            try:
                img.set_scene(scene)
                dims = img.dims
                sizes = {a.lower(): int(getattr(dims, a, 1) or 1) for a in "XYZCT"}
                samples = int(getattr(dims, "S", 1) or 1) if "S" in dims.order else 1
                if samples > 1:  # RGB: OME counts samples as channels
                    sizes["c"] *= samples
                    scene_notes.append(f"{samples} samples per pixel (RGB) counted as channels")
                pps = img.physical_pixel_sizes
                phys: dict[str, PhysicalSize] = {}
                for axis, value in (("x", pps.X), ("y", pps.Y), ("z", pps.Z)):
                    ps = physical_size(value, "µm", "bioio", placeholder_check=axis != "z")
                    if ps is not None:
                        phys[axis] = ps
                # Readers invent "Channel:0:0" or the bare index ("0") when a file has no name.
                chans = [
                    Channel(name=None if str(c) == str(i) else real_channel_name(str(c), None))
                    for i, c in enumerate(img.channel_names)
                ]
                fields = _standard(img, scene_notes)
                name = None if _SYNTHETIC_SCENE_RE.match(str(scene)) else str(scene)
                images.append(
                    Image(
                        id=image_id(source, rel, n),
                        name=name,
                        path=rel,
                        files=[m.rel for m in fs.members] or [rel],
                        series=n,
                        format=fmt,
                        file_size=fs.total_size,
                        size=Size5D(**sizes),
                        dimension_order="XY"
                        + "".join(a for a in reversed(dims.order) if a in "ZCT"),
                        pixel_type=ome_pixel_type(img.dtype),
                        physical_size=phys,
                        channels=chans,
                        status=ReadStatus.ok,
                        notes=scene_notes,
                        **fields,
                    )
                )
            except Exception as exc:  # one bad scene must not lose the others
                images.append(
                    Image(
                        id=image_id(source, rel, n),
                        name=str(scene),
                        path=rel,
                        files=[m.rel for m in fs.members] or [rel],
                        series=n,
                        format=fmt,
                        file_size=fs.total_size,
                        status=ReadStatus.failed,
                        error=f"{rel}: scene {scene!r}: {type(exc).__name__}: {exc}",
                        notes=scene_notes,
                    )
                )
    for rec in logs:
        msg = f"{rec.name}: {rec.getMessage()}"
        if msg not in notes:
            notes.append(msg)
    if not images:
        raise ExtractError(f"{rel}: bioio found no scenes")
    for im in images:  # warnings are caught for the whole file; every scene gets them
        im.notes.extend(n for n in notes if n not in im.notes)
    return images
