"""Grouping the files of one folder into filesets, and OME-Zarr directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from extract_helpers import SAMPLES, entries_of

from node.harvest.entries import FileEntry
from node.harvest.extractors import extract_fileset
from node.harvest.filesets import group_filesets, is_ome_zarr_dir, zarr_metadata_files
from node.records import ReadStatus

MULTI = SAMPLES / "ome-tiff-multifile"
NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


def copy(names: list[str], src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy(src / n, dst / n)
    return dst


def names(fs) -> list[str]:
    return sorted(Path(m.rel).name for m in fs.members)


def test_companion_set_is_one_fileset_and_sidecars_are_ignored(tmp_path: Path) -> None:
    d = copy(sorted(p.name for p in MULTI.iterdir()), MULTI, tmp_path / "set")
    for extra in ("dataset.toml", "dataset.yaml", "dataset.json", "README.md", "notes.txt"):
        (d / extra).write_text("x = 1\n")
    (d / "table.csv").write_text("a,b\n")
    (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (d / "._multifile-Z1.ome.tiff").write_bytes(b"\0\5\26\7")  # macOS AppleDouble
    [fs] = group_filesets(entries_of(d))
    assert fs.kind == "ome-tiff"
    assert fs.main.rel == "set/multifile.companion.ome"
    assert fs.members[0] is fs.main
    assert names(fs) == sorted(p.name for p in MULTI.iterdir())
    assert fs.total_size == sum(p.stat().st_size for p in MULTI.iterdir())


def test_missing_member_of_companion_set_is_a_note(tmp_path: Path) -> None:
    keep = [p.name for p in MULTI.iterdir() if p.name != "multifile-Z3.ome.tiff"]
    d = copy(keep, MULTI, tmp_path / "set")
    [fs] = group_filesets(entries_of(d))
    assert len(fs.members) == 5
    [im] = extract_fileset(fs, "t")
    assert im.size.z == 5
    assert im.status is ReadStatus.metadata_only
    assert "multifile-Z3.ome.tiff" in im.error
    assert "missing" in im.error
    assert any("multifile-Z3.ome.tiff" in n for n in im.notes)


def test_binary_only_members_without_their_metadata_file(tmp_path: Path) -> None:
    tiffs = [f"multifile-Z{i}.ome.tiff" for i in range(1, 6)]
    d = copy(tiffs, MULTI, tmp_path / "set")
    filesets = group_filesets(entries_of(d))
    # Never five lone 18x24 images: one fileset, one failed record that says why.
    assert len(filesets) == 1
    assert names(filesets[0]) == tiffs
    [im] = extract_fileset(filesets[0], "t")
    assert im.status is ReadStatus.failed
    assert "BinaryOnly" in im.error
    assert "multifile.companion.ome" in im.error
    assert "multifile-Z1.ome.tiff" in im.error
    assert len(im.files) == 5


def _ome(uuid: str, files: list[tuple[str, str]], z: int) -> str:
    tds = "".join(
        f'<TiffData FirstZ="{i}" IFD="0" PlaneCount="1"><UUID FileName="{fn}">{u}</UUID></TiffData>'
        for i, (fn, u) in enumerate(files)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="{uuid}">'
        f'<Image ID="Image:0" Name="master"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" '
        f'Type="uint8" SizeX="8" SizeY="6" SizeZ="{z}" SizeC="1" SizeT="1">'
        f'<Channel ID="Channel:0:0" Name="DAPI" SamplesPerPixel="1"/>{tds}</Pixels></Image></OME>'
    )


def test_master_ome_tiff_links_its_binary_only_member(tmp_path: Path) -> None:
    u1, u2 = "urn:uuid:11111111-0000-0000-0000-000000000001", "urn:uuid:2222"
    plane = np.zeros((6, 8), np.uint8)
    files = [("a.ome.tif", u1), ("b.ome.tif", u2)]
    tifffile.imwrite(tmp_path / "a.ome.tif", plane, description=_ome(u1, files, 2), metadata=None)
    binary_only = (
        f'<?xml version="1.0"?><OME xmlns="{NS}" UUID="{u2}">'
        f'<BinaryOnly MetadataFile="a.ome.tif" UUID="{u1}"/></OME>'
    )
    tifffile.imwrite(tmp_path / "b.ome.tif", plane, description=binary_only, metadata=None)
    tifffile.imwrite(tmp_path / "plain.tif", plane)
    filesets = group_filesets(entries_of(tmp_path, ""))
    assert [(fs.main.rel, fs.kind, names(fs)) for fs in filesets] == [
        ("a.ome.tif", "ome-tiff", ["a.ome.tif", "b.ome.tif"]),
        ("plain.tif", "tiff", ["plain.tif"]),
    ]
    [im] = extract_fileset(filesets[0], "t")
    assert im.status is ReadStatus.ok, im.error
    assert im.size.z == 2
    assert [c.name for c in im.channels] == ["DAPI"]
    assert im.files == ["a.ome.tif", "b.ome.tif"]


def test_only_image_files_are_returned(tmp_path: Path) -> None:
    for n in ("dataset.toml", "a.txt", "b.md", "c.csv", "d.json", "e.xml", ".hidden.tif", "f.png"):
        (tmp_path / n).write_text("not an image")
    tifffile.imwrite(tmp_path / "img.tif", np.zeros((4, 4), np.uint8))
    (tmp_path / "scan.czi").write_bytes(b"ZISRAWFILE")
    filesets = group_filesets(entries_of(tmp_path, ""))
    assert [(fs.main.rel, fs.kind) for fs in filesets] == [
        ("img.tif", "tiff"),
        ("scan.czi", "bioio"),
    ]


def test_ome_xml_alone_is_its_own_fileset(tmp_path: Path) -> None:
    d = copy(["tubhiswt.ome.xml"], SAMPLES / "ome-xml", tmp_path / "x")
    [fs] = group_filesets(entries_of(d))
    assert (fs.kind, names(fs)) == ("ome-xml", ["tubhiswt.ome.xml"])


# ------------------------------------------------------------------------------- OME-Zarr


def _multiscales(version: str) -> dict:
    return {
        "version": version,
        "name": "cells",
        "axes": [
            {"name": "c", "type": "channel"},
            {"name": "z", "type": "space", "unit": "micrometer"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"},
        ],
        "datasets": [
            {
                "path": "0",
                "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 0.5, 0.5]}],
            },
            {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 1, 1]}]},
        ],
    }


OMERO = {"channels": [{"label": "DAPI", "color": "0000FF"}, {"label": "GFP", "color": "00FF00"}]}


def write_zarr_v04(root: Path) -> Path:
    """A tiny OME-Zarr v0.4 (zarr v2) image written by hand: JSON plus one chunk."""
    root.mkdir(parents=True)
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    attrs = {"multiscales": [_multiscales("0.4")], "omero": OMERO}
    (root / ".zattrs").write_text(json.dumps(attrs))
    for lvl, shape in (("0", [2, 3, 32, 48]), ("1", [2, 3, 16, 24])):
        (root / lvl).mkdir()
        zarray = {
            "zarr_format": 2,
            "shape": shape,
            "chunks": shape,
            "dtype": "<u2",
            "compressor": None,
            "fill_value": 0,
            "order": "C",
            "filters": None,
        }
        (root / lvl / ".zarray").write_text(json.dumps(zarray))
        (root / lvl / "0.0.0.0").write_bytes(np.zeros(shape, "<u2").tobytes())
    return root


def write_zarr_v05(root: Path) -> Path:
    """A tiny OME-Zarr v0.5 (zarr v3) image written by hand."""
    root.mkdir(parents=True)
    group = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {
            "ome": {"version": "0.5", "multiscales": [_multiscales("0.5")], "omero": OMERO}
        },
    }
    (root / "zarr.json").write_text(json.dumps(group))
    for lvl, shape in (("0", [2, 3, 32, 48]), ("1", [2, 3, 16, 24])):
        (root / lvl / "c").mkdir(parents=True)
        arr = {
            "zarr_format": 3,
            "node_type": "array",
            "shape": shape,
            "data_type": "uint16",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": shape}},
            "chunk_key_encoding": {"name": "default"},
            "fill_value": 0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        }
        (root / lvl / "zarr.json").write_text(json.dumps(arr))
        (root / lvl / "c" / "0").write_bytes(np.zeros(shape, "<u2").tobytes())
    return root


@pytest.mark.parametrize("writer", [write_zarr_v04, write_zarr_v05])
def test_ome_zarr_directory(tmp_path: Path, writer) -> None:
    z = writer(tmp_path / "cells.ome.zarr")
    assert is_ome_zarr_dir(str(z))
    meta = sorted(Path(p).relative_to(z).as_posix() for p in zarr_metadata_files(str(z)))
    if writer is write_zarr_v04:
        assert meta == [".zattrs", ".zgroup", "0/.zarray"]
    else:
        assert meta == ["0/zarr.json", "zarr.json"]
    entry = FileEntry(rel="cells.ome.zarr", abs=str(z), size=1, mtime_ns=1, is_dir=True)
    tifffile.imwrite(tmp_path / "other.tif", np.zeros((2, 2), np.uint8))
    filesets = group_filesets([entry, *entries_of(tmp_path, "")[1:]])
    assert [(fs.main.rel, fs.kind) for fs in filesets] == [
        ("cells.ome.zarr", "ome-zarr"),
        ("other.tif", "tiff"),
    ]
    [im] = extract_fileset(filesets[0], "t")
    assert im.status is ReadStatus.ok, im.error
    assert im.format == "OME-Zarr"
    assert im.name == "cells"
    assert (im.size.x, im.size.y, im.size.z, im.size.c, im.size.t) == (48, 32, 3, 2, 1)
    assert im.pixel_type == "uint16"
    assert im.pyramid_levels == 2
    assert im.physical_size_um == {"x": 0.5, "y": 0.5, "z": 2.0}
    assert im.physical_size["x"].original_unit == "micrometer"
    assert [(c.name, c.color) for c in im.channels] == [("DAPI", "#0000ff"), ("GFP", "#00ff00")]


def test_plain_directories_are_not_ome_zarr(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert not is_ome_zarr_dir(str(tmp_path / "plain"))
    (tmp_path / "zarr2").mkdir()
    (tmp_path / "zarr2" / ".zgroup").write_text('{"zarr_format": 2}')
    assert not is_ome_zarr_dir(str(tmp_path / "zarr2"))  # a zarr group, but no multiscales
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / ".zattrs").write_text("{not json")
    assert not is_ome_zarr_dir(str(tmp_path / "bad"))
    assert not is_ome_zarr_dir(str(tmp_path / "missing"))


def test_ome_zarr_without_level_zero_metadata_is_metadata_only(tmp_path: Path) -> None:
    z = write_zarr_v04(tmp_path / "c.zarr")
    (z / "0" / ".zarray").unlink()
    entry = FileEntry(rel="c.zarr", abs=str(z), size=1, mtime_ns=1, is_dir=True)
    [fs] = group_filesets([entry])
    [im] = extract_fileset(fs, "t")
    assert im.status is ReadStatus.metadata_only
    assert "c.zarr" in im.error
    assert "missing" in im.error


def test_bioformats2raw_layout_gives_one_image_per_series(tmp_path: Path) -> None:
    root = tmp_path / "plate.zarr"
    root.mkdir()
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (root / ".zattrs").write_text(json.dumps({"bioformats2raw.layout": 3}))
    write_zarr_v04(root / "0")
    write_zarr_v04(root / "1")
    assert is_ome_zarr_dir(str(root))
    meta = sorted(Path(p).relative_to(root).as_posix() for p in zarr_metadata_files(str(root)))
    assert meta == [".zattrs", ".zgroup"] + [
        f"{s}/{f}" for s in "01" for f in (".zattrs", ".zgroup", "0/.zarray")
    ]
    entry = FileEntry(rel="plate.zarr", abs=str(root), size=1, mtime_ns=1, is_dir=True)
    images = extract_fileset(group_filesets([entry])[0], "t")
    assert [(im.series, im.status, im.size.x) for im in images] == [
        (0, ReadStatus.ok, 48),
        (1, ReadStatus.ok, 48),
    ]
    assert images[0].id != images[1].id
