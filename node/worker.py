"""``fairnode worker``: the one background process that runs harvests on their schedules and
keeps the search index in step with the catalog (its single writer).

The scheduler lives here and never inside ``create_app``: every web worker
would otherwise run every job again. Two runs of one source never overlap:
APScheduler's ``max_instances=1`` covers this process, the catalog's source
lease (``RunStore.acquire``) covers other processes and hosts.

Peers added or removed with ``fairnode peers add|remove`` while the worker runs are picked up
by a cheap job (``refresh_peer_jobs``, every ``PEER_REFRESH_SECONDS``) that reconciles the
``federate:<peer>`` jobs with the peers store: no restart needed.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from node.config import Config
from node.errors import ConflictError

log = logging.getLogger(__name__)

PEER_REFRESH_SECONDS = 60  # how soon a peer added or removed with `fairnode peers` is scheduled
PEER_JOB_PREFIX = "federate:"
PEER_REFRESH_JOB = "federation:peers"


def harvest_job(config: Config, engine: Engine, source: str) -> None:
    """One scheduled harvest; a run already in progress elsewhere is skipped, not queued."""
    from node.harvest.runner import Harvester

    try:
        run = Harvester(config, engine).run(source)
    except ConflictError as e:
        log.warning("skipped scheduled harvest: %s", e)
        return
    log.info("harvest %s: %s %s", source, run.status, run.counts)
    index_job(config, engine)


def federate_job(config: Config, engine: Engine, peer_id: str) -> None:
    """One scheduled federation harvest of one peer; a run busy elsewhere is skipped."""
    from node.federation.runner import federate

    # index=True: each batch is indexed as it commits, and the queue drained at the end.
    run = federate(config, engine, [peer_id], index=True)[peer_id]
    if run.status == "busy":
        log.warning("skipped scheduled federation harvest: %s", run.message)
        return
    log.info("federate %s: %s %s", peer_id, run.status, run.message or "")


def index_job(config: Config, engine: Engine) -> None:
    """Drain the search queue: index what the catalog changed since the last drain."""
    from node.search.factory import open_backend
    from node.search.indexer import drain

    backend = open_backend(config)
    try:
        report = drain(engine, backend, batch_size=config.search.batch_size)
    finally:
        backend.close()
    if report.indexed or report.deleted or report.failed:
        log.info("search index: %s", report)


def build_scheduler(config: Config, engine: Engine, **kwargs: Any) -> BackgroundScheduler:
    """A scheduler with one cron job per source and per peer that has a schedule, the search
    index drain, and the job that keeps the peer jobs in step with `fairnode peers`."""
    sched = BackgroundScheduler(timezone=config.worker.timezone, **kwargs)
    sched.add_job(
        index_job,
        IntervalTrigger(seconds=config.search.index_interval_seconds),
        args=(config, engine),
        id="search:index",
        name="search index",
        max_instances=1,
        coalesce=True,
    )
    for src in config.sources:
        if not src.schedule:
            continue
        sched.add_job(
            harvest_job,
            CronTrigger.from_crontab(src.schedule, timezone=config.worker.timezone),
            args=(config, engine, src.name),
            id=f"harvest:{src.name}",
            name=f"harvest {src.name}",
            max_instances=1,
            coalesce=True,  # after downtime, one catch-up run rather than a burst
            misfire_grace_time=3600,
        )
    sched.add_job(
        refresh_peer_jobs,
        IntervalTrigger(seconds=PEER_REFRESH_SECONDS),
        args=(sched, config, engine),
        id=PEER_REFRESH_JOB,
        name="federation peers refresh",
        max_instances=1,
        coalesce=True,
    )
    refresh_peer_jobs(sched, config, engine)
    return sched


def _peer_trigger(config: Config, schedule: str) -> CronTrigger:
    return CronTrigger.from_crontab(schedule, timezone=config.worker.timezone)


def refresh_peer_jobs(sched: BaseScheduler, config: Config, engine: Engine) -> dict[str, list[str]]:
    """Make the ``federate:<peer>`` jobs of ``sched`` match the peers store: a job for each
    peer with a schedule (added when new, rescheduled when its schedule changed), none for a
    peer that is gone or no longer has a schedule. A harvest already running goes on.

    Returns what changed ({"added", "removed", "rescheduled"}: peer ids), for the log and the
    tests. Cheap: one query of the ``peers`` table; the jobs' arguments name only the peer id
    (``federate`` reads the peer's URL, protocol and token afresh at every run), so only the
    schedule needs comparing."""
    wanted: dict[str, CronTrigger] = {}
    for p in _peers(config, engine):
        if not p.schedule:
            continue
        try:
            wanted[p.id] = _peer_trigger(config, p.schedule)
        except ValueError as e:  # one bad schedule must not unschedule every other peer
            log.error(
                "peer %s: schedule %r is not a crontab (%s); not scheduled", p.id, p.schedule, e
            )
    jobs = {
        j.id.removeprefix(PEER_JOB_PREFIX): j
        for j in sched.get_jobs()
        if j.id.startswith(PEER_JOB_PREFIX)
    }
    changes: dict[str, list[str]] = {"added": [], "removed": [], "rescheduled": []}
    for peer_id, job in jobs.items():
        if peer_id not in wanted:
            sched.remove_job(job.id)
            changes["removed"].append(peer_id)
    for peer_id, trigger in wanted.items():
        job = jobs.get(peer_id)
        if job is None:
            sched.add_job(
                federate_job,
                trigger,
                args=(config, engine, peer_id),
                id=f"{PEER_JOB_PREFIX}{peer_id}",
                name=f"federate {peer_id}",
                max_instances=1,
                coalesce=True,  # after downtime, one catch-up run rather than a burst
                misfire_grace_time=3600,
            )
            changes["added"].append(peer_id)
        elif repr(job.trigger) != repr(trigger):  # CronTrigger has no __eq__; repr is exact
            sched.reschedule_job(job.id, trigger=trigger)
            changes["rescheduled"].append(peer_id)
    if sched.running and any(changes.values()):
        log.info("federation peers: %s", {k: v for k, v in changes.items() if v})
    return changes


def _peers(config: Config, engine: Engine) -> list:
    """The peers to schedule (config and `fairnode peers add`). A conflict between both is
    logged, and then only the config file's peers run."""
    from node.federation.peers import PeerStore

    try:
        return PeerStore(config, engine).list()
    except ConflictError as e:
        log.error("%s; scheduling only the configuration's peers", e.message)
        return list(config.federation.peers)


def run_worker(config: Config, engine: Engine) -> None:
    """Run the scheduler until SIGTERM or Ctrl-C; running harvests finish before it exits.

    The scheduler runs in its own thread and the main thread only waits for a signal, whose
    handler just sets an event. Raising from the handler instead (KeyboardInterrupt, SystemExit)
    threw the exception into whatever the main thread was doing, scheduler internals included;
    a Ctrl-C landing there once left the worker hanging instead of stopping."""
    sched = build_scheduler(config, engine)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # asked twice: stop without waiting for the running harvests
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        jobs = sched.get_jobs()
        print(f"fairnode worker: {len(jobs)} scheduled job(s); Ctrl-C to stop", flush=True)
        for job in jobs:
            print(f"  {job.name}: {job.trigger}", flush=True)
        if not stop.is_set():
            sched.start()
        while not stop.wait(1.0):  # the timeout keeps the main thread answering signals
            pass
        log.warning("stopping: waiting for running harvests to end (Ctrl-C again: do not wait)")
    finally:
        if sched.running:
            sched.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
