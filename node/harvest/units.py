"""Unit normalisation (lengths to µm, times to s) and the rules for untrusted pixel sizes.

Pixel sizes in files are often missing or wrong: Micro-Manager and Bio-Formats write 1.0 µm
when nothing was calibrated, TIFF writers put 72 dpi into the resolution tags, the OME spec
samples use 10000 µm. A size that looks like one of these is kept (value, unit, source) but
not trusted: ``PhysicalSize.value_um`` is None and ``suspicious`` says why.
"""

from __future__ import annotations

import math

from node.records import PhysicalSize

# Factor to µm for every OME UnitsLength symbol, plus the spelled-out UDUNITS names that
# OME-Zarr uses and the spellings found in the wild (ImageJ "micron", ASCII "um").
_LENGTH_TO_UM: dict[str, float] = {
    "ym": 1e-18,
    "zm": 1e-15,
    "am": 1e-12,
    "fm": 1e-9,
    "pm": 1e-6,
    "Å": 1e-4,
    "å": 1e-4,
    "A": 1e-4,
    "nm": 1e-3,
    "µm": 1.0,  # micro sign U+00B5
    "μm": 1.0,  # Greek mu U+03BC
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "\\u00B5m": 1.0,  # ImageJ writes the micro sign escaped in its description
    "mm": 1e3,
    "cm": 1e4,
    "dm": 1e5,
    "m": 1e6,
    "dam": 1e7,
    "hm": 1e8,
    "km": 1e9,
    "Mm": 1e12,
    "Gm": 1e15,
    "Tm": 1e18,
    "Pm": 1e21,
    "Em": 1e24,
    "Zm": 1e27,
    "Ym": 1e30,
    "thou": 25.4,
    "mil": 25.4,
    "li": 25400.0 / 12.0,  # a line is 1/12 inch
    "in": 25400.0,
    "inch": 25400.0,
    "ft": 304800.0,
    "yd": 914400.0,
    "mi": 1609344e3,
    "pt": 25400.0 / 72.0,
    "yoctometer": 1e-18,
    "zeptometer": 1e-15,
    "attometer": 1e-12,
    "femtometer": 1e-9,
    "picometer": 1e-6,
    "angstrom": 1e-4,
    "nanometer": 1e-3,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "millimeter": 1e3,
    "millimetre": 1e3,
    "centimeter": 1e4,
    "centimetre": 1e4,
    "decimeter": 1e5,
    "meter": 1e6,
    "metre": 1e6,
    "hectometer": 1e8,
    "kilometer": 1e9,
    "megameter": 1e12,
    "gigameter": 1e15,
    "terameter": 1e18,
    "petameter": 1e21,
    "exameter": 1e24,
    "zettameter": 1e27,
    "yottameter": 1e30,
    "foot": 304800.0,
    "yard": 914400.0,
    "mile": 1609344e3,
}

# Units that are not lengths: a value in them says nothing about the physical pixel size.
_NOT_LENGTH = {"pixel", "px", "reference frame", "", "none"}

_TIME_TO_S: dict[str, float] = {
    "ys": 1e-24,
    "zs": 1e-21,
    "as": 1e-18,
    "fs": 1e-15,
    "ps": 1e-12,
    "ns": 1e-9,
    "µs": 1e-6,
    "μs": 1e-6,
    "us": 1e-6,
    "ms": 1e-3,
    "cs": 1e-2,
    "ds": 0.1,
    "s": 1.0,
    "sec": 1.0,
    "das": 10.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "nanosecond": 1e-9,
    "microsecond": 1e-6,
    "millisecond": 1e-3,
    "second": 1.0,
    "minute": 60.0,
    "hour": 3600.0,
    "day": 86400.0,
}

# Resolutions (dots per inch) that image software writes by default; a pixel size derived
# from them describes a screen or a printer, not a microscope.
DEFAULT_DPI = (72.0, 96.0, 100.0, 150.0, 200.0, 300.0, 600.0)

MIN_PLAUSIBLE_UM = 0.001  # 1 nm per pixel: below any light or electron microscope pixel
MAX_PLAUSIBLE_UM = 1000.0  # 1 mm per pixel: above any microscope (OME samples use 1e4)


def length_factor_um(unit: str | None) -> float | None:
    """Factor from ``unit`` to µm (unit None means µm, the OME default); None if unknown."""
    if unit is None:
        return 1.0
    u = unit.strip()
    if u in _LENGTH_TO_UM:
        return _LENGTH_TO_UM[u]
    return _LENGTH_TO_UM.get(u.lower())


def to_um(value: float, unit: str | None) -> float | None:
    """``value`` in ``unit`` as µm (unit None means µm, the OME default); None if unit unknown."""
    f = length_factor_um(unit)
    return None if f is None else value * f


def to_seconds(value: float, unit: str | None) -> float | None:
    """``value`` in ``unit`` as seconds (unit None means s, the OME default); None if unknown."""
    if unit is None:
        return value
    u = unit.strip()
    f = _TIME_TO_S.get(u, _TIME_TO_S.get(u.lower()))
    return None if f is None else value * f


def to_nm(value: float, unit: str | None) -> float | None:
    """A wavelength ``value`` in ``unit`` as nm (unit None means nm, the OME default)."""
    if unit is None:
        return value
    um = to_um(value, unit)
    return None if um is None else um * 1000.0


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def judge_um(value_um: float, *, placeholder_check: bool = True) -> str | None:
    """Why a pixel size of ``value_um`` µm cannot be trusted, or None if it is plausible."""
    if not math.isfinite(value_um):
        return f"not a finite number ({value_um})"
    if value_um <= 0:
        return f"zero or negative ({_fmt(value_um)} µm)"
    if placeholder_check and value_um == 1.0:
        return "exactly 1.0 µm, the default placeholder of Micro-Manager/Bio-Formats"
    if value_um < MIN_PLAUSIBLE_UM:
        return f"implausibly small ({_fmt(value_um)} µm per pixel < {MIN_PLAUSIBLE_UM} µm)"
    if value_um > MAX_PLAUSIBLE_UM:
        return f"implausibly large ({_fmt(value_um)} µm per pixel > {MAX_PLAUSIBLE_UM:g} µm)"
    return None


def physical_size(
    value: float | None,
    unit: str | None,
    source: str,
    *,
    placeholder_check: bool = True,
) -> PhysicalSize | None:
    """A ``PhysicalSize`` for ``value`` in ``unit``; None when there is no value at all.

    ``unit`` None means µm (the OME default). ``placeholder_check`` False skips the
    "exactly 1.0 µm" rule (used for a Z step, where 1 µm is a common real setting).
    """
    if value is None:
        return None
    orig_unit = unit if unit is not None else "µm"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return PhysicalSize(
            original_unit=orig_unit, source=source, suspicious=f"not a number ({value!r})"
        )
    if orig_unit.strip().lower() in _NOT_LENGTH:
        return PhysicalSize(
            original_value=v,
            original_unit=orig_unit,
            source=source,
            suspicious=f"no length unit ({orig_unit!r}), so not a physical size",
        )
    um = to_um(v, orig_unit)
    if um is None:
        return PhysicalSize(
            original_value=v,
            original_unit=orig_unit,
            source=source,
            suspicious=f"unknown length unit {orig_unit!r}",
        )
    why = judge_um(um, placeholder_check=placeholder_check)
    return PhysicalSize(
        value_um=None if why else um,
        original_value=v,
        original_unit=orig_unit,
        source=source,
        suspicious=why,
    )


def from_tiff_resolution(
    pixels_per_unit: float | None, resolution_unit: int | None, *, imagej_unit: str | None = None
) -> PhysicalSize | None:
    """Pixel size from a TIFF X/YResolution tag (pixels per unit) and its ResolutionUnit.

    ResolutionUnit 2 is inch, 3 centimetre; 1 (none) takes ImageJ's ``unit=`` when there is
    one. Values that come from a default dpi (72, 96, 300, ...) are flagged.
    """
    if not pixels_per_unit or pixels_per_unit <= 0 or not math.isfinite(pixels_per_unit):
        return None  # 0 or missing: the writer had no resolution at all
    per_pixel = 1.0 / pixels_per_unit
    if imagej_unit:  # ImageJ's own unit wins over ResolutionUnit (ImageJ writes NONE there)
        if imagej_unit.strip().lower() in ("inch", "in"):
            resolution_unit = 2
        else:
            return physical_size(per_pixel, imagej_unit, "imagej")
    if resolution_unit == 2:  # inch
        size = physical_size(per_pixel, "in", "tiff-resolution")
        if size is not None and any(abs(pixels_per_unit - d) < 1e-6 for d in DEFAULT_DPI):
            size = size.model_copy(
                update={
                    "value_um": None,
                    "suspicious": f"derived from a {pixels_per_unit:g} dpi TIFF resolution "
                    f"(= {25400.0 / pixels_per_unit:.2f} µm/px; a screen/print default, "
                    "not a microscope calibration)",
                }
            )
        return size
    if resolution_unit == 3:  # centimetre
        return physical_size(per_pixel, "cm", "tiff-resolution")
    return None  # ResolutionUnit "none": a pixel aspect ratio, not a size
