"""OME-XML → Image fields on a hand-written document that exercises every mapped field."""

from __future__ import annotations

from pathlib import Path

import pytest
from extract_helpers import single

from node.harvest.extractors import extract_fileset
from node.harvest.extractors.ome_xml import color_hex, parse_ome, real_channel_name, well_name
from node.harvest.xml import parse_xml
from node.records import ReadStatus

NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
DOC = f"""<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="{NS}">
  <Plate ID="Plate:0" Name="screen plate 7">
    <Well ID="Well:0" Row="0" Column="0"><WellSample ID="WellSample:0" Index="0">
      <ImageRef ID="Image:0"/></WellSample></Well>
    <Well ID="Well:1" Row="7" Column="11"><WellSample ID="WellSample:1" Index="1">
      <ImageRef ID="Image:1"/></WellSample></Well>
  </Plate>
  <Instrument ID="Instrument:0">
    <Objective ID="Objective:0:0" Model="other" NominalMagnification="10" LensNA="0.3"/>
  </Instrument>
  <Instrument ID="Instrument:1">
    <Microscope Manufacturer="Zeiss" Model="Axio Observer" Type="Inverted"/>
    <Detector ID="Detector:1:0" Manufacturer="Hamamatsu" Model="ORCA" Type="CMOS"/>
    <Detector ID="Detector:1:1" Manufacturer="Unused" Model="PMT-1" Type="PMT"/>
    <Objective ID="Objective:1:0" Model="wrong" NominalMagnification="5" LensNA="0.1"/>
    <Objective ID="Objective:1:1" Manufacturer="Zeiss" Model="Plan-Apo 63x/1.4 Oil"
               NominalMagnification="63" LensNA="1.4" Immersion="Oil"/>
  </Instrument>
  <Image ID="Image:0" Name="first">
    <AcquisitionDate>2024-05-06T07:08:09Z</AcquisitionDate>
    <InstrumentRef ID="Instrument:1"/>
    <ObjectiveSettings ID="Objective:1:1"/>
    <Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="64" SizeY="32" SizeZ="4"
            SizeC="3" SizeT="2" PhysicalSizeX="650" PhysicalSizeXUnit="nm"
            PhysicalSizeY="650000" PhysicalSizeYUnit="pm" PhysicalSizeZ="0.0002"
            PhysicalSizeZUnit="cm" TimeIncrement="250" TimeIncrementUnit="ms">
      <Channel ID="Channel:0:0" Name="GFP" Fluor="EGFP" ExcitationWavelength="0.488"
               ExcitationWavelengthUnit="µm" EmissionWavelength="520"
               AcquisitionMode="LaserScanningConfocalMicroscopy" ContrastMethod="Fluorescence"
               IlluminationType="Epifluorescence" Color="-16776961">
        <DetectorSettings ID="Detector:1:0"/>
      </Channel>
      <Channel ID="Channel:0:1" Name="Channel:0:1" Color="65535"/>
      <Channel ID="Channel:0:2" Name="Channel:0:2"/>
      <MetadataOnly/>
    </Pixels>
    <AnnotationRef ID="Annotation:0"/>
  </Image>
  <Image ID="Image:1">
    <Pixels ID="Pixels:1" DimensionOrder="XYZCT" Type="float" SizeX="8" SizeY="8" SizeZ="1"
            SizeC="1" SizeT="1"><MetadataOnly/></Pixels>
  </Image>
  <StructuredAnnotations>
    <MapAnnotation ID="Annotation:0"><Value><M K="genotype">wt</M><M K="dose">5 µM</M></Value>
    </MapAnnotation>
    <XMLAnnotation ID="Annotation:9"><Value><Image ID="Image:99"/><Channel Name="x"/></Value>
    </XMLAnnotation>
  </StructuredAnnotations>
</OME>
"""


@pytest.fixture
def images(tmp_path: Path):
    p = tmp_path / "doc.ome.xml"
    p.write_text(DOC, encoding="utf-8")
    return extract_fileset(single(p, "ome-xml"), "t")


def test_one_record_per_ome_image_and_xml_annotations_ignored(images) -> None:
    assert [im.name for im in images] == ["first", None]
    assert [im.series for im in images] == [0, 1]
    assert all(im.status is ReadStatus.metadata_only for im in images)


def test_pixels_units_and_time(images) -> None:
    im = images[0]
    assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == (64, 32, 4, 3, 2)
    assert (im.dimension_order, im.pixel_type) == ("XYCZT", "uint16")
    assert im.physical_size_um == pytest.approx({"x": 0.65, "y": 0.65, "z": 2.0})
    assert (im.physical_size["z"].original_value, im.physical_size["z"].original_unit) == (
        0.0002,
        "cm",
    )
    assert im.time_increment_s == pytest.approx(0.25)
    assert images[1].pixel_type == "float"


def test_channels(images) -> None:
    gfp, second, third = images[0].channels
    assert (gfp.name, gfp.fluor) == ("GFP", "EGFP")
    assert gfp.excitation_nm == pytest.approx(488.0)
    assert gfp.emission_nm == 520.0
    assert gfp.acquisition_mode == "LaserScanningConfocalMicroscopy"
    assert gfp.contrast_method == "Fluorescence"
    assert gfp.illumination == "Epifluorescence"
    assert gfp.color == "#ff0000"  # -16776961 = 0xFF0000FF (RGBA)
    assert (second.name, second.color) == (None, "#0000ff")  # invented name dropped
    assert (third.name, third.color) == (None, None)


def test_instrument_objective_detectors(images) -> None:
    im = images[0]
    assert (im.microscope.manufacturer, im.microscope.model, im.microscope.type) == (
        "Zeiss",
        "Axio Observer",
        "Inverted",
    )
    o = im.objective  # chosen by ObjectiveSettings among the instrument's two objectives
    assert (o.model, o.manufacturer, o.magnification, o.na, o.immersion) == (
        "Plan-Apo 63x/1.4 Oil",
        "Zeiss",
        63.0,
        1.4,
        "Oil",
    )
    assert [(d.manufacturer, d.model, d.type) for d in im.detectors] == [
        ("Hamamatsu", "ORCA", "CMOS")  # only the detector the channels use
    ]
    assert images[1].objective is None  # two instruments, no reference: nothing is guessed


def test_date_plate_well_annotations(images) -> None:
    im = images[0]
    assert im.acquired_at.isoformat() == "2024-05-06T07:08:09+00:00"
    assert (im.plate, im.well) == ("screen plate 7", "A01")
    assert images[1].well == "H12"
    assert im.key_values == {"genotype": "wt", "dose": "5 µM"}


def test_helpers() -> None:
    assert color_hex("-1") == "#ffffff"
    assert color_hex("-2147483648") == "#800000"
    assert color_hex("junk") is None
    assert real_channel_name("Channel:1:0", "Channel:1:0") is None
    assert real_channel_name("C1", "Channel:0:0") == "C1"
    assert real_channel_name("  ", None) is None
    assert well_name(0, 0) == "A01"
    assert well_name(26, 47) == "AA48"  # 1536-well plates have 32 rows
    assert well_name(1, 2, "number") == "02-03"
    assert well_name(None, 2) is None


def test_not_ome_and_binary_only() -> None:
    doc = parse_ome(
        parse_xml(f'<OME xmlns="{NS}"><BinaryOnly MetadataFile="a.companion.ome"/></OME>', "b"),
        "b",
    )
    assert doc.binary_only == "a.companion.ome"
    assert doc.images == []
