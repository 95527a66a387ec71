"""A harvest over a tree full of bad input completes, reports every bad file, loses nothing else.

Also: a harvest killed with SIGKILL and rerun ends with the same catalog as an
uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from harvest_helpers import make_config, snapshot, write_ome_tiff
from sqlalchemy import create_engine, func, select

from node.catalog.db import open_catalog
from node.catalog.models import FileRow
from node.harvest.runner import Harvester

REPO = Path(__file__).resolve().parents[2]
FAIRNODE = [sys.executable, "-m", "node.cli"]

XXE = """<?xml version="1.0"?>
<!DOCTYPE OME [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">
<Image ID="Image:0" Name="&xxe;"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8"
 SizeX="4" SizeY="4" SizeZ="1" SizeC="1" SizeT="1"><MetadataOnly/></Pixels></Image></OME>
"""

BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + ']>\n<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
    '<Image ID="Image:0" Name="&lol9;"/></OME>\n'
)


def build_hostile_tree(root: Path) -> dict[str, str]:
    """Write the bad files; return {relative path: what its reason must say}."""
    good = root / "good"
    write_ome_tiff(good / "fine1.ome.tif", seed=1)
    write_ome_tiff(good / "fine2.ome.tif", seed=2)
    bad = root / "bad"
    bad.mkdir(parents=True)
    full = write_ome_tiff(root / "tmp-full.ome.tif", shape=(2, 128, 128), seed=3).read_bytes()
    (root / "tmp-full.ome.tif").unlink()
    (bad / "truncated.ome.tif").write_bytes(full[: len(full) // 3])
    (bad / "corrupt.tif").write_bytes(b"II*\x00" + os.urandom(300))
    (bad / "empty.tif").write_bytes(b"")
    # A TIFF whose header claims 4294967295 x 4294967295 pixels.
    tifffile.imwrite(bad / "absurd.tif", np.zeros((8, 8), np.uint8))
    raw = bytearray((bad / "absurd.tif").read_bytes())
    tif = tifffile.TiffFile(bad / "absurd.tif")
    for tag_name in ("ImageWidth", "ImageLength"):
        tag = tif.pages[0].tags[tag_name]
        fmt = "<I" if tag.dtype == 4 else "<H"
        import struct

        raw[tag.valueoffset : tag.valueoffset + struct.calcsize(fmt)] = struct.pack(
            fmt, 0xFFFFFFFF if fmt == "<I" else 0xFFFF
        )
    tif.close()
    (bad / "absurd.tif").write_bytes(bytes(raw))
    (bad / "xxe.ome.xml").write_text(XXE)
    (bad / "bomb.ome.xml").write_text(BOMB)
    # An invalid sidecar: the folder's images are still harvested.
    (bad / "dataset.toml").write_text('title = "Bad folder"\nvisibility = "everyone"\n')
    # A symlink loop.
    (root / "loop").mkdir()
    os.symlink("..", root / "loop" / "back-to-root")
    # A name that is not UTF-8 (a valid image).
    nonutf = os.fsencode(str(root / "names")) + b"/caf\xe9.ome.tif"
    (root / "names").mkdir()
    write_ome_tiff(root / "names" / "tmp.ome.tif", seed=4)
    os.rename(os.fsencode(str(root / "names" / "tmp.ome.tif")), nonutf)
    return {
        "bad/truncated.ome.tif": "truncated",
        "bad/corrupt.tif": "not a readable TIFF",
        "bad/empty.tif": "empty file",
        "bad/absurd.tif": "4294967295 x 4294967295",
        "bad/xxe.ome.xml": "XML refused",
        "bad/bomb.ome.xml": "XML refused",
        "bad/dataset.toml": "visibility",
    }


def test_hostile_tree_completes_and_reports_every_bad_file(tmp_path, harvest_db, db_url):
    root = tmp_path / "store"
    expected = build_hostile_tree(root)
    cfg = make_config(tmp_path, db_url, root, dataset_depth=1)
    seen_folders: list[str] = []

    def progress(files: int, errors: int, folder: str) -> None:
        seen_folders.append(folder)
        if folder == "bad":  # a file deleted mid-walk, in a folder not listed yet
            (root / "good" / "fine2.ome.tif").unlink(missing_ok=True)

    run = Harvester(cfg, harvest_db, progress=progress).run("store")
    assert run.status == "completed"
    reported = {e.path: e.reason for e in run.errors}
    for path, fragment in expected.items():
        assert path in reported, f"{path} missing from the run's errors: {reported}"
        assert fragment in reported[path], (path, reported[path])
    assert "root:" not in str(reported)  # /etc/passwd was never read
    assert any("loop" in r for p, r in reported.items() if p.startswith("loop/")), reported
    assert any("UTF-8" in r for p, r in reported.items() if p.startswith("names/")), reported

    paths = set()
    with harvest_db.connect() as c:
        for r in c.execute(select(FileRow.dir, FileRow.name)):
            paths.add(f"{r.dir}/{r.name}")
    assert "good/fine1.ome.tif" in paths
    assert "good/fine2.ome.tif" not in paths  # deleted before its folder was listed
    assert "names/caf\\xe9.ome.tif" in paths  # catalogued, readable name
    snap = snapshot(harvest_db)
    statuses = {doc["path"]: doc["status"] for doc in snap["images"].values()}
    assert statuses["good/fine1.ome.tif"] == "ok"
    assert statuses["names/caf\\xe9.ome.tif"] == "ok"
    assert statuses["bad/corrupt.tif"] == "failed"
    assert statuses["bad/absurd.tif"] == "failed"
    # A second run over the same tree is stable and loses nothing.
    run2 = Harvester(cfg, harvest_db).run("store")
    assert run2.status == "completed"
    assert snapshot(harvest_db) == snap


def _without_root_privileges() -> list[str]:
    """A command prefix under which permission bits apply (root reads everything otherwise)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    # Root minus the capabilities that bypass file modes: a real EACCES, same interpreter.
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_unreadable_files_and_folders_are_reported(tmp_path, db_url):
    root = tmp_path / "store"
    write_ome_tiff(root / "ok/a.ome.tif", seed=1)
    write_ome_tiff(root / "locked-file/b.ome.tif", seed=2)
    write_ome_tiff(root / "locked-dir/c.ome.tif", seed=3)
    cfg_file = _config_file(tmp_path, db_url, root, dataset_depth=1)
    os.chmod(root / "locked-file/b.ome.tif", 0)
    os.chmod(root / "locked-dir", 0)
    try:
        proc = subprocess.run(
            [
                *_without_root_privileges(),
                *FAIRNODE,
                "--config",
                str(cfg_file),
                "harvest",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
    finally:
        os.chmod(root / "locked-dir", 0o755)
        os.chmod(root / "locked-file/b.ome.tif", 0o644)
    assert proc.returncode == 0, proc.stderr
    assert "locked-file/b.ome.tif" in proc.stderr
    assert "Permission denied" in proc.stderr
    assert "locked-dir" in proc.stderr
    assert "cannot list folder" in proc.stderr
    engine = open_catalog(db_url)
    with engine.connect() as c:
        rows = {r.name: r.fileset for r in c.execute(select(FileRow.name, FileRow.fileset))}
    engine.dispose()
    assert rows["a.ome.tif"] == "ok/a.ome.tif"
    assert "b.ome.tif" in rows  # known, with its failure recorded on its image


def _config_file(tmp_path: Path, db_url: str, root: Path, *, dataset_depth: int) -> Path:
    cfg_file = tmp_path / "node.toml"
    cfg_file.write_text(
        f'[node]\nid = "test-node"\nname = "Test node"\ndata_dir = "{tmp_path / "var"}"\n'
        f'[database]\nurl = "{db_url}"\n[harvest]\nthumbnails = false\n'
        f'[[harvest.sources]]\nname = "store"\npath = "{root}"\npublish = "auto"\n'
        f"dataset_depth = {dataset_depth}\n"
    )
    return cfg_file


def _many_files(root: Path, folders: int, per_folder: int) -> None:
    for d in range(folders):
        for f in range(per_folder):
            path = root / f"g{d // 10}/p{d}/img{f:03d}.ome.tif"
            write_ome_tiff(path, shape=(1, 8, 8), seed=d * 1000 + f)


def _fairnode(cfg_file: Path, **kw):
    return subprocess.run(
        [*FAIRNODE, "--config", str(cfg_file), "harvest", "--quiet"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def test_sigkill_mid_harvest_then_rerun_equals_an_uninterrupted_run(tmp_path, db_url, request):
    root = tmp_path / "store"
    _many_files(root, folders=40, per_folder=15)
    total = 40 * 15

    # Reference: an uninterrupted run into its own catalog.
    ref_url = _second_db(request, tmp_path, db_url)
    ref_cfg = make_config(tmp_path / "ref", ref_url, root, dataset_depth=2)
    ref_engine = open_catalog(ref_url)
    assert Harvester(ref_cfg, ref_engine).run("store").status == "completed"
    expected = snapshot(ref_engine)
    ref_engine.dispose()

    cfg_file = _config_file(tmp_path, db_url, root, dataset_depth=2)
    engine = open_catalog(db_url)
    proc = subprocess.Popen(
        [*FAIRNODE, "--config", str(cfg_file), "harvest", "--quiet"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    count = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        with engine.connect() as c:
            count = c.scalar(select(func.count()).select_from(FileRow))
        if count >= total // 4:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < count < total, f"the kill landed outside the run ({count} of {total} committed)"
    # The killed run still holds the lease; its process is gone, so the rerun takes it over.
    rerun = _fairnode(cfg_file)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(engine) == expected
    engine.dispose()


def _second_db(request, tmp_path: Path, db_url: str) -> str:
    """Another fresh database of the same kind as ``db_url``."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    import uuid

    name = f"fn_ref_{uuid.uuid4().hex[:12]}"
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    request.addfinalizer(drop)
    return db_url.rsplit("/", 1)[0] + "/" + name
