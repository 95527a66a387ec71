"""Linked-data benchmark (issue 4, "Speed"): landing pages (HTML, schema.org JSON-LD, DCAT-AP
Turtle) and OAI-PMH ListRecords pages served by the node under gunicorn (2 workers), loaded by
``wrk`` on loopback, against the obvious alternatives measured in the same run.

    python bench/linkeddata.py                        # 10,000 datasets, sync and gthread workers
    python bench/linkeddata.py --records 2000 --duration 10 --worker-classes sync
    python bench/linkeddata.py --work /tmp/ld --profile jsonld    # + a py-spy profile of a worker

1. A node in a work folder: a config file and a SQLite catalog (the project's migrations) holding
   N published public datasets with 1-5 images each, written with SQLAlchemy Core as the JSON
   form ``Dataset.to_json()`` / ``dataset_row_values`` and ``image_row_values`` give (the records
   are real pydantic Datasets and Images: NCBITaxon organisms and FBbi methods resolved through
   node.ontologies, SPDX licences, creators with ORCID iDs and ROR affiliations, grants, DOIs).
2. ``FAIRNODE_CONFIG=<config> gunicorn node.wsgi:app`` with 2 workers on a free loopback port.
3. ``wrk`` (one thread, a fixed number of connections, a Lua script spreading the requests over
   every dataset id or every OAI page and setting Accept) for each representation, after a
   warm-up, in rounds interleaved across the rows (the median round is reported): requests/s,
   latency percentiles, the CPU the workers, wrk and every other process used.
4. Alternatives, same run, same machine: the DCAT-AP graph serialised as JSON-LD by rdflib (the
   other JSON-LD the node offers), the JSON API page of 100 records (the other way to harvest the
   catalog), and two ceilings: the very same bodies pre-rendered and served from memory by a
   bare WSGI function on the same gunicorn settings, and as static files by ``python -m
   http.server``.

Nothing here asserts a time: the table reports the issue's targets and whether this run met them.
wrk shares the 2 cores with the server; its CPU time is reported so the reader can see how much.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from report import emit, loadavg, log, table
from report import versions as report_versions

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GEN_VERSION = 1  # bump when the generated records change: a kept work folder is then rebuilt
NODE_ID = "bench-node"
SOURCE = "store"
BASE_URL = "https://imaging.bench.example.org"
OAI_PAGE = 100  # the ListRecords page
TARGETS = {"jsonld_rps": 500.0, "jsonld_p99_ms": 100.0, "oai_records_s": 5000.0}

JSONLD = "application/ld+json"
DCAT_JSONLD = 'application/ld+json; profile="http://www.w3.org/ns/dcat#"'
TURTLE = "text/turtle"
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # a browser's Accept

# ----------------------------------------------------------------------------- output


# ----------------------------------------------------------------------------- records

ORGANISMS = [  # resolved through node.ontologies.resolve_organism (NCBITaxon)
    ("mouse", "Mus musculus"),
    ("human", "Homo sapiens"),
    ("zebrafish", "Danio rerio"),
    ("fruit fly", "Drosophila melanogaster"),
    ("Caenorhabditis elegans", "C. elegans"),
    ("baker's yeast", "budding yeast"),
    ("Arabidopsis thaliana", "Arabidopsis"),
    ("rat", "Rattus norvegicus"),
    ("Xenopus laevis", "Xenopus"),
    ("chicken", "chick"),
    ("Schizosaccharomyces pombe", "fission yeast"),
    ("Escherichia coli", "E. coli"),
]
METHODS = [  # resolved through node.ontologies.resolve_imaging_method (FBbi)
    "confocal microscopy",
    "spinning disk confocal microscopy",
    "light sheet fluorescence microscopy",
    "two-photon laser scanning microscopy",
    "structured illumination microscopy (SIM)",
    "stimulated emission depletion (STED)",
    "total internal reflection fluorescence microscopy",
    "bright-field microscopy",
    "differential interference contrast microscopy",
    "phase contrast microscopy",
    "transmission electron microscopy",
    "scanning electron microscopy",
]
LICENSES = ["CC-BY-4.0", "CC0-1.0", "CC-BY-NC-4.0", "CC-BY-SA-4.0", "CC-BY-NC-SA-4.0"]
STRUCTURES = [
    "mitochondrial networks",
    "the actin cytoskeleton",
    "microtubule dynamics",
    "nuclear envelope breakdown",
    "mitotic spindles",
    "primary cilia",
    "focal adhesions",
    "endosomal trafficking",
    "synaptic vesicle pools",
    "neural crest migration",
    "somite boundaries",
    "the apical junctions",
    "lipid droplets",
    "stress granules",
    "chromatin compaction",
    "the Golgi apparatus",
]
CONTEXTS = [
    "during early embryogenesis",
    "in cultured fibroblasts",
    "in organoids",
    "after heat shock",
    "in the developing retina",
    "under nutrient starvation",
    "in regenerating tissue",
    "in wild-type and mutant lines",
    "at the gastrula stage",
    "in the adult gut epithelium",
]
KEYWORDS = [
    "cell biology",
    "developmental biology",
    "neuroscience",
    "live imaging",
    "cell division",
    "cytoskeleton",
    "organelles",
    "membrane trafficking",
    "morphogenesis",
    "super-resolution",
    "light-sheet",
    "segmentation",
    "ground truth",
    "time-lapse",
    "3D",
    "high-content screening",
]
FIRST = "Anna Ben Chen Daniel Elena Fatima Giulia Hannah Ines Jakob Kenji Laura Mateo Nadia Olga"
LAST = "Müller Schmidt García Rossi Dubois Novak Kowalski Johansson Nguyen Wang Zhang Sato Silva"
FUNDERS = [
    ("European Research Council", "https://ror.org/0472cxd90"),
    ("Deutsche Forschungsgemeinschaft", "https://ror.org/018mejw64"),
    ("Wellcome Trust", "https://ror.org/029chgv08"),
    ("National Institutes of Health", "https://ror.org/01cwqze88"),
]
MICROSCOPES = [
    ("Carl Zeiss", "LSM 980", "Inverted"),
    ("Leica Microsystems", "STELLARIS 8", "Inverted"),
    ("Nikon", "Ti2-E", "Inverted"),
    ("Olympus", "IX83", "Inverted"),
]
OBJECTIVES = [
    ("Plan-Apochromat 63x/1.40 Oil DIC M27", "Carl Zeiss", 63.0, 1.4, "Oil"),
    ("HC PL APO 40x/1.10 W CORR CS2", "Leica Microsystems", 40.0, 1.1, "Water"),
    ("CFI Plan Apo Lambda 20x", "Nikon", 20.0, 0.75, "Air"),
    ("UPLSAPO 60XW", "Olympus", 60.0, 1.2, "Water"),
]
CHANNELS = [  # name, fluor, excitation nm, emission nm, colour
    ("DAPI", "DAPI", 405.0, 461.0, "#0000ff"),
    ("GFP", "EGFP", 488.0, 509.0, "#00ff00"),
    ("mCherry", "mCherry", 561.0, 610.0, "#ff0000"),
    ("Cy5", "Cy5", 640.0, 670.0, "#ff00ff"),
]
ROR_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
BETANUMERIC = "0123456789bcdfghjkmnpqrstvwxz"


def orcid_with_check(digits15: str) -> str:
    total = 0
    for ch in digits15:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    d = digits15 + ("X" if check == 10 else str(check))
    return f"{d[0:4]}-{d[4:8]}-{d[8:12]}-{d[12:16]}"


class RecordMaker:
    """Realistic published public datasets and their images, as pydantic records."""

    T0 = datetime(2016, 1, 1, tzinfo=UTC)

    def __init__(self, seed: int):
        from node.ontologies import resolve_imaging_method, resolve_license, resolve_organism

        self.rnd = random.Random(seed)
        self.organisms = [resolve_organism(name) for name, _ in ORGANISMS]
        self.methods = [resolve_imaging_method(m) for m in METHODS]
        for term in (*self.organisms, *self.methods):
            if not term.iri:
                raise SystemExit(f"{term.label!r} did not resolve to an ontology term")
        for lic in LICENSES:
            resolve_license(lic)  # each is a real SPDX id
        rnd = self.rnd
        self.rors = [
            "https://ror.org/0"
            + "".join(rnd.choice(ROR_ALPHABET) for _ in range(6))
            + f"{rnd.randint(0, 99):02d}"
            for _ in range(40)
        ]
        self.people = []
        for _ in range(600):
            name = f"{rnd.choice(FIRST.split())} {rnd.choice(LAST.split())}"
            orcid = (
                orcid_with_check("0000000" + "".join(rnd.choice("0123456789") for _ in range(8)))
                if rnd.random() < 0.7
                else None
            )
            self.people.append((name, orcid, rnd.choice(self.rors)))

    def dataset(self, i: int) -> tuple[Any, list[Any], str]:
        """(Dataset, its Images, its folder) of record ``i``."""
        from node.harvest.ids import dataset_id, image_id
        from node.records import (
            Channel,
            DataAccess,
            DataLocation,
            Dataset,
            Funding,
            Image,
            Instrument,
            Lifecycle,
            Objective,
            Person,
            PhysicalSize,
            Provenance,
            Size5D,
            Visibility,
            aggregate_images,
        )

        rnd = self.rnd
        folder = f"lab{i % 37:02d}/project{i // 37 % 20:02d}/dataset{i:06d}"
        ds_id = dataset_id(SOURCE, folder)
        organism = rnd.choice(self.organisms)
        methods = rnd.sample(self.methods, 1 if rnd.random() < 0.7 else 2)
        structure, context = rnd.choice(STRUCTURES), rnd.choice(CONTEXTS)
        acquired = self.T0 + timedelta(seconds=rnd.randrange(8 * 365 * 86400))
        modified = acquired + timedelta(days=rnd.randint(20, 400), seconds=rnd.randrange(86400))
        access = rnd.choice([DataAccess.open, DataAccess.open, DataAccess.restricted])
        if rnd.random() < 0.05:
            access = DataAccess.embargoed
        creators = [
            Person(name=n, orcid=o, affiliation=a)
            for n, o, a in rnd.sample(self.people, rnd.randint(1, 6))
        ]
        contributors = [
            Person(name=n, orcid=o, affiliation=a, role=rnd.choice(["DataCurator", "Supervisor"]))
            for n, o, a in rnd.sample(self.people, rnd.randint(0, 2))
        ]
        blade = "".join(rnd.choice(BETANUMERIC) for _ in range(8))
        ds = Dataset(
            id=ds_id,
            identifier=f"ark:/99999/fk4{blade}",
            title=f"{methods[0].label.capitalize()} of {structure} in {organism.label} {context}",
            description=(
                f"Image data of {structure} {context}, acquired by {methods[0].label} in "
                f"{organism.label}. Each image holds {rnd.randint(2, 4)} channels; fixed and "
                "live samples were imaged with the same settings. Raw OME-TIFF files and the "
                "acquisition metadata are provided as recorded by the microscope."
            ),
            creators=creators,
            contributors=contributors,
            keywords=rnd.sample(KEYWORDS, rnd.randint(1, 5)),
            organisms=[organism],
            imaging_methods=methods,
            sample=f"{organism.label}, {context.split(' ', 1)[1]}",
            license=rnd.choice(LICENSES),
            created=acquired,
            modified=modified,
            issued=modified,
            embargo_end=modified + timedelta(days=365) if access is DataAccess.embargoed else None,
            publisher="Bench Imaging Facility",
            funding=[
                Funding(funder=f, funder_id=fid, award=f"GA-{rnd.randint(100000, 999999)}")
                for f, fid in rnd.sample(FUNDERS, rnd.randint(0, 2))
            ],
            related_publications=(
                [f"10.{rnd.randint(1000, 9999)}/bench.{i}"] if rnd.random() < 0.4 else []
            ),
            data_location=DataLocation(path=folder),
            visibility=Visibility.public,
            data_access=access,
            access_contact="imaging@bench.example.org" if access is not DataAccess.open else None,
            lifecycle=Lifecycle.published,
            provenance=Provenance(
                origin_node=NODE_ID,
                source=SOURCE,
                first_seen=modified - timedelta(days=1),
                last_harvested=modified,
            ),
        )
        manu, model, mtype = rnd.choice(MICROSCOPES)
        omodel, omanu, mag, na, imm = rnd.choice(OBJECTIVES)
        chans = rnd.sample(CHANNELS, rnd.randint(2, 4))
        mode = "LaserScanningConfocalMicroscopy" if "confocal" in methods[0].label else None
        px = round(rnd.uniform(0.05, 0.65), 4)
        images = []
        for k in range(rnd.randint(1, 5)):
            path = f"{folder}/cells_{k:03d}.ome.tif"
            iid = image_id(SOURCE, path, 0)
            z = rnd.choice([1, 1, 5, 12, 30])
            sizes = {"x": px, "y": px} | ({"z": round(rnd.uniform(0.2, 2.0), 3)} if z > 1 else {})
            images.append(
                Image(
                    id=iid,
                    dataset_id=ds_id,
                    name=f"cells_{k:03d}",
                    path=path,
                    files=[path],
                    format="OME-TIFF",
                    media_type="image/tiff",
                    file_size=rnd.randint(2_000_000, 900_000_000),
                    size=Size5D(x=1024, y=1024, z=z, c=len(chans), t=1),
                    dimension_order="XYZCT",
                    pixel_type="uint16",
                    physical_size={
                        a: PhysicalSize(
                            value_um=v, original_value=v, original_unit="µm", source="ome-xml"
                        )
                        for a, v in sizes.items()
                    },
                    channels=[
                        Channel(
                            name=n,
                            fluor=f,
                            excitation_nm=ex,
                            emission_nm=em,
                            acquisition_mode=mode,
                            color=col,
                        )
                        for n, f, ex, em, col in chans
                    ],
                    objective=Objective(
                        model=omodel, manufacturer=omanu, magnification=mag, na=na, immersion=imm
                    ),
                    microscope=Instrument(manufacturer=manu, model=model, type=mtype),
                    detectors=[Instrument(manufacturer="Hamamatsu", model="ORCA-Fusion BT")],
                    acquired_at=acquired + timedelta(minutes=7 * k),
                    thumbnail=f"{iid}.png",
                )
            )
        return aggregate_images(ds, images), images, folder


# ----------------------------------------------------------------------------- the node


@dataclass
class Node:
    work: Path
    records: int
    seed: int

    @property
    def tag(self) -> str:
        return f"{self.records}-{self.seed}-v{GEN_VERSION}"

    @property
    def config(self) -> Path:
        return self.work / "node.toml"

    @property
    def data_dir(self) -> Path:
        return self.work / f"var-{self.tag}"

    @property
    def catalog(self) -> Path:
        return self.data_dir / "catalog.sqlite3"

    @property
    def marker(self) -> Path:
        return self.data_dir / "generated.json"


def write_config(node: Node) -> None:
    node.config.write_text(
        "# written by bench/linkeddata.py\n"
        "[node]\n"
        f'id = "{NODE_ID}"\n'
        'name = "Bench Imaging Facility"\n'
        f'base_url = "{BASE_URL}"\n'
        f'data_dir = "{node.data_dir}"\n'
        'contact_email = "imaging@bench.example.org"\n'
        'description = "A generated node for bench/linkeddata.py."\n'
    )


def generate(node: Node) -> dict:
    """The catalog of ``node``: N datasets and their images, inserted with SQLAlchemy Core."""
    from sqlalchemy import insert

    from node.catalog.db import open_catalog
    from node.catalog.models import DatasetRow, ImageRow
    from node.catalog.service import dataset_row_values, image_row_values
    from node.records import Dataset

    if node.data_dir.exists():
        shutil.rmtree(node.data_dir)
    node.data_dir.mkdir(parents=True)
    engine = open_catalog(f"sqlite:///{node.catalog}")
    maker = RecordMaker(node.seed)
    t0 = time.perf_counter()
    n_images = 0
    batch = 1000
    for start in range(0, node.records, batch):
        ds_rows, im_rows = [], []
        for i in range(start, min(node.records, start + batch)):
            ds, images, folder = maker.dataset(i)
            ds_rows.append(dataset_row_values(ds, source=SOURCE, folder=folder))
            im_rows.extend(image_row_values(im, source=SOURCE) for im in images)
            if i < 50:  # the JSON form reads back as the same record
                assert Dataset.model_validate(ds_rows[-1]["doc"]) == ds
        with engine.begin() as conn:
            conn.execute(insert(DatasetRow), ds_rows)
            conn.execute(insert(ImageRow), im_rows)
        n_images += len(im_rows)
    seconds = time.perf_counter() - t0
    engine.dispose()
    info = {
        "records": node.records,
        "images": n_images,
        "seed": node.seed,
        "version": GEN_VERSION,
        "seconds": seconds,
        "catalog_bytes": node.catalog.stat().st_size,
    }
    node.marker.write_text(json.dumps(info))
    return info


def dataset_ids(node: Node) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(node.catalog)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM datasets ORDER BY id")]
    finally:
        conn.close()


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, url: str, label: str, headers: dict | None = None) -> None:
    import requests

    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{label} exited with code {proc.returncode}")
        try:
            if requests.get(url, headers=headers or {}, timeout=30).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{label} did not answer {url} within 120 s")
        time.sleep(0.3)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Server:
    label: str
    base: str
    proc: subprocess.Popen
    workers: list[int] = field(default_factory=list)  # pids whose CPU time is the server's

    def cpu(self) -> tuple[float, float, list[float]]:
        """(user, system, per worker) CPU seconds used so far by the server's workers."""
        import psutil

        user = system = 0.0
        each = []
        for pid in self.workers:
            c = None
            with contextlib.suppress(psutil.Error):
                c = psutil.Process(pid).cpu_times()
            each.append(c.user + c.system if c else 0.0)
            user += c.user if c else 0.0
            system += c.system if c else 0.0
        return user, system, each


def gunicorn_cmd(port: int, worker_class: str, workers: int, threads: int, app: str) -> list[str]:
    cmd = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class",
        worker_class, "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "120",
    ]  # fmt: skip
    if worker_class == "gthread":
        cmd += ["--threads", str(threads)]
    return [*cmd, app]


@contextlib.contextmanager
def gunicorn(
    node: Node, worker_class: str, workers: int, threads: int, probe: str, app: str = "node"
) -> Iterator[Server]:
    """The node (``node.wsgi:app``, as deployed) or the pre-rendered bodies (``static``) under
    gunicorn with ``workers`` workers of ``worker_class`` on a free loopback port."""
    import psutil

    port = free_port()
    env = dict(os.environ, FAIRNODE_CONFIG=str(node.config), FAIRNODE_SECRET_KEY="bench-secret")
    env["BENCH_LD_BODIES"] = str(node.work / f"bodies-{node.tag}.json")
    target = "node.wsgi:app" if app == "node" else "bench.linkeddata:static_app()"
    cmd = gunicorn_cmd(port, worker_class, workers, threads, target)
    # bench/ on the path: bench.linkeddata imports its sibling `report` as a top-level module
    cmd[-1:-1] = ["--pythonpath", str(ROOT / "bench")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    label = f"gunicorn {app} ({workers} {worker_class} workers)"
    try:
        wait_ready(proc, base + probe, label, {"Accept": JSONLD})
        deadline = time.monotonic() + 60
        while len(psutil.Process(proc.pid).children()) < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: workers did not start")
            time.sleep(0.2)
        kids = [c.pid for c in psutil.Process(proc.pid).children()]
        yield Server(label, base, proc, kids)
    finally:
        stop(proc)


@contextlib.contextmanager
def http_server(root: Path, probe: str) -> Iterator[Server]:
    """``python -m http.server`` serving ``root`` (one process, a thread per connection)."""
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base + probe, "python -m http.server")
        yield Server("python -m http.server", base, proc, [proc.pid])
    finally:
        stop(proc)


def static_app():
    """A bare WSGI function answering with the node's own pre-rendered bodies and headers
    (kept in memory): what gunicorn can do when rendering costs nothing (a response cache)."""
    bodies = json.loads(Path(os.environ["BENCH_LD_BODIES"]).read_text())
    table_ = {
        (b["path"], b["kind"]): (
            b["body"].encode("utf-8"),
            [(k, v) for k, v in b["headers"].items()],
        )
        for b in bodies
    }

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        accept = environ.get("HTTP_ACCEPT", "")
        kind = (
            "dcat-jsonld"
            if "dcat" in accept
            else "jsonld"
            if "ld+json" in accept
            else "turtle"
            if "turtle" in accept
            else "html"
        )
        hit = table_.get((path, "page")) or table_.get((path, kind))
        if hit is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not pre-rendered\n"]
        body, headers = hit
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return app


# ----------------------------------------------------------------------------- wrk

WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKRESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, ' ..
    '"p999": %d, "max": %d, "mean": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def lua_str(s: str) -> str:
    if not s.isascii():
        raise ValueError(f"non-ASCII path or header: {s!r}")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_script(path: Path, paths: list[str], accept: str | None, seed: int) -> Path:
    """Requests cycle through ``paths`` in a fixed shuffled order (each thread from its own
    offset), with ``accept`` as the Accept header; ``done`` prints a parseable summary."""
    order = list(paths)
    random.Random(seed).shuffle(order)
    lines = ["local paths = {", *(f"  {lua_str(p)}," for p in order), "}", "local n = #paths"]
    if accept:
        lines.append(f'wrk.headers["Accept"] = {lua_str(accept)}')
    lines += [
        "local counter = 0",
        "setup = function(thread) counter = counter + 1; thread:set('offset', counter * 7919) end",
        "local i = 0",
        "init = function(args) i = offset or 0 end",
        "request = function()",
        "  i = i + 1",
        "  return wrk.format('GET', paths[(i % n) + 1])",
        "end",
        WRK_DONE,
    ]
    path.write_text("\n".join(lines))
    return path


@dataclass
class Run:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    error_detail: str
    bytes_per_req: float
    server_cpu_ms: float  # per request, all workers, user + system
    server_sys_share: float  # the system (kernel) part of it
    worker_split: str  # each worker's share of that CPU time, e.g. "51/49"
    wrk_cpu_s: float
    others_cpu: float  # cores busy with anything but the server and wrk during the row
    seconds: float
    connections: int
    load: str


def _busy(t: Any) -> float:
    """CPU seconds the whole machine spent busy (all cores), from psutil.cpu_times()."""
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def wrk(
    server: Server,
    script: Path,
    *,
    duration: float,
    connections: int,
    threads: int,
    warmup: float,
) -> Run:
    import resource

    import psutil

    base = ["wrk", "-t", str(threads), "-c", str(connections), "-s", str(script)]
    if warmup > 0:
        warm = [*base, "-d", f"{max(1, round(warmup))}s", server.base]
        subprocess.run(warm, stdout=subprocess.DEVNULL, check=True)
    cmd = [*base, "-d", f"{max(1, round(duration))}s", "--latency", "--timeout", "10s", server.base]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = server.cpu()
    busy0 = _busy(psutil.cpu_times())
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    cpu1 = server.cpu()
    busy1 = _busy(psutil.cpu_times())
    user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    cpu = user + system
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRKRESULT ")]
    if not line:
        raise SystemExit(f"wrk printed no result:\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(line[-1][len("WRKRESULT ") :])
    secs = r["duration_us"] / 1e6
    wrk_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    detail = ", ".join(
        f"{k} {r[k]}" for k in ("connect", "read", "write", "status", "timeout") if r[k]
    )
    return Run(
        rps=r["requests"] / secs,
        p50_ms=r["p50"] / 1000,
        p90_ms=r["p90"] / 1000,
        p99_ms=r["p99"] / 1000,
        max_ms=r["max"] / 1000,
        requests=r["requests"],
        errors=errors,
        error_detail=detail,
        bytes_per_req=r["bytes"] / max(1, r["requests"]),
        server_cpu_ms=cpu / max(1, r["requests"]) * 1000,
        server_sys_share=system / cpu if cpu > 0 else 0.0,
        worker_split="/".join(
            f"{100 * (b - a) / cpu:.0f}" if cpu > 0 else "-"
            for a, b in zip(cpu0[2], cpu1[2], strict=True)
        ),
        wrk_cpu_s=wrk_cpu,
        others_cpu=max(0.0, (busy1 - busy0 - cpu - wrk_cpu) / secs),
        seconds=secs,
        connections=connections,
        load=loadavg(),
    )


# ----------------------------------------------------------------------------- what is requested

LANDING_KINDS = {  # kind -> (Accept, label)
    "html": (HTML, "landing page, HTML"),
    "jsonld": (JSONLD, "landing page, JSON-LD (schema.org)"),
    "dcat-jsonld": (DCAT_JSONLD, "landing page, JSON-LD (DCAT-AP, rdflib)"),
    "turtle": (TURTLE, "landing page, Turtle (DCAT-AP, rdflib)"),
}
OAI_FIRST = "/oai?" + urlencode({"verb": "ListRecords", "metadataPrefix": "oai_dc"})
API_FIRST = f"/api/v1/datasets?limit={OAI_PAGE}"
OAI_NS = "{http://www.openarchives.org/OAI/2.0/}"


@dataclass
class Plan:
    """The URL paths each measurement cycles through, and what checking them found."""

    ids: list[str]
    oai: list[str] = field(default_factory=list)
    oai_records: list[int] = field(default_factory=list)  # records on each page
    api: list[str] = field(default_factory=list)
    api_records: list[int] = field(default_factory=list)
    sample: list[str] = field(default_factory=list)  # ids pre-rendered for the ceilings
    sizes: dict[str, int] = field(default_factory=dict)  # kind -> median body bytes
    checks: list[str] = field(default_factory=list)


def walk_oai(base: str, plan: Plan, bodies: list[dict]) -> None:
    """Harvest the whole list once: every page path, its record count, and the bodies."""
    import requests
    from lxml import etree

    path = OAI_FIRST
    seen: set[str] = set()
    size = None
    while path:
        r = requests.get(base + path, timeout=120)
        r.raise_for_status()
        root = etree.fromstring(r.content)
        err = root.find(f"{OAI_NS}error")
        if err is not None:
            raise SystemExit(f"OAI error at {path}: {err.get('code')}: {err.text}")
        records = root.findall(f".//{OAI_NS}record")
        seen.update(rec.findtext(f"{OAI_NS}header/{OAI_NS}identifier") or "" for rec in records)
        plan.oai.append(path)
        plan.oai_records.append(len(records))
        bodies.append(page_body(path, r))
        tok = root.find(f".//{OAI_NS}resumptionToken")
        if tok is not None and size is None:
            size = tok.get("completeListSize")
        path = (
            "/oai?" + urlencode({"verb": "ListRecords", "resumptionToken": tok.text})
            if tok is not None and tok.text
            else None
        )
    per_page = max(plan.oai_records)
    plan.checks.append(
        f"OAI ListRecords (oai_dc): {len(plan.oai)} pages, {per_page} records per full page "
        f"(the node's default page size), completeListSize {size}, {len(seen):,} distinct "
        f"identifiers harvested of {len(plan.ids):,} datasets"
    )
    if len(seen) != len(plan.ids):
        raise SystemExit(f"OAI harvest found {len(seen)} records, the catalog has {len(plan.ids)}")


def walk_api(base: str, plan: Plan) -> None:
    import requests

    path: str | None = API_FIRST
    seen: set[str] = set()
    while path:
        r = requests.get(base + path, timeout=120)
        r.raise_for_status()
        doc = r.json()
        seen.update(item["id"] for item in doc["items"])
        plan.api.append(path)
        plan.api_records.append(len(doc["items"]))
        path = f"{API_FIRST}&cursor={quote(doc['next'])}" if doc.get("next") else None
    plan.checks.append(
        f"JSON API /api/v1/datasets?limit={OAI_PAGE}: {len(plan.api)} pages, "
        f"{len(seen):,} distinct datasets"
    )
    if len(seen) != len(plan.ids):
        raise SystemExit(f"API walk found {len(seen)} records, the catalog has {len(plan.ids)}")


def page_body(path: str, r: Any, kind: str = "page") -> dict:
    keep = ("Content-Type", "Vary", "Link")
    return {
        "path": path,
        "kind": kind,
        "body": r.text,
        "headers": {k: r.headers[k] for k in keep if k in r.headers},
    }


def check_landing(base: str, plan: Plan, bodies: list[dict]) -> None:
    """Fetch every representation of the sample once: each must be a 200 of the right type
    that parses; the bodies become the pre-rendered ceilings."""
    import requests
    from rdflib import Graph

    sess = requests.Session()
    sizes: dict[str, list[int]] = {k: [] for k in LANDING_KINDS}
    for n, ds_id in enumerate(plan.sample):
        path = f"/datasets/{ds_id}"
        for kind, (accept, _) in LANDING_KINDS.items():
            r = sess.get(base + path, headers={"Accept": accept}, timeout=120)
            ctype = r.headers.get("Content-Type", "")
            want = {"html": "text/html", "turtle": TURTLE}.get(kind, JSONLD)
            if r.status_code != 200 or not ctype.startswith(want):
                raise SystemExit(f"{path} ({kind}): {r.status_code} {ctype}")
            if kind == "jsonld":
                doc = r.json()
                if doc.get("@type") != "Dataset" or not doc.get("creator"):
                    raise SystemExit(f"{path}: the JSON-LD is not a schema.org Dataset")
            elif kind == "dcat-jsonld":
                if "dcat:Dataset" not in r.text and "dcat#Dataset" not in r.text:
                    raise SystemExit(f"{path}: the DCAT JSON-LD has no dcat:Dataset")
            elif kind == "turtle" and n < 20:
                g = Graph().parse(data=r.text, format="turtle")
                if len(g) < 20:
                    raise SystemExit(f"{path}: the Turtle has only {len(g)} triples")
            elif kind == "html" and 'type="application/ld+json"' not in r.text:
                raise SystemExit(f"{path}: the HTML embeds no JSON-LD")
            sizes[kind].append(len(r.content))
            bodies.append(page_body(path, r, kind))
    plan.sizes = {k: sorted(v)[len(v) // 2] for k, v in sizes.items()}
    plan.checks.append(
        f"landing pages: {len(plan.sample)} datasets x {len(LANDING_KINDS)} representations "
        "fetched once: all 200 with the negotiated type; JSON-LD parsed (a schema.org "
        "Dataset), 20 Turtle bodies parsed by rdflib; median body "
        + ", ".join(f"{k} {v / 1000:.1f} kB" for k, v in plan.sizes.items())
    )


def write_static(node: Node, plan: Plan, bodies: list[dict]) -> Path:
    """The pre-rendered bodies: a JSON file for the bare WSGI app, files for http.server."""
    (node.work / f"bodies-{node.tag}.json").write_text(json.dumps(bodies))
    www = node.work / f"www-{node.tag}"
    if www.exists():
        shutil.rmtree(www)
    (www / "datasets").mkdir(parents=True)
    (www / "oai").mkdir()
    for b in bodies:
        if b["kind"] == "jsonld":
            (www / "datasets" / f"{b['path'].rsplit('/', 1)[1]}.jsonld").write_text(b["body"])
    for k, path in enumerate(plan.oai):
        body = next(b["body"] for b in bodies if b["path"] == path)
        (www / "oai" / f"page-{k:04d}.xml").write_text(body)
    return www


# ----------------------------------------------------------------------------- profiling


def py_spy() -> str | None:
    exe = Path(sys.executable).parent / "py-spy"
    return str(exe) if exe.exists() else shutil.which("py-spy")


def profile_worker(
    server: Server, script: Path, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    """py-spy samples one gunicorn worker while wrk loads the server; returns the raw
    (collapsed) stacks file and wrk's figures of that (slowed-down) run."""
    spy = py_spy()
    if spy is None:
        raise SystemExit(
            "py-spy is not installed: .venv/bin/pip install py-spy (not a project dependency)"
        )
    secs = args.profile_seconds
    spy_cmd = [spy, "record", "-p", str(server.workers[0]), "-d", str(int(secs)), "-r", "250",
               "-f", "raw", "-o", str(out), "--nonblocking"]  # fmt: skip
    spy_proc = subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    run = wrk(server, script, duration=secs - 2, connections=args.connections, threads=1, warmup=0)
    _, err = spy_proc.communicate(timeout=secs + 60)
    if spy_proc.returncode != 0 or not out.exists():
        raise SystemExit(f"py-spy failed ({spy_proc.returncode}): {err.decode()[-500:]}")
    return {"run": run, "stacks": out}


_FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _frame(frame: str) -> tuple[str, str]:
    """(function, module path) of a py-spy frame ``Class.func (package/file.py:line)``; py-spy
    already shortens paths to their import path (``flask/app.py``, ``json/encoder.py``)."""
    m = _FRAME_RE.match(frame.strip())
    if not m:
        return frame.strip(), ""
    path = m.group("file")
    if str(ROOT) in path:
        path = path.split(str(ROOT) + "/", 1)[1]
    return m.group("func"), path


def _package(path: str) -> str:
    return path.split("/", 1)[0].removesuffix(".py") if "/" in path else path.removesuffix(".py")


@dataclass
class Stacks:
    total: int = 0
    samples: list[tuple[list[tuple[str, str]], int]] = field(default_factory=list)

    def share(self, n: int) -> str:
        return f"{100 * n / self.total:.1f} %" if self.total else "-"

    def having(self, pred: Any) -> int:
        """Samples with at least one frame for which ``pred(func, path)`` holds (inclusive)."""
        return sum(n for frames, n in self.samples if any(pred(f, p) for f, p in frames))


def read_stacks(path: Path) -> Stacks:
    """py-spy's raw (collapsed) output: one line per distinct stack, root first, then a count."""
    st = Stacks()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if f[1] and not f[1].startswith("<frozen")]
        if frames:
            st.samples.append((frames, int(count)))
            st.total += int(count)
    return st


def _is(func: str, file: str) -> Any:
    def pred(f: str, p: str) -> bool:
        return (f == func or f.endswith("." + func)) and p.endswith(file)

    return pred


# Where a request's time goes, inclusive of everything below each step.
STEPS: list[tuple[str, Any]] = [
    ("gunicorn: read + parse the request", _is("__next__", "gunicorn/http/parser.py")),
    ("gunicorn: send the response (sendall on loopback)", _is("write", "gunicorn/util.py")),
    (
        "gunicorn: close_graceful (half-close, drain until the client's FIN)",
        _is("close_graceful", "gunicorn/util.py"),
    ),
    ("Flask app, whole (Flask.__call__)", _is("__call__", "flask/app.py")),
    ("  Flask: the view (dispatch_request)", _is("dispatch_request", "flask/app.py")),
    ("    negotiate (Accept)", _is("negotiate", "node/linkeddata/negotiation.py")),
    ("    RecordService.get_dataset", _is("get_dataset", "node/catalog/service.py")),
    ("    RecordService.images_of", _is("images_of", "node/catalog/service.py")),
    ("    NodeInfo.from_config", _is("from_config", "node/linkeddata/context.py")),
    ("    dataset_jsonld", _is("dataset_jsonld", "node/linkeddata/schemaorg.py")),
    ("    json.dumps", _is("dumps", "json/__init__.py")),
    ("    dataset_graph (DCAT-AP)", _is("dataset_graph", "node/linkeddata/dcat.py")),
    ("    serialise (rdflib)", _is("serialise", "node/linkeddata/mediatypes.py")),
    ("    render_template", _is("render_template", "flask/templating.py")),
    ("    dataset_links", _is("dataset_links", "node/linkeddata/signposting.py")),
    ("    link_header", _is("link_header", "node/linkeddata/signposting.py")),
    ("    OAIStore.count", _is("count", "node/oai/store.py")),
    ("    OAIStore.page", _is("page", "node/oai/store.py")),
    ("    Item.dataset (validate the doc)", _is("dataset", "node/oai/store.py")),
    ("    OAI _record (header + metadata)", _is("_record", "node/oai/views.py")),
    ("    oai_dc mapping", _is("oai_dc", "node/oai/formats.py")),
    ("    OAI serialise (lxml)", _is("serialise", "node/oai/xml.py")),
    ("    tokens (sign / decode)", lambda f, p: p.endswith("node/oai/tokens.py")),
    ("    RecordService.list_datasets", _is("list_datasets", "node/catalog/service.py")),
    ("    dataset_to_json", _is("dataset_to_json", "node/api/serialise.py")),
    ("    jsonify", _is("jsonify", "flask/json/__init__.py")),
    ("  any SQLAlchemy frame", lambda f, p: p.startswith("sqlalchemy/")),
    ("    of which sqlite3 (cursor.execute / fetch, C)", _is("do_execute", "engine/default.py")),
    ("  any pydantic frame (model_validate ...)", lambda f, p: p.startswith("pydantic/")),
    ("  any rdflib frame", lambda f, p: p.startswith("rdflib/")),
    ("  any jinja2 frame", lambda f, p: p.startswith("jinja2/")),
    ("  any lxml frame", lambda f, p: p.startswith("lxml/")),
]
WRAPPERS = ("gunicorn/", "flask/app.py", "werkzeug/", "runpy", "threading.py")


def profile_report(kind: str, label: str, prof: dict[str, Any], top: int = 25) -> str:
    st = read_stacks(prof["stacks"])
    if not st.total:
        return f"profile {kind}: no samples\n"
    run = prof["run"]
    step_rows = [[name, st.share(n)] for name, pred in STEPS if (n := st.having(pred))]
    incl: Counter = Counter()
    own: Counter = Counter()
    for frames, n in st.samples:
        for f in set(frames):
            incl[f] += n
        own[frames[-1]] += n
    by_incl = [
        [f"{f} ({p})", st.share(n)]
        for (f, p), n in incl.most_common(500)
        if not p.startswith(WRAPPERS) and not p.endswith("node/web/views.py")
    ][:top]
    by_own = [[f"{f} ({p})", st.share(n)] for (f, p), n in own.most_common(top)]
    head = (
        f"py-spy (--nonblocking, 250 Hz) of one of the two workers, {label}, under the same wrk "
        f"load: {st.total:,} samples of non-idle time over {run.seconds:.0f} s at "
        f"{run.rps:,.0f} req/s (sampling slows the worker a little); share = % of those samples "
        "whose stack holds the step (steps nest, so shares do not add up)"
    )
    return "\n".join(
        [
            table(f"Profile: {label}, steps (inclusive)", ["step", "share"], step_rows, head),
            table(f"Profile: {label}, top frames (inclusive)", ["frame", "share"], by_incl),
            table(f"Profile: {label}, top frames (self)", ["frame", "share"], by_own),
        ]
    )


# ----------------------------------------------------------------------------- report


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.1f} ms" if v < 100 else f"{v:,.0f} ms"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    r = a / b
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def verdict_jsonld(run: Run | None) -> str:
    if run is None:
        return "not run"
    ok = (
        run.rps >= TARGETS["jsonld_rps"]
        and run.p99_ms < TARGETS["jsonld_p99_ms"]
        and not run.errors
    )
    return "PASS" if ok else "MISS"


def verdict_oai(records_s: float | None, run: Run | None) -> str:
    if records_s is None or run is None:
        return "not run"
    return "PASS" if records_s >= TARGETS["oai_records_s"] and not run.errors else "MISS"


@dataclass
class Results:
    runs: dict[tuple[str, str], Run] = field(default_factory=dict)  # (server, kind) -> median
    rounds: dict[tuple[str, str], list[Run]] = field(default_factory=dict)  # every round
    sweep: dict[tuple[str, int], Run] = field(default_factory=dict)  # (worker class, c) -> Run
    loads: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)


def median_run(runs: list[Run]) -> Run:
    """The run with the median req/s (its latencies come with it); the lower middle one of an
    even number."""
    return sorted(runs, key=lambda r: r.rps)[(len(runs) - 1) // 2]


def per_page(plan: Plan, kind: str) -> float:
    pages = plan.oai_records if kind == "oai" else plan.api_records
    return sum(pages) / len(pages)


def report_class(args, plan: Plan, res: Results, wc: str) -> str:
    """One table per worker class: the node's representations and the ceilings."""
    rows = []
    spec = [
        ("jsonld", wc, LANDING_KINDS["jsonld"][1], "jsonld"),
        ("dcat-jsonld", wc, LANDING_KINDS["dcat-jsonld"][1], None),
        ("html", wc, LANDING_KINDS["html"][1], None),
        ("turtle", wc, LANDING_KINDS["turtle"][1], None),
        ("oai", wc, f"OAI ListRecords oai_dc, {OAI_PAGE}/page", "oai"),
        ("api", wc, f"JSON API /api/v1/datasets, {OAI_PAGE}/page", None),
        ("jsonld", f"static-{wc}", "ceiling: JSON-LD pre-rendered, bare WSGI", None),
        ("oai", f"static-{wc}", "ceiling: OAI page pre-rendered, bare WSGI", None),
    ]
    for kind, server, label, target in spec:
        run = res.runs.get((server, kind))
        if run is None:
            continue
        paged = kind in ("oai", "api")
        recs = run.rps * per_page(plan, kind) if paged else None
        rounds = res.rounds.get((server, kind), [run])
        tgt, met = "", ""
        if target == "jsonld" and server == wc:
            ok = sum(verdict_jsonld(r) == "PASS" for r in rounds)
            tgt, met = ">= 500 req/s, p99 < 100 ms", verdict_jsonld(run)
        elif target == "oai" and server == wc:
            ok = sum(verdict_oai(r.rps * per_page(plan, kind), r) == "PASS" for r in rounds)
            tgt, met = ">= 5,000 rec/s", verdict_oai(recs, run)
        if met:
            met += f" ({ok}/{len(rounds)})"
        rows.append(
            [
                label,
                fmt_rate(run.rps),
                " / ".join(f"{fmt_rate(r.rps)} ({r.others_cpu:.1f})" for r in rounds),
                fmt_rate(recs) if paged else "",
                fmt_ms(run.p50_ms),
                fmt_ms(run.p99_ms),
                f"{fmt_ms(run.server_cpu_ms)} ({100 * run.server_sys_share:.0f} % sys)",
                run.worker_split,
                f"{run.bytes_per_req / 1000:,.1f} kB",
                f"{run.errors:,}" if run.errors else "0",
                f"{run.others_cpu:.2f}",
                tgt,
                met,
            ]
        )
    header = ["measure", "req/s", "each round", "records/s", "p50", "p99", "CPU/req", "split %",
              "response", "errors", "others", "target", "met?"]  # fmt: skip
    threads = f", {args.threads} threads each" if wc == "gthread" else ""
    title = (
        f"Linked data, gunicorn {args.workers} {wc} workers{threads} ({len(plan.ids):,} datasets;"
        f" wrk {args.wrk_threads} thread, {args.connections} connections; median of "
        f"{args.rounds} rounds of {args.duration:g} s)"
    )
    wrk_cpu = [r.wrk_cpu_s / r.seconds for (s, _), r in res.runs.items() if s.endswith(wc)]
    note = (
        "req/s, p50, p99, CPU/req, split, others: of the round with the median req/s; each round"
        " = req/s (others) of every round, in the order run (the rounds of all rows are "
        "interleaved). "
        "met? = the median round's verdict (rounds that met the target / rounds). "
        "CPU/req = CPU time of the gunicorn workers (user + system) per request, all workers; "
        "2 cores = 2,000 ms of CPU per second. split = each worker's share of that CPU time "
        f"(100/0: one worker did everything). wrk itself used {min(wrk_cpu):.2f}-"
        f"{max(wrk_cpu):.2f} CPU-seconds per second of these rows. response = bytes per "
        "response as wrk counts them (headers included). errors = wrk's connect/read/write/"
        "timeout errors and non-2xx/3xx answers. others = cores kept busy by other processes "
        "on the machine during the round (whole-machine busy time minus the workers' and wrk's)."
    )
    return table(title, header, rows, note)


def report_comparisons(args, plan: Plan, res: Results) -> str:
    rows = []

    def rate(server: str, kind: str, records: bool = False) -> float | None:
        run = res.runs.get((server, kind))
        if run is None:
            return None
        return run.rps * per_page(plan, kind) if records else run.rps

    for wc in args.classes:
        static = f"static-{wc}"
        pairs = [
            ("JSON-LD schema.org / JSON-LD DCAT-AP via rdflib (req/s)",
             rate(wc, "jsonld"), rate(wc, "dcat-jsonld")),
            ("JSON-LD schema.org / the same bodies pre-rendered, bare WSGI",
             rate(wc, "jsonld"), rate(static, "jsonld")),
            ("JSON-LD schema.org / static file on python -m http.server",
             rate(wc, "jsonld"), rate("http.server", "jsonld")),
            ("HTML / JSON-LD schema.org", rate(wc, "html"), rate(wc, "jsonld")),
            ("Turtle / JSON-LD schema.org", rate(wc, "turtle"), rate(wc, "jsonld")),
            ("OAI ListRecords / JSON API page of 100 (records/s)",
             rate(wc, "oai", True), rate(wc, "api", True)),
            ("OAI ListRecords / the same pages pre-rendered, bare WSGI",
             rate(wc, "oai"), rate(static, "oai")),
            ("OAI ListRecords / pages as static files on python -m http.server",
             rate(wc, "oai"), rate("http.server", "oai")),
        ]  # fmt: skip
        for label, a, b in pairs:
            if a and b:
                rows.append([wc, label, fmt_rate(a), fmt_rate(b), fmt_ratio(a, b)])
    if "sync" in args.classes and "gthread" in args.classes:
        for kind in ("jsonld", "dcat-jsonld", "html", "turtle", "oai", "api"):
            a, b = rate("gthread", kind), rate("sync", kind)
            if a and b:
                rows.append(["both", f"gthread / sync: {kind}", fmt_rate(a), fmt_rate(b),
                             fmt_ratio(a, b)])  # fmt: skip
    hs = [res.runs.get(("http.server", k)) for k in ("jsonld", "oai")]
    note = "ratio = first / second (> 1: the first is faster)."
    if all(hs):
        note += (
            f" python -m http.server (one process, a thread per connection, HTTP/1.0): JSON-LD "
            f"files {fmt_rate(hs[0].rps)} req/s, p99 {fmt_ms(hs[0].p99_ms)}; OAI pages "
            f"{fmt_rate(hs[1].rps)} req/s, p99 {fmt_ms(hs[1].p99_ms)}; "
            f"{hs[0].errors + hs[1].errors} errors. Its listen backlog is 5 (socketserver's "
            "request_queue_size) and 16 clients reconnect after every response: a SYN that "
            "finds the backlog full is retried by the client's kernel after 1 s, which shows as "
            "a p99 of a second or more when it happens."
        )
    return table(
        "Comparisons, same run",
        ["workers", "comparison", "first", "second", "ratio"],
        rows,
        note,
    )


def report_sweep(args, res: Results) -> str:
    rows = []
    for (wc, c), run in sorted(res.sweep.items()):
        rows.append(
            [
                wc,
                str(c),
                fmt_rate(run.rps),
                fmt_ms(run.p50_ms),
                fmt_ms(run.p90_ms),
                fmt_ms(run.p99_ms),
                fmt_ms(run.max_ms),
                run.worker_split,
                str(run.errors),
                verdict_jsonld(run),
            ]
        )
    return table(
        "JSON-LD (schema.org) against the number of connections",
        [
            "workers",
            "connections",
            "req/s",
            "p50",
            "p90",
            "p99",
            "max",
            "split %",
            "errors",
            "target met?",
        ],  # fmt: skip
        rows,
        "One round each (the row at the default connections is its median round). "
        "wrk keeps every connection busy (a closed loop): beyond the workers' concurrency, more "
        "connections only queue, so p99 grows with them while req/s stays. wrk does not correct "
        "for coordinated omission.",
    )


# ----------------------------------------------------------------------------- main


def versions() -> str:
    try:
        wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    except (OSError, IndexError):
        wrk_v = "?"
    packages = ("gunicorn", "Flask", "SQLAlchemy", "pydantic", "rdflib", "lxml", "Jinja2")
    return report_versions(packages, tools={"wrk": wrk_v})


def wait_for_quiet(limit: float, max_wait: float) -> str:
    """Wait (up to max_wait seconds) for the 1-minute load average to drop below ``limit``."""
    t0 = time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - t0 < max_wait:
        log(f"load average {loadavg()} > {limit:g}: waiting for a quieter machine")
        time.sleep(20)
    waited = time.monotonic() - t0
    busy = os.getloadavg()[0] > limit
    return (
        f"load average at start {loadavg()}"
        + (f" (after waiting {waited:.0f} s)" if waited >= 1 else "")
        + (f" -- STILL ABOVE {limit:g}: the machine is shared and busy" if busy else "")
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=10_000, help="datasets in the catalog")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument(
        "--work",
        type=Path,
        help="work folder (kept, and its catalog reused by runs with the same --records and "
        "--seed); default: a new temporary folder, removed at the end",
    )
    ap.add_argument("--fresh", action="store_true", help="generate the catalog again")
    ap.add_argument("--duration", type=float, default=10, help="seconds of wrk per round")
    ap.add_argument(
        "--rounds", type=int, default=3, help="rounds of every row (interleaved; median shown)"
    )
    ap.add_argument("--warmup", type=float, default=3, help="seconds of wrk before each row")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    ap.add_argument(
        "--worker-classes", default="sync,gthread", help="gunicorn worker classes to measure"
    )
    ap.add_argument(
        "--sweep",
        default="2,8,32,64",
        help="JSON-LD again at these connection counts ('' for none)",
    )
    ap.add_argument(
        "--sample", type=int, default=500, help="datasets fetched once to check and pre-render"
    )
    ap.add_argument(
        "--profile",
        default="auto",
        help="kinds to profile with py-spy (jsonld,oai,html,turtle,dcat-jsonld,api), 'auto' = "
        "those whose target was missed, 'none'",
    )
    ap.add_argument("--profile-seconds", type=float, default=20)
    ap.add_argument(
        "--max-load",
        type=float,
        default=1.0,
        help="wait for the 1-minute load average to drop below this before measuring",
    )
    ap.add_argument("--max-wait", type=float, default=300, help="seconds to wait for that")
    ap.add_argument("--report", type=Path, help="print the tables of a saved results file")
    args = ap.parse_args(argv)
    args.classes = [c.strip() for c in args.worker_classes.split(",") if c.strip()]
    if args.report:
        saved_args, plan, res = load_results(args.report)
        emit_report(saved_args, plan, res)
        return

    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not on PATH. Install it (Debian/Ubuntu): apt-get install -y wrk "
            "(or build https://github.com/wg/wrk)."
        )
    keep = args.work is not None
    work = args.work or Path(tempfile.mkdtemp(prefix="fairnode-bench-ld-"))
    work.mkdir(parents=True, exist_ok=True)
    node = Node(work.resolve(), args.records, args.seed)
    emit(
        f"fairnode linked-data benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n{versions()}"
        f"\nwork folder: {node.work}{'' if keep else ' (temporary)'}"
    )
    res = Results()
    try:
        write_config(node)
        marker = json.loads(node.marker.read_text()) if node.marker.exists() else None
        if args.fresh or not marker:
            log(f"generating {args.records:,} datasets into {node.catalog}")
            marker = generate(node)
        else:
            log(f"reusing {node.catalog} (--fresh to generate it again)")
        emit(
            f"catalog: {marker['records']:,} published public datasets, {marker['images']:,} "
            f"images, generated in {marker['seconds']:.1f} s, {marker['catalog_bytes'] / 1e6:,.0f}"
            " MB of SQLite (node.catalog.db.open_catalog, SQLAlchemy Core inserts)"
        )
        plan = Plan(ids=dataset_ids(node))
        plan.sample = random.Random(args.seed).sample(plan.ids, min(args.sample, len(plan.ids)))
        start = wait_for_quiet(args.max_load, args.max_wait)
        emit(start + "\n")
        res.loads.append(f"start {loadavg()}")
        measure(args, node, plan, res)
        res.loads.append(f"end {loadavg()}")
        if keep:
            saved = node.work / f"results-{node.tag}.json"
            saved.write_text(json.dumps(save_results(args, plan, res)))
            log(f"results saved to {saved} (--report {saved} prints them again)")
        emit_report(args, plan, res)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def emit_report(args, plan: Plan, res: Results) -> None:
    emit("checks: " + "\n        ".join(plan.checks) + "\n")
    for wc in args.classes:
        emit(report_class(args, plan, res, wc))
    emit(report_comparisons(args, plan, res))
    if res.sweep:
        emit(report_sweep(args, res))
    emit(summary(args, plan, res))
    for text in res.profiles:
        emit(text)


def save_results(args, plan: Plan, res: Results) -> dict:
    from dataclasses import asdict

    return {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "plan": asdict(plan),
        "rounds": [[*k, [asdict(r) for r in v]] for k, v in res.rounds.items()],
        "sweep": [[*k, asdict(r)] for k, r in res.sweep.items()],
        "loads": res.loads,
        "profiles": res.profiles,
    }


def load_results(path: Path) -> tuple[argparse.Namespace, Plan, Results]:
    data = json.loads(path.read_text())
    res = Results(loads=data["loads"], profiles=data["profiles"])
    for server, kind, runs in data["rounds"]:
        res.rounds[(server, kind)] = [Run(**r) for r in runs]
        res.runs[(server, kind)] = median_run(res.rounds[(server, kind)])
    for wc, c, r in data["sweep"]:
        res.sweep[(wc, c)] = Run(**r)
    return argparse.Namespace(**data["args"]), Plan(**data["plan"]), res


def kinds_paths(plan: Plan) -> dict[str, tuple[list[str], str | None]]:
    landing = [f"/datasets/{i}" for i in plan.ids]
    out: dict[str, tuple[list[str], str | None]] = {
        k: (landing, accept) for k, (accept, _) in LANDING_KINDS.items()
    }
    out["oai"] = (plan.oai, None)
    out["api"] = (plan.api, None)
    return out


def measure(args, node: Node, plan: Plan, res: Results) -> None:
    scripts = node.work / "lua"
    scripts.mkdir(exist_ok=True)
    probe = f"/datasets/{plan.ids[0]}"
    order = ["jsonld", "dcat-jsonld", "html", "turtle", "oai", "api"]

    def run(server: Server, key: str, kind: str, paths: list[str], accept: str | None,
            connections: int | None = None) -> Run:  # fmt: skip
        c = connections or args.connections
        script = lua_script(scripts / f"{key}-{kind}-{c}.lua", paths, accept, args.seed)
        log(f"{server.label}: {kind}, {c} connections (load average {loadavg()})")
        r = wrk(
            server,
            script,
            duration=args.duration,
            connections=c,
            threads=args.wrk_threads,
            warmup=args.warmup,
        )
        log(
            f"  {r.rps:,.0f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
            f"{r.errors} errors, server CPU {r.server_cpu_ms:.1f} ms/req"
        )
        return r

    paths = None
    for wc in args.classes:
        with gunicorn(node, wc, args.workers, args.threads, probe) as server:
            if paths is None:
                bodies: list[dict] = []
                log("checking and pre-rendering: OAI harvest, API walk, landing-page sample")
                walk_oai(server.base, plan, bodies)
                walk_api(server.base, plan)
                check_landing(server.base, plan, bodies)
                write_static(node, plan, bodies)
                paths = kinds_paths(plan)
            for k in range(args.rounds):
                log(f"round {k + 1} of {args.rounds}")
                for kind in order:
                    p, accept = paths[kind]
                    res.rounds.setdefault((wc, kind), []).append(run(server, wc, kind, p, accept))
            for kind in order:
                res.runs[(wc, kind)] = median_run(res.rounds[(wc, kind)])
            for c in [int(x) for x in args.sweep.split(",") if x.strip()]:
                if c == args.connections:
                    res.sweep[(wc, c)] = res.runs[(wc, "jsonld")]
                    continue
                res.sweep[(wc, c)] = run(server, wc, "jsonld", paths["jsonld"][0], JSONLD, c)
            res.sweep.setdefault((wc, args.connections), res.runs[(wc, "jsonld")])
        res.loads.append(f"after {wc} {loadavg()}")
        static = f"static-{wc}"
        sample_paths = [f"/datasets/{i}" for i in plan.sample]
        sprobe = sample_paths[0]
        with gunicorn(node, wc, args.workers, args.threads, sprobe, app="static") as server:
            for _ in range(args.rounds):
                for kind, p, accept in (("jsonld", sample_paths, JSONLD), ("oai", plan.oai, None)):
                    res.rounds.setdefault((static, kind), []).append(
                        run(server, static, kind, p, accept)
                    )
    www = node.work / f"www-{node.tag}"
    files = [f"/datasets/{i}.jsonld" for i in plan.sample]
    with http_server(www, files[0]) as server:
        pages = [f"/oai/page-{k:04d}.xml" for k in range(len(plan.oai))]
        for _ in range(args.rounds):
            for kind, p in (("jsonld", files), ("oai", pages)):
                res.rounds.setdefault(("http.server", kind), []).append(
                    run(server, "http", kind, p, None)
                )
    for key, runs in res.rounds.items():
        res.runs[key] = median_run(runs)
    res.loads.append(f"after ceilings {loadavg()}")

    wanted = profile_kinds(args, plan, res)
    if wanted:
        wc = args.classes[0]
        with gunicorn(node, wc, args.workers, args.threads, probe) as server:
            for kind in wanted:
                p, accept = paths[kind]
                script = lua_script(scripts / f"profile-{kind}.lua", p, accept, args.seed)
                log(f"profiling {kind} with py-spy on worker {server.workers[0]}")
                prof = profile_worker(server, script, args, node.work / f"pyspy-{kind}.txt")
                label = {"oai": "OAI ListRecords", "api": "JSON API page"}.get(
                    kind, LANDING_KINDS.get(kind, ("", kind))[1]
                )
                res.profiles.append(profile_report(kind, f"{label} ({wc})", prof))
                if args.work is not None:
                    res.profiles.append(f"raw stacks: {prof['stacks']}\n")


def profile_kinds(args, plan: Plan, res: Results) -> list[str]:
    if args.profile == "none":
        return []
    if args.profile != "auto":
        return [k.strip() for k in args.profile.split(",") if k.strip()]
    wc = args.classes[0]
    out = []
    if verdict_jsonld(res.runs.get((wc, "jsonld"))) == "MISS":
        out.append("jsonld")
    oai = res.runs.get((wc, "oai"))
    if oai and verdict_oai(oai.rps * per_page(plan, "oai"), oai) == "MISS":
        out.append("oai")
    return out


def summary(args, plan: Plan, res: Results) -> str:
    rows = []
    for wc in args.classes:
        j = res.runs.get((wc, "jsonld"))
        o = res.runs.get((wc, "oai"))
        if j:
            js = res.rounds.get((wc, "jsonld"), [j])
            rows.append(
                [
                    f"JSON-LD >= 500 req/s, p99 < 100 ms ({wc})",
                    f"{fmt_rate(j.rps)} req/s, p99 {fmt_ms(j.p99_ms)}",
                    f"{fmt_rate(min(r.rps for r in js))}-{fmt_rate(max(r.rps for r in js))} "
                    f"req/s, p99 {fmt_ms(min(r.p99_ms for r in js))}-"
                    f"{fmt_ms(max(r.p99_ms for r in js))}",
                    verdict_jsonld(j),
                ]
            )
        if o:
            os_ = res.rounds.get((wc, "oai"), [o])
            page = per_page(plan, "oai")
            rows.append(
                [
                    f"OAI ListRecords >= 5,000 records/s ({wc})",
                    f"{fmt_rate(o.rps * page)} records/s",
                    f"{fmt_rate(min(r.rps for r in os_) * page)}-"
                    f"{fmt_rate(max(r.rps for r in os_) * page)} records/s",
                    verdict_oai(o.rps * page, o),
                ]
            )
    note = (
        f"wrk: {args.wrk_threads} thread, {args.connections} connections; every row {args.rounds} "
        f"rounds of {args.duration:g} s, each after {args.warmup:g} s of warm-up, rounds of all "
        f"rows interleaved; requests spread over all {len(plan.ids):,} dataset ids (or all "
        f"{len(plan.oai)} OAI pages) in a shuffled cycle; client and server on the same 2 cores."
        "\nload average (1/5/15 min): "
        + "; ".join(res.loads)
        + " -- while a row runs, the benchmark itself adds about 2-3 (2 workers + wrk)."
    )
    title = f"Targets (issue 4) with {len(plan.ids):,} datasets" + (
        "" if len(plan.ids) == 10_000 else " (the issue's targets are for 10,000)"
    )
    return table(title, ["target", "median round", "all rounds", "met?"], rows, note)


if __name__ == "__main__":
    main()
