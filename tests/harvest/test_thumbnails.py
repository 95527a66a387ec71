"""Thumbnails from real sample files and from files written here (node/harvest/thumbnails.py).

Image records are built by hand from what tests/data/samples (and its MANIFEST) says about
each file, so these tests do not depend on the extractors.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from node.harvest import thumbnails
from node.harvest.thumbnails import ThumbnailError, make_thumbnail
from node.records import Channel, Image, ReadStatus, Size5D

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def record(path: str, fmt: str = "OME-TIFF", **kw: object) -> Image:
    return Image(id="im-test", path=path, format=fmt, **kw)


def open_png(out_dir: Path, name: str) -> np.ndarray:
    assert name == "im-test.png"
    png = out_dir / name
    assert png.is_file()
    with PILImage.open(png) as pic:
        assert pic.format == "PNG"
        assert pic.mode == "RGB"
        return np.asarray(pic)


def assert_fits(rgb: np.ndarray, full_yx: tuple[int, int], max_side: int) -> None:
    """Longest side within max_side (and equal to it when the source is bigger), aspect kept."""
    h, w = rgb.shape[:2]
    fy, fx = full_yx
    assert max(h, w) <= max_side
    if max(fy, fx) >= max_side:
        assert max(h, w) == max_side
    assert abs(w / h - fx / fy) <= 1.5 / min(h, w)  # within a rounding pixel


def correlation(thumb_grey: np.ndarray, plane: np.ndarray) -> float:
    """Pearson correlation of the thumbnail with the source plane scaled to the same size."""
    h, w = thumb_grey.shape
    small = PILImage.fromarray(plane.astype(np.float32), "F").resize((w, h), PILImage.BILINEAR)
    a = thumb_grey.astype(np.float64).ravel()
    b = np.asarray(small, np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def assert_no_leftovers(out_dir: Path) -> None:
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


@pytest.fixture(params=["pages", "zarr"])
def tiff_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a TIFF test through both read paths: the page of the plane (no zarr installed)
    and the strided zarr view (normally only taken for planes above DIRECT_READ_BYTES)."""
    if request.param == "zarr":
        pytest.importorskip("zarr")
        monkeypatch.setattr(thumbnails, "DIRECT_READ_BYTES", 0)
    else:
        monkeypatch.setattr(thumbnails, "_zarr", lambda: None)
    return str(request.param)


# --------------------------------------------------------------------------- real samples

SINGLE_PLANE = [
    # path, format, plane of the source to compare with (index into tifffile.imread)
    ("ome-tiff/single-channel.ome.tif", "OME-TIFF", ()),
    ("ome-tiff/aics_s_1_t_1_c_1_z_1.ome.tiff", "OME-TIFF", ()),
    ("tiff/aics_s_1_t_1_c_1_z_1.tiff", "TIFF", ()),
    ("ome-tiff/z-series.ome.tif", "OME-TIFF", (2,)),  # Z=5: the middle plane
]


@pytest.mark.parametrize(("path", "fmt", "index"), SINGLE_PLANE)
def test_single_channel_samples_are_grey_and_match_the_source(
    tmp_path: Path, path: str, fmt: str, index: tuple[int, ...], tiff_reader: str
) -> None:
    plane = tifffile.imread(SAMPLES / path)[index]
    name = make_thumbnail(record(path, fmt), SAMPLES, tmp_path, max_side=128)
    rgb = open_png(tmp_path, name)
    assert_fits(rgb, plane.shape, 128)
    # One channel without a colour is shown grey: R == G == B.
    assert np.array_equal(rgb[..., 0], rgb[..., 1])
    assert np.array_equal(rgb[..., 1], rgb[..., 2])
    assert plane.std() > 0
    assert rgb.std() > 10
    assert correlation(rgb[..., 0], plane) > 0.9


def test_z_series_uses_the_middle_plane(tmp_path: Path) -> None:
    stack = tifffile.imread(SAMPLES / "ome-tiff/z-series.ome.tif")
    rgb = open_png(tmp_path, make_thumbnail(record("ome-tiff/z-series.ome.tif"), SAMPLES, tmp_path))
    scores = [correlation(rgb[..., 0], stack[z]) for z in range(stack.shape[0])]
    assert int(np.argmax(scores)) == 2


def test_multi_channel_sample_composites_three_channels(tmp_path: Path, tiff_reader: str) -> None:
    path = "ome-tiff/multi-channel.ome.tif"
    data = tifffile.imread(SAMPLES / path)  # CYX (3, 167, 439) int8
    rgb = open_png(tmp_path, make_thumbnail(record(path), SAMPLES, tmp_path))
    assert_fits(rgb, data.shape[1:], 256)
    # Default palette magenta, green, cyan: red comes from channel 0 only, blue from 0 and 2.
    assert correlation(rgb[..., 0], data[0]) > 0.9
    assert rgb.std() > 10


def test_constant_sample_gives_flat_grey(tmp_path: Path) -> None:
    path = "ome-tiff/ome-types_ome.tiff"  # 2 channels of 6x6 zeros
    assert not tifffile.imread(SAMPLES / path).any()
    rgb = open_png(tmp_path, make_thumbnail(record(path), SAMPLES, tmp_path))
    assert rgb.shape == (6, 6, 3)
    assert rgb.std() == 0
    assert 100 <= rgb.mean() <= 160


@pytest.mark.parametrize(
    "main", ["multifile.companion.ome", "multifile-Z1.ome.tiff", "multifile-Z4.ome.tiff"]
)
def test_multifile_ome_tiff_reads_the_middle_plane_from_its_member(
    tmp_path: Path, main: str
) -> None:
    folder = "ome-tiff-multifile"
    files = [f"{folder}/multifile-Z{i}.ome.tiff" for i in range(1, 6)]
    files.append(f"{folder}/multifile.companion.ome")
    image = record(f"{folder}/{main}", files=files, size=Size5D(x=18, y=24, z=5))
    rgb = open_png(tmp_path, make_thumbnail(image, SAMPLES, tmp_path))
    assert rgb.shape == (24, 18, 3)
    planes = [tifffile.imread(SAMPLES / f) for f in files[:5]]
    scores = [correlation(rgb[..., 0], p) for p in planes]
    assert scores[2] > 0.99  # Z=5, the middle one is Z3
    assert int(np.argmax(scores)) == 2


def write_master_multifile(folder: Path) -> list[str]:
    """A 3-plane Z stack over three OME-TIFFs: the first holds the OME-XML (the master), the
    others are BinaryOnly members pointing at it. Plane z has a bright band at x=10z..10z+10."""
    names = [f"mf-{z}.ome.tif" for z in range(3)]
    uuids = [f"urn:uuid:00000000-0000-0000-0000-00000000000{z + 1}" for z in range(3)]
    ns = 'xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"'
    tiffdata = "".join(
        f'<TiffData FirstZ="{z}" IFD="0" PlaneCount="1"><UUID FileName="{n}">{u}</UUID></TiffData>'
        for z, (n, u) in enumerate(zip(names, uuids, strict=True))
    )
    master = (
        f'<OME {ns} UUID="{uuids[0]}"><Image ID="Image:0"><Pixels ID="Pixels:0" '
        'DimensionOrder="XYZCT" Type="uint8" SizeX="30" SizeY="20" SizeZ="3" SizeC="1" '
        f'SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>{tiffdata}</Pixels></Image>'
        "</OME>"
    )
    for z, (n, u) in enumerate(zip(names, uuids, strict=True)):
        plane = np.zeros((20, 30), np.uint8)
        plane[:, 10 * z : 10 * z + 10] = 200
        member = f'<BinaryOnly MetadataFile="{names[0]}" UUID="{uuids[0]}"/>'
        desc = master if z == 0 else f'<OME {ns} UUID="{u}">{member}</OME>'
        tifffile.imwrite(folder / n, plane, description=desc, metadata=None)
    return names


@pytest.mark.parametrize("main", [0, 2])
def test_master_multifile_ome_tiff_follows_the_uuid_links(
    tmp_path: Path, main: int, tiff_reader: str
) -> None:
    names = write_master_multifile(tmp_path)
    out = tmp_path / "out"
    image = record(names[main], files=names, size=Size5D(x=30, y=20, z=3))
    rgb = open_png(out, make_thumbnail(image, tmp_path, out))
    bright = rgb[10, :, 0] > 128
    assert bright[10:20].all()  # the middle plane, z=1, lives in the second file
    assert not bright[:10].any()
    assert not bright[20:].any()


def test_nd2_through_bioio(tmp_path: Path) -> None:
    pytest.importorskip("bioio_nd2")
    image = record("nd2/cluster.nd2", "ND2", size=Size5D(x=38, y=31, z=10, c=2, t=3))
    rgb = open_png(tmp_path, make_thumbnail(image, SAMPLES, tmp_path))
    assert rgb.shape == (31, 38, 3)
    assert rgb.std() > 10
    # Two channels, default magenta + green: both red and green carry signal.
    assert rgb[..., 0].std() > 5
    assert rgb[..., 1].std() > 5


def test_bioio_plane_over_the_memory_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("bioio_czi")
    monkeypatch.setattr(thumbnails, "MAX_PLANE_BYTES", 100_000)  # the plane is ~300 KB
    image = record("czi/aics_s_1_t_1_c_1_z_1.czi", "CZI")
    with pytest.raises(ThumbnailError, match=r"\.czi: plane too large without a pyramid"):
        make_thumbnail(image, SAMPLES, tmp_path)
    assert_no_leftovers(tmp_path)


def test_czi_through_bioio_matches_its_tiff_twin(tmp_path: Path) -> None:
    pytest.importorskip("bioio_czi")
    image = record("czi/aics_s_1_t_1_c_1_z_1.czi", "CZI", size=Size5D(x=475, y=325))
    rgb = open_png(tmp_path, make_thumbnail(image, SAMPLES, tmp_path, max_side=200))
    plane = tifffile.imread(SAMPLES / "tiff/aics_s_1_t_1_c_1_z_1.tiff")  # the same acquisition
    assert_fits(rgb, plane.shape, 200)
    assert correlation(rgb[..., 0], plane) > 0.9


# --------------------------------------------------------------------------- colours and types


def test_channel_colours_show(tmp_path: Path, tiff_reader: str) -> None:
    rng = np.random.default_rng(1)
    data = np.zeros((2, 200, 300), np.uint16)
    data[0, :, :150] = rng.integers(1000, 3000, (200, 150))  # channel 0 only on the left
    data[1, :, 150:] = rng.integers(1000, 3000, (200, 150))  # channel 1 only on the right
    tifffile.imwrite(tmp_path / "two.ome.tif", data, ome=True, metadata={"axes": "CYX"})
    out = tmp_path / "out"
    rgb = open_png(out, make_thumbnail(record("two.ome.tif"), tmp_path, out)).astype(float)
    left, right = rgb[:, :120].mean(axis=(0, 1)), rgb[:, -120:].mean(axis=(0, 1))
    # Left: magenta (red and blue, no green). Right: green (no red, no blue).
    assert left[0] > 60
    assert left[2] > 60
    assert left[1] < 10
    assert right[1] > 60
    assert right[0] < 10
    assert right[2] < 10


def test_channel_colour_from_the_record_wins(tmp_path: Path) -> None:
    y, x = np.mgrid[0:64, 0:96]
    tifffile.imwrite(tmp_path / "one.ome.tif", (x * 10).astype(np.uint16), ome=True)
    image = record("one.ome.tif", channels=[Channel(name="GFP", color="#ff0000")])
    rgb = open_png(tmp_path / "o", make_thumbnail(image, tmp_path, tmp_path / "o"))
    assert rgb[..., 0].max() > 200
    assert rgb[..., 1].max() == 0
    assert rgb[..., 2].max() == 0


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_signed_and_float_planes_are_scaled(tmp_path: Path, dtype: type) -> None:
    y, x = np.mgrid[0:50, 0:100]
    data = (x - 50).astype(dtype)  # negative on the left, positive on the right
    if np.issubdtype(dtype, np.floating):
        data = data / 1000
        data[0, 0] = np.nan  # ignored by the contrast, shown black
    tifffile.imwrite(tmp_path / "ramp.tif", data)
    rgb = open_png(
        tmp_path / "o", make_thumbnail(record("ramp.tif", "TIFF"), tmp_path, tmp_path / "o")
    )
    grey = rgb[..., 0].astype(float)
    assert grey[:, :5].mean() < 20
    assert grey[:, -5:].mean() > 235
    assert np.all(np.diff(grey[25]) >= 0)  # monotonic, no wrap-around of negative values


@pytest.mark.parametrize("planarconfig", ["contig", "separate"])
def test_rgb_tiff_keeps_its_colours(tmp_path: Path, planarconfig: str, tiff_reader: str) -> None:
    data = np.zeros((40, 60, 3), np.uint8)
    data[..., 0] = 200  # a red photograph
    data[:, :30, 2] = 100
    if planarconfig == "separate":
        data = np.ascontiguousarray(np.moveaxis(data, -1, 0))
    tifffile.imwrite(tmp_path / "photo.tif", data, photometric="rgb", planarconfig=planarconfig)
    rgb = open_png(
        tmp_path / "o", make_thumbnail(record("photo.tif", "TIFF"), tmp_path, tmp_path / "o")
    )
    assert abs(int(rgb[20, 50, 0]) - 200) <= 2
    assert rgb[20, 50, 1] == 0
    assert abs(int(rgb[20, 5, 2]) - 100) <= 2


def test_imagej_hyperstack_picks_t0_middle_z_and_channels(tmp_path: Path, tiff_reader: str) -> None:
    data = np.zeros((2, 5, 2, 30, 40), np.uint16)  # TZCYX
    data[0, 2, 0, :, :20] = 500  # t=0, middle z: channel 0 on the left ...
    data[0, 2, 1, :, 20:] = 500  # ... channel 1 on the right
    data[1, :, :, :, :] = 900  # t=1 everywhere: must not show
    data[0, 1, :, :, :] = 900  # another z: must not show
    data[0, 2, :, 0, 0] = 1  # keep the percentiles honest (not a two-valued plane)
    tifffile.imwrite(tmp_path / "stack.tif", data, imagej=True, metadata={"axes": "TZCYX"})
    out = tmp_path / "out"
    rgb = open_png(out, make_thumbnail(record("stack.tif", "TIFF"), tmp_path, out)).astype(int)
    assert tuple(rgb[15, 5]) == (255, 0, 255)
    assert tuple(rgb[15, 35]) == (0, 255, 0)


def test_second_series_of_a_multi_series_ome_tiff(tmp_path: Path, tiff_reader: str) -> None:
    with tifffile.TiffWriter(tmp_path / "two.ome.tif", ome=True) as tw:
        tw.write(np.zeros((20, 30), np.uint8))
        tw.write(np.tile(np.arange(60, dtype=np.uint8), (40, 1)))  # series 1: a ramp, 40x60
    out = tmp_path / "out"
    rgb = open_png(out, make_thumbnail(record("two.ome.tif", series=1), tmp_path, out))
    assert rgb.shape == (40, 60, 3)
    assert rgb[20, 0, 0] < 10
    assert rgb[20, -1, 0] > 245


# --------------------------------------------------------------------------- big images


def constant_tiles(count: int, tile: int, *, blank: bool = False) -> Iterator[np.ndarray]:
    """Tiles of one value each (zero when ``blank``), generated one at a time."""
    for i in range(count):
        yield np.full((tile, tile), 0 if blank else (i * 37) % 251, np.uint8)


def write_pyramid(path: Path) -> None:
    """16384² level 0 (256 MiB decoded, a few hundred KiB as zlib tiles) + 6 sub-resolutions.

    Only the small levels carry a picture (a diagonal ramp); the big ones are zero tiles,
    written from a generator so that the test never holds them either.
    """
    sides = [16384 // 2**i for i in range(7)]
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        tw.write(
            constant_tiles((16384 // 512) ** 2, 512, blank=True),
            shape=(16384, 16384),
            dtype=np.uint8,
            tile=(512, 512),
            compression="zlib",
            subifds=len(sides) - 1,
            metadata={"axes": "YX"},
        )
        for side in sides[1:]:
            if side >= 2048:
                tiles = constant_tiles((side // 256) ** 2, 256, blank=True)
                tw.write(
                    tiles,
                    shape=(side, side),
                    dtype=np.uint8,
                    tile=(256, 256),
                    compression="zlib",
                    subfiletype=1,
                )
            else:
                y, x = np.mgrid[0:side, 0:side]
                ramp = ((x + y) * 255 // (2 * side)).astype(np.uint8)
                tw.write(ramp, tile=(256, 256), compression="zlib", subfiletype=1)


def peak_memory(fn: object) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = fn()  # type: ignore[operator]
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_pyramid_uses_a_small_level(tmp_path: Path) -> None:
    write_pyramid(tmp_path / "pyramid.ome.tif")
    with tifffile.TiffFile(tmp_path / "pyramid.ome.tif") as tif:
        levels = [lvl.shape for lvl in tif.series[0].levels]
    assert levels[0] == (16384, 16384)
    assert levels[-1] == (256, 256)
    image = record("pyramid.ome.tif", size=Size5D(x=16384, y=16384), pyramid_levels=7)
    out = tmp_path / "out"
    name, peak = peak_memory(lambda: make_thumbnail(image, tmp_path, out))
    assert peak < 16 * 2**20  # level 0 alone is 256 MiB decoded
    rgb = open_png(out, str(name))
    assert rgb.shape == (256, 256, 3)
    # The picture lives only in the small levels: a diagonal ramp, dark top-left.
    assert rgb[5, 5, 0] < 30
    assert rgb[-5, -5, 0] > 225


def write_big_tiled(path: Path, side: int = 8192) -> None:
    """A non-pyramidal tiled plane: 64 MiB decoded, blocks of constant value per tile."""
    tifffile.imwrite(
        path,
        constant_tiles((side // 256) ** 2, 256),
        shape=(side, side),
        dtype=np.uint8,
        tile=(256, 256),
        compression="zlib",
    )


def test_big_plane_without_pyramid_is_read_strided(tmp_path: Path) -> None:
    pytest.importorskip("zarr")
    write_big_tiled(tmp_path / "big.tif")
    image = record("big.tif", "TIFF")
    out = tmp_path / "out"
    name, peak = peak_memory(lambda: make_thumbnail(image, tmp_path, out))
    assert peak < 16 * 2**20  # the plane is 64 MiB decoded
    rgb = open_png(out, str(name))
    assert rgb.shape == (256, 256, 3)
    assert rgb.std() > 10


def test_big_plane_without_zarr_reads_one_page_under_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_big_tiled(tmp_path / "big.tif")
    monkeypatch.setattr(thumbnails, "_zarr", lambda: None)
    out = tmp_path / "out"
    rgb = open_png(out, make_thumbnail(record("big.tif", "TIFF"), tmp_path, out))
    assert rgb.shape == (256, 256, 3)
    assert rgb.std() > 10

    monkeypatch.setattr(thumbnails, "MAX_PLANE_BYTES", 32 * 2**20)
    (out / "im-test.png").unlink()
    with pytest.raises(ThumbnailError, match=r"big\.tif: plane too large without a pyramid"):
        make_thumbnail(record("big.tif", "TIFF"), tmp_path, out)
    assert_no_leftovers(out)


# --------------------------------------------------------------------------- OME-Zarr


def write_ome_zarr(root: Path, zarr_format: int, *, compressed: bool = False) -> np.ndarray:
    """A v0.4 (zarr v2) or v0.5 (zarr v3) OME-Zarr by hand: 2 channels, 3 z, 2 levels.

    Chunks are raw little-endian bytes (or zlib when ``compressed``), so that no zarr package is
    needed to write them. Channel 0 is a ramp left to right, channel 1 a ramp top to bottom.
    """
    shape0 = (1, 2, 3, 400, 600)  # t c z y x
    y, x = np.mgrid[0:400, 0:600]
    full = np.zeros(shape0, "<u2")
    full[0, 0] = x  # the same in every z but the middle one gets a brighter right edge
    full[0, 1] = y
    full[0, 0, 1, :, 500:] = 2000
    levels = [full, full[..., ::2, ::2]]
    chunks = (1, 1, 1, 128, 128)
    root.mkdir()
    axes = [
        {"name": "t", "type": "time"},
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space"},
        {"name": "y", "type": "space"},
        {"name": "x", "type": "space"},
    ]
    datasets = [
        {
            "path": str(i),
            "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1, 2**i, 2**i]}],
        }
        for i in range(2)
    ]
    multiscales = [{"version": "0.4", "name": "test", "axes": axes, "datasets": datasets}]
    if zarr_format == 2:
        (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
        (root / ".zattrs").write_text(json.dumps({"multiscales": multiscales}))
    else:
        multiscales[0].pop("version")
        attrs = {"ome": {"version": "0.5", "multiscales": multiscales}}
        meta = {"zarr_format": 3, "node_type": "group", "attributes": attrs}
        (root / "zarr.json").write_text(json.dumps(meta))
    for i, data in enumerate(levels):
        arr = root / str(i)
        arr.mkdir()
        if zarr_format == 2:
            meta = {
                "zarr_format": 2,
                "shape": list(data.shape),
                "chunks": list(chunks),
                "dtype": "<u2",
                "compressor": {"id": "zlib", "level": 1} if compressed else None,
                "fill_value": 0,
                "order": "C",
                "filters": None,
                "dimension_separator": "/",
            }
            (arr / ".zarray").write_text(json.dumps(meta))
        else:
            codecs: list[dict[str, object]] = [
                {"name": "bytes", "configuration": {"endian": "little"}}
            ]
            if compressed:
                codecs.append({"name": "gzip", "configuration": {"level": 1}})
            meta = {
                "zarr_format": 3,
                "node_type": "array",
                "shape": list(data.shape),
                "data_type": "uint16",
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": 0,
                "codecs": codecs,
            }
            (arr / "zarr.json").write_text(json.dumps(meta))
        grid = [-(-s // c) for s, c in zip(data.shape, chunks, strict=True)]
        for idx in np.ndindex(*grid):
            block = np.zeros(chunks, "<u2")  # edge chunks are stored full size, padded
            src = data[tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks, strict=True))]
            block[tuple(slice(0, s) for s in src.shape)] = src
            raw = block.tobytes()
            if compressed:
                import gzip
                import zlib

                raw = zlib.compress(raw) if zarr_format == 2 else gzip.compress(raw)
            key = "/".join(map(str, idx))
            if zarr_format == 3:
                key = "c/" + key
            (arr / key).parent.mkdir(parents=True, exist_ok=True)
            (arr / key).write_bytes(raw)
    return full


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("backend", ["zarr", "builtin"])
@pytest.mark.parametrize("compressed", [False, True])
def test_ome_zarr(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    zarr_format: int,
    backend: str,
    compressed: bool,
) -> None:
    if backend == "zarr":
        pytest.importorskip("zarr")
    else:
        monkeypatch.setattr(thumbnails, "_zarr", lambda: None)
    full = write_ome_zarr(tmp_path / "img.zarr", zarr_format, compressed=compressed)
    # Level 1 (300x200) is the smallest with a side >= 256: drop level 0's chunks to prove
    # that it is not read (missing chunks would read as fill value 0: a blank thumbnail).
    for chunk in (tmp_path / "img.zarr" / "0").rglob("*"):
        if chunk.is_file() and chunk.name not in (".zarray", "zarr.json"):
            chunk.unlink()
    image = record("img.zarr", "OME-Zarr", size=Size5D(x=600, y=400, z=3, c=2))
    out = tmp_path / "out"
    rgb = open_png(out, make_thumbnail(image, tmp_path, out)).astype(float)
    assert_fits(rgb, (400, 600), 256)
    # Magenta channel 0 (middle z: bright right edge) and green channel 1 (top-to-bottom ramp).
    assert correlation(rgb[..., 0], full[0, 0, 1].astype(float)) > 0.95
    assert correlation(rgb[..., 1], full[0, 1, 1].astype(float)) > 0.95
    assert rgb[:, -10:, 0].mean() > 240


def test_ome_zarr_bioformats2raw_layout_picks_the_series(tmp_path: Path) -> None:
    root = tmp_path / "plate.zarr"
    root.mkdir()
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (root / ".zattrs").write_text(json.dumps({"bioformats2raw.layout": 3}))
    full = write_ome_zarr(root / "1", 2)
    image = record("plate.zarr", "OME-Zarr", series=1)
    rgb = open_png(tmp_path / "o", make_thumbnail(image, tmp_path, tmp_path / "o"))
    assert correlation(rgb[..., 1].astype(float), full[0, 1, 1].astype(float)) > 0.95
    with pytest.raises(ThumbnailError, match=r"plate\.zarr: series 0 does not exist"):
        make_thumbnail(record("plate.zarr", "OME-Zarr"), tmp_path, tmp_path / "o")


# --------------------------------------------------------------------------- refusals and errors


@pytest.mark.parametrize(
    ("sample", "keep"),
    [
        ("ome-tiff/aics_s_1_t_1_c_1_z_1.ome.tiff", 200_000),  # pixels end at byte 271736
        ("ome-tiff/single-channel.ome.tif", 40_000),  # pixels end at byte 74955
    ],
)
def test_truncated_tiff(tmp_path: Path, sample: str, keep: int) -> None:
    # Cut inside the pixel data: tifffile alone would read the missing part as zeros.
    data = (SAMPLES / sample).read_bytes()
    (tmp_path / "cut.ome.tiff").write_bytes(data[:keep])
    out = tmp_path / "out"
    with pytest.raises(ThumbnailError, match=r"cut\.ome\.tiff: file is truncated"):
        make_thumbnail(record("cut.ome.tiff"), tmp_path, out)
    assert_no_leftovers(out)


def test_not_a_tiff(tmp_path: Path) -> None:
    (tmp_path / "junk.tif").write_bytes(b"II*\x00" + b"\xff" * 20)
    with pytest.raises(ThumbnailError, match=r"junk\.tif: no image in the file \(invalid"):
        make_thumbnail(record("junk.tif", "TIFF"), tmp_path, tmp_path / "out")
    assert_no_leftovers(tmp_path / "out")


def test_absurd_claimed_size_is_refused_before_reading(tmp_path: Path) -> None:
    image = record("huge.ome.tif", size=Size5D(x=2**20, y=2**20))  # the file does not even exist
    with pytest.raises(ThumbnailError, match=r"huge\.ome\.tif: claimed plane .*absurd"):
        make_thumbnail(image, tmp_path, tmp_path / "out")
    assert_no_leftovers(tmp_path / "out")


def test_failed_status(tmp_path: Path) -> None:
    image = record("ome-tiff/single-channel.ome.tif", status=ReadStatus.failed, error="bad header")
    with pytest.raises(ThumbnailError, match=r"single-channel\.ome\.tif: .*bad header"):
        make_thumbnail(image, SAMPLES, tmp_path)
    assert_no_leftovers(tmp_path)


def test_metadata_only(tmp_path: Path) -> None:
    image = record("ome-xml/metadata-only.ome.xml", "OME-XML", status=ReadStatus.metadata_only)
    with pytest.raises(ThumbnailError, match=r"metadata-only\.ome\.xml: no pixel data"):
        make_thumbnail(image, SAMPLES, tmp_path)
    assert_no_leftovers(tmp_path)


def test_metadata_only_pixels_in_ome_xml(tmp_path: Path) -> None:
    image = record("ome-xml/metadata-only.ome.xml", "OME-XML")  # status not set by hand
    with pytest.raises(ThumbnailError, match=r"metadata-only\.ome\.xml: no pixel data"):
        make_thumbnail(image, SAMPLES, tmp_path)
    assert_no_leftovers(tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ThumbnailError, match=r"gone\.ome\.tif: file not found"):
        make_thumbnail(record("gone.ome.tif"), tmp_path, tmp_path / "out")
    assert_no_leftovers(tmp_path / "out")


def test_missing_member_of_a_multifile_set(tmp_path: Path) -> None:
    src = SAMPLES / "ome-tiff-multifile"
    for f in src.iterdir():
        if f.name != "multifile-Z3.ome.tiff":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ThumbnailError, match=r"multifile\.companion\.ome: member .*Z3.* missing"):
        make_thumbnail(record("multifile.companion.ome"), tmp_path, tmp_path / "out")
    assert_no_leftovers(tmp_path / "out")


def test_path_outside_the_source_root(tmp_path: Path) -> None:
    with pytest.raises(ThumbnailError, match="outside the source root"):
        make_thumbnail(record("../single-channel.ome.tif"), SAMPLES / "ome-tiff", tmp_path)


def test_series_out_of_range(tmp_path: Path) -> None:
    image = record("ome-tiff/single-channel.ome.tif", series=3)
    with pytest.raises(ThumbnailError, match=r"single-channel\.ome\.tif: series 3 does not exist"):
        make_thumbnail(image, SAMPLES, tmp_path)


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    image = record("ome-tiff/single-channel.ome.tif")
    make_thumbnail(image, SAMPLES, out)
    before = (out / "im-test.png").read_bytes()

    def broken_save(self: PILImage.Image, fp: object, *a: object, **kw: object) -> None:
        fp.write(b"\x89PNG half")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(PILImage.Image, "save", broken_save)
    with pytest.raises(ThumbnailError, match="disk full"):
        make_thumbnail(image, SAMPLES, out)
    # The old thumbnail is intact and no temporary file is left behind.
    assert [p.name for p in out.iterdir()] == ["im-test.png"]
    assert (out / "im-test.png").read_bytes() == before


# --------------------------------------------------------------------------- the shared corpus

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "microscopy"
CORPUS_FORMATS = {".czi": "CZI", ".nd2": "ND2", ".lif": "LIF", ".dv": "DV"}


def corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*")
        if p.is_file() and p.suffix.lower() in {".tif", ".tiff", ".ome", *CORPUS_FORMATS}
    )


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/samples/microscopy is absent")
@pytest.mark.parametrize("path", corpus_files())
def test_corpus_gives_a_png_or_a_thumbnail_error(tmp_path: Path, path: str) -> None:
    """Every real file either gets a sane PNG or a ThumbnailError naming it, nothing else
    (bioio-lif and the DAPI_GFP.czi scaling metadata are known to fail)."""
    suffix = Path(path).suffix.lower()
    fmt = CORPUS_FORMATS.get(suffix, "OME-TIFF" if ".ome" in path else "TIFF")
    error: ThumbnailError | None = None
    try:
        name = make_thumbnail(record(path, fmt), CORPUS, tmp_path)
    except ThumbnailError as exc:
        error = exc
    if error is not None:
        assert str(error).startswith(f"{path}: ")
        assert_no_leftovers(tmp_path)
        return
    rgb = open_png(tmp_path, name)
    assert max(rgb.shape[:2]) <= 256
    assert rgb.std() > 0 or path.endswith("ome-types_ome.tiff")
