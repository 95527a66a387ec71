"""Hostile and broken files: nothing escapes, every record says which file and why."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from extract_helpers import entries_of, single

from node.harvest import xml as hxml
from node.harvest.extractors import extract_fileset
from node.harvest.filesets import group_filesets
from node.records import Image, ReadStatus

NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
OME_BODY = (
    f'<OME xmlns="{NS}"><Image ID="Image:0" Name="&e;"><Pixels ID="Pixels:0" '
    'DimensionOrder="XYZCT" Type="uint8" SizeX="2" SizeY="2" SizeZ="1" SizeC="1" SizeT="1">'
    "<MetadataOnly/></Pixels></Image></OME>"
)


def extract_all(folder: Path) -> list[Image]:
    """Group and extract a folder exactly as the harvester does."""
    out: list[Image] = []
    for fs in group_filesets(entries_of(folder, "")):
        out += extract_fileset(fs, "t")
    return out


def only_failure(folder: Path, name: str) -> Image:
    [im] = extract_all(folder)
    assert im.path == name
    assert im.status is ReadStatus.failed
    assert name in im.error
    return im


def test_truncated_tiff_keeping_its_ome_xml(tmp_path: Path) -> None:
    # OME-XML written in the first IFD (before the pixels), then the tail is cut off.
    xml = (
        f'<?xml version="1.0"?><OME xmlns="{NS}"><Image ID="Image:0" Name="cut"><Pixels '
        'ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="64" SizeY="64" SizeZ="3" '
        'SizeC="1" SizeT="1"><TiffData PlaneCount="3"/></Pixels></Image></OME>'
    )
    data = np.arange(3 * 64 * 64, dtype=np.uint16).reshape(3, 64, 64)
    tifffile.imwrite(
        tmp_path / "cut.ome.tif", data, description=xml, metadata=None, photometric="minisblack"
    )
    full = (tmp_path / "cut.ome.tif").stat().st_size
    os.truncate(tmp_path / "cut.ome.tif", full // 2)
    [im] = extract_all(tmp_path)
    # The header and OME-XML survive, the pixels do not.
    assert im.status is ReadStatus.metadata_only
    assert (im.size.x, im.size.y, im.size.z) == (64, 64, 3)
    assert "cut.ome.tif" in im.error
    assert "truncated" in im.error


def test_truncated_tiff_that_lost_its_ome_xml(tmp_path: Path) -> None:
    # tifffile and Bio-Formats write the OME-XML after the pixels: a cut file loses it.
    data = np.arange(3 * 64 * 64, dtype=np.uint16).reshape(3, 64, 64)
    tifffile.imwrite(tmp_path / "cut.ome.tif", data, ome=True, metadata={"axes": "ZYX"})
    full = (tmp_path / "cut.ome.tif").stat().st_size
    os.truncate(tmp_path / "cut.ome.tif", full // 2)
    [im] = extract_all(tmp_path)
    assert im.status is ReadStatus.metadata_only
    assert "cut.ome.tif" in im.error
    assert "truncated" in im.error


def test_truncated_plain_tiff_first_strip(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "cut.tif", np.ones((256, 256), np.uint16))
    os.truncate(tmp_path / "cut.tif", 4000)
    [im] = extract_all(tmp_path)
    assert im.status in (ReadStatus.metadata_only, ReadStatus.failed)
    assert "cut.tif" in im.error
    assert "truncated" in im.error


def test_corrupt_tiff(tmp_path: Path) -> None:
    (tmp_path / "noise.tif").write_bytes(np.random.default_rng(0).bytes(5000))
    im = only_failure(tmp_path, "noise.tif")
    assert "not a readable TIFF" in im.error


def test_corrupt_tiff_with_valid_magic(tmp_path: Path) -> None:
    # A TIFF header whose first IFD offset points far beyond the end of the file.
    (tmp_path / "liar.ome.tiff").write_bytes(b"II*\x00" + struct.pack("<I", 10**9) + b"\0" * 100)
    im = only_failure(tmp_path, "liar.ome.tiff")
    assert "TIFF" in im.error


def _absurd_tiff(width: int, height: int) -> bytes:
    """A classic little-endian TIFF whose only IFD claims width x height uint8 pixels."""
    tags = [
        (256, 4, width),  # ImageWidth (LONG)
        (257, 4, height),  # ImageLength
        (258, 3, 8),  # BitsPerSample (SHORT)
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # Photometric: min-is-black
        (273, 4, 200),  # StripOffsets
        (277, 3, 1),  # SamplesPerPixel
        (278, 4, height),  # RowsPerStrip
        (279, 4, 0xFFFFFFFF),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(tags))
    for tag, typ, value in tags:
        packed = struct.pack("<I", value) if typ == 4 else struct.pack("<HH", value, 0)
        ifd += struct.pack("<HHI", tag, typ, 1) + packed
    data = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
    return data + b"\0" * (300 - len(data))


def test_header_claiming_absurd_dimensions(tmp_path: Path) -> None:
    (tmp_path / "huge.tif").write_bytes(_absurd_tiff(4294967295, 4294967295))
    im = only_failure(tmp_path, "huge.tif")
    assert "4294967295 x 4294967295" in im.error


def test_voxel_count_the_file_cannot_hold(tmp_path: Path) -> None:
    # 1,000,000 x 1,000,000 pixels are within the side limit but not in a 300-byte file.
    (tmp_path / "big.tif").write_bytes(_absurd_tiff(1_000_000, 1_000_000))
    im = only_failure(tmp_path, "big.tif")
    assert "1000000x1000000" in im.error
    assert "cannot hold" in im.error


def test_ome_xml_claiming_absurd_size_in_tiny_ome_tiff(tmp_path: Path) -> None:
    xml = (
        f'<?xml version="1.0"?><OME xmlns="{NS}"><Image ID="Image:0"><Pixels ID="Pixels:0" '
        'DimensionOrder="XYZCT" Type="uint16" SizeX="100000" SizeY="100000" SizeZ="10000" '
        'SizeC="1" SizeT="1"><TiffData/></Pixels></Image></OME>'
    )
    tifffile.imwrite(
        tmp_path / "lie.ome.tif", np.zeros((4, 4), np.uint16), description=xml, metadata=None
    )
    im = only_failure(tmp_path, "lie.ome.tif")
    assert "100000x100000x10000" in im.error


def test_external_entity_is_not_resolved(tmp_path: Path) -> None:
    xxe = f'<?xml version="1.0"?><!DOCTYPE OME [<!ENTITY e SYSTEM "file:///etc/passwd">]>{OME_BODY}'
    (tmp_path / "xxe.ome.xml").write_text(xxe)
    im = only_failure(tmp_path, "xxe.ome.xml")
    assert "DTD" in im.error or "entity" in im.error
    assert "root:" not in im.model_dump_json()


def test_external_entity_in_tiff_description(tmp_path: Path) -> None:
    xxe = f'<?xml version="1.0"?><!DOCTYPE OME [<!ENTITY e SYSTEM "file:///etc/passwd">]>{OME_BODY}'
    tifffile.imwrite(
        tmp_path / "xxe.ome.tif", np.zeros((2, 2), np.uint8), description=xxe, metadata=None
    )
    im = only_failure(tmp_path, "xxe.ome.tif")
    assert "refused" in im.error
    assert "root:" not in im.model_dump_json()


def test_billion_laughs(tmp_path: Path) -> None:
    ents = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    bomb = f'<?xml version="1.0"?><!DOCTYPE OME [{ents}<!ENTITY e "&a9;">]>{OME_BODY}'
    (tmp_path / "lol.ome.xml").write_text(bomb)
    im = only_failure(tmp_path, "lol.ome.xml")
    assert "refused" in im.error


def test_billion_laughs_without_dtd_check() -> None:
    # Even with DTDs allowed, defusedxml must refuse the entity declarations themselves.
    ents = '<!ENTITY a0 "lol"><!ENTITY a1 "&a0;&a0;&a0;&a0;&a0;&a0;&a0;&a0;">'
    with pytest.raises(hxml.XmlError, match="entit|DTD"):
        hxml.parse_xml(f'<!DOCTYPE OME [{ents}]><OME xmlns="{NS}">&a1;</OME>', "inline.xml")


def test_oversize_xml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hxml, "MAX_XML_BYTES", 4096)
    pad = "<!--" + "x" * 8000 + "-->"
    (tmp_path / "big.ome.xml").write_text(
        OME_BODY.replace("&e;", "big").replace("</OME>", pad + "</OME>")
    )
    im = only_failure(tmp_path, "big.ome.xml")
    assert "4096 byte limit" in im.error


def test_oversize_xml_at_the_real_limit_is_refused_without_reading(tmp_path: Path) -> None:
    p = tmp_path / "huge.ome.xml"
    with open(p, "wb") as fh:  # sparse: 64 MiB + 1 byte without writing them
        fh.write(b"<OME>")
        fh.truncate(hxml.MAX_XML_BYTES + 1)
    im = only_failure(tmp_path, "huge.ome.xml")
    assert "limit" in im.error


@pytest.mark.parametrize("name", ["empty.ome.tif", "empty.tif", "empty.ome.xml", "empty.czi"])
def test_zero_byte_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    im = only_failure(tmp_path, name)
    assert "empty" in im.error or "0 bytes" in im.error


def test_file_deleted_between_grouping_and_extraction(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "gone.ome.tif", np.zeros((4, 4), np.uint8), ome=True)
    [fs] = group_filesets(entries_of(tmp_path, ""))
    (tmp_path / "gone.ome.tif").unlink()
    [im] = extract_fileset(fs, "t")
    assert im.status is ReadStatus.failed
    assert "gone.ome.tif" in im.error
    assert "vanished" in im.error


def test_companion_member_deleted_between_grouping_and_extraction(tmp_path: Path) -> None:
    from extract_helpers import SAMPLES

    src = SAMPLES / "ome-tiff-multifile"
    for p in src.iterdir():
        (tmp_path / p.name).write_bytes(p.read_bytes())
    [fs] = group_filesets(entries_of(tmp_path, ""))
    (tmp_path / "multifile-Z2.ome.tiff").unlink()
    [im] = extract_fileset(fs, "t")
    assert im.status is ReadStatus.metadata_only
    assert "multifile-Z2.ome.tiff" in im.error


@pytest.mark.parametrize(
    ("name", "kind"), [("folder.ome.tif", "ome-tiff"), ("x.czi", "bioio"), ("y.ome.xml", "ome-xml")]
)
def test_directory_named_like_a_file(tmp_path: Path, name: str, kind: str) -> None:
    (tmp_path / name).mkdir()
    # The walker would not pass it as a file; a race (file replaced by a folder) could.
    filesets = group_filesets(entries_of(tmp_path, ""))
    assert [fs.main.rel for fs in filesets] == [name]
    [im] = extract_fileset(single(tmp_path / name, kind), "t")
    assert im.status is ReadStatus.failed
    assert name in im.error
    assert "directory" in im.error


def test_not_ome_xml(tmp_path: Path) -> None:
    (tmp_path / "svg.ome.xml").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    im = only_failure(tmp_path, "svg.ome.xml")
    assert "not OME-XML" in im.error
    assert "<svg>" in im.error


def test_malformed_ome_xml(tmp_path: Path) -> None:
    (tmp_path / "broken.companion.ome").write_text(f'<OME xmlns="{NS}"><Image>')
    im = only_failure(tmp_path, "broken.companion.ome")
    assert "not well-formed" in im.error


def test_garbage_vendor_file(tmp_path: Path) -> None:
    pytest.importorskip("bioio")
    (tmp_path / "junk.nd2").write_bytes(b"this is not an nd2 file" * 100)
    im = only_failure(tmp_path, "junk.nd2")
    assert "bioio" in im.error
