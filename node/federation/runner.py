"""One federation harvest: for each peer, read what changed since the last success and apply it.

Per peer: take the peer's lease (``peer:<id>`` in ``source_locks``, so two runs of one peer
never overlap, across processes), open a harvest run (kind ``federation``: runs and their
per-record problems show beside file harvests), read from ``watermark - overlap``, apply every
item through ``Ingester`` in batches, and on success move the watermark to what the reader says.
A ``PeerError`` (or any other failure) ends that peer's run only: its watermark stays, its
``last_error`` says why, and the other peers are harvested.

Kill-safety: batches commit as they go and the watermark moves only at the very end, so a run
killed at any point is simply read again from the old watermark next time; ingest is idempotent
(newest ``modified`` wins, one row per record), so the catalog ends the same as after an
uninterrupted run.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from node.catalog.runs import HarvestError, RunStore, lock_holder
from node.config import Config
from node.federation.ingest import Ingester
from node.federation.model import IngestCounts, PeerError, PeerReader
from node.federation.peers import Peer, PeerStore
from node.federation.state import PeerStateStore

log = logging.getLogger(__name__)

KIND = "federation"
HEARTBEAT_EVERY_S = 30.0
GC_EVERY_RECORDS = 100_000  # a full garbage collection this often while harvesting
SWITCH_INTERVAL_S = 0.001  # the GIL switch interval while harvesting (see _harvest_tuning)
# Progress callback: (peer id, running counts) after every committed batch.
Progress = Callable[[str, IngestCounts], None]


@dataclass
class PeerRun:
    """How one peer's run ended: completed, failed or busy (another process holds its lease)."""

    peer_id: str
    status: str
    counts: IngestCounts = field(default_factory=IngestCounts)
    run_id: int | None = None
    message: str | None = None
    watermark: datetime | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "completed"


def run_key(peer_id: str) -> str:
    """The lease and run ``source`` of a peer: ``peer:<id>``; no file source can have it (a
    source name is a slug, without ':'). Long ids are shortened to fit the String(64) columns."""
    key = f"peer:{peer_id}"
    if len(key) <= 64:
        return key
    return f"peer:{peer_id[:42]}~{hashlib.sha256(peer_id.encode()).hexdigest()[:16]}"


def counts_json(c: IngestCounts) -> dict[str, int]:
    return {
        "read": c.read,
        "added": c.added,
        "updated": c.updated,
        "unchanged": c.unchanged,
        "withdrawn": c.withdrawn,
        "own": c.own,
        "skipped": c.skipped,
    }


def federate(
    config: Config,
    engine: Engine,
    peer_ids: list[str] | None = None,
    progress: Progress | None = None,
    *,
    index: bool = True,
) -> dict[str, PeerRun]:
    """Harvest ``peer_ids`` (default: every peer) now, one after the other; when ``index``,
    index each batch as soon as it commits and drain the search queue at the end (the CLI and
    the worker drain it themselves)."""
    store = PeerStore(config, engine)
    peers = store.list()
    if peer_ids is not None:
        peers = [store.get(p) for p in peer_ids]
    live = _live_indexer(config, engine) if index else None
    try:
        with _harvest_tuning():
            runner = _Runner(config, engine, progress, live.submit if live else None)
            out = {p.id: runner.run(p) for p in peers}
    finally:
        if live is not None:
            try:
                live.close()
            finally:
                live.backend.close()
    if index:
        from node.worker import index_job

        try:
            index_job(config, engine)
        except Exception:  # the catalog is right; the queue keeps the work for the next drain
            log.exception("search index not updated after federation")
    return out


_tuning_lock = threading.Lock()
_tuning_users = 0
_tuning_saved: tuple[bool, float] = (True, 0.005)


@contextmanager
def _harvest_tuning() -> Iterator[None]:
    """The interpreter settings a harvest runs fastest with, restored afterwards. Process-wide,
    so counted across threads (the worker runs jobs in threads).

    * The automatic cyclic garbage collector is paused (the runner collects every
      GC_EVERY_RECORDS records itself). A harvest keeps hundreds of thousands of young objects
      alive (the records of a batch and of the pages read ahead), which the collector's passes
      walked again and again, promoting them and triggering full collections over the whole
      heap: at 100,000 records a fifth of the harvest's CPU time, growing with the heap.
      Records, pages and rows make no reference cycles: reference counting frees them.
    * The GIL switch interval is SWITCH_INTERVAL_S instead of 5 ms: the thread fetching pages
      (node/federation/sources/oai.py) takes the GIL back after every socket read, and waited up
      to a whole interval each time while the other threads validated and wrote records; the
      peer's pages were then asked for later than it could serve them."""
    global _tuning_users, _tuning_saved
    with _tuning_lock:
        if _tuning_users == 0:
            _tuning_saved = (gc.isenabled(), sys.getswitchinterval())
            gc.disable()
            sys.setswitchinterval(min(_tuning_saved[1], SWITCH_INTERVAL_S))
        _tuning_users += 1
    try:
        yield
    finally:
        with _tuning_lock:
            _tuning_users -= 1
            if _tuning_users == 0:
                enabled, interval = _tuning_saved
                sys.setswitchinterval(interval)
                if enabled:
                    gc.enable()  # and with it the collections this pause put off


def _live_indexer(config: Config, engine: Engine) -> Any:
    """A LiveIndexer (node.search.indexer), or None when the index is busy or unavailable: the
    records then wait in the search queue for the drain, as every other write does."""
    from node.search.factory import open_backend
    from node.search.indexer import LiveIndexer

    try:
        backend = open_backend(config)
    except Exception:
        log.exception("search index not opened; the records wait in the search queue")
        return None
    live = LiveIndexer.start(engine, backend)
    if live is None:
        backend.close()
    return live


class _Runner:
    def __init__(
        self,
        config: Config,
        engine: Engine,
        progress: Progress | None,
        committed: Callable[[Any], None] | None = None,
    ):
        self.config = config
        self.engine = engine
        self.progress = progress
        self.runs = RunStore(engine)
        self.state = PeerStateStore(engine)
        self.ingester = Ingester(config, engine, committed=committed)
        self.holder = lock_holder()
        self.lease = timedelta(seconds=config.harvest.lease_seconds)
        self._reported = 0

    def run(self, peer: Peer) -> PeerRun:
        key = run_key(peer.id)
        if not self.runs.acquire(key, self.holder, self.lease):
            other = self.runs.lock_holder_of(key) or "another process"
            return PeerRun(
                peer.id, "busy", message=f"peer {peer.id!r} is being harvested by {other}"
            )
        t0 = time.monotonic()
        started = datetime.now(UTC)
        run_id = self.runs.start_run(key, kind=KIND)
        self.state.started(peer.id, started)
        result = PeerRun(peer.id, "running", run_id=run_id)
        self._reported = 0  # problems of this run already written as run errors
        try:
            result.watermark = self._harvest(peer, run_id, result)
            result.status = "completed"
        except PeerError as e:
            result.status, result.message = "failed", e.message
        except KeyboardInterrupt:
            result.status, result.message = "interrupted", "stopped by the user"
            raise
        except Exception as e:  # a bug or a surprise must not stop the other peers
            log.exception("federation harvest of peer %s failed", peer.id)
            result.status, result.message = "failed", f"{type(e).__name__}: {e}"
        finally:
            self._report(run_id, result.counts)
            counts = counts_json(result.counts)
            if result.status == "completed":
                self.state.succeeded(peer.id, result.watermark, counts, started)
            else:
                self.state.failed(
                    peer.id, result.message or result.status, counts, datetime.now(UTC)
                )
            self.runs.finish_run(run_id, result.status, counts, result.message)
            self.runs.release(key, self.holder)
            result.seconds = time.monotonic() - t0
        return result

    def _harvest(self, peer: Peer, run_id: int, result: PeerRun) -> datetime | None:
        from node.federation.fetch import Fetcher

        fed = self.config.federation
        watermark = self.state.get(peer.id).watermark
        since = watermark - timedelta(seconds=fed.overlap_seconds) if watermark else None
        token = os.environ.get(peer.token_env) if peer.token_env else None
        with Fetcher(fed, peer_id=peer.id, token=token or None) as fetcher:
            if peer.protocol == "fairnode":
                self._refresh_descriptor(fetcher, peer, run_id)
            reader = self._reader(peer, fetcher)
            last_beat = time.monotonic()
            collected = result.counts.read
            for counts in self.ingester.ingest(peer.id, reader.read(since), result.counts):
                if counts.read - collected >= GC_EVERY_RECORDS:  # see _harvest_tuning
                    collected = counts.read
                    gc.collect()
                self._report(run_id, counts)
                if self.progress:
                    self.progress(peer.id, counts)
                if time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
                    last_beat = time.monotonic()
                    self.runs.update_counts(run_id, counts_json(counts))
                    if not self.runs.heartbeat(run_key(peer.id), self.holder, self.lease):
                        raise PeerError(
                            f"lost the lease of peer {peer.id!r}; another run took over"
                        )
            # Only now, with every record applied, may the next run start later than before.
            return reader.watermark

    def _reader(self, peer: Peer, fetcher: Any) -> PeerReader:
        fed = self.config.federation
        url = peer.url.rstrip("/")
        if peer.protocol == "dcat":
            from node.federation.sources.dcat import DCATReader

            return DCATReader(
                fetcher,
                peer.url,
                peer_id=peer.id,
                max_pages=fed.max_pages,
                known_remote_ids=self.state.remote_ids(peer.id),
            )
        from node.federation.sources.oai import NODE_PREFERENCE, OAIReader

        if peer.protocol == "fairnode":
            # A fairnode peer says each record's origin itself (records it harvested too). Its
            # native `fairnode` format when it offers it, else DCAT-AP; metadata_prefix forces one.
            return OAIReader(
                fetcher,
                f"{url}/oai",
                peer_id=peer.id,
                metadata_prefix=peer.metadata_prefix,
                origin_node=None,
                max_pages=fed.max_pages,
                prefer=NODE_PREFERENCE,
            )
        return OAIReader(
            fetcher,
            peer.url,
            peer_id=peer.id,
            metadata_prefix=peer.metadata_prefix,
            set_spec=peer.set_spec or None,
            origin_node=peer.id,
            max_pages=fed.max_pages,
        )

    def _refresh_descriptor(self, fetcher: Any, peer: Peer, run_id: int) -> None:
        """Learn the peer's place (and the nodes it knows) for the search scopes. A missing or
        bad descriptor is a warning: the records are still worth reading."""
        try:
            from node.federation.descriptor import refresh_descriptor
        except ImportError as e:  # pragma: no cover - the descriptor module ships with this
            log.warning("node descriptors not available (%s)", e)
            return
        try:
            refresh_descriptor(
                fetcher, peer.url, self.engine, peer.id, this_node_id=self.config.node.id
            )
        except PeerError as e:
            self.runs.add_errors(
                run_id,
                [
                    HarvestError(
                        f"{peer.url.rstrip('/')}/.well-known/fairnode", e.message, "warning"
                    )
                ],
            )

    def _report(self, run_id: int, counts: IngestCounts) -> None:
        """Write the problems not yet written as the run's errors."""
        new = counts.problems[self._reported :]
        if new:
            self.runs.add_errors(
                run_id, [HarvestError(p.remote_id or "(no identifier)", p.reason) for p in new]
            )
        self._reported = len(counts.problems)
