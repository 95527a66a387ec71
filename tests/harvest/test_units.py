"""Length units to µm and the rules that flag untrusted pixel sizes; the hardened XML parser."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from node.harvest.filesets import first_description
from node.harvest.units import from_tiff_resolution, physical_size, to_nm, to_seconds, to_um
from node.harvest.xml import XmlError, parse_xml


@pytest.mark.parametrize(
    ("value", "unit", "um"),
    [
        (650.0, "nm", 0.65),
        (0.65, "µm", 0.65),  # micro sign
        (0.65, "μm", 0.65),  # Greek mu
        (0.65, "um", 0.65),
        (0.65, "micron", 0.65),
        (0.65, "micrometer", 0.65),  # OME-Zarr spells units out
        (0.001, "mm", 1.0),
        (0.0001, "cm", 1.0),  # instrument-units-alternate.ome.xml uses cm and pm
        (650000.0, "pm", 0.65),
        (6500.0, "Å", 0.65),
        (1e-6, "m", 1.0),
        (1.0, "in", 25400.0),
        (2.0, None, 2.0),  # OME's default unit is µm
    ],
)
def test_to_um(value: float, unit: str | None, um: float) -> None:
    assert to_um(value, unit) == pytest.approx(um)


def test_unknown_units() -> None:
    assert to_um(1.0, "furlong") is None
    ps = physical_size(0.5, "furlong", "ome-xml")
    assert ps.value_um is None
    assert "unknown length unit" in ps.suspicious
    assert (ps.original_value, ps.original_unit) == (0.5, "furlong")


def test_time_and_wavelength() -> None:
    assert to_seconds(1.0, "ms") == pytest.approx(0.001)
    assert to_seconds(2.0, "min") == 120.0
    assert to_seconds(3.0, None) == 3.0
    assert to_nm(0.488, "µm") == pytest.approx(488.0)
    assert to_nm(488.0, None) == 488.0


def test_trusted_size_keeps_its_original() -> None:
    ps = physical_size(325.0, "nm", "ome-xml")
    assert ps.value_um == pytest.approx(0.325)
    assert ps.suspicious is None
    assert (ps.original_value, ps.original_unit, ps.source) == (325.0, "nm", "ome-xml")


@pytest.mark.parametrize(
    ("value", "unit", "why"),
    [
        (0.0, "µm", "zero"),
        (-0.5, "µm", "negative"),
        (1.0, "µm", "placeholder"),
        (0.001, "mm", "placeholder"),  # 1 µm in another unit is still the placeholder
        (10000.0, "µm", "implausibly large"),  # the OME spec samples
        (1e-4, "µm", "implausibly small"),
        (float("nan"), "µm", "not a finite"),
        (0.5, "pixel", "no length unit"),
        (0.5, "reference frame", "no length unit"),
    ],
)
def test_suspicious_sizes(value: float, unit: str, why: str) -> None:
    ps = physical_size(value, unit, "ome-xml")
    assert ps.value_um is None
    assert why in ps.suspicious


def test_one_micron_z_step_is_trusted() -> None:
    ps = physical_size(1.0, "µm", "ome-xml", placeholder_check=False)
    assert ps.value_um == 1.0
    assert ps.suspicious is None


@pytest.mark.parametrize("dpi", [72.0, 96.0, 300.0, 600.0])
def test_default_dpi_resolution_is_flagged(dpi: float) -> None:
    ps = from_tiff_resolution(dpi, 2)
    assert ps.value_um is None
    assert f"{dpi:g} dpi" in ps.suspicious
    assert to_um(ps.original_value, ps.original_unit) == pytest.approx(25400.0 / dpi)


def test_72_dpi_is_352_78_um() -> None:
    ps = from_tiff_resolution(72.0, 2)
    assert to_um(ps.original_value, ps.original_unit) == pytest.approx(352.78, abs=0.01)
    assert "352.78" in ps.suspicious


def test_tiff_resolution_in_centimetres_and_imagej_units() -> None:
    assert from_tiff_resolution(10000.0 / 0.5, 3).value_um == pytest.approx(0.5)  # px per cm
    assert from_tiff_resolution(2.0, 1, imagej_unit="micron").value_um == pytest.approx(0.5)
    assert from_tiff_resolution(2.0, 1) is None  # unit "none": an aspect ratio, not a size
    assert from_tiff_resolution(0.0, 2) is None
    assert from_tiff_resolution(None, 3) is None


def test_xml_errors_name_the_file_and_reason() -> None:
    with pytest.raises(XmlError, match=r"^a\.xml: not well-formed"):
        parse_xml("<OME>", "a.xml")
    with pytest.raises(XmlError, match=r"^b\.xml: XML refused: it declares a DTD"):
        parse_xml('<!DOCTYPE OME SYSTEM "http://example.org/x.dtd"><OME/>', "b.xml")
    with pytest.raises(XmlError, match=r"^c\.xml: XML is 11 bytes, more than the 10 byte limit"):
        parse_xml("<OME></OME>", "c.xml", max_bytes=10)
    assert isinstance(XmlError("x"), ValueError)


@pytest.mark.parametrize(
    ("bigtiff", "byteorder"), [(False, "<"), (False, ">"), (True, "<"), (True, ">")]
)
def test_first_description_reads_classic_and_bigtiff(
    tmp_path, bigtiff: bool, byteorder: str
) -> None:
    p = tmp_path / "d.tif"
    text = "<OME>" + "x" * 5000 + "</OME>"
    tifffile.imwrite(
        p,
        np.zeros((4, 4), np.uint8),
        bigtiff=bigtiff,
        byteorder=byteorder,
        description=text,
        metadata=None,
    )
    assert first_description(str(p)) == text
    tifffile.imwrite(
        p, np.zeros((4, 4), np.uint8), bigtiff=bigtiff, byteorder=byteorder, metadata=None
    )
    assert first_description(str(p)) == ""
    p.write_bytes(b"GIF89a" + b"\0" * 20)
    assert first_description(str(p)) is None
