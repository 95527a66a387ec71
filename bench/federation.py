"""Federation benchmark (issue 5, "Speed"): one node harvesting another on loopback.

    python bench/federation.py                          # 100,000 public records on the source
    python bench/federation.py --records 10000 --crawl-sample 500
    python bench/federation.py --work /tmp/fed          # keep (and reuse) the source catalog

1. The source: the node and catalog of bench/linkeddata.py (N published public datasets, real
   pydantic records with NCBITaxon organisms, FBbi methods, ORCID creators, ...), served by
   ``gunicorn node.wsgi:app`` with 2 sync workers on a free loopback port.
2. The receiver: a second node (its own config, SQLite catalog and tantivy index) with the
   source as a `fairnode` peer, harvested in this process by ``node.federation.runner.federate``
   (what ``fairnode federate`` runs): the peer's descriptor, OAI-PMH ListRecords pages of 100 in
   the native `fairnode` format, ingest into the catalog, and the search index drained at the end.
3. Rows: the full harvest into an empty receiver; an incremental harvest with no change at the
   source; one after 1,000 records changed at the source; and the alternatives in the same run:
   the same harvest in `dcat_ap` (the DCAT-AP RDF/XML every node also serves; read and mapped
   for the first records only, it is slow), and the naive full re-crawl a FAIR Data Point index
   does (one GET per record's metadata, here Turtle, parsed and mapped), measured on a sample and
   projected to the whole catalog.

Nothing here asserts a time: the tables report the issue's targets and whether this run met
them. Source and receiver share the machine's 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import linkeddata as ld
from report import emit, loadavg, log, table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RECEIVER_ID = "bench-receiver"
TARGETS = {"full_rps": 3000.0, "noop_s": 0.5, "changes_s": 3.0}


def receiver_config(work: Path, peer_url: str, prefix: str = "") -> Path:
    """A fresh receiving node (its data folder emptied) with the source as its one peer."""
    data = work / "receiver"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    cfg = work / "receiver.toml"
    cfg.write_text(
        "# written by bench/federation.py\n"
        "[node]\n"
        f'id = "{RECEIVER_ID}"\n'
        'name = "Bench receiving node"\n'
        'base_url = "https://receiver.bench.example.org"\n'
        'level = "university"\n'
        f'data_dir = "{data}"\n\n'
        "[federation]\n"
        "timeout_seconds = 120\n\n"
        "[[federation.peers]]\n"
        f'id = "{ld.NODE_ID}"\n'
        f'url = "{peer_url}"\n'
        'protocol = "fairnode"\n'
        'schedule = ""\n'
        f'metadata_prefix = "{prefix}"\n'
    )
    return cfg


def run_federate(cfg_path: Path) -> tuple[float, object, int]:
    """(seconds, the peer's PeerRun, catalog records) of one ``federate`` of the receiver."""
    from sqlalchemy import func, select

    from node.catalog.db import open_catalog
    from node.catalog.models import DatasetRow
    from node.config import load_config
    from node.federation.runner import federate

    config = load_config(cfg_path)
    engine = open_catalog(config.database_url)
    try:
        t0 = time.perf_counter()
        runs = federate(config, engine)
        seconds = time.perf_counter() - t0
        run = runs[ld.NODE_ID]
        if not run.ok:
            raise SystemExit(f"federate failed: {run.message}")
        with engine.connect() as c:
            n = c.scalar(select(func.count()).select_from(DatasetRow))
        return seconds, run, n
    finally:
        engine.dispose()


def process_cpu() -> tuple[float, float]:
    """(CPU seconds of this process, of its children that ended): the receiver runs in this
    process; its search indexing child (BulkWriter) ends with the harvest and is counted then."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def cpu_budget(records: int, seconds: float, receiver: float, indexer: float, source: float) -> str:
    """Where the full harvest's CPU went, and the fastest the machine's cores allow for it."""
    cores = os.cpu_count() or 1
    total = receiver + indexer + source
    floor = total / cores
    return (
        f"CPU of the full harvest: receiver process {receiver:.1f} s, its search indexing child "
        f"{indexer:.1f} s, source workers {source:.1f} s; total {total:.1f} s in {seconds:.1f} s "
        f"of wall time ({total / seconds:.2f} of {cores} cores busy). With this much CPU work, "
        f"{cores} cores cannot do it in less than {floor:.1f} s ({records / floor:,.0f} records/s "
        f"at most); the receiver process alone, GIL-bound, needs {receiver:.1f} s "
        f"({records / receiver:,.0f} records/s at most)."
    )


def index_documents(cfg_path: Path) -> int:
    from node.config import load_config
    from node.search.factory import open_backend

    backend = open_backend(load_config(cfg_path))
    try:
        return backend.health().documents or 0
    finally:
        close = getattr(backend, "close", None)
        if close:
            close()


def change_records(node: ld.Node, ids: list[str], stamp: datetime) -> list[dict]:
    """Edit ``ids`` on the source as a curator would: a new title, ``modified`` bumped. Returns
    the rows as they were, for ``restore_records``: a source kept with ``--work`` must not
    carry recent changes into the next run (its no-change row would read them again)."""
    from sqlalchemy import select, update

    from node.catalog.db import open_catalog
    from node.catalog.models import DatasetRow
    from node.catalog.service import dataset_row_values
    from node.records import Dataset

    engine = open_catalog(f"sqlite:///{node.catalog}")
    try:
        with engine.begin() as c:
            rows = c.execute(
                select(DatasetRow.id, DatasetRow.doc, DatasetRow.source, DatasetRow.folder).where(
                    DatasetRow.id.in_(ids)
                )
            ).all()
            originals = []
            for row in rows:
                ds = Dataset.model_validate(row.doc)
                originals.append(dataset_row_values(ds, source=row.source, folder=row.folder))
                ds = ds.model_copy(update={"title": ds.title + " (revised)", "modified": stamp})
                values = dataset_row_values(ds, source=row.source, folder=row.folder)
                c.execute(update(DatasetRow).where(DatasetRow.id == row.id).values(**values))
        return originals
    finally:
        engine.dispose()


def restore_records(node: ld.Node, originals: list[dict]) -> None:
    from sqlalchemy import update

    from node.catalog.db import open_catalog
    from node.catalog.models import DatasetRow

    engine = open_catalog(f"sqlite:///{node.catalog}")
    try:
        with engine.begin() as c:
            for values in originals:
                c.execute(update(DatasetRow).where(DatasetRow.id == values["id"]).values(**values))
    finally:
        engine.dispose()


def revised(cfg_path: Path) -> int:
    from sqlalchemy import func, select

    from node.catalog.db import open_catalog
    from node.catalog.models import DatasetRow
    from node.config import load_config

    engine = open_catalog(load_config(cfg_path).database_url)
    try:
        with engine.connect() as c:
            return c.scalar(
                select(func.count())
                .select_from(DatasetRow)
                .where(DatasetRow.title.like("% (revised)"))
            )
    finally:
        engine.dispose()


def dcat_read(peer_url: str, limit: int) -> tuple[int, float]:
    """(records, seconds): the first ``limit`` records read in dcat_ap and mapped, no ingest."""
    from node.config import FederationSettings
    from node.federation.fetch import Fetcher
    from node.federation.model import RemoteRecord
    from node.federation.sources.oai import OAIReader

    with Fetcher(FederationSettings(timeout_seconds=120), peer_id=ld.NODE_ID) as f:
        reader = OAIReader(
            f, f"{peer_url}/oai", peer_id=ld.NODE_ID, metadata_prefix="dcat_ap", max_pages=10**6
        )
        t0 = time.perf_counter()
        got = list(islice(reader.read(None), limit))
        seconds = time.perf_counter() - t0
    bad = [g for g in got if not isinstance(g, RemoteRecord)]
    if bad:
        raise SystemExit(f"dcat_ap read reported problems: {bad[:3]}")
    return len(got), seconds


def naive_crawl(peer_url: str, ids: list[str], threads: int) -> float:
    """Seconds to GET every record of ``ids`` as Turtle and map it (a FAIR Data Point index's
    re-crawl), ``threads`` requests at a time."""
    import requests

    from node.linkeddata.context import dataset_iri
    from node.linkeddata.dcat_read import dataset_from_graph
    from node.linkeddata.mediatypes import parse

    session = requests.Session()

    def one(dataset_id: str) -> str:
        url = f"{peer_url}/datasets/{dataset_id}"
        r = session.get(url, headers={"Accept": "text/turtle"}, timeout=60)
        r.raise_for_status()
        g = parse(r.content, "text/turtle")
        return dataset_from_graph(g, dataset_iri(ld.BASE_URL, dataset_id)).title

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        titles = list(pool.map(one, ids))
    seconds = time.perf_counter() - t0
    if len(titles) != len(ids) or not all(titles):
        raise SystemExit("the naive crawl lost records")
    return seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000, help="public records on the source")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--changes", type=int, default=1000, help="records changed for row 3")
    ap.add_argument("--dcat-records", type=int, default=3000, help="records read in dcat_ap")
    ap.add_argument(
        "--crawl-sample", type=int, default=2000, help="records the naive crawl fetches"
    )
    ap.add_argument("--crawl-threads", type=int, default=4, help="concurrent naive GETs")
    ap.add_argument("--work", type=Path, help="work folder (kept; its source catalog reused)")
    ap.add_argument("--fresh", action="store_true", help="generate the source catalog again")
    ap.add_argument("--max-load", type=float, default=1.0)
    ap.add_argument("--max-wait", type=float, default=300)
    args = ap.parse_args(argv)

    keep = args.work is not None
    work = (args.work or Path(tempfile.mkdtemp(prefix="fairnode-bench-fed-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    source = ld.Node(work / "source", args.records, args.seed)
    source.work.mkdir(parents=True, exist_ok=True)
    emit(
        f"fairnode federation benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
        f"{ld.versions()}\nwork folder: {work}{'' if keep else ' (temporary)'}"
    )
    try:
        ld.write_config(source)
        marker = json.loads(source.marker.read_text()) if source.marker.exists() else None
        if args.fresh or not marker:
            log(f"generating {args.records:,} datasets into {source.catalog}")
            marker = ld.generate(source)
        else:
            log(f"reusing {source.catalog} (--fresh to generate it again)")
        # The generated records are all older than now - overlap: a no-change run reads none.
        emit(
            f"source: {marker['records']:,} published public datasets, "
            f"{marker['catalog_bytes'] / 1e6:,.0f} MB of SQLite, gunicorn 2 sync workers"
        )
        emit(ld.wait_for_quiet(args.max_load, args.max_wait) + "\n")
        ids = ld.dataset_ids(source)
        rows: list[list[str]] = []
        verdicts: dict[str, bool] = {}
        with ld.gunicorn(source, "sync", 2, 1, "/oai?verb=Identify") as server:
            peer = server.base
            cfg = receiver_config(work, peer)

            log(f"full harvest of {len(ids):,} records (load {loadavg()})")
            cpu0 = sum(server.cpu()[2])
            own0, kids0 = process_cpu()
            seconds, run, held = run_federate(cfg)
            own1, kids1 = process_cpu()
            source_cpu = sum(server.cpu()[2]) - cpu0
            budget = cpu_budget(len(ids), seconds, own1 - own0, kids1 - kids0, source_cpu)
            documents = index_documents(cfg)
            if held != len(ids) or documents != len(ids):
                raise SystemExit(f"receiver holds {held:,} records, {documents:,} indexed")
            rate = len(ids) / seconds
            verdicts["full"] = rate >= TARGETS["full_rps"]
            rows.append(
                [
                    "full harvest (fairnode format, indexed)",
                    f"{len(ids):,}",
                    f"{seconds:.1f}",
                    f"{rate:,.0f}",
                    f"≥ {TARGETS['full_rps']:,.0f} rec/s",
                    "met" if verdicts["full"] else "MISSED",
                ]
            )
            log(f"  {rate:,.0f} records/s ({seconds:.1f} s; source workers {source_cpu:.1f} s CPU)")

            log("incremental harvest, nothing changed")
            seconds, run, _ = run_federate(cfg)
            verdicts["noop"] = seconds < TARGETS["noop_s"]
            noop = seconds
            rows.append(
                [
                    "incremental, no change",
                    f"{run.counts.read:,}",
                    f"{seconds:.2f}",
                    "",
                    f"< {TARGETS['noop_s']} s",
                    "met" if verdicts["noop"] else "MISSED",
                ]
            )

            changed = random.Random(args.seed).sample(ids, min(args.changes, len(ids)))
            # A second ago: a list only serves records changed before it started.
            originals = change_records(source, changed, datetime.now(UTC) - timedelta(seconds=2))
            log(f"incremental harvest after {len(changed):,} changes")
            try:
                seconds, run, _ = run_federate(cfg)
            finally:
                restore_records(source, originals)
            got = revised(cfg)
            if got != len(changed):
                raise SystemExit(f"{got} of {len(changed)} changes arrived")
            verdicts["changes"] = seconds < TARGETS["changes_s"]
            rows.append(
                [
                    f"incremental, {len(changed):,} changed",
                    f"{run.counts.read:,}",
                    f"{seconds:.2f}",
                    f"{len(changed) / seconds:,.0f}",
                    f"< {TARGETS['changes_s']} s",
                    "met" if verdicts["changes"] else "MISSED",
                ]
            )

            log(f"dcat_ap: reading and mapping the first {args.dcat_records:,} records")
            n, dcat_s = dcat_read(peer, args.dcat_records)
            dcat_rate = n / dcat_s
            rows.append(
                [
                    "alternative: same harvest in dcat_ap (read + map only)",
                    f"{n:,}",
                    f"{dcat_s:.1f}",
                    f"{dcat_rate:,.0f}",
                    "",
                    f"{rate / dcat_rate:,.1f}x slower than full",
                ]
            )

            sample = random.Random(args.seed + 1).sample(ids, min(args.crawl_sample, len(ids)))
            log(f"naive re-crawl: {len(sample):,} GETs as Turtle, {args.crawl_threads} at a time")
            crawl_s = naive_crawl(peer, sample, args.crawl_threads)
            crawl_rate = len(sample) / crawl_s
            projected = len(ids) / crawl_rate
            rows.append(
                [
                    "alternative: naive re-crawl (GET per record, Turtle)",
                    f"{len(sample):,} (sample)",
                    f"{crawl_s:.1f}",
                    f"{crawl_rate:,.0f}",
                    f"whole catalog ≈ {projected:,.0f} s",
                    f"{projected / max(noop, 1e-9):,.0f}x the no-change run",
                ]
            )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        emit(
            table(
                f"Federation, {len(ids):,} records, two nodes on loopback",
                ["measurement", "records", "seconds", "records/s", "target", "verdict"],
                rows,
                note=(
                    f"peak RSS of the harvesting process {peak_mb:,.0f} MB; load average at the "
                    f"end {loadavg()}\n{budget}"
                ),
            )
        )
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
