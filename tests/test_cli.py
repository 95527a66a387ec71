"""The `fairnode` command as a real process: init, check-config, harvest, demo, serve, worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from node.catalog.db import open_catalog
from node.catalog.models import HarvestRunRow
from node.config import load_config
from node.worker import build_scheduler, harvest_job

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "data" / "samples"


def fairnode(
    *args: str, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**(os.environ if env is None else env), "PYTHONPATH": str(REPO)},
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_node(
    tmp_path: Path, db_url: str, root: Path, *, thumbnails: bool = False, **source: str
) -> Path:
    extra = "".join(f'{k} = "{v}"\n' for k, v in source.items())
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        f'[node]\nid = "cli-node"\nname = "CLI node"\ndata_dir = "{tmp_path / "var"}"\n'
        f'[database]\nurl = "{db_url}"\n[harvest]\nthumbnails = {str(thumbnails).lower()}\n'
        f'[[harvest.sources]]\nname = "store"\npath = "{root}"\npublish = "auto"\n{extra}'
    )
    return cfg


def test_init_writes_a_starter_that_check_config_explains(tmp_path: Path):
    res = fairnode("init", str(tmp_path / "n"), "--id", "lab-a", "--source", str(tmp_path))
    assert res.returncode == 0, res.stderr
    cfg = tmp_path / "n" / "node.toml"
    assert cfg.is_file()
    ok = fairnode("--config", str(cfg), "check-config")
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    assert "lab-a" in ok.stdout
    again = fairnode("init", str(tmp_path / "n"))
    assert again.returncode != 0
    assert "exists" in again.stderr

    cfg.write_text(
        cfg.read_text()
        .replace('id = "lab-a"', 'id = "Lab A"')
        .replace("[node]", "[node]\ncolour = 1")
    )
    bad = fairnode("--config", str(cfg), "check-config")
    assert bad.returncode == 2
    assert "2 problem(s)" in bad.stderr
    assert f"{cfg}: node.id: 'Lab A' must be a slug" in bad.stderr
    assert "node.colour: unknown setting" in bad.stderr


def test_no_config_is_a_clear_usage_error():
    res = fairnode(
        "check-config", env={k: v for k, v in os.environ.items() if k != "FAIRNODE_CONFIG"}
    )
    assert res.returncode == 2
    assert "--config" in res.stderr


def test_harvest_command_prints_a_summary_and_the_errors(tmp_path: Path, db_url: str):
    root = tmp_path / "store" / "d"
    root.mkdir(parents=True)
    for name in ("z-series.ome.tif", "single-channel.ome.tif"):
        (root / name).write_bytes((SAMPLES / "ome-tiff" / name).read_bytes())
    (root / "broken.ome.tif").write_bytes(b"II*\x00nonsense")
    cfg = write_node(tmp_path, db_url, tmp_path / "store", thumbnails=True)
    res = fairnode("--config", str(cfg), "harvest")
    assert res.returncode == 0, res.stderr
    assert "store: completed" in res.stdout
    assert "3 files (3 new" in res.stdout
    assert "1 errors" in res.stdout
    assert "error: d/broken.ome.tif:" in res.stderr
    assert "files" in res.stderr  # the progress bar of the walk
    assert "thumbnails store" in res.stderr  # then the one of the thumbnails
    assert "2/2" in res.stderr  # two readable images; the broken one has no thumbnail to make
    assert "search index: 1 indexed" in res.stdout  # the dataset is searchable at once
    unknown = fairnode("--config", str(cfg), "harvest", "--source", "nope")
    assert unknown.returncode == 1
    assert "no source 'nope'" in unknown.stderr


def test_two_processes_never_harvest_one_source_at_once(tmp_path: Path, db_url: str):
    import tifffile

    template = SAMPLES / "ome-tiff" / "ome-types_ome.tiff"
    data = template.read_bytes()
    for d in range(30):
        folder = tmp_path / "store" / f"g/p/d{d}"
        folder.mkdir(parents=True)
        for f in range(20):
            (folder / f"i{f}.ome.tiff").write_bytes(data)
    with tifffile.TiffFile(template) as tif:
        assert tif.is_ome
    cfg = write_node(tmp_path, db_url, tmp_path / "store")
    open_catalog(db_url).dispose()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--config", str(cfg), "harvest", "--quiet"],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    engine = open_catalog(db_url)
    with engine.connect() as c:
        runs = c.execute(
            select(HarvestRunRow.started_at, HarvestRunRow.ended_at, HarvestRunRow.status)
        ).all()
    engine.dispose()
    assert all(r.status == "completed" for r in runs)
    if len(runs) == 2:  # the second started after the first ended
        first, second = sorted(runs)
        assert second.started_at >= first.ended_at
    else:
        assert len(runs) == 1
        assert any("being harvested by" in err for _, err in outs)


def test_demo_sets_up_harvests_and_serves_real_http(tmp_path: Path):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node.cli",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/api/v1/datasets", timeout=2)
                body = r.json()
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        assert body is not None, "the demo server never answered"
        assert body["total"] == 5
        titles = {d["title"] for d in body["items"]}
        assert "Multi-file OME-TIFF Z-stack with companion file" in titles
        home = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert home.status_code == 200
        assert "Demo imaging facility" in home.text
        # The harvest indexed what it found: search works at once, ontology-aware.
        found = requests.get(
            f"http://127.0.0.1:{port}/api/v1/search", params={"q": "human"}, timeout=5
        ).json()
        assert "Brightfield reference field, three file formats" in {
            d["title"] for d in found["items"]
        }
        page = requests.get(f"http://127.0.0.1:{port}/search?q=brightfield", timeout=5)
        assert page.status_code == 200
        assert "<mark>" in page.text
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    # The demo is idempotent: a second set-up finds everything unchanged.
    again = fairnode("demo", "--dir", str(tmp_path / "demo"), "--no-serve")
    assert again.returncode == 0, again.stderr
    assert "0 new, 0 changed, 0 removed" in again.stdout


def test_worker_schedules_every_source_once(tmp_path: Path, db_url: str):
    (tmp_path / "store").mkdir()
    cfg = load_config(write_node(tmp_path, db_url, tmp_path / "store", schedule="*/5 * * * *"))
    engine = open_catalog(db_url)
    sched = build_scheduler(cfg, engine)
    jobs = {j.id: j for j in sched.get_jobs()}
    # federation:peers keeps the peer jobs in step with `fairnode peers` (always there).
    assert set(jobs) == {"harvest:store", "search:index", "federation:peers"}
    job = jobs["harvest:store"]
    assert job.max_instances == 1
    assert "minute='*/5'" in str(job.trigger)
    # The worker is the search index's writer: it drains the queue on a timer.
    assert jobs["search:index"].max_instances == 1
    assert str(cfg.search.index_interval_seconds) in str(jobs["search:index"].trigger)
    # A scheduled run that finds the source busy is skipped, not queued or crashed.
    from datetime import timedelta

    from node.catalog.runs import RunStore

    RunStore(engine).acquire("store", "elsewhere:1", timedelta(minutes=5))
    harvest_job(cfg, engine, "store")
    with engine.connect() as c:
        assert c.execute(select(HarvestRunRow)).all() == []
    engine.dispose()


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_worker_process_starts_and_stops_cleanly(tmp_path: Path, sig: str):
    import signal

    (tmp_path / "store").mkdir()
    cfg = write_node(tmp_path, f"sqlite:///{tmp_path / 'w.sqlite3'}", tmp_path / "store")
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "--config", str(cfg), "worker"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert "3 scheduled job(s)" in line  # the source, the search index, the peers refresh
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_reindex_rebuilds_with_a_progress_bar(tmp_path: Path, db_url: str):
    root = tmp_path / "store" / "g" / "p" / "d"
    root.mkdir(parents=True)
    (root / "z.ome.tif").write_bytes((SAMPLES / "ome-tiff" / "z-series.ome.tif").read_bytes())
    cfg = write_node(tmp_path, db_url, tmp_path / "store")
    assert fairnode("--config", str(cfg), "harvest", "--quiet").returncode == 0
    res = fairnode("--config", str(cfg), "reindex")
    assert res.returncode == 0, res.stderr
    assert "reindex (tantivy)" in res.stderr  # the progress bar
    assert "1/1" in res.stderr
    assert "reindexed 1 records (tantivy): 1 documents in" in res.stdout
    # one writer at a time: a lease held elsewhere is reported, nothing is broken
    from datetime import timedelta

    from node.catalog.runs import RunStore
    from node.search.indexer import LEASE

    engine = open_catalog(db_url)
    RunStore(engine).acquire(LEASE, "elsewhere:1", timedelta(minutes=5))
    engine.dispose()
    busy = fairnode("--config", str(cfg), "reindex", "--quiet")
    assert busy.returncode == 1
    assert "the search index is being written by elsewhere:1; try again" in busy.stderr
