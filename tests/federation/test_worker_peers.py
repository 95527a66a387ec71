"""`fairnode worker` picks up peers added, changed or removed with `fairnode peers` while it runs
(node/worker.py ``refresh_peer_jobs``, a job of its own every PEER_REFRESH_SECONDS): the
scheduler is built from the real config and catalog, the peers changed through the real store
and the `fairnode peers` command, and the reconcile run as the job runs it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from config_file import write_config
from sqlalchemy import Engine, update

from node.catalog.models import PeerRow
from node.cli import main
from node.config import Config, PeerSettings, load_config
from node.federation.peers import PeerStore
from node.worker import PEER_REFRESH_JOB, PEER_REFRESH_SECONDS, build_scheduler, refresh_peer_jobs

UNI_PEER = """
[[federation.peers]]
id = "uni"
url = "http://uni.test"
schedule = "*/10 * * * *"
"""


def peer_jobs(sched) -> dict[str, str]:
    return {j.id: str(j.trigger) for j in sched.get_jobs() if j.id.startswith("federate:")}


def test_peers_added_changed_and_removed_are_rescheduled_without_a_restart(
    config: Config, engine: Engine, tmp_path: Path
):
    cfg = load_config(write_config(tmp_path, config, UNI_PEER))
    sched = build_scheduler(cfg, engine)
    jobs = {j.id: j for j in sched.get_jobs()}
    # The reconcile job is always there, cheap and never run twice at once.
    refresh = jobs[PEER_REFRESH_JOB]
    assert refresh.func is refresh_peer_jobs
    assert refresh.max_instances == 1
    assert f"interval[0:0{PEER_REFRESH_SECONDS // 60}:00]" == str(refresh.trigger)
    assert peer_jobs(sched) == {"federate:uni": str(jobs["federate:uni"].trigger)}

    # Nothing changed: nothing to do.
    assert refresh_peer_jobs(sched, cfg, engine) == {"added": [], "removed": [], "rescheduled": []}

    # Added while the worker runs, through the store and through the command.
    store = PeerStore(cfg, engine)
    store.add(PeerSettings(id="nat", url="http://nat.test", schedule="0 3 * * *"))
    store.add(PeerSettings(id="manual", url="http://m.test", schedule=""))
    res = CliRunner().invoke(
        main,
        ["--config", str(cfg.path), "peers", "add", "zen", "https://zenodo.org/oai2d"]
        + ["--protocol", "oai-pmh", "--schedule", "30 1 * * *"],
    )
    assert res.exit_code == 0, res.output
    changes = refresh_peer_jobs(sched, cfg, engine)
    assert changes == {"added": ["nat", "zen"], "removed": [], "rescheduled": []}
    jobs = {j.id: j for j in sched.get_jobs()}
    assert set(peer_jobs(sched)) == {"federate:uni", "federate:nat", "federate:zen"}
    assert "hour='3'" in str(jobs["federate:nat"].trigger)
    assert jobs["federate:nat"].args[2] == "nat"  # the job harvests that peer
    assert jobs["federate:nat"].max_instances == 1

    # A schedule changed in the store (no `peers edit` yet: as a later command would).
    with engine.begin() as c:
        c.execute(update(PeerRow).where(PeerRow.id == "nat").values(schedule="15 4 * * *"))
    assert refresh_peer_jobs(sched, cfg, engine)["rescheduled"] == ["nat"]
    trigger = str({j.id: j for j in sched.get_jobs()}["federate:nat"].trigger)
    assert "hour='4'" in trigger
    assert "minute='15'" in trigger

    # Removed (and one that stops having a schedule): their jobs go; the config peer stays.
    store.remove("zen")
    with engine.begin() as c:
        c.execute(update(PeerRow).where(PeerRow.id == "nat").values(schedule=""))
    changes = refresh_peer_jobs(sched, cfg, engine)
    assert sorted(changes["removed"]) == ["nat", "zen"]
    assert set(peer_jobs(sched)) == {"federate:uni"}
    assert PEER_REFRESH_JOB in {j.id for j in sched.get_jobs()}
