"""Extraction from the real sample files in tests/data/samples.

Expected values come from the files' own metadata as documented in
../shared/samples/microscopy/MANIFEST.md (tables "Provenance and content" and "What the
libraries report") and from the OME-XML text of the samples, not from this code's output.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from extract_helpers import SAMPLES, extract_folder, single

from node.harvest.extractors import extract_fileset
from node.harvest.ids import image_id
from node.records import Image, ReadStatus


def one(rel: str, kind: str) -> list[Image]:
    return extract_fileset(single(SAMPLES / rel, kind, rel), "test")


def um(im: Image) -> dict[str, float | None]:
    return im.physical_size_um


# ------------------------------------------------------------------------------- OME-TIFF


@pytest.mark.parametrize(
    ("rel", "xyzct", "names"),
    [
        # MANIFEST: OME artificial 439x167 int8 XY / CYX / ZYX; channels unnamed (ids only)
        ("ome-tiff/single-channel.ome.tif", (439, 167, 1, 1, 1), [None]),
        ("ome-tiff/multi-channel.ome.tif", (439, 167, 1, 3, 1), [None, None, None]),
        ("ome-tiff/z-series.ome.tif", (439, 167, 5, 1, 1), [None]),
    ],
)
def test_ome_artificial_samples(rel: str, xyzct: tuple[int, ...], names: list[None]) -> None:
    [im] = one(rel, "ome-tiff")
    assert im.status is ReadStatus.ok, im.error
    assert im.format == "OME-TIFF"
    assert im.media_type == "image/tiff"
    assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == xyzct
    assert im.pixel_type == "int8"
    assert [c.name for c in im.channels] == names  # "Channel:0:n" ids are not names
    assert im.physical_size == {}  # "No PhysicalSize"
    assert im.path == rel
    assert im.files == [rel]
    assert im.id == image_id("test", rel, 0)
    assert im.file_size == (SAMPLES / rel).stat().st_size


def test_ome_types_tiny_tiff() -> None:
    [im] = one("ome-tiff/ome-types_ome.tiff", "ome-tiff")  # 6x6 uint8, C=2
    assert (im.size.x, im.size.y, im.size.c) == (6, 6, 2)
    assert im.pixel_type == "uint8"
    assert im.dimension_order == "XYCZT"


def test_aics_ome_tiff_has_instrument_metadata() -> None:
    [im] = one("ome-tiff/aics_s_1_t_1_c_1_z_1.ome.tiff", "ome-tiff")
    assert im.status is ReadStatus.ok
    assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == (475, 325, 1, 1, 1)
    assert im.pixel_type == "uint16"
    assert um(im)["x"] == pytest.approx(1.0833, abs=1e-4)
    assert um(im)["y"] == pytest.approx(1.0833, abs=1e-4)
    assert um(im)["z"] is None
    assert im.physical_size["x"].source == "ome-xml"
    [ch] = im.channels
    assert ch.name == "Bright"
    assert ch.fluor == "TL Brightfield"
    assert ch.illumination == "Transmitted"
    assert ch.acquisition_mode == "SpinningDiskConfocal"
    assert ch.color == "#ffffff"  # Color="-1"
    obj = im.objective
    assert obj.model == "Plan-Apochromat 20x/0.8 M27"
    assert (obj.magnification, obj.na, obj.immersion) == (20.0, 0.8, "Air")
    assert im.microscope.type == "Inverted"
    assert [d.model for d in im.detectors] == ["HDCamC11440-22C"]
    assert im.acquired_at == datetime(2019, 6, 27, 18, 33, 40, 619000, tzinfo=UTC)
    assert im.name == "s_1_t_1_c_1_z_1.czi #1"
    # The embedded TiffData names the file before it was renamed; its UUID is the file's own.
    assert not any("missing" in n for n in im.notes)


def test_multifile_companion_is_one_image_of_five_planes() -> None:
    images = extract_folder(SAMPLES / "ome-tiff-multifile")
    assert list(images) == ["multifile.companion.ome"]
    [im] = images["multifile.companion.ome"]
    assert im.status is ReadStatus.ok, im.error
    assert im.format == "OME-TIFF"
    assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == (18, 24, 5, 1, 1)
    assert im.pixel_type == "uint8"
    assert im.dimension_order == "XYCTZ"
    assert im.name == "multifile"
    assert im.acquired_at == datetime(2010, 3, 2, 15, 8, 59, tzinfo=UTC)
    assert im.path == "ome-tiff-multifile/multifile.companion.ome"
    assert sorted(im.files) == sorted(
        ["ome-tiff-multifile/multifile.companion.ome"]
        + [f"ome-tiff-multifile/multifile-Z{i}.ome.tiff" for i in range(1, 6)]
    )
    assert im.file_size == sum(p.stat().st_size for p in (SAMPLES / "ome-tiff-multifile").iterdir())


# ------------------------------------------------------------------------------- ImageJ TIFF


def test_imagej_tiff_pixel_size_from_resolution_and_unit() -> None:
    [im] = one("tiff/aics_s_1_t_1_c_1_z_1.tiff", "tiff")  # ImageJ 475x325 uint16, 1.0833 um/px
    assert im.status is ReadStatus.ok
    assert im.format == "TIFF"
    assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == (475, 325, 1, 1, 1)
    assert im.pixel_type == "uint16"
    assert um(im)["x"] == pytest.approx(1.0833, abs=1e-4)
    assert um(im)["y"] == pytest.approx(1.0833, abs=1e-4)
    assert im.physical_size["x"].original_unit == "micron"
    assert im.physical_size["x"].source == "imagej"
    assert im.channels == []


# ------------------------------------------------------------------------------- OME-XML


def test_instrument_spec_sample() -> None:
    [im] = one("ome-xml/instrument.ome.xml", "ome-xml")
    assert im.status is ReadStatus.metadata_only
    assert "instrument.ome.xml" in im.error
    assert im.format == "OME-XML"
    assert (im.size.x, im.size.y) == (6, 4)
    obj = im.objective
    assert (obj.magnification, obj.na, obj.immersion) == (60.0, 1.2, "Air")
    assert (obj.model, obj.manufacturer) == ("60xUV-Air", "OME Objectives")
    mic = im.microscope
    assert (mic.manufacturer, mic.model, mic.type) == ("OME Insturuments", "Lab Mk3", "Inverted")
    assert [(d.manufacturer, d.model, d.type) for d in im.detectors] == [
        ("OME Detectors", "Standard CCD Mk2", "CCD")
    ]
    assert im.acquired_at == datetime(2010, 2, 23, 12, 51, 30, tzinfo=UTC)
    # 10000 um per pixel (1 cm): kept but flagged
    ps = im.physical_size["x"]
    assert ps.value_um is None
    assert ps.original_value == 10000.0
    assert ps.original_unit == "µm"
    assert "implausib" in ps.suspicious
    assert im.channels[0].color == "#800000"  # Color="-2147483648" = 0x80000000 RGBA


def test_map_annotations_become_key_values() -> None:
    [im] = one("ome-xml/mapannotation.ome.xml", "ome-xml")
    assert im.key_values == {
        "SampleKeyA": "SampleValueA",
        "SampleKeyB-1": "SampleValueB-1",
        "SampleKeyB-2": "SampleValueB-2",
    }


def test_tag_annotations_become_tags() -> None:
    # The image references the tag set, which references the two tags: 3 TagAnnotations.
    [im] = one("ome-xml/tagannotation.ome.xml", "ome-xml")
    assert sorted(im.tags) == ["SampleTagA", "SampleTagB", "SampleTagset"]


def test_metadata_only_pixels() -> None:
    [im] = one("ome-xml/metadata-only.ome.xml", "ome-xml")  # 18x24x5x1x5
    assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == (18, 24, 5, 1, 5)
    assert im.status is ReadStatus.metadata_only
    assert "MetadataOnly" in im.error
    assert "metadata-only.ome.xml" in im.error
    assert im.acquired_at == datetime(2010, 3, 2, 10, 1, 15, tzinfo=UTC)


def test_tubhiswt_nikon_instrument() -> None:
    [im] = one("ome-xml/tubhiswt.ome.xml", "ome-xml")
    assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == (512, 512, 1, 2, 20)
    assert (im.microscope.manufacturer, im.microscope.model) == ("Nikon", "Eclipse TE300")
    obj = im.objective
    assert (obj.model, obj.magnification, obj.na, obj.immersion) == ("S Fluor", 100.0, 1.4, "Oil")
    assert im.acquired_at == datetime(2013, 1, 15, 17, 2, 41, tzinfo=UTC)
    assert im.status is ReadStatus.metadata_only
    assert "tubhiswt_C0.ome.tif" in im.error  # its pixel files are not here


def test_mmstack_positions_channels_and_repaired_ids() -> None:
    images = one("ome-xml/MMStack.ome.xml", "ome-xml")
    assert len(images) == 2  # 2 positions
    for n, im in enumerate(images):
        assert im.series == n
        assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == (256, 256, 5, 3, 2)
        assert [c.name for c in im.channels] == ["Cy5", "DAPI", "FITC"]
        assert um(im) == {"x": 2.0, "y": 2.0, "z": 1.75}
        assert im.time_increment_s == pytest.approx(0.001)  # TimeIncrement="1.0" ms
        assert im.pixel_type == "uint16"
        # IDs "Microscope" and "Camera" are invalid OME ids: a data-quality note each
        assert any("'Camera'" in note for note in im.notes)
        assert any("'Microscope'" in note for note in im.notes)
    assert images[0].id != images[1].id


def test_two_screens_plates_and_wells() -> None:
    images = one("ome-xml/two-screens-two-plates-four-wells.ome.xml", "ome-xml")
    assert len(images) == 22
    by_name = {im.name: im for im in images}
    # Well Row/Column are 0-based in OME: Row=1 Column=1 is B02.
    assert (by_name["6x6x1x8-swatch.tif-0"].plate, by_name["6x6x1x8-swatch.tif-0"].well) == (
        "Plate:1",  # the plate has no Name; its ID stands in
        "B02",
    )
    assert by_name["6x6x1x8-swatch.tif-6"].well == "C02"  # Well:1.1.2 Column=1 Row=2
    assert by_name["6x6x1x8-swatch.tif-21"].plate == "twoName"
    assert by_name["6x6x1x8-swatch.tif-21"].well == "C03"  # Well:2.2.2 Column=2 Row=2
    assert sum(im.plate == "twoName" for im in images) == 11
    assert len({im.id for im in images}) == 22


# ------------------------------------------------------------------------------- vendor formats


def test_nd2_cluster() -> None:
    pytest.importorskip("bioio_nd2")
    [im] = one("nd2/cluster.nd2", "bioio")
    assert im.status is ReadStatus.ok, im.error
    assert im.format == "ND2"
    assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == (38, 31, 10, 2, 3)
    assert [c.name for c in im.channels] == ["5-FAM/pH 9.0", "FM 4-64/2% CHAPS"]
    assert um(im)["x"] == pytest.approx(0.168, abs=1e-3)
    assert um(im)["z"] == pytest.approx(0.5)
    assert im.pixel_type == "uint16"


def test_czi_aics() -> None:
    pytest.importorskip("bioio_czi")
    [im] = one("czi/aics_s_1_t_1_c_1_z_1.czi", "bioio")
    assert im.status is ReadStatus.ok, im.error
    assert im.format == "CZI"
    assert (im.size.x, im.size.y, im.size.c) == (475, 325, 1)
    assert [c.name for c in im.channels] == ["Bright"]
    assert um(im)["x"] == pytest.approx(1.0833, abs=1e-3)
    assert im.objective.magnification == 20
    assert im.objective.na == pytest.approx(0.8)
