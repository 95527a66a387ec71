"""OME-TIFF, ImageJ TIFF and plain TIFF → Image records, from headers only (tifffile).

Each TIFF is opened once and only its first IFD is looked at: the ImageDescription (OME-XML
or ImageJ metadata) and the few tags needed for sizes, type and resolution. The claimed
image size is checked against the file size before anything else, so a header that claims
4294967295 x 4294967295 pixels fails cleanly instead of leading anyone to allocate for it,
and strips pointing past the end of a truncated file turn the record into metadata_only.
"""

from __future__ import annotations

import logging
import operator
import os
import re
import struct
from typing import Any
from xml.etree.ElementTree import Element

import tifffile

from node.harvest.entries import Fileset
from node.harvest.extractors.common import (
    MEDIA_TYPES,
    ExtractError,
    captured_logs,
    captured_warnings,
    check_regular_file,
    failed_image,
    format_for,
)
from node.harvest.extractors.ome_xml import (
    OmeDocument,
    image_from_ome,
    parse_ome,
    strip_unused_elements,
)
from node.harvest.extractors.ome_zarr import ome_pixel_type
from node.harvest.ids import image_id
from node.harvest.units import from_tiff_resolution, physical_size, to_seconds
from node.harvest.xml import XmlError, parse_xml, read_xml_file
from node.records import Image, PhysicalSize, ReadStatus, Size5D

MAX_SIDE = 1 << 24  # 16.7 M pixels on a side: beyond any microscope or slide scanner
# More voxel bytes than this many times the file size cannot be held even by the best
# compression of real images (deflate tops out near 1000:1).
MAX_RATIO = 1 << 16
XML_SUFFIXES = (".companion.ome", ".ome.xml", ".ome")
_OME_ROOT_RE = re.compile(r"<(?:\w+:)?OME[\s>]")  # the root tag, any namespace prefix

_BYTES = {
    "bit": 0.125,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "float": 4,
    "double": 8,
    "complex": 8,
    "double-complex": 16,
}


def _plausibility(
    rel: str, dims: str, voxels: int, bytes_per: float, available: int, uncompressed: bool
) -> tuple[ReadStatus, str | None]:
    """Failed if the header claims more than any file could hold; truncated if uncompressed
    pixels need more bytes than are there."""
    need = voxels * bytes_per
    if need > available * MAX_RATIO:
        raise ExtractError(
            f"{rel}: header claims {dims} pixels ({need:.3g} bytes), which a "
            f"{available}-byte file cannot hold; not read"
        )
    if uncompressed and need > available:
        return ReadStatus.metadata_only, (
            f"{rel}: truncated: uncompressed pixels need {int(need)} bytes "
            f"but the file has {available}"
        )
    return ReadStatus.ok, None


def _check_first_ifd(rel: str, page: Any, file_size: int) -> tuple[ReadStatus, str | None]:
    w, h = int(page.imagewidth), int(page.imagelength)
    if w > MAX_SIDE or h > MAX_SIDE or w < 1 or h < 1:
        raise ExtractError(f"{rel}: header claims an image of {w} x {h} pixels; not read")
    end = max(map(operator.add, page.dataoffsets, page.databytecounts), default=0)
    if end > file_size:
        return ReadStatus.metadata_only, (
            f"{rel}: truncated: strip/tile data ends at byte {end} but the file has {file_size}"
        )
    return ReadStatus.ok, None


def _resolution(page: Any) -> tuple[float | None, float | None, int | None]:
    def res(code: int) -> float | None:
        tag = page.tags.get(code)
        if tag is None:
            return None
        v = tag.value
        try:
            return v[0] / v[1] if isinstance(v, tuple) else float(v)
        except (ZeroDivisionError, TypeError, IndexError):
            return None

    unit = page.tags.get(296)
    return res(282), res(283), int(unit.value) if unit is not None else None


def _parse_description(desc: str, rel: str) -> Element:
    """The OME-XML of a TIFF description, parsed without the elements the catalog ignores."""
    label = f"{rel} (ImageDescription)"
    stripped = strip_unused_elements(desc)
    if stripped is desc:
        return parse_xml(desc, label)
    try:
        return parse_xml(stripped, label)
    except XmlError:
        return parse_xml(desc, label)  # the cut went wrong (odd CDATA?): parse it all


def extract_tiff(fs: Fileset, source: str) -> list[Image]:
    """Records for a TIFF fileset: OME-TIFF (single, multi-file or companion) or plain TIFF."""
    main = fs.main
    if main.rel.lower().endswith(XML_SUFFIXES):
        check_regular_file(main.abs, main.rel)
        root = read_xml_file(main.abs, main.rel, prefilter=strip_unused_elements)
        doc = parse_ome(root, main.rel)
        return _ome_records(fs, source, doc, [], None, (ReadStatus.ok, None), 1)
    size = check_regular_file(main.abs, main.rel)
    notes: list[str] = []
    try:
        with (
            captured_logs("tifffile") as logs,
            captured_warnings(notes, "tifffile"),
            tifffile.TiffFile(main.abs) as tif,
        ):
            page = tif.pages.first
            ifd_state = _check_first_ifd(main.rel, page, size)
            desc = page.description or ""
            if _OME_ROOT_RE.search(desc, 0, 4096):
                doc = parse_ome(_parse_description(desc, main.rel), main.rel)
                levels = 1 + len(page.subifds or ())
                images = _ome_records(fs, source, doc, notes, page, ifd_state, levels)
            else:
                images = [_plain_record(fs, source, tif, page, size, ifd_state, notes)]
    except (ExtractError, XmlError):
        raise
    except (
        tifffile.TiffFileError,
        EOFError,
        struct.error,
        OSError,
        ValueError,
        LookupError,
    ) as exc:
        raise ExtractError(
            f"{main.rel}: not a readable TIFF: {type(exc).__name__}: {exc}"
        ) from None
    return _with_log_records(images, logs, main.rel)


def _with_log_records(images: list[Image], logs: list, rel: str) -> list[Image]:
    """Turn what tifffile logged into notes; its errors mean a damaged or truncated file."""
    if not logs:
        return images
    messages = [f"tifffile: {r.getMessage()}" for r in logs]
    errors = [r.getMessage() for r in logs if r.levelno >= logging.ERROR]
    out = []
    for im in images:
        update: dict[str, Any] = {"notes": [*im.notes, *(m for m in messages if m not in im.notes)]}
        if errors and im.status is ReadStatus.ok:
            update["status"] = ReadStatus.metadata_only
            update["error"] = f"{rel}: damaged or truncated TIFF: {errors[0]}"
        out.append(im.model_copy(update=update))
    return out


def _ref_status(
    fs: Fileset, doc: OmeDocument, refs: list[tuple[str | None, str | None]]
) -> list[str]:
    """Names of referenced pixel files that are neither this file nor a present member."""
    main_name = os.path.basename(fs.main.rel)
    present = {os.path.basename(m.rel) for m in fs.members}
    missing = []
    for fn, uuid in refs:
        if (doc.uuid and uuid == doc.uuid) or not fn or fn == main_name:
            continue  # the file itself (renamed files keep their UUID, not their name)
        base = os.path.basename(fn.replace("\\", "/"))
        if base in present and os.path.exists(os.path.join(os.path.dirname(fs.main.abs), fn)):
            continue
        if base not in missing:
            missing.append(base)
    return missing


def _ome_records(
    fs: Fileset,
    source: str,
    doc: OmeDocument,
    notes: list[str],
    page: Any,
    ifd_state: tuple[ReadStatus, str | None],
    levels: int,
) -> list[Image]:
    rel = fs.main.rel
    if doc.binary_only is not None:
        mf = doc.binary_only or "(not named)"
        where = (
            "lies outside this folder"
            if doc.binary_only
            and os.path.exists(os.path.join(os.path.dirname(fs.main.abs), doc.binary_only))
            and os.path.basename(doc.binary_only)
            not in {os.path.basename(m.rel) for m in fs.members}
            else "is missing"
        )
        n = len(fs.members)
        raise ExtractError(
            f"{rel}: BinaryOnly OME-TIFF member{'s' if n > 1 else ''} ({n} file"
            f"{'s' if n > 1 else ''}); the metadata file {mf!r} {where}, so the image "
            "cannot be described"
        )
    if not doc.images:
        raise ExtractError(f"{rel}: OME-XML contains no <Image>")
    # Voxels of all images against the bytes of all pixel files of the set.
    pixel_bytes = sum(m.size for m in fs.members if not m.rel.lower().endswith(XML_SUFFIXES))
    voxels_bytes = 0.0
    dims = []
    for oi in doc.images:
        s = oi.fields.get("size")
        if s is None:
            continue
        b = _BYTES.get(oi.fields.get("pixel_type") or "", 1)
        if s.x > MAX_SIDE or s.y > MAX_SIDE:
            raise ExtractError(f"{rel}: OME-XML claims an image of {s.x} x {s.y} pixels; not read")
        voxels_bytes += s.x * s.y * s.z * s.c * s.t * b
        dims.append(f"{s.x}x{s.y}x{s.z}x{s.c}x{s.t}")
    uncompressed = page is not None and int(page.compression) == 1
    state = _plausibility(
        rel, " + ".join(dims) or "?", int(voxels_bytes), 1, max(pixel_bytes, 1), uncompressed
    )
    if ifd_state[0] is not ReadStatus.ok:
        state = ifd_state
    images = []
    for oi in doc.images:
        status, error = state
        extra: list[str] = list(notes)
        missing = _ref_status(fs, doc, oi.tiff_refs)
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            extra.append(f"{len(missing)} referenced pixel file(s) missing: {shown}")
            if status is ReadStatus.ok:
                status = ReadStatus.metadata_only
                error = f"{rel}: pixel data incomplete: referenced file(s) missing: {shown}"
        elif oi.fields.get("size") is None:
            status = ReadStatus.metadata_only
            error = f"{rel}: OME Image {oi.index} has no valid Pixels sizes"
        images.append(
            image_from_ome(
                oi,
                fs,
                source,
                fmt="OME-TIFF",
                media_type="image/tiff",
                status=status,
                error=error,
                extra_notes=extra,
                pyramid_levels=levels,
            )
        )
    return images


_AXIS_KEY = {"X": "x", "Y": "y", "Z": "z", "C": "c", "S": "c", "T": "t"}


def _plain_record(
    fs: Fileset,
    source: str,
    tif: tifffile.TiffFile,
    page: Any,
    file_size: int,
    ifd_state: tuple[ReadStatus, str | None],
    notes: list[str],
) -> Image:
    rel = fs.main.rel
    bps = int(page.bitspersample or 8) / 8
    first_dims = f"{page.imagewidth}x{page.imagelength}"
    voxels = int(page.imagewidth) * int(page.imagelength) * int(page.imagedepth or 1)
    voxels *= int(page.samplesperpixel or 1)
    uncompressed = int(page.compression) == 1
    status, error = _plausibility(rel, first_dims, voxels, bps, file_size, uncompressed)
    if ifd_state[0] is not ReadStatus.ok:
        status, error = ifd_state
    series = tif.series[0]
    sizes = {"x": 1, "y": 1, "z": 1, "c": 1, "t": 1}
    order = ""
    for ax, n in zip(series.axes, series.shape, strict=True):
        key = _AXIS_KEY.get(ax)
        if key is None:
            if n > 1:
                notes.append(f"TIFF axis {ax!r} of length {n} counted as Z")
            key = "z"
        sizes[key] *= max(1, int(n))
        if key.upper() not in order:
            order += key.upper()
    if len(tif.series) > 1:
        notes.append(f"{len(tif.series) - 1} further TIFF series (e.g. thumbnails) not catalogued")
    pixel_type = ome_pixel_type(series.dtype)
    phys: dict[str, PhysicalSize] = {}
    time_inc = None
    ij = tif.imagej_metadata if tif.is_imagej else None
    ij_unit = None
    if ij:
        ij_unit = str(ij["unit"]) if ij.get("unit") else None
        spacing = ij.get("spacing")
        if spacing and sizes["z"] > 1:
            ps = physical_size(spacing, ij_unit or "pixel", "imagej", placeholder_check=False)
            if ps is not None:
                phys["z"] = ps
        fi = ij.get("finterval")
        if fi and float(fi) > 0:
            time_inc = to_seconds(float(fi), str(ij.get("tunit") or "s"))
    xres, yres, resunit = _resolution(page)
    for axis, r in (("x", xres), ("y", yres)):
        ps = from_tiff_resolution(r, resunit, imagej_unit=ij_unit)
        if ps is not None:
            phys[axis] = ps
    fmt = format_for(rel, fs.kind)
    dim_order = "XY" + "".join(a for a in "ZCT" if a in order)
    return Image(
        id=image_id(source, rel, 0),
        path=rel,
        files=[m.rel for m in fs.members] or [rel],
        format=fmt,
        media_type=MEDIA_TYPES.get(fmt, "image/tiff"),
        file_size=fs.total_size,
        size=Size5D(**sizes),
        dimension_order=dim_order + "".join(a for a in "ZCT" if a not in dim_order),
        pixel_type=pixel_type,
        physical_size=phys,
        time_increment_s=time_inc,
        pyramid_levels=max(1, len(getattr(series, "levels", [None]))),
        status=status,
        error=error,
        notes=notes,
    )


__all__ = ["extract_tiff", "failed_image"]
