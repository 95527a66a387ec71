"""`fairnode peers add|list|remove|check`, `fairnode federate` and the worker's peer jobs, through
click's CliRunner against a real catalog and a real source node on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner
from config_file import write_config
from sqlalchemy import Engine, select

from node.catalog.models import PeerRow
from node.cli import main
from node.config import Config, load_config
from node.worker import build_scheduler

sys.path.insert(0, str(Path(__file__).parent))
from test_federate_runner import SOURCE_ID, populate, source_node  # noqa: E402


def cli_config(tmp_path: Path, config: Config, peers: str = "") -> Path:
    """A config whose peers fail fast (no retries, short timeouts), then ``peers``."""
    return write_config(
        tmp_path, config, "\n[federation]\nmax_retries = 0\ntimeout_seconds = 5\n" + peers
    )


def cli(path: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(path), *args], catch_exceptions=False)


def test_peers_add_list_remove(config: Config, engine: Engine, tmp_path: Path):
    path = cli_config(
        tmp_path,
        config,
        '[[federation.peers]]\nid = "uni"\nurl = "http://uni.test"\nschedule = ""\n',
    )
    r = cli(
        path,
        "peers",
        "add",
        "zenodo",
        "https://zenodo.org/oai2d",
        "--protocol",
        "oai-pmh",
        "--metadata-prefix",
        "oai_datacite",
        "--set",
        "user-microscopy",
        "--token-env",
        "ZENODO_TOKEN",
    )
    assert r.exit_code == 0, r.output
    assert "added peer 'zenodo'" in r.output
    with engine.connect() as c:
        row = c.execute(select(PeerRow)).one()
    assert (row.id, row.protocol, row.metadata_prefix, row.set_spec, row.token_env) == (
        "zenodo",
        "oai-pmh",
        "oai_datacite",
        "user-microscopy",
        "ZENODO_TOKEN",
    )
    listing = cli(path, "peers", "list")
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert lines[0].split() == [
        "ID",
        "PROTOCOL",
        "URL",
        "SCHEDULE",
        "SOURCE",
        "LAST",
        "SUCCESS",
        "LAST",
        "ERROR",
        "RECORDS",
    ]
    assert lines[1].split()[:6] == [
        "uni",
        "fairnode",
        "http://uni.test",
        "manual",
        "config",
        "never",
    ]
    zenodo = lines[2].split()
    assert zenodo[:5] == ["zenodo", "oai-pmh", "https://zenodo.org/oai2d", "*/30", "*"]
    assert zenodo[-4:] == ["cli", "never", "-", "0"]
    # Bad input: every problem named.
    bad = CliRunner().invoke(
        main,
        ["--config", str(path), "peers", "add", "Bad Id", "ftp://x", "--schedule", "every day"],
    )
    assert bad.exit_code == 1
    assert "'Bad Id' must be a slug" in bad.output
    assert "'ftp://x' is not an http(s) URL" in bad.output
    assert "schedule" in bad.output
    dup = CliRunner().invoke(main, ["--config", str(path), "peers", "add", "uni", "http://u.test"])
    assert dup.exit_code == 1
    assert "already a peer 'uni'" in dup.output
    # Config peers are edited in the file; CLI peers are removed, their records kept.
    r = CliRunner().invoke(main, ["--config", str(path), "peers", "remove", "uni"])
    assert r.exit_code == 1
    assert "[[federation.peers]]" in r.output
    r = cli(path, "peers", "remove", "zenodo")
    assert r.exit_code == 0
    assert "records harvested from it stay" in r.output
    with engine.connect() as c:
        assert c.execute(select(PeerRow)).all() == []


def test_an_id_in_both_the_file_and_the_database_is_an_error(
    config: Config, engine: Engine, tmp_path: Path
):
    path = cli_config(tmp_path, config)
    assert cli(path, "peers", "add", "uni", "http://uni.test").exit_code == 0
    path = cli_config(tmp_path, config, '[[federation.peers]]\nid = "uni"\nurl = "http://u"\n')
    r = CliRunner().invoke(main, ["--config", str(path), "peers", "list"])
    assert r.exit_code == 1
    assert "'uni' is both in" in r.output


def test_federate_and_check_against_a_real_node(config: Config, engine: Engine, tmp_path: Path):
    with source_node(tmp_path / "src") as src:
        populate(src, 5)
        path = cli_config(tmp_path, config)
        assert cli(path, "peers", "add", SOURCE_ID, src.url).exit_code == 0
        check = cli(path, "peers", "check", SOURCE_ID)
        assert check.exit_code == 0, check.output
        assert f"descriptor: node '{SOURCE_ID}' (institute)" in check.output
        assert "OAI-PMH at" in check.output
        assert "dcat_ap" in check.output
        r = cli(path, "federate", "--quiet")
        assert r.exit_code == 0, r.output
        assert f"{SOURCE_ID}: completed" in r.output
        assert "5 added" in r.output
        listing = cli(path, "peers", "list")
        row = next(line for line in listing.output.splitlines() if line.startswith(SOURCE_ID))
        assert row.split()[-1] == "5"
        assert "never" not in row
    # The peer is gone now: check and federate say why, and federate exits non-zero.
    check = CliRunner().invoke(main, ["--config", str(path), "peers", "check", SOURCE_ID])
    assert check.exit_code == 1
    assert "FAILED" in check.output
    assert src.url in check.output
    r = CliRunner().invoke(main, ["--config", str(path), "federate", "--peer", SOURCE_ID])
    assert r.exit_code == 1
    assert f"{SOURCE_ID}: failed" in r.output
    unknown = CliRunner().invoke(main, ["--config", str(path), "federate", "--peer", "nope"])
    assert unknown.exit_code == 1
    assert "no peer 'nope'" in unknown.output


def test_the_worker_schedules_one_job_per_scheduled_peer(
    config: Config, engine: Engine, tmp_path: Path
):
    path = cli_config(
        tmp_path,
        config,
        '[[federation.peers]]\nid = "uni"\nurl = "http://uni.test"\nschedule = "*/10 * * * *"\n'
        '[[federation.peers]]\nid = "manual"\nurl = "http://m.test"\nschedule = ""\n',
    )
    assert (
        cli(path, "peers", "add", "nat", "http://nat.test", "--schedule", "0 3 * * *").exit_code
        == 0
    )
    sched = build_scheduler(load_config(path), engine)
    jobs = {j.id: j for j in sched.get_jobs()}
    assert set(jobs) == {"search:index", "federation:peers", "federate:uni", "federate:nat"}
    assert jobs["federate:uni"].max_instances == 1
    assert "minute='*/10'" in str(jobs["federate:uni"].trigger)
    assert "hour='3'" in str(jobs["federate:nat"].trigger)
