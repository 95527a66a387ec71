"""Harvest benchmarks: extraction, incremental rescan and peak memory, each against the
obvious alternative measured in the same run.

    python bench/harvest.py                      # all three sections, default sizes
    python bench/harvest.py --only extract --files 500
    python bench/harvest.py --only rescan --rescan-files 20000
    python bench/harvest.py --only rss --tree-files 200000

1. extract: N realistic OME-TIFFs (2-3 channels of 64x64 uint16, Z 1-5, full OME metadata)
   read by our path (walk + group_filesets per folder + extract_fileset, every field) and by
   ``bioio.BioImage`` (dims, physical pixel sizes, channel names) on a subset of the same files.
2. rescan: R tiny real OME-TIFFs in group/project/dataset folders of 500, harvested once into
   SQLite, then harvested again with nothing changed; compared with a naive rescan that opens
   every file's TIFF header again (and, on a subset, one that re-extracts every file).
3. rss: peak RSS of a child process doing the first harvest of a T-file tree, compared with a
   child that first materialises the tree listing in memory (os.walk + a path -> stat dict).

Nothing here asserts a time: the tables report the targets and whether this run met them.
Files are read from a warm page cache (they were just written); the machine may be shared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from report import emit, loadavg, log, table
from report import versions as report_versions

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FILES_PER_FOLDER = 500  # rescan and rss trees: group/project/dataset folders of this many files
SOURCE = "bench"

# ----------------------------------------------------------------------------- output


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def fmt_rate(r: float) -> str:
    return f"{r:,.0f} files/s" if r >= 100 else f"{r:,.1f} files/s"


def fmt_s(s: float) -> str:
    return f"{s:,.2f} s" if s < 100 else f"{s:,.0f} s"


def fmt_mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"


def met(ok: bool) -> str:
    return "yes" if ok else "NO"


# ----------------------------------------------------------------------------- files

MICROSCOPES = [
    ("Carl Zeiss", "LSM 980", "Inverted"),
    ("Leica Microsystems", "STELLARIS 8", "Inverted"),
    ("Nikon", "Ti2-E", "Inverted"),
    ("Olympus", "IX83", "Inverted"),
]
OBJECTIVES = [
    ("Plan-Apochromat 63x/1.40 Oil DIC M27", 63, 1.4, "Oil"),
    ("HC PL APO 40x/1.10 W CORR CS2", 40, 1.1, "Water"),
    ("CFI Plan Apo Lambda 20x", 20, 0.75, "Air"),
    ("UPLSAPO 60XW", 60, 1.2, "Water"),
]
CHANNELS = [  # name, fluor, excitation nm, emission nm
    ("DAPI", "DAPI", 405, 461),
    ("GFP", "EGFP", 488, 509),
    ("mCherry", "mCherry", 561, 610),
    ("Cy5", "Cy5", 640, 670),
]


def ome_xml(
    rnd: random.Random, *, name: str, size_xy: int, size_z: int, size_c: int, dtype: str
) -> str:
    """A complete OME-XML (2016-06) description of a Z*C stack stored as IFDs in XYZCT order."""
    manu, model, mtype = rnd.choice(MICROSCOPES)
    omodel, mag, na, immersion = rnd.choice(OBJECTIVES)
    px = round(rnd.uniform(0.05, 0.65), 4)
    dz = round(rnd.uniform(0.2, 2.0), 3)
    when = datetime(2023, 1, 1) + timedelta(seconds=rnd.randrange(3 * 365 * 86400))
    chans = rnd.sample(CHANNELS, size_c)
    channels = "".join(
        f'<Channel ID="Channel:0:{i}" Name="{cn}" Fluor="{fl}" SamplesPerPixel="1" '
        f'ExcitationWavelength="{ex}" ExcitationWavelengthUnit="nm" '
        f'EmissionWavelength="{em}" EmissionWavelengthUnit="nm" '
        'AcquisitionMode="LaserScanningConfocalMicroscopy">'
        f'<DetectorSettings ID="Detector:0" Binning="1x1"/></Channel>'
        for i, (cn, fl, ex, em) in enumerate(chans)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.openmicroscopy.org/Schemas/OME/2016-06 '
        'http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd" '
        f'UUID="urn:uuid:{uuid.UUID(int=rnd.getrandbits(128))}" Creator="fairnode bench">'
        '<Instrument ID="Instrument:0">'
        f'<Microscope Manufacturer="{manu}" Model="{model}" Type="{mtype}"/>'
        '<Detector ID="Detector:0" Manufacturer="Hamamatsu" Model="ORCA-Fusion BT" Type="CMOS"/>'
        f'<Objective ID="Objective:0" Model="{omodel}" NominalMagnification="{mag}" '
        f'LensNA="{na}" Immersion="{immersion}"/>'
        "</Instrument>"
        f'<Image ID="Image:0" Name="{name}">'
        f"<AcquisitionDate>{when.isoformat()}</AcquisitionDate>"
        '<InstrumentRef ID="Instrument:0"/>'
        '<ObjectiveSettings ID="Objective:0"/>'
        f'<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="{dtype}" '
        f'SizeX="{size_xy}" SizeY="{size_xy}" SizeZ="{size_z}" SizeC="{size_c}" SizeT="1" '
        f'PhysicalSizeX="{px}" PhysicalSizeXUnit="µm" PhysicalSizeY="{px}" PhysicalSizeYUnit="µm" '
        f'PhysicalSizeZ="{dz}" PhysicalSizeZUnit="µm" BigEndian="false" Interleaved="false">'
        f'{channels}<TiffData IFD="0" PlaneCount="{size_z * size_c}"/>'
        "</Pixels></Image></OME>"
    )


def write_ome_tiff(path: Path, rnd: random.Random, np_rng, *, size_xy: int, z: int, c: int, dtype):
    import numpy as np
    import tifffile

    dt = np.dtype(dtype)
    data = np_rng.integers(0, min(4096, np.iinfo(dt).max), size=(c, z, size_xy, size_xy), dtype=dt)
    xml = ome_xml(
        rnd, name=path.name.split(".")[0], size_xy=size_xy, size_z=z, size_c=c, dtype=dt.name
    )
    tifffile.imwrite(path, data, description=xml.encode(), metadata=None, photometric="minisblack")


def make_extract_set(root: Path, n: int, seed: int) -> list[Path]:
    """N realistic OME-TIFFs in folders of 100 (group/project/dataset layout)."""
    import numpy as np

    rnd = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        folder = (
            root / f"group{i // 1000:02d}" / f"project{i // 500 % 2}" / f"dataset{i // 100 % 5}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"cells_{i:06d}.ome.tif"
        write_ome_tiff(
            p, rnd, np_rng, size_xy=64, z=rnd.randint(1, 5), c=rnd.randint(2, 3), dtype="uint16"
        )
        paths.append(p)
    return paths


def tiny_template(seed: int) -> bytes:
    """The bytes of one tiny real OME-TIFF (a 4x4 uint8 plane, full OME metadata)."""
    import numpy as np

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "tiny.ome.tif"
        write_ome_tiff(
            p, random.Random(seed), np.random.default_rng(seed), size_xy=4, z=1, c=1, dtype="uint8"
        )
        return p.read_bytes()


def tree_folders(n_files: int) -> Iterator[tuple[str, int]]:
    """(relative folder, number of files) for a group/project/dataset tree of n_files."""
    n_folders = max(1, -(-n_files // FILES_PER_FOLDER))
    left = n_files
    for k in range(n_folders):
        g, p, d = k // 200, k // 20 % 10, k % 20
        count = min(FILES_PER_FOLDER, left)
        left -= count
        yield f"group{g:03d}/project{p}/dataset{d:02d}", count


def make_tree(root: Path, n_files: int, template: bytes, *, hardlinks: bool) -> float:
    """Write n_files tiny OME-TIFFs; with hardlinks, each folder's files share one inode."""
    t0 = time.perf_counter()
    made = 0
    for rel, count in tree_folders(n_files):
        folder = root / rel
        folder.mkdir(parents=True, exist_ok=True)
        first = None
        for j in range(count):
            p = os.path.join(folder, f"img_{j:04d}.ome.tif")
            if hardlinks and first is not None:
                os.link(first, p)
            else:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, template)
                finally:
                    os.close(fd)
                first = p
        made += count
        if made % 100_000 < FILES_PER_FOLDER:
            log(f"tree: {made:,} / {n_files:,} files")
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- harvester


def make_harvester(work: Path, root: Path):
    from node.catalog.db import open_catalog
    from node.config import parse_config
    from node.harvest.runner import Harvester

    data_dir = work / "var"
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = parse_config(
        {
            "node": {"id": "bench-node", "name": "Bench node", "data_dir": str(data_dir)},
            "harvest": {
                "thumbnails": False,
                "sources": [{"name": SOURCE, "path": str(root), "publish": "auto"}],
            },
        },
        path=work / "node.toml",
        env=False,
    )
    engine = open_catalog(cfg.database_url)
    last = [time.monotonic()]

    def progress(files: int, errors: int, folder: str) -> None:
        if time.monotonic() - last[0] >= 15:
            last[0] = time.monotonic()
            log(f"harvest: {files:,} files seen, {errors} errors ({folder})")

    return Harvester(cfg, engine, progress=progress), engine


def timed_run(harvester) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of this process, run counts) of one harvest run."""
    t0, c0 = time.perf_counter(), time.process_time()
    run = harvester.run(SOURCE)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    counts = run.counts if isinstance(run.counts, dict) else run.counts.as_dict()
    if run.status != "completed":
        raise SystemExit(f"harvest ended {run.status}: {getattr(run, 'message', '')}")
    return dt, cpu, counts


# ----------------------------------------------------------------------------- 1. extract


def ours_extract(root: Path, only: set[str] | None = None) -> tuple[int, int, list]:
    """Walk + group_filesets per folder + extract_fileset; returns (files, images, records)."""
    from node.harvest.extractors import extract_fileset
    from node.harvest.filesets import group_filesets
    from node.harvest.walker import walk

    files = 0
    records = []
    for listing in walk(str(root)):
        entries = listing.files
        if only is not None:
            entries = [e for e in entries if e.abs in only]
        if not entries:
            continue
        files += len(entries)
        for fs in group_filesets(entries):
            records.extend(extract_fileset(fs, SOURCE))
    return files, len(records), records


def bioio_read(paths: list[Path]) -> list[tuple[dict, list, tuple, str]]:
    from bioio import BioImage

    out = []
    for p in paths:
        img = BioImage(p)
        d = img.dims
        dims = {"x": d.X, "y": d.Y, "z": d.Z, "c": d.C, "t": d.T}
        pps = img.physical_pixel_sizes
        out.append(
            (dims, list(img.channel_names), (pps.Z, pps.Y, pps.X), type(img.reader).__module__)
        )
    return out


def section_extract(args, work: Path) -> list[str]:
    from node.records import ReadStatus

    root = work / "extract"
    log(f"extract: writing {args.files:,} OME-TIFFs under {root}")
    t0 = time.perf_counter()
    paths = make_extract_set(root, args.files, args.seed)
    size = sum(p.stat().st_size for p in paths)
    log(f"extract: written in {time.perf_counter() - t0:.1f} s ({size / 1e6:.1f} MB)")
    check_xml(paths[0])

    step = max(1, len(paths) // args.bioio_files)
    subset = paths[::step][: args.bioio_files]
    only = {str(p) for p in subset}

    # Warm-up (imports, plugin discovery, first-call costs) on a file outside the timings.
    ours_extract(paths[0].parent, {str(paths[0])})
    bioio_read([paths[0]])

    log(f"extract: ours on all files, {args.repeat} runs (median reported)")
    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        n_all, n_img, records = ours_extract(root)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    t_all, c_all = statistics.median(times), statistics.median(cpu)
    bad = [r for r in records if r.status is not ReadStatus.ok]
    complete = sum(
        1
        for r in records
        if r.objective
        and r.objective.na
        and r.microscope
        and r.acquired_at
        and len(r.channels) >= 2
        and all(ch.name and ch.excitation_nm for ch in r.channels)
        and {"x", "y", "z"} <= set(r.physical_size)
    )

    log(f"extract: ours and bioio on the same {len(subset)} files")
    sub_times, sub_cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        n_sub, _, sub_records = ours_extract(root, only)
        sub_times.append(time.perf_counter() - t0)
        sub_cpu.append(time.process_time() - c0)
    t_ours_sub, c_ours_sub = statistics.median(sub_times), statistics.median(sub_cpu)
    t0, c0 = time.perf_counter(), time.process_time()
    bio = bioio_read(subset)
    t_bio, c_bio = time.perf_counter() - t0, time.process_time() - c0

    # Agreement check (not a timing): dims, channel names and pixel sizes of every subset file.
    by_path = {str(root / r.path): r for r in sub_records}
    agree = 0
    mismatches = []
    for p, (dims, names, pps, _) in zip(subset, bio, strict=True):
        r = by_path[str(p)]
        ours_dims = {"x": r.size.x, "y": r.size.y, "z": r.size.z, "c": r.size.c, "t": r.size.t}
        ours_names = [ch.name for ch in r.channels]
        ours_pps = tuple(r.physical_size[a].value_um for a in ("z", "y", "x"))
        if (
            ours_dims == dims
            and ours_names == names
            and all(abs(a - b) < 1e-9 for a, b in zip(ours_pps, pps, strict=True))
        ):
            agree += 1
        elif len(mismatches) < 3:
            mismatches.append(
                f"{p.name}: ours {ours_dims} {ours_names} {ours_pps} / bioio {dims} {names} {pps}"
            )
    reader = bio[0][3] if bio else "?"

    r_all = rate(n_all, t_all)
    r_sub = rate(n_sub, t_ours_sub)
    r_bio = rate(len(subset), t_bio)
    ratio = r_sub / r_bio
    rc_all, rc_sub, rc_bio = rate(n_all, c_all), rate(n_sub, c_ours_sub), rate(len(subset), c_bio)
    rows = [
        ["files read", f"{n_all:,} (all)", f"{len(subset):,} (every {step}th)", "", "", ""],
        ["time (ours: median of runs)", fmt_s(t_all), fmt_s(t_bio), "", "", ""],
        ["rate, all files", fmt_rate(r_all), "-", "", ">= 600 files/s", met(r_all >= 600)],
        [
            "rate, same subset",
            fmt_rate(r_sub),
            fmt_rate(r_bio),
            f"{ratio:,.1f}x",
            ">= 20x",
            met(ratio >= 20),
        ],
        ["ms per file (subset)", f"{1000 / r_sub:.2f} ms", f"{1000 / r_bio:.2f} ms", "", "", ""],
        ["CPU-time rate, all files", fmt_rate(rc_all), "-", "", "(info)", ""],
        [
            "CPU-time rate, subset",
            fmt_rate(rc_sub),
            fmt_rate(rc_bio),
            f"{rc_sub / rc_bio:,.1f}x",
            "(info)",
            "",
        ],
    ]
    note = (
        f"ours = walk + group_filesets per folder + extract_fileset, every field "
        f"({n_img:,} records, {len(bad)} not ok, {complete:,} with channels/wavelengths/"
        "objective/microscope/date/XYZ sizes); alternative = bioio.BioImage(path).dims /"
        " .physical_pixel_sizes /"
        f" .channel_names via {reader}, timed on a subset (per-file rates). Our subset run still"
        " walks (stats) every folder in full, which is charged to ours.\n"
        f"check: dims, channel names and pixel sizes agree on {agree} / {len(subset)} subset files"
        + ("".join(f"\n  mismatch {m}" for m in mismatches))
        + f"\nours, all files, each run: {', '.join(fmt_s(t) for t in times)} wall"
        f" ({', '.join(fmt_s(t) for t in cpu)} CPU). Targets are judged on wall time; the"
        " CPU-time rows show what other load on the machine took away."
        + f"\nfiles: {args.files:,} OME-TIFFs, 2-3 ch x 64x64 uint16, Z 1-5, {size / 1e6:.1f} MB;"
        f" seed {args.seed}; load average {loadavg()}"
    )
    return [
        table(
            f"1. Extraction ({args.files:,} OME-TIFFs)",
            ["measure", "ours", "bioio.BioImage", "ratio", "target", "met?"],
            rows,
            note,
        )
    ]


def check_xml(path: Path) -> None:
    """The written OME-XML must validate against the OME schema (ome-types)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        desc = tif.pages.first.description
        assert tif.is_ome, "not recognised as OME-TIFF"
    try:
        from ome_types import from_xml
    except ImportError:
        return
    ome = from_xml(desc)
    im = ome.images[0]
    assert im.pixels.size_x == 64
    assert len(im.pixels.channels) >= 2
    assert ome.instruments[0].objectives[0].lens_na is not None


# ----------------------------------------------------------------------------- 2. rescan


def naive_header_rescan(root: Path) -> int:
    """The obvious rescan: stat every file and open its TIFF header again."""
    import tifffile

    n = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = os.path.join(dirpath, name)
            os.stat(p)
            with tifffile.TiffFile(p) as tif:
                _ = tif.pages.first.description
            n += 1
    return n


def naive_extract_rescan(root: Path, limit: int) -> int:
    """Re-extracting every file (grouping + extract_fileset), on the first ``limit`` files."""
    from node.harvest.extractors import extract_fileset
    from node.harvest.filesets import group_filesets
    from node.harvest.walker import walk

    n = 0
    for listing in walk(str(root)):
        if not listing.files:
            continue
        entries = listing.files[: limit - n]
        for fs in group_filesets(entries):
            extract_fileset(fs, SOURCE)
        n += len(entries)
        if n >= limit:
            break
    return n


def section_rescan(args, work: Path) -> list[str]:
    root = work / "rescan-tree"
    n = args.rescan_files
    template = tiny_template(args.seed)
    log(f"rescan: writing {n:,} tiny OME-TIFFs ({len(template)} bytes each) under {root}")
    t_make = make_tree(root, n, template, hardlinks=False)
    log(f"rescan: tree written in {t_make:.1f} s; first harvest")
    harvester, engine = make_harvester(work / "rescan-node", root)
    t_first, cpu_first, c_first = timed_run(harvester)
    log(f"rescan: first harvest {t_first:.1f} s; {args.repeat} more runs (nothing changed)")
    again = [timed_run(harvester) for _ in range(args.repeat)]
    t_second = statistics.median(r[0] for r in again)
    cpu_second = statistics.median(r[1] for r in again)
    c_second = again[-1][2]
    log("rescan: naive header rescan")
    t0, c0 = time.perf_counter(), time.process_time()
    n_naive = naive_header_rescan(root)
    t_naive, cpu_naive = time.perf_counter() - t0, time.process_time() - c0
    limit = min(n, args.reextract_files)
    log(f"rescan: naive re-extract on {limit:,} files")
    t0 = time.perf_counter()
    n_re = naive_extract_rescan(root, limit)
    t_re = time.perf_counter() - t0
    engine.dispose()

    r_first = rate(c_first["files_seen"], t_first)
    r_second = rate(c_second["files_seen"], t_second)
    r_naive = rate(n_naive, t_naive)
    r_re = rate(n_re, t_re)
    rc_second = rate(c_second["files_seen"], cpu_second)
    rc_naive = rate(n_naive, cpu_naive)
    rows = [
        [
            "rescan, nothing changed",
            fmt_rate(r_second),
            fmt_rate(r_naive),
            f"{r_second / r_naive:,.1f}x",
            ">= 50,000 files/s",
            met(r_second >= 50_000),
        ],
        [
            "  vs re-extracting every file",
            fmt_rate(r_second),
            fmt_rate(r_re) + f" ({n_re:,} files)",
            f"{r_second / r_re:,.1f}x",
            "",
            "",
        ],
        ["rescan time (ours: median)", fmt_s(t_second), fmt_s(t_naive), "", "", ""],
        [
            "CPU-time rate, rescan",
            fmt_rate(rc_second),
            fmt_rate(rc_naive),
            f"{rc_second / rc_naive:,.1f}x",
            "(info)",
            "",
        ],
        ["first harvest", fmt_rate(r_first), "", "", "", ""],
        ["first harvest time", fmt_s(t_first), "", "", "", ""],
        [
            "first harvest CPU-time rate",
            fmt_rate(rate(c_first["files_seen"], cpu_first)),
            "",
            "",
            "",
            "",
        ],
    ]
    note = (
        f"ours = Harvester.run() again, {args.repeat} times, median (SQLite, thumbnails off); "
        f"each rescan: {', '.join(fmt_s(r[0]) for r in again)}; last one: files_seen "
        f"{c_second['files_seen']:,}, unchanged {c_second['files_unchanged']:,}, "
        f"filesets extracted {c_second['filesets_extracted']}, errors {c_second['errors']}.\n"
        f"first harvest: files_new {c_first['files_new']:,}, images written "
        f"{c_first['images_written']:,}, failed {c_first['images_failed']}, datasets "
        f"{c_first['datasets_updated']}, errors {c_first['errors']}.\n"
        f"alternative = os.walk + os.stat + tifffile.TiffFile(path).pages.first.description for "
        "every file (the cheapest rescan that re-reads headers); re-extract = walk + "
        f"group_filesets + extract_fileset.\ntree: {n:,} files of {len(template)} bytes (distinct "
        f"inodes) in {-(-n // FILES_PER_FOLDER)} folders of {FILES_PER_FOLDER}, written in "
        f"{t_make:.1f} s; warm page cache; load average {loadavg()}"
    )
    return [
        table(
            f"2. Rescan ({n:,} catalogued files)",
            ["measure", "ours", "naive rescan", "ratio", "target", "met?"],
            rows,
            note,
        )
    ]


# ----------------------------------------------------------------------------- 3. rss


def vm_hwm_kb() -> int | None:
    """This process's peak RSS (VmHWM) in KB, or None where /proc is missing.

    Unlike ru_maxrss, VmHWM belongs to the current address space only: a child started by
    fork + exec would otherwise report the parent's RSS at the fork when that is larger.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def child_main(argv: list[str]) -> None:
    """Entry point of the measured child processes: --child MODE ROOT WORK."""
    mode, root, work = argv
    try:
        _child_work(mode, root, work)
    finally:
        hwm = vm_hwm_kb()
        if hwm is not None:
            print(f"VMHWM {hwm}", flush=True)


def _child_work(mode: str, root: str, work: str) -> None:
    import node.harvest.runner  # noqa: F401  (same imports in every child: same baseline)
    from node.catalog import db  # noqa: F401

    if mode == "baseline":
        return
    if mode == "listing":
        tree = list(os.walk(root))
        stats = {}
        for dirpath, _dirs, names in tree:
            for name in names:
                p = os.path.join(dirpath, name)
                stats[p] = os.stat(p)
        print(f"{len(stats)} files", file=sys.stderr)
        return
    if mode == "harvest":
        harvester, engine = make_harvester(Path(work), Path(root))
        dt, _cpu, counts = timed_run(harvester)
        engine.dispose()
        print(
            f"TIME {dt:.3f} SEEN {counts['files_seen']} IMAGES {counts['images_written']} "
            f"FAILED {counts['images_failed']} ERRORS {counts['errors']}",
            flush=True,
        )
        return
    raise SystemExit(f"unknown child mode {mode}")


def run_child(mode: str, root: Path, work: Path) -> tuple[int, float, str]:
    """(peak RSS in KB, wall seconds, stdout) of a child process: its VmHWM, else wait4's
    ru_maxrss (which can include this process's RSS at the fork)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(root), str(work)],
        stdout=subprocess.PIPE,
        text=True,
    )
    out = proc.stdout.read() if proc.stdout else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"child {mode} failed with exit code {proc.returncode}")
    hwm = [
        int(v) for k, v in zip(out.split()[::2], out.split()[1::2], strict=False) if k == "VMHWM"
    ]
    return (hwm[-1] if hwm else usage.ru_maxrss), dt, out  # kilobytes on Linux


def section_rss(args, work: Path) -> list[str]:
    root = work / "rss-tree"
    n = args.tree_files
    template = tiny_template(args.seed)
    log(f"rss: writing {n:,} tiny OME-TIFFs (hard links, one inode per folder) under {root}")
    t_make = make_tree(root, n, template, hardlinks=True)
    log(f"rss: tree written in {t_make:.1f} s; baseline child")
    base_kb, _, _ = run_child("baseline", root, work / "rss-node")
    log("rss: harvest child (first harvest)")
    harvest_kb, harvest_s, out = run_child("harvest", root, work / "rss-node")
    info = dict(zip(out.split()[::2], out.split()[1::2], strict=False))
    db_path = work / "rss-node" / "var" / "catalog.sqlite3"
    db_mb = sum(p.stat().st_size for p in db_path.parent.glob("catalog.sqlite3*")) / 1e6
    log("rss: listing child (whole tree materialised)")
    list_kb, list_s, _ = run_child("listing", root, work / "rss-node")
    seen = int(info.get("SEEN", 0))
    t_harvest = float(info.get("TIME", harvest_s))
    rows = [
        [
            "peak RSS",
            fmt_mb(harvest_kb),
            fmt_mb(list_kb),
            f"{list_kb / harvest_kb:,.2f}x",
            "< 500 MB",
            met(harvest_kb < 500 * 1024),
        ],
        [
            "  above import baseline",
            fmt_mb(harvest_kb - base_kb),
            fmt_mb(list_kb - base_kb),
            f"{(list_kb - base_kb) / max(1, harvest_kb - base_kb):,.1f}x",
            "",
            "",
        ],
        ["import baseline", fmt_mb(base_kb), fmt_mb(base_kb), "", "", ""],
        ["wall time", fmt_s(t_harvest), fmt_s(list_s), "", "", ""],
        ["first-harvest rate", fmt_rate(rate(seen, t_harvest)), "", "", "", ""],
    ]
    note = (
        "ours = a child process running Harvester.run() (first harvest, SQLite, thumbnails off) "
        f"on {n:,} files: files seen {seen:,}, images written {info.get('IMAGES')}, failed "
        f"{info.get('FAILED')}, errors {info.get('ERRORS')}; catalog {db_mb:,.0f} MB on disk.\n"
        "alternative = a child that imports the same modules, then materialises list(os.walk(root))"
        " and a dict path -> os.stat for every file (what a harvester that lists first holds).\n"
        "peak RSS = VmHWM of each child (/proc/self/status at its end; ru_maxrss from os.wait4"
        " where /proc is missing). "
        f"tree: {n:,} hard links ({FILES_PER_FOLDER} per folder share one inode), written in "
        f"{t_make:.1f} s; load average {loadavg()}"
    )
    return [
        table(
            f"3. Peak RSS (first harvest of {n:,} files)",
            ["measure", "ours", "list tree first", "ratio", "target", "met?"],
            rows,
            note,
        )
    ]


# ----------------------------------------------------------------------------- main


def versions() -> str:
    return report_versions(
        ("tifffile", "bioio", "bioio-ome-tiff", "SQLAlchemy", "numpy", "pydantic")
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child_main(argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000, help="OME-TIFFs for the extraction test")
    ap.add_argument("--bioio-files", type=int, default=200, help="subset timed with bioio")
    ap.add_argument("--rescan-files", type=int, default=100_000, help="files in the rescan tree")
    ap.add_argument(
        "--reextract-files",
        type=int,
        default=5_000,
        help="files re-extracted by the slow naive rescan",
    )
    ap.add_argument("--tree-files", type=int, default=1_000_000, help="files in the RSS tree")
    ap.add_argument("--out", type=Path, help="work folder (default: a new temporary folder)")
    ap.add_argument("--only", choices=("extract", "rescan", "rss"), help="run one section")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--repeat", type=int, default=3, help="runs of our extraction (median)")
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args(argv)

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="fairnode-bench-", dir=args.out))
    else:
        work = Path(tempfile.mkdtemp(prefix="fairnode-bench-"))
    emit(
        f"fairnode harvest benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n{versions()}\n"
        f"work folder: {work}\nratio = how many times better ours is (rate ours / alternative,"
        " or peak RSS alternative / ours)\n"
    )
    sections = {"extract": section_extract, "rescan": section_rescan, "rss": section_rss}
    try:
        for name, fn in sections.items():
            if args.only and args.only != name:
                continue
            t0 = time.perf_counter()
            for text in fn(args, work):
                emit(text)
            log(f"{name}: section took {time.perf_counter() - t0:.0f} s")
    finally:
        if not args.keep:
            log(f"removing {work}")
            with contextlib.suppress(OSError):
                shutil.rmtree(work)
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    log(f"benchmark process peak RSS {self_kb / 1024:.0f} MB")


if __name__ == "__main__":
    main()
