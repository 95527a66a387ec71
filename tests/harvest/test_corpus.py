"""Every file of ../shared/samples/microscopy: grouped, extracted, never an exception.

The expectations below are hand-written from that folder's MANIFEST.md (tables "Provenance
and content" and "What the libraries report", and its Findings): dimensions, µm pixel sizes
(trusted, or flagged: the 1.0 µm placeholder, 0.0, the 72-dpi 352.78 µm, the spec's 1e4 µm)
and channel names. Set FAIRNODE_SAMPLES_DIR to run it on another copy of the corpus.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from extract_helpers import entries_of

from node.harvest.extractors import extract_fileset
from node.harvest.filesets import group_filesets
from node.harvest.units import to_um
from node.records import Image, ReadStatus

pytestmark = pytest.mark.corpus

HAVE_BIOIO = all(
    importlib.util.find_spec(m) for m in ("bioio", "bioio_czi", "bioio_nd2", "bioio_lif")
)


def corpus_dir() -> Path:
    env = os.environ.get("FAIRNODE_SAMPLES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared/samples/microscopy"


@dataclass(frozen=True)
class Exp:
    xyzct: tuple[int, int, int, int, int]
    px_um: float | None = None  # trusted x/y pixel size in µm; None: none or flagged
    flagged_um: float | None = None  # a flagged x/y size (its original value in µm)
    flag_reason: str = ""  # a word of the reason
    z_um: float | None = None
    names: tuple[str | None, ...] | None = None  # real channel names (None: no real name)
    status: ReadStatus = ReadStatus.ok


UNNAMED = (None,)
OME_ART = 439, 167  # OME "bioformats-artificial" samples
SPEC_FLAG = {"flagged_um": 1e4, "flag_reason": "implausib"}  # spec XMLs: 10000 µm per pixel
META = ReadStatus.metadata_only

EXPECTED: dict[str, list[Exp]] = {
    "czi/CellDivision_T3_Z5_CH2_X240_Y170.czi": [
        Exp((240, 170, 5, 2, 3), px_um=0.0906, z_um=0.32, names=("LED555", "LED470"))
    ],
    "czi/FOV7_HV110_P0500510000.czi": [
        Exp((512, 512, 1, 1, 1), flagged_um=0.0, flag_reason="zero", names=UNNAMED)
    ],
    "czi/LLS7_small.czi": [
        Exp(
            (64, 64, 3, 2, 2),
            px_um=0.145,
            z_um=0.145,
            names=("LatticeLightsheet 1-T1", "LatticeLightsheet 2-T2"),
        )
    ],
    # RGB: the 3 samples per pixel count as channels (OME convention); "Channel:0:0" is no name
    "czi/RGB-8bit.czi": [Exp((924, 624, 1, 3, 1), px_um=1.083, names=UNNAMED)],
    "czi/S3_1Pos_2Mosaic_T1_Z1_CH1.czi": [
        Exp((295, 122, 1, 1, 1), px_um=1.6, names=("DAPI",)),
        Exp((64, 64, 1, 1, 1), px_um=1.6, names=("DAPI",)),
        Exp((352, 237, 1, 1, 1), px_um=1.6, names=("DAPI",)),
    ],
    "czi/aics_s_1_t_1_c_1_z_1.czi": [Exp((475, 325, 1, 1, 1), px_um=1.083, names=("Bright",))],
    "lif/LeicaLASX_wavelength-sweep_example.lif": [
        Exp((64, 64, 1, 1, 1), px_um=0.1048, names=("Green",)),
        Exp((64, 64, 1, 1, 1), px_um=0.1048, names=("Green",)),
        Exp((64, 64, 11, 1, 2), px_um=0.1048, names=("Green",)),
    ],
    "nd2/cluster.nd2": [
        Exp((38, 31, 10, 2, 3), px_um=0.1678, z_um=0.5, names=("5-FAM/pH 9.0", "FM 4-64/2% CHAPS"))
    ],
    # One image for the six files of the companion set (MANIFEST finding 2).
    "ome-tiff-multifile-companion/multifile.companion.ome": [Exp((18, 24, 5, 1, 1), names=UNNAMED)],
    "ome-tiff/170918_tn_neutrophil_migration_wave.ome.tif": [
        Exp(
            (1024, 1024, 1, 1, 1),
            flagged_um=1.0,
            flag_reason="placeholder",
            names=("488 TIRF left",),
        )
    ],
    "ome-tiff/4D-series.ome.tif": [Exp((*OME_ART, 5, 1, 7), names=UNNAMED)],
    "ome-tiff/aics_s_1_t_1_c_1_z_1.ome.tiff": [
        Exp((475, 325, 1, 1, 1), px_um=1.083, names=("Bright",))
    ],
    "ome-tiff/multi-channel-time-series.ome.tif": [Exp((*OME_ART, 1, 3, 7), names=UNNAMED * 3)],
    "ome-tiff/multi-channel-z-series.ome.tif": [Exp((*OME_ART, 5, 3, 1), names=UNNAMED * 3)],
    "ome-tiff/multi-channel.ome.tif": [Exp((*OME_ART, 1, 3, 1), names=UNNAMED * 3)],
    "ome-tiff/ome-types_ome.tiff": [Exp((6, 6, 1, 2, 1), names=UNNAMED * 2)],
    "ome-tiff/single-channel.ome.tif": [Exp((*OME_ART, 1, 1, 1), names=UNNAMED)],
    "ome-tiff/time-series.ome.tif": [Exp((*OME_ART, 1, 1, 7), names=UNNAMED)],
    "ome-tiff/z-series.ome.tif": [Exp((*OME_ART, 5, 1, 1), names=UNNAMED)],
    "ome-xml/MMStack.ome.xml": [
        Exp((256, 256, 5, 3, 2), px_um=2.0, z_um=1.75, names=("Cy5", "DAPI", "FITC"), status=META)
    ]
    * 2,
    "ome-xml/ROI.ome.xml": [Exp((6, 4, 1, 3, 1), **SPEC_FLAG, status=META)],
    "ome-xml/instrument.ome.xml": [Exp((6, 4, 1, 1, 1), **SPEC_FLAG, status=META)],
    "ome-xml/legacy-2008-09_dataset-group-project.ome.xml": [
        Exp((6, 4, 1, 1, 1), **SPEC_FLAG, status=META)
    ],
    "ome-xml/mapannotation.ome.xml": [Exp((6, 4, 1, 1, 1), **SPEC_FLAG, status=META)],
    "ome-xml/metadata-only.ome.xml": [Exp((18, 24, 5, 1, 5), status=META)],
    "ome-xml/multi-channel-z-series-time-series.ome.xml": [Exp((18, 24, 5, 2, 5), status=META)],
    "ome-xml/tagannotation.ome.xml": [Exp((6, 4, 1, 1, 1), **SPEC_FLAG, status=META)],
    "ome-xml/tubhiswt.ome.xml": [Exp((512, 512, 1, 2, 20), status=META)],
    "ome-xml/two-screens-two-plates-four-wells.ome.xml": [
        Exp((6, 4, 1, 1, 1), **SPEC_FLAG, status=META)
    ]
    * 22,
    "tiff/CH1_16bit.tif": [Exp((406, 408, 1, 1, 1))],
    "tiff/Channel1-01-A-01.tif": [
        Exp((640, 640, 1, 1, 1), flagged_um=352.78, flag_reason="72 dpi")
    ],
    "tiff/aics_s_1_t_1_c_1_z_1.tiff": [Exp((475, 325, 1, 1, 1), px_um=1.083)],
    # MANIFEST gives 0.1403 µm/px (from the LIF it was exported from), but the TIFF itself says
    # ImageJ unit=pixel: the value is kept and flagged, since the file does not give a unit.
    "tiff/readlif_xz_c0_t0.tif": [
        Exp((128, 128, 1, 1, 1), flagged_um=0.1403, flag_reason="no length unit")
    ],
}
# Files that fail by design, with a word of the reason each record must give.
FAILS = {"czi/DAPI_GFP.czi": "distance scale"}  # bioio-czi UnsupportedMetadataError
VENDOR = (".czi", ".nd2", ".lif", ".dv")


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[Image]]:
    root = corpus_dir()
    if not root.is_dir():
        pytest.skip(f"sample corpus not found at {root} (set FAIRNODE_SAMPLES_DIR)")
    out: dict[str, list[Image]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for fs in group_filesets(entries_of(folder)):
            if fs.main.rel.endswith(VENDOR) and not HAVE_BIOIO:
                continue
            out[fs.main.rel] = extract_fileset(fs, "corpus")
            # Every member of a fileset is covered by its records.
            for im in out[fs.main.rel]:
                assert sorted(im.files) == sorted(m.rel for m in fs.members)
    return out


def test_every_file_is_covered(corpus: dict[str, list[Image]]) -> None:
    root = corpus_dir()
    on_disk = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.parent != root and not p.name.startswith(".")
    }
    if not HAVE_BIOIO:
        on_disk = {f for f in on_disk if not f.endswith(VENDOR)}
    covered = {f for images in corpus.values() for im in images for f in im.files}
    assert on_disk == covered
    for images in corpus.values():
        for im in images:
            assert im.status is not ReadStatus.failed or im.error


def test_expected_files_are_all_there(corpus: dict[str, list[Image]]) -> None:
    expected = set(EXPECTED) | set(FAILS)
    if not HAVE_BIOIO:
        expected = {f for f in expected if not f.endswith(VENDOR)}
    assert set(corpus) == expected  # the five BinaryOnly members are not filesets of their own


@pytest.mark.parametrize("rel", sorted(FAILS))
def test_recorded_failures(corpus: dict[str, list[Image]], rel: str) -> None:
    if rel not in corpus:
        pytest.skip("bioio plugins not installed")
    [im] = corpus[rel]
    assert im.status is ReadStatus.failed
    assert Path(rel).name in im.error
    assert FAILS[rel] in im.error


def _check_xy(im: Image, exp: Exp) -> None:
    for axis in ("x", "y"):
        ps = im.physical_size.get(axis)
        if exp.px_um is not None:
            assert ps is not None, (axis, ps)
            assert ps.suspicious is None, (axis, ps)
            assert ps.value_um == pytest.approx(exp.px_um, rel=2e-3)
        elif exp.flagged_um is not None:
            assert ps is not None, (axis, ps)
            assert ps.value_um is None, (axis, ps)
            assert exp.flag_reason in ps.suspicious
            in_um = to_um(ps.original_value, ps.original_unit)  # None for unit "pixel"
            got = ps.original_value if in_um is None else in_um
            assert got == pytest.approx(exp.flagged_um, rel=1e-3, abs=1e-9)
        else:
            assert ps is None, (axis, ps)


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_extracted_values_match_the_manifest(corpus: dict[str, list[Image]], rel: str) -> None:
    if rel not in corpus:
        pytest.skip("bioio plugins not installed")
    images = corpus[rel]
    assert len(images) == len(EXPECTED[rel])
    for n, (im, exp) in enumerate(zip(images, EXPECTED[rel], strict=True)):
        assert im.series == n
        assert im.status is exp.status, im.error
        if exp.status is not ReadStatus.ok:
            assert Path(rel).name in im.error
        s = im.size
        assert (s.x, s.y, s.z, s.c, s.t) == exp.xyzct
        _check_xy(im, exp)
        if exp.z_um is not None:
            assert im.physical_size_um["z"] == pytest.approx(exp.z_um, rel=2e-3)
        if exp.names is not None:
            assert tuple(c.name for c in im.channels) == exp.names
