"""OME-XML element tree → Image record fields (one per OME <Image>), and the OME-XML extractor.

Parsed with the hardened ElementTree of ``node.harvest.xml`` rather than ome-types: ome-types
costs about 9 ms per file, which alone would cap the harvester far below the 600 files/s it
must reach. Only direct-child paths are used (never ``.//``), so vendor XML embedded in an
XMLAnnotation (full of its own <Channel>/<Image> elements) is never mistaken for OME content.
Namespaces are matched with ``{*}`` so every schema version (2008-09 … 2016-06) is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from node.harvest.entries import Fileset
from node.harvest.ids import image_id
from node.harvest.units import physical_size, to_nm, to_seconds
from node.harvest.xml import XmlError, read_xml_file
from node.records import Channel, Image, Instrument, Objective, PhysicalSize, ReadStatus, Size5D

# OME's own ID pattern (ome.xsd LSID); ids outside it are repaired by ome-types with a warning.
_OME_ID_RE = re.compile(r"^(?:urn:lsid:(?:[\w\-.]+\.[\w\-.]+)+:\S+:\S+|\S+:\S+)$")
# Names that readers invent when a channel has none: they are not metadata.
_SYNTHETIC_CHANNEL_RE = re.compile(r"^Channel:\d+(?::\d+)*$")

OME_PIXEL_TYPES = {
    "int8",
    "int16",
    "int32",
    "uint8",
    "uint16",
    "uint32",
    "float",
    "double",
    "complex",
    "double-complex",
    "bit",
}


@dataclass(slots=True)
class OmeImage:
    """What one OME <Image> says, before it becomes an ``Image`` record."""

    index: int
    fields: dict[str, Any]
    notes: list[str]
    tiff_refs: list[tuple[str | None, str | None]]  # (FileName, UUID) of each TiffData/UUID
    has_tiffdata: bool = False
    has_bindata: bool = False
    metadata_only: bool = False


@dataclass(slots=True)
class OmeDocument:
    uuid: str | None = None
    binary_only: str | None = None  # BinaryOnly/@MetadataFile: the real metadata is elsewhere
    images: list[OmeImage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# Elements the catalog never uses but that dominate big headers: an XMLAnnotation holds vendor
# XML (a CZI header can be 30,000 elements), and a long time series has thousands of <Plane>.
# Cutting them out of the text before parsing makes such OME-TIFFs several times cheaper.
UNUSED_ELEMENTS = ("XMLAnnotation", "Plane")
_NAME_END = frozenset(" \t\r\n/>")


def _open_prefix(p: str) -> bool:
    return p == "" or (p.endswith(":") and p[:-1].isidentifier())


def _strip_element(text: str, name: str) -> str:
    out: list[str] = []
    pos = 0
    n = len(name)
    i = text.find(name)
    while i >= 0:
        lt = text.rfind("<", pos, i)
        if lt < 0 or text[i + n : i + n + 1] not in _NAME_END or not _open_prefix(text[lt + 1 : i]):
            i = text.find(name, i + n)  # an attribute, a closing tag or text: not a start tag
            continue
        prefix = text[lt + 1 : i]
        gt = text.find(">", i)
        if gt < 0:
            return text
        if text[gt - 1] == "/":
            end = gt + 1
        else:
            close = text.find(f"</{prefix}{name}", gt)
            close_gt = text.find(">", close) if close >= 0 else -1
            if close_gt < 0:
                return text
            end = close_gt + 1
        out.append(text[pos:lt])
        pos = end
        i = text.find(name, pos)
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def strip_unused_elements(text: str) -> str:
    """``text`` without the OME elements the catalog ignores (a pre-filter; parse the result).

    Plain ``str.find`` rather than a regex: a lazy ``.*?`` over a 300 kB header costs more
    than the parse it saves. Anything unexpected returns the text unchanged, and callers
    fall back to parsing the whole text if the cut one is not well-formed.
    """
    for name in UNUSED_ELEMENTS:
        if name in text:
            text = _strip_element(text, name)
    return text


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _float(v: str | None) -> float | None:
    if v is None or v.strip() == "":
        return None
    try:
        return float(v)
    except ValueError:
        return None


def _int(v: str | None) -> int | None:
    f = _float(v)
    return int(f) if f is not None and f.is_integer() else None


def _str(v: str | None) -> str | None:
    v = v.strip() if v else None
    return v or None


def color_hex(value: str | None) -> str | None:
    """OME Color (signed 32-bit RGBA integer) → "#rrggbb"."""
    v = _int(value)
    if v is None:
        return None
    v &= 0xFFFFFFFF
    return f"#{(v >> 24) & 0xFF:02x}{(v >> 16) & 0xFF:02x}{(v >> 8) & 0xFF:02x}"


def real_channel_name(name: str | None, channel_id: str | None) -> str | None:
    """The channel name if it is real metadata; None for empty, synthetic or id-like names."""
    name = _str(name)
    if not name or name == channel_id or _SYNTHETIC_CHANNEL_RE.match(name):
        return None
    return name


def parse_datetime(text: str | None) -> datetime | None:
    text = _str(text)
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def well_name(row: int | None, column: int | None, row_naming: str | None = None) -> str | None:
    """OME Well Row/Column (0-based indices) → "A01"; rows as numbers if the plate says so."""
    if row is None or column is None or row < 0 or column < 0:
        return None
    if (row_naming or "letter").lower() == "number":
        r = f"{row + 1:02d}-"
    else:
        r = ""
        n = row
        while True:  # A..Z, AA, AB, ... (1536-well plates have 32 rows)
            r = chr(ord("A") + n % 26) + r
            n = n // 26 - 1
            if n < 0:
                break
    return f"{r}{column + 1:02d}"


def _check_id(el: Element, notes: list[str]) -> None:
    i = el.get("ID")
    if i is not None and not _OME_ID_RE.match(i):
        msg = f"invalid OME ID {i!r} on {local(el.tag)} (not of the form Type:n)"
        if msg not in notes:
            notes.append(msg)


class _Index:
    """Document-wide lookups, built once per document."""

    def __init__(self, root: Element) -> None:
        self.instruments = {i.get("ID"): i for i in root.findall("{*}Instrument")}
        self.annotations: dict[str | None, Element] = {}
        for sa in root.findall("{*}StructuredAnnotations"):
            for a in sa:
                self.annotations[a.get("ID")] = a
        self.wells: dict[str, tuple[str | None, str | None]] = {}
        for plate in root.findall("{*}Plate"):
            pname = _str(plate.get("Name")) or _str(plate.get("ID"))
            naming = plate.get("RowNamingConvention")
            for well in plate.findall("{*}Well"):
                wname = well_name(_int(well.get("Row")), _int(well.get("Column")), naming)
                for ws in well.findall("{*}WellSample"):
                    ref = ws.find("{*}ImageRef")
                    iid = ref.get("ID") if ref is not None else ws.get("ImageRef")
                    if iid:
                        self.wells[iid] = (pname, wname)


def _instrument_parts(
    img: Element, idx: _Index, channels_el: list[Element], notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ref = img.find("{*}InstrumentRef")
    inst: Element | None = None
    if ref is not None:
        inst = idx.instruments.get(ref.get("ID"))
    elif len(idx.instruments) == 1:  # a single instrument in the file is the one used
        inst = next(iter(idx.instruments.values()))
    if inst is None:
        return out
    _check_id(inst, notes)
    mic = inst.find("{*}Microscope")
    if mic is not None:
        m = Instrument(
            manufacturer=_str(mic.get("Manufacturer")),
            model=_str(mic.get("Model")),
            type=_str(mic.get("Type")),
        )
        if m.manufacturer or m.model or m.type:
            out["microscope"] = m
    objectives = inst.findall("{*}Objective")
    obj_el: Element | None = None
    os_el = img.find("{*}ObjectiveSettings")
    if os_el is not None:
        oid = os_el.get("ID")
        obj_el = next((o for o in objectives if o.get("ID") == oid), None)
    if obj_el is None and len(objectives) == 1:
        obj_el = objectives[0]
    if obj_el is not None:
        _check_id(obj_el, notes)
        out["objective"] = Objective(
            model=_str(obj_el.get("Model")),
            manufacturer=_str(obj_el.get("Manufacturer")),
            magnification=_float(obj_el.get("NominalMagnification")),
            na=_float(obj_el.get("LensNA")),
            immersion=_str(obj_el.get("Immersion")),
        )
    detectors = inst.findall("{*}Detector")
    used = {
        ds.get("ID")
        for ch in channels_el
        for ds in ch.findall("{*}DetectorSettings")
        if ds.get("ID") is not None
    }
    chosen = [d for d in detectors if d.get("ID") in used] or detectors
    dets = []
    for d in chosen:
        _check_id(d, notes)
        inst_d = Instrument(
            manufacturer=_str(d.get("Manufacturer")),
            model=_str(d.get("Model")),
            type=_str(d.get("Type")),
        )
        if inst_d.manufacturer or inst_d.model or inst_d.type:
            dets.append(inst_d)
    if dets:
        out["detectors"] = dets
    return out


def _annotations(img: Element, idx: _Index) -> tuple[dict[str, str], list[str]]:
    kv: dict[str, str] = {}
    tags: list[str] = []
    seen: set[str | None] = set()

    def visit(aid: str | None, depth: int) -> None:
        if aid in seen or depth > 3:  # a tag set references its tags; guard against cycles
            return
        seen.add(aid)
        a = idx.annotations.get(aid)
        if a is None:
            return
        kind = local(a.tag)
        if kind == "MapAnnotation":
            val = a.find("{*}Value")
            for m in val.findall("{*}M") if val is not None else []:
                k = _str(m.get("K"))
                if k is None:
                    continue
                v = (m.text or "").strip()
                kv[k] = f"{kv[k]}; {v}" if k in kv and kv[k] != v else v
        elif kind == "TagAnnotation":
            t = _str(a.findtext("{*}Value"))
            if t and t not in tags:
                tags.append(t)
        for r in a.findall("{*}AnnotationRef"):
            visit(r.get("ID"), depth + 1)

    for r in img.findall("{*}AnnotationRef"):
        visit(r.get("ID"), 0)
    return kv, tags


def _channels(pixels: Element, img: Element, notes: list[str]) -> tuple[list[Channel], list]:
    chans: list[Channel] = []
    els = pixels.findall("{*}Channel")
    if els:
        for ch in els:
            _check_id(ch, notes)
            chans.append(
                Channel(
                    name=real_channel_name(ch.get("Name"), ch.get("ID")),
                    fluor=_str(ch.get("Fluor")),
                    excitation_nm=_wavelength(
                        ch.get("ExcitationWavelength"), ch.get("ExcitationWavelengthUnit")
                    ),
                    emission_nm=_wavelength(
                        ch.get("EmissionWavelength"), ch.get("EmissionWavelengthUnit")
                    ),
                    acquisition_mode=_str(ch.get("AcquisitionMode")),
                    contrast_method=_str(ch.get("ContrastMethod")),
                    illumination=_str(ch.get("IlluminationType")),
                    color=color_hex(ch.get("Color")),
                )
            )
        return chans, els
    # 2008-09 and older: channels are <LogicalChannel> children of <Image>
    for lc in img.findall("{*}LogicalChannel"):
        chans.append(
            Channel(
                name=real_channel_name(lc.get("Name"), lc.get("ID")),
                fluor=_str(lc.get("Fluor")),
                excitation_nm=_float(lc.get("ExWave")),
                emission_nm=_float(lc.get("EmWave")),
                acquisition_mode=_str(lc.get("Mode")),
                contrast_method=_str(lc.get("ContrastMethod")),
                illumination=_str(lc.get("IlluminationType")),
            )
        )
    return chans, []


def _wavelength(value: str | None, unit: str | None) -> float | None:
    v = _float(value)
    return None if v is None else to_nm(v, unit)


def _physical(pixels: Element) -> dict[str, PhysicalSize]:
    out: dict[str, PhysicalSize] = {}
    raw = {a: _float(pixels.get(f"PhysicalSize{a.upper()}")) for a in ("x", "y", "z")}
    xy_placeholder = raw["x"] == 1.0 and raw["y"] == 1.0
    for a, v in raw.items():
        # A 1 µm Z step is a common real setting; only all-axes-1.0 betrays the placeholder.
        check = a != "z" or xy_placeholder
        unit = pixels.get(f"PhysicalSize{a.upper()}Unit")
        ps = physical_size(v, unit, "ome-xml", placeholder_check=check)
        if ps is not None:
            out[a] = ps
    return out


def parse_ome(root: Element, name: str) -> OmeDocument:
    """Read an OME root element; raise XmlError naming ``name`` if it is not OME-XML."""
    if local(root.tag) != "OME":
        raise XmlError(f"{name}: not OME-XML (root element is <{local(root.tag)}>)")
    doc = OmeDocument(uuid=_str(root.get("UUID")))
    bo = root.find("{*}BinaryOnly")
    if bo is not None:
        doc.binary_only = _str(bo.get("MetadataFile")) or ""
    idx = _Index(root)
    for n, img in enumerate(root.findall("{*}Image")):
        doc.images.append(_parse_image(n, img, idx, name))
    return doc


def _parse_image(n: int, img: Element, idx: _Index, name: str) -> OmeImage:
    notes: list[str] = []
    _check_id(img, notes)
    f: dict[str, Any] = {"name": _str(img.get("Name"))}
    oi = OmeImage(index=n, fields=f, notes=notes, tiff_refs=[])
    acq = img.findtext("{*}AcquisitionDate") or img.findtext("{*}CreationDate")
    if acq:
        f["acquired_at"] = parse_datetime(acq)
        if f["acquired_at"] is None:
            notes.append(f"unreadable AcquisitionDate {acq.strip()!r}")
    pixels = img.find("{*}Pixels")
    chan_els: list[Element] = []
    if pixels is None:
        notes.append("OME Image has no <Pixels> element")
    else:
        _check_id(pixels, notes)
        sizes = {a: _int(pixels.get(f"Size{a.upper()}")) for a in "xyzct"}
        bad = {a: pixels.get(f"Size{a.upper()}") for a, v in sizes.items() if v is None or v < 1}
        # X and Y are required; Z/C/T default to 1 when absent or invalid.
        if bad.get("x") is None and bad.get("y") is None:
            f["size"] = Size5D(**{a: (v if v and v >= 1 else 1) for a, v in sizes.items()})
            for a in ("z", "c", "t"):
                if a in bad and bad[a] is not None:
                    notes.append(f"invalid Size{a.upper()} {bad[a]!r} taken as 1")
        else:
            notes.append(f"invalid SizeX/SizeY ({pixels.get('SizeX')!r} x {pixels.get('SizeY')!r})")
        f["dimension_order"] = _str(pixels.get("DimensionOrder"))
        ptype = _str(pixels.get("Type")) or _str(pixels.get("PixelType"))
        if ptype and ptype not in OME_PIXEL_TYPES:
            notes.append(f"unknown pixel type {ptype!r}")
        f["pixel_type"] = ptype
        f["physical_size"] = _physical(pixels)
        ti = _float(pixels.get("TimeIncrement"))
        if ti is not None and ti > 0:
            f["time_increment_s"] = to_seconds(ti, pixels.get("TimeIncrementUnit"))
        f["channels"], chan_els = _channels(pixels, img, notes)
        for td in pixels.findall("{*}TiffData"):
            oi.has_tiffdata = True
            u = td.find("{*}UUID")
            if u is not None:
                oi.tiff_refs.append((_str(u.get("FileName")), _str(u.text)))
        oi.has_bindata = pixels.find("{*}BinData") is not None
        oi.metadata_only = pixels.find("{*}MetadataOnly") is not None
    f.update(_instrument_parts(img, idx, chan_els, notes))
    if img.get("ID") in idx.wells:
        f["plate"], f["well"] = idx.wells[img.get("ID")]
    f["key_values"], f["tags"] = _annotations(img, idx)
    return oi


def image_from_ome(
    oi: OmeImage,
    fs: Fileset,
    source: str,
    *,
    fmt: str,
    media_type: str | None,
    status: ReadStatus,
    error: str | None,
    extra_notes: list[str] | None = None,
    pyramid_levels: int = 1,
) -> Image:
    fields = {k: v for k, v in oi.fields.items() if v is not None}
    return Image(
        id=image_id(source, fs.main.rel, oi.index),
        path=fs.main.rel,
        files=[m.rel for m in fs.members] or [fs.main.rel],
        series=oi.index,
        format=fmt,
        media_type=media_type,
        file_size=fs.total_size,
        status=status,
        error=error,
        notes=[*oi.notes, *(extra_notes or [])],
        pyramid_levels=pyramid_levels,
        **fields,
    )


def extract_ome_xml(fs: Fileset, source: str) -> list[Image]:
    """An OME-XML file on its own: all metadata, no pixels (status metadata_only)."""
    rel = fs.main.rel
    doc = parse_ome(read_xml_file(fs.main.abs, rel, prefilter=strip_unused_elements), rel)
    if doc.binary_only is not None:
        raise XmlError(f"{rel}: OME-XML says BinaryOnly; its metadata is in {doc.binary_only!r}")
    if not doc.images:
        raise XmlError(f"{rel}: OME-XML contains no <Image>")
    out = []
    for oi in doc.images:
        if oi.metadata_only:
            why = "pixels are declared MetadataOnly (no pixel data exists)"
        elif oi.has_tiffdata:
            names = sorted({fn for fn, _ in oi.tiff_refs if fn})
            why = "OME-XML without its TIFF pixel files" + (
                f" ({', '.join(names[:5])}{' ...' if len(names) > 5 else ''} not in this fileset)"
                if names
                else ""
            )
        elif oi.has_bindata:
            why = "pixels are embedded as BinData, which the catalog does not read"
        else:
            why = "OME-XML metadata only; no pixel data"
        out.append(
            image_from_ome(
                oi,
                fs,
                source,
                fmt="OME-XML",
                media_type="application/xml",
                status=ReadStatus.metadata_only,
                error=f"{rel}: {why}",
            )
        )
    return out
