"""Search benchmark: reindex rate, index size, peak RSS and query latency of the node's search
(tantivy, through node.search), against SQLite FTS5 (and PostgreSQL full-text search when a
server is reachable) on the same records, measured in the same run.

    python bench/search.py                         # 1,000,000 records (generated once, reused)
    python bench/search.py --records 100000 --samples 200
    python bench/search.py --records 200000 --only reindex --profile 100000

1. N realistic dataset records (Zipf-distributed words, real NCBITaxon organisms, FBbi methods,
   SPDX licences, ~50 origin nodes, creators, instruments, image summaries) are written straight
   into a SQLite catalog (the JSON form ``Dataset.to_json()`` gives, and the columns
   ``dataset_row_values`` gives; both checked on a sample of real pydantic Datasets). The catalog
   is kept in the work folder and reused by later runs with the same --records and --seed.
2. Build, each in its own child process (so each peak RSS is its own): ``node.search.indexer.
   reindex`` into tantivy, --reindex-runs times (3), the first after dropping the catalog from
   the page cache (a cold read, as after a restart); an FTS5 database (and a PostgreSQL one)
   from the same catalog and the same search documents. Each phase logs what the machine did
   meanwhile (cores busy, waiting on the disk, stolen by the hypervisor; disk traffic).
3. Query latency, sequentially, of three kinds (2-word text; text + 2 filters + an acquisition
   date range; the facet counts of everything), through ``SearchService.search`` and the SQL
   equivalents, then over HTTP: the real app under gunicorn (2 workers) on loopback, and the same
   FTS5 queries behind a minimal Flask endpoint under the same gunicorn.

Nothing here asserts a time: the table reports the issue's targets and whether this run met them.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from report import describe_machine, emit, loadavg, log, machine_delta, machine_snapshot, table
from report import versions as report_versions

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GEN_VERSION = 1  # bump when the generated records change: cached catalogs are then rebuilt
NODE_ID = "bench-node"
SOURCE = "store"
PAGE = 20  # limit of every query (one page of results)
TARGETS = {"service_p95_ms": 15.0, "http_p95_ms": 50.0, "reindex_rate": 15_000.0}
KINDS = ("text", "filtered", "facets")
KIND_LABEL = {
    "text": "2-word text",
    "filtered": "text + 2 filters + dates",
    "facets": "facet counts, all records",
}
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# ----------------------------------------------------------------------------- output


def vm_hwm_kb() -> int | None:
    """This process's peak RSS (VmHWM, KB): its own, unlike ru_maxrss after a fork."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


# ----------------------------------------------------------------------------- vocabularies


def _words(text: str) -> list[str]:
    return text.split()


MICROSCOPY_WORDS = _words("""
imaging microscopy confocal fluorescence cells cell tissue nucleus nuclei membrane mitochondria
mitochondrial actin microtubule microtubules cytoskeleton chromatin chromosome chromosomes
mitosis mitotic meiosis spindle centrosome cilia cilium organoid organoids embryo embryos
embryonic larva larvae neuron neurons neuronal axon axons dendrite dendritic synapse synapses
synaptic brain cortex hippocampus retina retinal muscle heart cardiac liver kidney intestine
intestinal epithelium epithelial endothelial stem progenitor differentiation migration division
apoptosis autophagy vesicle vesicles endosome lysosome golgi endoplasmic reticulum lipid
droplets protein proteins expression localization reporter transgenic knockout mutant mutants
wildtype stained staining immunofluorescence antibody labelled labelling live fixed timelapse
volumetric stack stacks plane channel channels resolution superresolution widefield lightsheet
spinning disk laser scanning objective pixel segmentation tracking morphology dynamics
development developmental regeneration wound healing infection bacteria bacterial virus viral
host pathogen tumour tumor cancer metastasis spheroid plant root leaf pollen seed shoot meristem
chloroplast wing disc imaginal gut germline oocyte sperm blastula gastrulation somite
somitogenesis neural crest tube vasculature vessels angiogenesis calcium signalling gradient
morphogen receptor kinase phosphorylation transcription nuclear pore envelope lamina fibroblasts
keratinocytes hela u2os hek293 ipsc macrophage macrophages lymphocyte immune inflammation
fluorescent gfp mcherry dapi hoechst phalloidin tubulin histone h2b lifeact sted storm palm
smlm tirf frap fret flim expansion clearing cleared electron tomography cryo serial section
block face ultrastructure synaptonemal junction junctions adhesion focal polarity apical basal
lumen cortical cortex contractility myosin kinesin dynein motor transport secretion exocytosis
endocytosis membrane trafficking organelle organelles peroxisome nucleolus nucleoli centriole
kinetochore cohesin condensin replication dna rna mrna smfish fish hybridization probe probes
""")

GENERIC_WORDS = _words("""
of in and the during with from for under after by using a to at on analysis study dataset data
images image acquired acquisition time series high low single multi dual whole entire early
late adult young old control treated treatment condition conditions response responses
quantitative quantification measurement measurements experiment experiments sample samples
replicate replicates screen screening assay assays model models system systems role function
functional structure structural organisation organization formation growth loss gain effect
effects changes change increase decrease level levels rate rates distribution pattern patterns
mechanism mechanisms process processes regulation regulated regulates dependent independent
mediated induced stress state states stage stages phase phases region regions area areas
network networks population populations type types line lines strain strains variant variants
novel new first large small long short fast slow dynamic static primary secondary normal
abnormal healthy disease diseased human-derived derived cultured culture cultures medium
observed observation observations reveals revealed shows shown identifies identified across
between within without through into over along towards versus compared comparison map maps
atlas reference resource collection raw processed annotated annotation annotations ground truth
training benchmark challenge
""")

STOPWORDS = frozenset(
    _words(
        "of in and the during with from for under after by using a to at on into over along "
        "towards versus between within without through across"
    )
)

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "in", "ar", "el")]

KEYWORDS = """
cell biology|developmental biology|neuroscience|cell division|cell migration|mitochondria|
cytoskeleton|live imaging|light-sheet|super-resolution|electron microscopy|organoids|
zebrafish development|Drosophila|C. elegans|plant biology|immunology|cancer|infection|
stem cells|embryogenesis|neurodevelopment|synapse|membrane trafficking|autophagy|
high-content screening|phenotyping|segmentation|cell tracking|deep learning|ground truth|
tissue clearing|expansion microscopy|correlative microscopy|CLEM|cryo-ET|volume EM|
calcium imaging|optogenetics|morphogenesis|regeneration|angiogenesis|polarity|chromatin|
nuclear organisation|cilia|centrosome|microtubules|actin|adhesion|single-molecule|FISH|
spatial transcriptomics|lineage tracing|biosensors|FRET|FLIM|FRAP|photoactivation
""".replace("\n", "").split("|")

ORGANISMS = [  # by popularity (Zipf over this order); resolved through node.ontologies
    "mouse",
    "human",
    "zebrafish",
    "fruit fly",
    "Caenorhabditis elegans",
    "baker's yeast",
    "Arabidopsis thaliana",
    "rat",
    "Xenopus laevis",
    "chicken",
    "Escherichia coli",
    "Schizosaccharomyces pombe",
    "Dictyostelium discoideum",
    "Oryzias latipes",
    "Platynereis dumerilii",
    "Nematostella vectensis",
    "Macaca mulatta",
    "Sus scrofa",
    "Chlamydomonas reinhardtii",
    "Physcomitrium patens",
    "Hydra vulgaris",
    "Tribolium castaneum",
    "Schmidtea mediterranea",
    "Plasmodium falciparum",
    "Toxoplasma gondii",
    "Bacillus subtilis",
    "Ciona intestinalis",
    "Bos taurus",
]

METHODS = [  # FBbi labels or synonyms, by popularity
    "confocal microscopy",
    "single-spot confocal microscopy",
    "fluorescence microscopy",
    "spinning disk confocal microscopy",
    "light sheet fluorescence microscopy",
    "bright-field microscopy",
    "two-photon laser scanning microscopy",
    "time lapse microscopy",
    "transmission electron microscopy",
    "structured illumination microscopy (SIM)",
    "differential interference contrast microscopy",
    "phase contrast microscopy",
    "scanning electron microscopy",
    "total internal reflection fluorescence microscopy",
    "stimulated emission depletion (STED)",
    "stochastic optical reconstruction microscopy",
    "photoactivation localization microscopy",
    "multi-photon microscopy",
    "focussed ion beam scanning electron microscopy",
    "FLIM",
    "FRAP",
    "FRET",
    "light microscopy",
    "dark-field microscopy",
    "X-ray microscopy",
    "polarization microscopy",
]

LICENSES = [
    "CC-BY-4.0",
    "CC0-1.0",
    "CC-BY-NC-4.0",
    "CC-BY-SA-4.0",
    "CC-BY-NC-SA-4.0",
    "CC-BY-3.0",
    "CC-BY-NC-ND-4.0",
    "ODbL-1.0",
    "PDDL-1.0",
]

INSTRUMENTS = [
    "Carl Zeiss LSM 980",
    "Leica Microsystems STELLARIS 8",
    "Nikon Ti2-E",
    "Carl Zeiss LSM 880",
    "Olympus IX83",
    "Leica Microsystems TCS SP8",
    "Andor Dragonfly 505",
    "Nikon A1R HD25",
    "Yokogawa CSU-W1",
    "Carl Zeiss Lightsheet 7",
    "Olympus FV3000",
    "PerkinElmer Opera Phenix",
    "Leica Microsystems THUNDER Imager",
    "Carl Zeiss Axio Observer 7",
    "GE DeltaVision OMX SR",
    "Abberior STEDYCON",
    "Thermo Fisher Talos L120C",
    "JEOL JEM-1400Flash",
    "Thermo Fisher Krios G4",
    "Carl Zeiss GeminiSEM 450",
    "Viventis LS1 Live",
    "Luxendo MuVi SPIM",
    "Bruker Ultima 2Pplus",
    "3i Marianas",
    "Yokogawa CV8000",
]

FORMATS = ["OME-TIFF", "TIFF", "CZI", "ND2", "LIF", "OME-Zarr", "DV", "IMS", "OIR"]

CHANNELS = [  # (channel name, fluorophore or None)
    ("DAPI", "DAPI"),
    ("GFP", "EGFP"),
    ("mCherry", "mCherry"),
    ("Cy5", "Cy5"),
    ("Hoechst", "Hoechst 33342"),
    ("RFP", "tdTomato"),
    ("Brightfield", None),
    ("A488", "Alexa Fluor 488"),
    ("A647", "Alexa Fluor 647"),
    ("A568", "Alexa Fluor 568"),
    ("YFP", "EYFP"),
    ("CFP", "mTurquoise2"),
    ("FITC", "FITC"),
    ("TRITC", "TRITC"),
    ("mNeonGreen", "mNeonGreen"),
    ("JF549", "Janelia Fluor 549"),
    ("SiR", "SiR-actin"),
]

MAGNIFICATIONS = [63.0, 40.0, 20.0, 100.0, 60.0, 10.0, 25.0, 5.0, 1.25]

FIRST_NAMES = _words("""
Anna Ben Chen Daniel Elena Fatima Giulia Hannah Ines Jakob Kenji Laura Mateo Nadia Olga Pablo
Qing Rahul Sara Tomas Ursula Viktor Wei Xavier Yuki Zofia Amir Beatriz Carlos Dmitri Emma Farid
Greta Hugo Ingrid Jonas Kaito Lena Marco Nora Oscar Priya Rosa Stefan Tara Uma Valentina Wim
Yasmin Zeynep
""")

LAST_NAMES = _words("""
Müller Schmidt García Rossi Dubois Novak Kowalski Johansson Jensen Smith Nguyen Wang Li Zhang
Kim Park Sato Tanaka Suzuki Silva Santos Pereira Costa Fernández López Martínez González Ivanova
Petrov Horvath Nagy Popescu Georgiou Papadopoulos Yilmaz Kaya Cohen Levi Haddad Khan Patel
Singh Sharma Okafor Mensah Mwangi Andersson Nielsen Hansen Virtanen Korhonen Bakker Visser
Janssens Peeters Fischer Weber Wagner Becker Hoffmann Schulz Richter Klein Wolf Neumann
""")

CITIES = _words("""
heidelberg london paris barcelona madrid milan rome vienna zurich geneva basel munich berlin
dresden hamburg amsterdam leiden brussels leuven copenhagen stockholm uppsala oslo helsinki
prague warsaw krakow budapest lisbon porto dublin edinburgh cambridge oxford manchester lyon
marseille grenoble strasbourg toulouse bordeaux tubingen gottingen freiburg bonn cologne
utrecht ghent aarhus bergen
""")

ROR_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def zipf_cum(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights of ranks 1..n (for random.choices / bisect)."""
    return list(itertools.accumulate(1.0 / (r**s) for r in range(1, n + 1)))


def orcid_with_check(digits15: str) -> str:
    total = 0
    for ch in digits15:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    d = digits15 + ("X" if check == 10 else str(check))
    return f"{d[0:4]}-{d[4:8]}-{d[8:12]}-{d[12:16]}"


def build_vocabulary(seed: int, size: int = 40_000) -> list[str]:
    """Ranked words: the real microscopy and generic words first (shuffled together), then a
    long tail of pronounceable made-up words (gene-, strain- and sample-like names)."""
    rnd = random.Random(seed)
    real = list(dict.fromkeys(MICROSCOPY_WORDS + GENERIC_WORDS))
    stop = [w for w in real if w in STOPWORDS]
    content = [w for w in real if w not in STOPWORDS]
    rnd.shuffle(content)
    words = stop + content  # stop words are the most frequent, as in any text
    seen = set(words)
    while len(words) < size:
        w = "".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(2, 4)))
        if rnd.random() < 0.15:
            w += str(rnd.randint(1, 99))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def iso(ts: int) -> str:
    """pydantic's JSON form of a whole-second UTC datetime."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- records


class RecordMaker:
    """Dataset records in their JSON form (exactly what Dataset.to_json() gives), fast."""

    T_START = int(datetime(2015, 1, 1, tzinfo=UTC).timestamp())
    T_SPAN = 10 * 365 * 86400  # acquisitions over ten years

    def __init__(self, seed: int):
        import numpy as np

        from node.harvest.ids import dataset_id
        from node.ontologies import resolve_imaging_method, resolve_license, resolve_organism

        self.np = np
        self.dataset_id = dataset_id
        self.rnd = random.Random(seed)
        self.rng = np.random.default_rng(seed)
        self.vocab = build_vocabulary(seed)
        self.vocab_arr = np.array(self.vocab, dtype=object)
        cum = np.cumsum(1.0 / np.arange(1, len(self.vocab) + 1) ** 1.07)
        self.word_cdf = cum / cum[-1]
        self.organisms = [resolve_organism(o).model_dump(mode="json") for o in ORGANISMS]
        self.methods = [resolve_imaging_method(m).model_dump(mode="json") for m in METHODS]
        for lic in LICENSES:
            resolve_license(lic)  # every licence is a real SPDX id
        self.org_cum = zipf_cum(len(self.organisms), 1.1)
        self.method_cum = zipf_cum(len(self.methods), 1.0)
        self.lic_cum = zipf_cum(len(LICENSES), 1.6)
        self.instr_cum = zipf_cum(len(INSTRUMENTS), 0.9)
        self.fmt_cum = zipf_cum(len(FORMATS), 1.4)
        self.chan_cum = zipf_cum(len(CHANNELS), 0.9)
        self.mag_cum = zipf_cum(len(MAGNIFICATIONS), 0.8)
        self.kw_cum = zipf_cum(len(KEYWORDS), 0.9)
        # ~50 origin nodes (this node first), each with a ROR-like affiliation; Zipf sizes.
        self.origins = [NODE_ID] + [f"{c}-imaging" for c in CITIES[:49]]
        self.origin_cum = zipf_cum(len(self.origins), 1.0)
        self.rors = [
            "https://ror.org/0"
            + "".join(self.rnd.choice(ROR_ALPHABET) for _ in range(6))
            + f"{self.rnd.randint(0, 99):02d}"
            for _ in self.origins
        ]
        people = []
        for _ in range(8000):
            name = f"{self.rnd.choice(FIRST_NAMES)} {self.rnd.choice(LAST_NAMES)}"
            orcid = (
                orcid_with_check(
                    "0000000" + "".join(self.rnd.choice("0123456789") for _ in "x" * 8)
                )
                if self.rnd.random() < 0.6
                else None
            )
            people.append((name, orcid))
        self.people = people
        self.people_cum = zipf_cum(len(people), 0.7)

    def _pick(self, pool: Sequence[Any], cum: list[float]) -> Any:
        return pool[bisect.bisect(cum, self.rnd.random() * cum[-1])]

    def _picks(self, pool: Sequence[Any], cum: list[float], k: int) -> list[Any]:
        out: list[Any] = []
        for _ in range(k * 3):
            v = self._pick(pool, cum)
            if v not in out:
                out.append(v)
                if len(out) == k:
                    break
        return out

    def chunk(self, start: int, n: int) -> list[tuple[dict, str | None, str | None]]:
        """Records ``start`` .. ``start + n - 1`` as (JSON doc, source, folder)."""
        np = self.np
        rnd = self.rnd
        title_len = self.rng.integers(4, 12, size=n)
        desc_len = self.rng.integers(12, 70, size=n)
        total = int(title_len.sum() + desc_len.sum())
        idx = np.searchsorted(self.word_cdf, self.rng.random(total))
        words = self.vocab_arr[idx].tolist()
        pos = 0
        out = []
        for j in range(n):
            i = start + j
            tl, dl = int(title_len[j]), int(desc_len[j])
            tw = words[pos : pos + tl]
            pos += tl
            dw = words[pos : pos + dl]
            pos += dl
            title = " ".join(tw)
            title = title[:1].upper() + title[1:]
            description = None if rnd.random() < 0.05 else " ".join(dw).capitalize() + "."
            out.append(self.record(i, title, description))
        return out

    def record(self, i: int, title: str, description: str | None) -> tuple[dict, Any, Any]:
        rnd = self.rnd
        oi = bisect.bisect(self.origin_cum, rnd.random() * self.origin_cum[-1])
        origin = self.origins[oi]
        own = origin == NODE_ID
        folder = f"lab{i % 997:03d}/project{i // 997 % 50:02d}/dataset{i:08d}"
        source = SOURCE if own else None
        ds_id = self.dataset_id(origin, folder)
        r = rnd.random()
        lifecycle = "published" if r < 0.9 else "draft" if r < 0.97 else "withdrawn"
        r = rnd.random()
        visibility = (
            "public"
            if r < 0.88
            else "federation"
            if r < 0.94
            else "institution"
            if r < 0.98
            else "private"
        )
        r = rnd.random()
        access = (
            "open"
            if r < 0.55
            else "restricted"
            if r < 0.9
            else "embargoed"
            if r < 0.97
            else "closed"
        )
        acq_from = self.T_START + rnd.randrange(self.T_SPAN)
        acq_to = acq_from + int(rnd.expovariate(1 / (20 * 86400)))
        modified = acq_to + rnd.randrange(30 * 86400, 400 * 86400)
        issued = modified - rnd.randrange(0, 20 * 86400) if lifecycle != "draft" else None
        first_seen = min(modified, acq_to + 86400)
        n_org = 1 if rnd.random() < 0.92 else 2
        organisms = self._picks(self.organisms, self.org_cum, n_org)
        n_meth = 1 if rnd.random() < 0.75 else 2
        methods = self._picks(self.methods, self.method_cum, n_meth)
        creators = []
        for _ in range(1 if rnd.random() < 0.3 else rnd.randint(2, 5)):
            name, orcid = self._pick(self.people, self.people_cum)
            creators.append(
                {
                    "name": name,
                    "orcid": orcid,
                    "affiliation": self.rors[oi] if rnd.random() < 0.7 else None,
                    "role": None,
                }
            )
        keywords = self._picks(KEYWORDS, self.kw_cum, rnd.randint(0, 5))
        instruments = sorted(
            self._picks(INSTRUMENTS, self.instr_cum, 1 if rnd.random() < 0.8 else 2)
        )
        formats = sorted(self._picks(FORMATS, self.fmt_cum, 1 if rnd.random() < 0.85 else 2))
        chans = self._picks(CHANNELS, self.chan_cum, rnd.randint(1, 4))
        mags = sorted(self._picks(MAGNIFICATIONS, self.mag_cum, 1 if rnd.random() < 0.7 else 2))
        images = rnd.randint(1, 400)
        files = images + rnd.randint(0, 3)
        license_id = None if rnd.random() < 0.05 else self._pick(LICENSES, self.lic_cum)
        embargo = (
            iso(modified + rnd.randrange(30 * 86400, 700 * 86400))
            if access == "embargoed"
            else None
        )
        doc = {
            "id": ds_id,
            "identifier": f"ark:/99999/fk4{ds_id[3:]}" if lifecycle != "draft" else None,
            "title": title,
            "description": description,
            "creators": creators,
            "contributors": [],
            "keywords": keywords,
            "subjects": [],
            "organisms": organisms,
            "imaging_methods": methods,
            "sample": None,
            "instruments": instruments,
            "license": license_id,
            "created": iso(acq_from),
            "modified": iso(modified),
            "issued": iso(issued) if issued is not None else None,
            "embargo_end": embargo,
            "publisher": f"{origin.split('-')[0].capitalize()} Imaging Facility",
            "funding": [],
            "related_publications": (
                [f"https://doi.org/10.{rnd.randint(1000, 9999)}/bench.{i}"]
                if rnd.random() < 0.2
                else []
            ),
            "version": None,
            "data_location": {"path": folder, "url": None},
            "total_size": images * rnd.randint(2_000_000, 400_000_000),
            "file_count": files,
            "image_count": images,
            "formats": formats,
            "visibility": visibility,
            "data_access": access,
            "access_contact": "imaging@example.org" if access != "open" else None,
            "lifecycle": lifecycle,
            "withdrawn_reason": "superseded by a corrected version"
            if lifecycle == "withdrawn"
            else None,
            "key_values": {},
            "provenance": {
                "origin_node": origin,
                "source": source,
                "harvested_via": [] if own else [origin],
                "source_record_url": None,
                "first_seen": iso(first_seen),
                "last_harvested": iso(modified),
            },
            "thumbnail": f"{ds_id}.webp" if rnd.random() < 0.8 else None,
            "image_summary": {
                "channel_names": [c[0] for c in chans],
                "fluors": [c[1] for c in chans if c[1]],
                "magnifications": mags,
                "max_channels": len(chans),
                "has_z": rnd.random() < 0.6,
                "has_t": rnd.random() < 0.3,
                "acquired_from": iso(acq_from),
                "acquired_to": iso(acq_to),
            },
        }
        return doc, source, folder if own else None


def row_values(doc: dict, source: str | None, folder: str | None) -> dict:
    """The catalog columns of a record, as dataset_row_values derives them (checked on a
    sample against the real function)."""
    return {
        "id": doc["id"],
        "source": source,
        "folder": folder,
        "identifier": doc["identifier"],
        "title": doc["title"],
        "lifecycle": doc["lifecycle"],
        "visibility": doc["visibility"],
        "data_access": doc["data_access"],
        "origin_node": doc["provenance"]["origin_node"],
        "modified": datetime.fromisoformat(doc["modified"]),
        "doc": doc,
    }


def check_records(sample: list[tuple[dict, Any, Any]]) -> int:
    """Every sampled JSON doc is what its pydantic Dataset gives, and so are its columns."""
    from node.catalog.service import dataset_row_values
    from node.records import Dataset

    for doc, source, folder in sample:
        ds = Dataset.model_validate(doc)
        if ds.to_json() != doc:
            diff = {k for k in doc if ds.to_json().get(k) != doc[k]}
            raise SystemExit(f"generated record differs from Dataset.to_json() in {diff}")
        if json.dumps(ds.to_json()) != json.dumps(doc):
            raise SystemExit("generated record's JSON text differs from Dataset.to_json()'s")
        if dataset_row_values(ds, source=source, folder=folder) != row_values(doc, source, folder):
            raise SystemExit("generated catalog columns differ from dataset_row_values")
    return len(sample)


# ----------------------------------------------------------------------------- work folder


class Paths:
    def __init__(self, work: Path, n: int, seed: int):
        self.work = work
        self.tag = f"{n}-{seed}-v{GEN_VERSION}"
        self.node = work / f"node-{self.tag}"  # data_dir: catalog.sqlite3, search/
        self.catalog = self.node / "catalog.sqlite3"
        self.marker = self.node / "generated.json"
        self.fts = work / f"fts5-{self.tag}.sqlite3"
        self.queries = work / f"queries-{self.tag}.json"


def make_config(paths: Paths):
    from node.config import parse_config

    return parse_config(
        {
            "node": {
                "id": NODE_ID,
                "name": "Bench node",
                "base_url": "http://127.0.0.1:5000",
                "data_dir": str(paths.node),
            },
        },
        env=False,
    )


def open_engine(paths: Paths):
    from node.catalog.db import open_catalog

    return open_catalog(f"sqlite:///{paths.catalog}")


# ----------------------------------------------------------------------------- 1. generate


def generate(p: dict) -> dict:
    from sqlalchemy import insert

    from node.catalog.models import DatasetRow

    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    if paths.node.exists():
        shutil.rmtree(paths.node)
    paths.node.mkdir(parents=True)
    engine = open_engine(paths)
    maker = RecordMaker(p["seed"])
    checked = 0
    t0, c0 = time.perf_counter(), time.process_time()
    chunk = 10_000
    last = time.monotonic()
    for start in range(0, p["records"], chunk):
        recs = maker.chunk(start, min(chunk, p["records"] - start))
        if start == 0:
            checked = check_records(recs[:500])
        rows = [row_values(d, s, f) for d, s, f in recs]
        with engine.begin() as conn:
            conn.execute(insert(DatasetRow), rows)
        if time.monotonic() - last > 15:
            last = time.monotonic()
            log(f"generate: {start + len(recs):,} / {p['records']:,} records")
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.dispose()
    info = {
        "records": p["records"],
        "seed": p["seed"],
        "version": GEN_VERSION,
        "seconds": dt,
        "cpu": cpu,
        "checked": checked,
        "catalog_bytes": dir_size(paths.catalog),
        "vocabulary": len(maker.vocab),
    }
    paths.marker.write_text(json.dumps(info))
    return info


# ----------------------------------------------------------------------------- 2. builds


def build_tantivy(p: dict) -> dict:
    from node.search.factory import open_backend
    from node.search.indexer import reindex

    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    config = make_config(paths)
    engine = open_engine(paths)
    backend = open_backend(config)
    done = [0]
    last = [time.monotonic()]

    def progress(k: int) -> None:
        done[0] += k
        if time.monotonic() - last[0] >= 15:
            last[0] = time.monotonic()
            log(f"reindex: {done[0]:,} records")

    evicted = evict_from_page_cache(paths.catalog) if p.get("cold") else 0
    t0, c0 = time.perf_counter(), time.process_time()
    n = reindex(engine, backend, batch_size=config.search.batch_size, progress=progress)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    health = backend.health()
    backend.close()
    engine.dispose()
    return {
        "records": n,
        "seconds": dt,
        "cpu": cpu,
        "bytes": dir_size(config.search_dir),
        "docs": health.documents,
        "health": health.ok,
        "writer_mb": config.search.writer_memory_mb,
        "batch": config.search.batch_size,
        "cold": bool(p.get("cold")),
        "evicted_bytes": evicted,
    }


def evict_from_page_cache(path: Path) -> int:
    """Drop ``path`` (and its WAL) from the page cache (posix_fadvise DONTNEED, which any user
    may ask of a file it can read), so that the next read comes from the disk, as the first
    reindex after a restart reads it; the bytes asked to drop. The pages are clean (nothing
    writes the catalog here), so the kernel drops them all."""
    total = 0
    for f in (path, path.with_name(path.name + "-wal")):
        if not f.exists():
            continue
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        total += f.stat().st_size
    return total


CEILING_RECORDS = 200_000


def tantivy_ceiling(p: dict) -> dict:
    """tantivy alone: the first CEILING_RECORDS documents, built and serialised beforehand
    (untimed), added to a new index with the writer settings of a reindex. No Python work is
    timed except the add_json loop, so this is the most any reindex on this machine could
    reach with this schema, however its Python half were written or spread over processes."""
    import gc

    import tantivy

    from node.search.documents import search_document
    from node.search.indexer import catalog_records
    from node.search.tantivy_index import _json, build_schema

    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    config = make_config(paths)
    engine = open_engine(paths)
    docs = [
        _json(search_document(r))
        for r in itertools.islice(catalog_records(engine), CEILING_RECORDS)
    ]
    engine.dispose()
    folder = paths.work / "ceiling-index"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    gc.disable()
    try:
        index = tantivy.Index(build_schema(), path=str(folder))
        writer = index.writer(heap_size=config.search.writer_memory_mb * 1_000_000, num_threads=0)
        t0, c0 = time.perf_counter(), time.process_time()
        for doc in docs:
            writer.add_json(doc)
        writer.commit()
        writer.wait_merging_threads()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"records": len(docs), "seconds": dt, "cpu": cpu, "cores": os.cpu_count()}


FTS_COLUMNS = (  # FTS5 column, search-document field, bm25 weight (the same boosts as tantivy)
    ("title", "title", 4.0),
    ("keywords", "keywords", 2.0),
    ("description", "description", 1.0),
    ("creators", "creators", 1.5),
    ("channels", "channels", 1.5),
    ("organism", "organism", 2.0),
    ("method", "method", 2.0),
    ("instrument", "instrument", 1.0),
    ("format", "format", 1.0),
)
MULTI_FACETS = ("organism", "method", "instrument", "magnification", "fluor", "format")
SINGLE_FACETS = ("origin", "license", "access")  # one value per record: columns of docs

FTS_SCHEMA = f"""
CREATE TABLE docs (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, lifecycle TEXT NOT NULL,
    visibility TEXT NOT NULL, origin TEXT, license TEXT, access TEXT,
    acq_from INTEGER, acq_to INTEGER
);
CREATE TABLE doc_terms (
    doc INTEGER NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (doc, field, value)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE fts USING fts5({", ".join(c for c, _, _ in FTS_COLUMNS)});
"""
FTS_INDEXES = """
CREATE INDEX docs_access ON docs (lifecycle, visibility);
CREATE INDEX docs_acq ON docs (acq_from, acq_to);
CREATE INDEX docs_origin ON docs (origin);
CREATE INDEX docs_license ON docs (license);
CREATE INDEX doc_terms_value ON doc_terms (field, value);
"""


def epoch(value: str | None) -> int | None:
    return int(datetime.fromisoformat(value).timestamp()) if value else None


def _joined(values: Any) -> str:
    return "\n".join(values) if isinstance(values, list) else values


def build_fts5(p: dict) -> dict:
    """An FTS5 database of the same search documents (node.search.documents.search_document)
    the node indexes, with the filter and facet values in indexed tables."""
    from node.search.documents import search_document
    from node.search.indexer import catalog_records

    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{paths.fts}{suffix}").unlink(missing_ok=True)
    engine = open_engine(paths)
    t0, c0 = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(paths.fts)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(FTS_SCHEMA)
    n = 0
    docs, texts, terms = [], [], []
    last = time.monotonic()

    def flush() -> None:
        conn.executemany("INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?)", docs)
        conn.executemany(
            f"INSERT INTO fts (rowid, {', '.join(c for c, _, _ in FTS_COLUMNS)}) "
            f"VALUES (?{',?' * len(FTS_COLUMNS)})",
            texts,
        )
        conn.executemany("INSERT OR IGNORE INTO doc_terms VALUES (?,?,?)", terms)
        conn.commit()
        docs.clear()
        texts.clear()
        terms.clear()

    for rec in catalog_records(engine, batch_size=1000):
        d = search_document(rec)
        n += 1
        docs.append(
            (
                n,
                d["id"],
                rec["lifecycle"],
                rec["visibility"],
                d["f_origin"][0],
                d["f_license"][0] if d["f_license"] else None,
                d["f_access"][0],
                epoch(d["acquired_from"]),
                epoch(d["acquired_to"]),
            )
        )
        texts.append((n, *(_joined(d[f]) for _, f, _ in FTS_COLUMNS)))
        for facet in MULTI_FACETS:
            terms.extend((n, facet, v) for v in d[f"f_{facet}"])
        if n % 10_000 == 0:
            flush()
            if time.monotonic() - last >= 15:
                last = time.monotonic()
                log(f"fts5: {n:,} records")
    flush()
    t_load = time.perf_counter() - t0
    conn.executescript(FTS_INDEXES)
    conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
    conn.execute("ANALYZE")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.dispose()
    return {
        "records": n,
        "seconds": dt,
        "cpu": cpu,
        "load_seconds": t_load,
        "bytes": sum(
            dir_size(Path(f"{paths.fts}{s}"))
            for s in ("", "-wal")
            if Path(f"{paths.fts}{s}").exists()
        ),
    }


# ----------------------------------------------------------------------------- SQL searches


class SqlQuery:
    """Request args (the same dict SearchService takes) → what the SQL alternatives need:
    analysed words, filter values (organism/method expanded to the class and its sub-classes,
    as the node's x_ fields do at index time) and the acquisition range in epoch seconds."""

    def __init__(self, args: dict[str, list[str]]):
        from node.ontologies import (
            fbbi_descendants,
            resolve_imaging_method,
            resolve_organism,
            taxon_descendants,
        )
        from node.search.query import parse_text

        q = (args.get("q") or [""])[0]
        self.words = [w for c in parse_text(q) for w in c.words]
        self.limit = int((args.get("limit") or [PAGE])[0])
        self.organisms: list[str] | None = None
        self.methods: list[str] | None = None
        self.licenses = args.get("license") or None
        if args.get("organism"):
            self.organisms = []
            for v in args["organism"]:
                iri = resolve_organism(v).iri
                self.organisms += [iri, *sorted(taxon_descendants(iri))]
        if args.get("method"):
            self.methods = []
            for v in args["method"]:
                iri = resolve_imaging_method(v).iri
                self.methods += [iri, *sorted(fbbi_descendants(iri))]
        self.acq_from = self.acq_to = None
        if args.get("acquired_from"):
            day = date.fromisoformat(args["acquired_from"][0])
            self.acq_from = int(datetime.combine(day, datetime.min.time(), UTC).timestamp())
        if args.get("acquired_to"):
            day = date.fromisoformat(args["acquired_to"][0]) + timedelta(days=1)
            self.acq_to = int(datetime.combine(day, datetime.min.time(), UTC).timestamp()) - 1


class Fts5Search:
    """The obvious SQLite catalog search: FTS5 MATCH for text, WHERE for filters, one GROUP BY
    query per facet; hits loaded from the catalog as SearchService loads them."""

    def __init__(self, fts_path: Path, engine: Any):
        from node.auth.policy import ANONYMOUS, read_scope
        from node.catalog.service import RecordService

        self.conn = sqlite3.connect(fts_path, check_same_thread=False)
        self.conn.execute("PRAGMA query_only=1")
        self.records = RecordService(engine)
        self.scope = read_scope(ANONYMOUS)
        self.weights = ", ".join(str(w) for _, _, w in FTS_COLUMNS)

    def search(self, args: dict[str, list[str]]) -> dict[str, Any]:
        from node.search.documents import facet_label

        q = SqlQuery(args)
        where = ["d.lifecycle = 'published'", "d.visibility = 'public'"]
        params: list[Any] = []
        source = "docs d"
        if q.words:
            source = "fts JOIN docs d ON d.rowid = fts.rowid"
            where.insert(0, "fts MATCH ?")
            params.append(" ".join('"' + w.replace('"', '""') + '"' for w in q.words))
        for field, values in (("organism", q.organisms), ("method", q.methods)):
            if values:
                marks = ",".join("?" * len(values))
                where.append(
                    f"d.rowid IN (SELECT doc FROM doc_terms WHERE field = '{field}' "
                    f"AND value IN ({marks}))"
                )
                params += values
        if q.licenses:
            where.append(f"d.license IN ({','.join('?' * len(q.licenses))})")
            params += q.licenses
        if q.acq_to is not None:
            where.append("d.acq_from <= ?")
            params.append(q.acq_to)
        if q.acq_from is not None:
            where.append("d.acq_to >= ?")
            params.append(q.acq_from)
        match = f"FROM {source} WHERE {' AND '.join(where)}"
        c = self.conn
        total = c.execute(f"SELECT count(*) {match}", params).fetchone()[0]
        if q.words:
            top = c.execute(
                "SELECT d.id, highlight(fts, 0, '<mark>', '</mark>'), "
                f"snippet(fts, 2, '<mark>', '</mark>', '…', 24) {match} "
                f"ORDER BY bm25(fts, {self.weights}), d.id LIMIT ?",
                [*params, q.limit + 1],
            ).fetchall()
        else:
            top = c.execute(
                f"SELECT d.id, NULL, NULL {match} ORDER BY d.rowid LIMIT ?", [*params, q.limit + 1]
            ).fetchall()
        facets: dict[str, list[tuple[str, str, int]]] = {}
        for name in MULTI_FACETS:
            rows = c.execute(
                f"WITH m AS (SELECT d.rowid AS r {match}) "
                "SELECT t.value, count(*) AS n FROM m JOIN doc_terms t ON t.doc = m.r "
                "AND t.field = ? GROUP BY t.value ORDER BY n DESC, t.value LIMIT 20",
                [*params, name],
            ).fetchall()
            facets[name] = [(v, facet_label(name, v), k) for v, k in rows]
        for name in SINGLE_FACETS:
            rows = c.execute(
                f"SELECT d.{name}, count(*) AS n {match} AND d.{name} IS NOT NULL "
                f"GROUP BY d.{name} ORDER BY n DESC, 1 LIMIT 20",
                params,
            ).fetchall()
            facets[name] = [(v, facet_label(name, v), k) for v, k in rows]
        hits = top[: q.limit]
        found = self.records.datasets_by_ids([h[0] for h in hits], self.scope)
        items = [(found[h[0]], h[1], h[2]) for h in hits if h[0] in found]
        return {"total": total, "items": items, "facets": facets}


# ----------------------------------------------------------------------------- 3. queries


def make_queries(seed: int, samples: int) -> dict[str, list[dict[str, list[str]]]]:
    """The query sets (request args): the same for every system. Words are drawn with the
    documents' Zipf weights among content words (people search content words, so frequent
    ones are frequent in queries too); organisms and methods with their popularity."""
    rnd = random.Random(seed + 1)
    vocab = build_vocabulary(seed)
    content = [w for w in vocab[:3000] if w not in STOPWORDS]
    ranks = [vocab.index(w) + 1 for w in content]
    cum = list(itertools.accumulate(1.0 / r**1.07 for r in ranks))

    def word() -> str:
        return content[bisect.bisect(cum, rnd.random() * cum[-1])]

    org_cum = zipf_cum(len(ORGANISMS), 1.1)
    meth_cum = zipf_cum(len(METHODS), 1.0)
    lic_cum = zipf_cum(len(LICENSES), 1.6)
    distinct = max(10, min(60, samples // 5))
    text = []
    for _ in range(distinct):
        a, b = word(), word()
        while b == a:
            b = word()
        text.append({"q": [f"{a} {b}"], "limit": [str(PAGE)]})
    filtered = []
    for k in range(distinct):
        start = datetime(2015, 1, 1) + timedelta(days=rnd.randrange(9 * 365))
        end = start + timedelta(days=rnd.randint(180, 3 * 365))
        args = {
            "q": [word()],
            "organism": [ORGANISMS[bisect.bisect(org_cum, rnd.random() * org_cum[-1])]],
            "acquired_from": [start.date().isoformat()],
            "acquired_to": [end.date().isoformat()],
            "limit": [str(PAGE)],
        }
        if k % 2 == 0:
            args["method"] = [METHODS[bisect.bisect(meth_cum, rnd.random() * meth_cum[-1])]]
        else:
            args["license"] = [LICENSES[bisect.bisect(lic_cum, rnd.random() * lic_cum[-1])]]
        filtered.append(args)
    facets = [{"limit": [str(PAGE)]}]
    return {"text": text, "filtered": filtered, "facets": facets}


def timed_samples(
    fn: Callable[[dict], Any],
    queries: list[dict],
    samples: int,
    max_seconds: float,
    warmup_seconds: float,
    min_samples: int,
    label: str,
    cpu: Callable[[], float] = time.process_time,
    first_ms: list[float] | None = None,
) -> tuple[list[float], list[Any], float]:
    """Warm up (each distinct query once, within warmup_seconds), then ``samples`` sequential
    timed calls cycling through the queries in a fixed shuffled order; stops early after
    max_seconds once min_samples are in. Returns (milliseconds, results of the first pass,
    mean CPU milliseconds per timed call as ``cpu`` counts them); the first pass's times (each
    distinct query's first run: nothing cached yet) are left in ``first_ms``."""
    t_end = time.perf_counter() + warmup_seconds
    firsts = []
    first_ms = [] if first_ms is None else first_ms
    first_ms.clear()
    for q in queries:
        t0 = time.perf_counter()
        firsts.append(fn(q))
        first_ms.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() > t_end:
            break
    order = list(range(len(queries))) * (samples // len(queries) + 1)
    random.Random(len(queries)).shuffle(order)
    ms: list[float] = []
    t_stop = time.perf_counter() + max_seconds
    c0 = cpu()
    for k in order[:samples]:
        t0 = time.perf_counter()
        fn(queries[k])
        ms.append((time.perf_counter() - t0) * 1000)
        if len(ms) >= min_samples and time.perf_counter() > t_stop:
            log(f"{label}: stopped after {len(ms)} samples (--max-seconds)")
            break
    return ms, firsts, (cpu() - c0) / max(1, len(ms)) * 1000


FIRST_MS: list[float] = []  # the last timed_samples call's first-pass times


def summarise(ms: list[float]) -> dict[str, Any]:
    return {
        "first_ms": list(FIRST_MS),
        "n": len(ms),
        "p50": pct(ms, 50),
        "p95": pct(ms, 95),
        "p99": pct(ms, 99),
        "mean": statistics.fmean(ms) if ms else float("nan"),
    }


class _Timed:
    """Delegates to ``inner`` and adds the time of its ``method`` calls to ``spent``."""

    def __init__(self, inner: Any, method: str):
        self._inner, self._method, self.spent = inner, method, 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return attr(*a, **kw)
            finally:
                self.spent += time.perf_counter() - t0

        return timed


def query_fairnode(p: dict) -> dict:
    from node.auth.policy import ANONYMOUS
    from node.search.factory import open_backend
    from node.search.service import SearchService

    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    config = make_config(paths)
    engine = open_engine(paths)
    backend = _Timed(open_backend(config), "search")
    service = SearchService(config, engine, backend)
    service.records = _Timed(service.records, "datasets_by_ids")
    queries = json.loads(paths.queries.read_text())
    out: dict[str, Any] = {}
    for kind in KINDS:
        backend.spent = service.records.spent = 0.0
        last = [None]

        def run(args: dict, last: list = last) -> Any:
            page = service.search(args, ANONYMOUS)
            last[0] = page
            return page.total

        ms, totals, cpu_ms = timed_samples(
            run, queries[kind], p["samples"], p["max_seconds"], p["warmup_seconds"],
            p["min_samples"], f"fairnode {kind}", first_ms=FIRST_MS,
        )  # fmt: skip
        # the share of the backend and of loading the hits, over warm-up + samples
        calls = len(ms) + len(totals)
        out[kind] = {
            **summarise(ms),
            "totals": totals,
            "cpu_ms": cpu_ms,
            "backend_ms": backend.spent / calls * 1000,
            "load_ms": service.records.spent / calls * 1000,
            "facets": {k: [(f.value, f.count) for f in v] for k, v in last[0].facets.items()},
        }
    engine.dispose()
    return out


def query_fts5(p: dict) -> dict:
    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    engine = open_engine(paths)
    fts = Fts5Search(paths.fts, engine)
    fts.records = _Timed(fts.records, "datasets_by_ids")
    queries = json.loads(paths.queries.read_text())
    out: dict[str, Any] = {}
    for kind in KINDS:
        fts.records.spent = 0.0
        last = [None]

        def run(args: dict, last: list = last) -> Any:
            res = fts.search(args)
            last[0] = res
            return res["total"]

        ms, totals, cpu_ms = timed_samples(
            run, queries[kind], p["samples"], p["max_seconds"], p["warmup_seconds"],
            p["min_samples"], f"fts5 {kind}", first_ms=FIRST_MS,
        )  # fmt: skip
        out[kind] = {
            **summarise(ms),
            "totals": totals,
            "cpu_ms": cpu_ms,
            "load_ms": fts.records.spent / (len(ms) + len(totals)) * 1000,
            "facets": {k: [(v, n) for v, _, n in vs] for k, vs in last[0]["facets"].items()},
        }
    engine.dispose()
    return out


# ----------------------------------------------------------------------------- PostgreSQL


def pg_url(p: dict) -> str | None:
    """A reachable PostgreSQL server URL (psycopg form), or None."""
    if p.get("no_pg"):
        return None
    candidates = (
        [p.get("pg")] if p.get("pg") else [os.environ.get("FAIRNODE_TEST_DATABASE_URL"), PG_DEFAULT]
    )
    import psycopg

    for url in filter(None, candidates):
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        try:
            with psycopg.connect(plain, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return plain
        except Exception as e:  # a bench skips PG, it never fails for it
            log(f"postgresql at {url.split('@')[-1]} not usable: {type(e).__name__}")
    return None


def _pg_db_url(server: str, name: str) -> str:
    base, _, _db = server.rpartition("/")
    return f"{base}/{name}"


PG_SCHEMA = """
CREATE TABLE docs (
    rid integer PRIMARY KEY, id text NOT NULL, lifecycle text NOT NULL, visibility text NOT NULL,
    origin text, license text, access text, acq_from bigint, acq_to bigint,
    title text, a text, b text, c text, d text,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('simple', coalesce(a, '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(b, '')), 'C') ||
        setweight(to_tsvector('simple', coalesce(c, '') || ' ' || coalesce(d, '')), 'D')
    ) STORED
);
CREATE TABLE doc_terms (doc integer NOT NULL, field text NOT NULL, value text NOT NULL);
"""
PG_INDEXES = """
CREATE INDEX docs_tsv ON docs USING gin (tsv);
CREATE INDEX docs_access ON docs (lifecycle, visibility);
CREATE INDEX docs_acq ON docs (acq_from, acq_to);
CREATE INDEX docs_license ON docs (license);
CREATE UNIQUE INDEX doc_terms_pk ON doc_terms (doc, field, value);
CREATE INDEX doc_terms_value ON doc_terms (field, value);
ANALYZE docs;
ANALYZE doc_terms;
"""


def build_pg(p: dict) -> dict:
    """PostgreSQL full-text search on the same search documents: a weighted tsvector
    ('simple' configuration: no stemming, like the node's analyser) with a GIN index."""
    import psycopg

    from node.search.documents import search_document
    from node.search.indexer import catalog_records

    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    server = p["pg_url"]
    name = f"fairnode_bench_search_{paths.tag.replace('-', '_')}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = open_engine(paths)
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    with psycopg.connect(_pg_db_url(server, name)) as conn:
        conn.execute(PG_SCHEMA)
        with conn.cursor() as cur:
            with cur.copy(
                "COPY docs (rid, id, lifecycle, visibility, origin, license, access, acq_from,"
                " acq_to, title, a, b, c, d) FROM STDIN"
            ) as copy:
                terms = []
                for rec in catalog_records(engine, batch_size=1000):
                    d = search_document(rec)
                    n += 1
                    copy.write_row(
                        (
                            n,
                            d["id"],
                            rec["lifecycle"],
                            rec["visibility"],
                            d["f_origin"][0],
                            d["f_license"][0] if d["f_license"] else None,
                            d["f_access"][0],
                            epoch(d["acquired_from"]),
                            epoch(d["acquired_to"]),
                            d["title"],
                            " ".join([*d["keywords"], *d["organism"], *d["method"]]),
                            " ".join([*d["creators"], *d["channels"]]),
                            d["description"],
                            " ".join([*d["instrument"], *d["format"]]),
                        )
                    )
                    for facet in MULTI_FACETS:
                        terms.extend((n, facet, v) for v in d[f"f_{facet}"])
                    if n % 100_000 == 0:
                        log(f"postgresql: {n:,} records")
            with cur.copy("COPY doc_terms (doc, field, value) FROM STDIN") as copy:
                for row in dict.fromkeys(terms):
                    copy.write_row(row)
            del terms
        conn.commit()
        t_load = time.perf_counter() - t0
        conn.execute(PG_INDEXES)
        conn.commit()
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.dispose()
    return {
        "records": n,
        "seconds": dt,
        "cpu": cpu,
        "load_seconds": t_load,
        "bytes": size,
        "database": name,
    }


class PgSearch:
    """The same queries as Fts5Search in PostgreSQL: tsvector @@ tsquery, ts_rank with the
    node's boosts as weights (D 1, C 1.5, B 2, A 4), GROUP BY per facet."""

    def __init__(self, url: str, engine: Any):
        import psycopg

        from node.auth.policy import ANONYMOUS, read_scope
        from node.catalog.service import RecordService

        self.conn = psycopg.connect(url, autocommit=True)
        self.records = RecordService(engine)
        self.scope = read_scope(ANONYMOUS)

    def search(self, args: dict[str, list[str]]) -> dict[str, Any]:
        q = SqlQuery(args)
        where = ["d.lifecycle = 'published'", "d.visibility = 'public'"]
        params: list[Any] = []
        if q.words:
            where.insert(0, "d.tsv @@ to_tsquery('simple', %s)")
            params.append(" & ".join("'" + w.replace("'", "''") + "'" for w in q.words))
        for field, values in (("organism", q.organisms), ("method", q.methods)):
            if values:
                where.append(
                    f"d.rid IN (SELECT doc FROM doc_terms WHERE field = '{field}' "
                    "AND value = ANY(%s))"
                )
                params.append(values)
        if q.licenses:
            where.append("d.license = ANY(%s)")
            params.append(q.licenses)
        if q.acq_to is not None:
            where.append("d.acq_from <= %s")
            params.append(q.acq_to)
        if q.acq_from is not None:
            where.append("d.acq_to >= %s")
            params.append(q.acq_from)
        match = f"FROM docs d WHERE {' AND '.join(where)}"
        c = self.conn
        total = c.execute(f"SELECT count(*) {match}", params).fetchone()[0]
        if q.words:
            top = c.execute(
                "WITH top AS (SELECT d.id, d.title, d.c, ts_rank('{0.25,0.375,0.5,1}', d.tsv, "
                f"to_tsquery('simple', %s)) AS score {match} ORDER BY score DESC, d.id LIMIT %s) "
                "SELECT id, ts_headline('simple', title, to_tsquery('simple', %s), "
                "'StartSel=<mark>, StopSel=</mark>'), ts_headline('simple', c, "
                "to_tsquery('simple', %s), 'StartSel=<mark>, StopSel=</mark>, MaxWords=24') "
                "FROM top ORDER BY score DESC, id",
                [params[0], *params, q.limit + 1, params[0], params[0]],
            ).fetchall()
        else:
            top = c.execute(
                f"SELECT d.id, NULL, NULL {match} ORDER BY d.rid LIMIT %s", [*params, q.limit + 1]
            ).fetchall()
        facets: dict[str, list[tuple[str, int]]] = {}
        for name in MULTI_FACETS:
            rows = c.execute(
                f"WITH m AS (SELECT d.rid AS r {match}) SELECT t.value, count(*) AS n FROM m "
                "JOIN doc_terms t ON t.doc = m.r AND t.field = %s GROUP BY t.value "
                "ORDER BY n DESC, t.value LIMIT 20",
                [*params, name],
            ).fetchall()
            facets[name] = [(v, k) for v, k in rows]
        for name in SINGLE_FACETS:
            rows = c.execute(
                f"SELECT d.{name}, count(*) AS n {match} AND d.{name} IS NOT NULL "
                f"GROUP BY d.{name} ORDER BY n DESC, 1 LIMIT 20",
                params,
            ).fetchall()
            facets[name] = [(v, k) for v, k in rows]
        hits = top[: q.limit]
        found = self.records.datasets_by_ids([h[0] for h in hits], self.scope)
        return {
            "total": total,
            "items": [found[h[0]] for h in hits if h[0] in found],
            "facets": facets,
        }


def query_pg(p: dict) -> dict:
    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    engine = open_engine(paths)
    pg = PgSearch(_pg_db_url(p["pg_url"], p["pg_database"]), engine)
    queries = json.loads(paths.queries.read_text())
    out: dict[str, Any] = {}
    for kind in KINDS:
        last = [None]

        def run(args: dict, last: list = last) -> Any:
            res = pg.search(args)
            last[0] = res
            return res["total"]

        ms, totals, cpu_ms = timed_samples(
            run, queries[kind], p["samples"], p["max_seconds"], p["warmup_seconds"],
            p["min_samples"], f"postgresql {kind}", first_ms=FIRST_MS,
        )  # fmt: skip
        out[kind] = {
            **summarise(ms),
            "totals": totals,
            "cpu_ms": cpu_ms,
            "facets": last[0]["facets"],
        }
    engine.dispose()
    return out


# ----------------------------------------------------------------------------- 4. HTTP


def wsgi(params_path: str, kind: str):
    """The WSGI app gunicorn serves: the node itself, or the FTS5 search behind Flask."""
    p = json.loads(Path(params_path).read_text())
    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    config = make_config(paths)
    engine = open_engine(paths)
    if kind == "fairnode":
        from node.app import create_app
        from node.search.lineage import warm_up_in_background

        app = create_app(config, engine=engine)
        warm_up_in_background()  # as node.wsgi does in each gunicorn worker
        return app
    from flask import Flask, jsonify, request

    from node.api.serialise import dataset_to_json

    app = Flask("fts5-search")
    fts = Fts5Search(paths.fts, engine)
    base = config.node.base_url

    @app.get("/api/v1/search")
    def search():
        res = fts.search(request.args.to_dict(flat=False))
        return jsonify(
            {
                "total": res["total"],
                "items": [
                    {
                        **dataset_to_json(ds, base_url=base),
                        "highlights": {"title": [t], "description": [s]},
                    }
                    for ds, t, s in res["items"]
                ],
                "facets": {
                    name: [{"value": v, "label": lab, "count": n} for v, lab, n in values]
                    for name, values in res["facets"].items()
                },
                "next": None,
            }
        )

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(params_path: Path, kind: str, workers: int) -> Iterator[tuple[str, int]]:
    import requests

    port = free_port()
    cmd = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
        f"127.0.0.1:{port}", "--chdir", str(ROOT), "--timeout", "300", "--log-level", "warning",
        "--pythonpath", str(ROOT / "bench"),  # bench.search imports its sibling report.py
        f"bench.search:wsgi({str(params_path)!r}, {kind!r})",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"gunicorn ({kind}) exited with code {proc.returncode}")
            try:
                if requests.get(f"{base}/api/v1/search?limit=1", timeout=60).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn ({kind}) did not answer within 120 s")
            time.sleep(0.5)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds used so far by the gunicorn workers of master ``pid`` (user + system)."""
    import psutil

    master = psutil.Process(pid)

    def total() -> float:
        t = 0.0
        for w in master.children():
            with contextlib.suppress(psutil.Error):
                c = w.cpu_times()
                t += c.user + c.system
        return t

    return total


def http_measure(base: str, pid: int, p: dict, queries: dict, label: str, workers: int) -> dict:
    import requests

    out: dict[str, Any] = {}
    sess = requests.Session()
    for kind in KINDS:
        # every worker opens its index and catalog on its first requests: warm both up
        for q in queries[kind][: max(2 * workers, 4)]:
            sess.get(f"{base}/api/v1/search", params=q, timeout=300).raise_for_status()
        sizes = []

        def run(args: dict, sizes: list = sizes) -> Any:
            r = sess.get(f"{base}/api/v1/search", params=args, timeout=300)
            r.raise_for_status()
            sizes.append(len(r.content))
            return r.json()["total"]

        ms, totals, cpu_ms = timed_samples(
            run, queries[kind], p["samples"], p["max_seconds"], p["warmup_seconds"],
            p["min_samples"], f"{label} http {kind}", server_cpu(pid), FIRST_MS,
        )  # fmt: skip
        out[kind] = {
            **summarise(ms),
            "totals": totals,
            "cpu_ms": cpu_ms,
            "bytes": statistics.median(sizes),
        }
    return out


# ----------------------------------------------------------------------------- children


CHILDREN = {
    "generate": generate,
    "tantivy": build_tantivy,
    "tantivy-ceiling": tantivy_ceiling,
    "fts5": build_fts5,
    "pg": build_pg,
    "query-fairnode": query_fairnode,
    "query-fts5": query_fts5,
    "query-pg": query_pg,
}


def child_main(mode: str, params_path: str) -> None:
    p = json.loads(Path(params_path).read_text())
    if p.get("profile_mode") == mode:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        result = prof.runcall(profiled_reindex, p)
        prof.dump_stats(p["profile_out"])
        stats = pstats.Stats(prof, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)
    else:
        result = CHILDREN[mode](p)
    result["vmhwm_kb"] = vm_hwm_kb()
    result["load"] = loadavg()
    print("RESULT " + json.dumps(result), flush=True)


def profiled_reindex(p: dict) -> dict:
    """The reindex path (catalog stream → search_document → tantivy) on the first N records."""
    from node.search.factory import open_backend
    from node.search.indexer import catalog_records

    paths = Paths(Path(p["work"]), p["records"], p["seed"])
    config = make_config(paths)
    engine = open_engine(paths)
    backend = open_backend(config)
    backend.root = paths.work / "profile-index"
    t0 = time.perf_counter()
    n = backend.reindex(itertools.islice(catalog_records(engine, batch_size=1000), p["profile"]))
    dt = time.perf_counter() - t0
    shutil.rmtree(backend.root, ignore_errors=True)
    return {"records": n, "seconds": dt}


def run_child(mode: str, params_path: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(params_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {mode} failed with exit code {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    result = json.loads(lines[-1][len("RESULT ") :])
    result["child_seconds"] = time.perf_counter() - t0
    return result


# ----------------------------------------------------------------------------- report


def fmt_ms(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:,.1f} ms" if v < 100 else f"{v:,.0f} ms"


def fmt_rate(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} rec/s"


def fmt_bytes(v: float | None) -> str:
    return "-" if v is None else f"{v / 1e6:,.0f} MB"


def fmt_kb(v: float | None) -> str:
    return "-" if v is None else f"{v / 1024:,.0f} MB"


def ratio(ours: float | None, alt: float | None, higher_is_better: bool) -> str:
    if not ours or not alt:
        return ""
    r = ours / alt if higher_is_better else alt / ours
    return f"{r:,.1f}x" if r < 100 else f"{r:,.0f}x"


def median_run(runs: list[dict]) -> dict:
    """The run of median rate (the lower middle one of an even number)."""
    ordered = sorted(runs, key=lambda r: r["records"] / r["seconds"])
    return ordered[(len(ordered) - 1) // 2]


def verdict(value: float | None, target: float, *, at_most: bool, full: bool) -> str:
    if value is None or value != value:
        return "not run"
    ok = value <= target if at_most else value >= target
    return ("PASS" if ok else "MISS") + ("" if full else " (not at 1M)")


def report(args, res: dict) -> str:
    n = args.records
    full = n >= 1_000_000
    pg_on = "pg" in res or "q_pg" in res
    alts = ["fts5"] + (["pg"] if pg_on else [])
    header = ["measure", "fairnode (tantivy)", "SQLite FTS5", "ratio"]
    if pg_on:
        header += ["PostgreSQL FTS", "ratio"]
    header += ["target (1M)", "met?"]

    def row(label, ours, alt_values, fmt, higher, target="", met="") -> list[str]:
        cells = [label, fmt(ours)]
        for a in alt_values:
            cells += [fmt(a), ratio(ours, a, higher)]
        return cells + [target, met]

    def get(system: str, *keys: str) -> Any:
        v: Any = res.get(system)
        for k in keys:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v

    build = {"fairnode": "tantivy", "fts5": "fts5", "pg": "pg"}
    rate = {
        s: (get(build[s], "records") / get(build[s], "seconds"))
        if get(build[s], "seconds")
        else None
        for s in ("fairnode", *alts)
    }
    cpu_rate = {
        s: (get(build[s], "records") / get(build[s], "cpu")) if get(build[s], "cpu") else None
        for s in ("fairnode", *alts)
    }
    runs = res.get("tantivy_runs") or ([res["tantivy"]] if "tantivy" in res else [])
    run_rates = [r["records"] / r["seconds"] for r in runs]
    met_runs = sum(v >= TARGETS["reindex_rate"] for v in run_rates)
    rate_verdict = verdict(
        min(run_rates) if run_rates else None, TARGETS["reindex_rate"], at_most=False, full=full
    )
    if run_rates:
        rate_verdict += f" ({met_runs}/{len(run_rates)})"
    rows = [
        row(
            "build rate (wall), median run" if len(runs) > 1 else "build rate (wall)",
            rate["fairnode"],
            [rate[a] for a in alts],
            fmt_rate,
            True,
            ">= 15,000 rec/s",
            rate_verdict,
        ),
        *(
            [
                [
                    f"  run {i + 1} ({'cold' if r.get('cold') else 'warm'} catalog)",
                    fmt_rate(v),
                    *([""] * (2 * len(alts))),
                    "",
                    "",
                ]
                for i, (r, v) in enumerate(zip(runs, run_rates, strict=True))
            ]
            if len(runs) > 1
            else []
        ),
        row(
            "build time (wall)",
            get("tantivy", "seconds"),
            [get(build[a], "seconds") for a in alts],
            lambda v: "-" if v is None else f"{v:,.0f} s",
            False,
        ),
        row(
            "build rate (CPU of the process)",
            cpu_rate["fairnode"],
            [cpu_rate[a] for a in alts],
            fmt_rate,
            True,
            "(info)",
        ),
        row(
            "tantivy alone, pre-built docs (wall)",
            (get("ceiling", "records") or 0) / get("ceiling", "seconds")
            if get("ceiling", "seconds")
            else None,
            [None for _ in alts],
            fmt_rate,
            True,
            "(ceiling)",
        ),
        row(
            "tantivy alone, CPU per document",
            1e6 * get("ceiling", "cpu") / get("ceiling", "records")
            if get("ceiling", "records")
            else None,
            [None for _ in alts],
            lambda v: "-" if v is None else f"{v:,.0f} µs",
            False,
            "(ceiling)",
        ),
        row(
            "index size on disk",
            get("tantivy", "bytes"),
            [get(build[a], "bytes") for a in alts],
            fmt_bytes,
            False,
            "(info)",
        ),
        row(
            "peak RSS, build",
            get("tantivy", "vmhwm_kb"),
            [get(build[a], "vmhwm_kb") if a != "pg" else None for a in alts],
            fmt_kb,
            False,
            "(info)",
        ),
        row(
            "peak RSS, service queries",
            get("q_fairnode", "vmhwm_kb"),
            [get("q_" + a, "vmhwm_kb") if a != "pg" else None for a in alts],
            fmt_kb,
            False,
            "(info)",
        ),
    ]
    for where, key, target in (("service", "q_", "service_p95_ms"), ("HTTP", "h_", "http_p95_ms")):
        for kind in KINDS:
            for p_ in ("p50", "p95", "p99"):
                ours = get(key + "fairnode", kind, p_)
                alt_v = [get(key + a, kind, p_) for a in alts]
                is_p95 = p_ == "p95"
                rows.append(
                    row(
                        f"{where}: {KIND_LABEL[kind]}, {p_}",
                        ours,
                        alt_v,
                        fmt_ms,
                        False,
                        f"<= {TARGETS[target]:.0f} ms" if is_p95 else "",
                        verdict(ours, TARGETS[target], at_most=True, full=full) if is_p95 else "",
                    )
                )
    notes = []
    t = res.get("tantivy", {})
    if t:
        notes.append(
            f"fairnode build = node.search.indexer.reindex(engine, TantivyBackend) from the SQLite "
            f"catalog (batch {t.get('batch')}, writer {t.get('writer_mb')} MB, {t.get('records'):,}"
            f" records, {t.get('docs'):,} documents, health ok: {t.get('health')}); CPU time is "
            "the child's own (tantivy's indexing threads included)."
        )
    for i, r in enumerate(runs):
        m = r.get("machine", {})
        state = (
            f"cold catalog ({r.get('evicted_bytes', 0) / 1e6:,.0f} MB dropped from the page cache)"
            if r.get("cold")
            else "warm catalog"
        )
        notes.append(
            f"reindex run {i + 1}: {state}, {r['records'] / r['seconds']:,.0f} records/s, "
            f"{1e6 * r['cpu'] / r['records']:,.0f} µs of CPU per record; machine during the run: "
            f"{describe_machine(m)}."
        )
    if len(runs) > 1:
        notes.append(
            "The reindex target is met only when every run meets it; the other build rows are "
            "the median run's. iowait is time the CPUs idled waiting for the disk; steal, time "
            "the hypervisor gave to another machine."
        )
    c = res.get("ceiling", {})
    if c.get("records"):
        per_doc = c["cpu"] / c["records"]
        notes.append(
            f"tantivy alone = the first {c['records']:,} documents built and serialised "
            "beforehand (untimed), then only writer.add_json + commit + merges timed, same "
            f"writer settings: {per_doc * 1e6:,.0f} µs of CPU per document (indexing threads "
            f"included). With {c['cores']} cores, no reindex with this schema can pass "
            f"{c['cores'] / per_doc:,.0f} records/s on this machine, whatever its Python side "
            "costs or however it is spread over processes."
        )
    f = res.get("fts5", {})
    if f:
        notes.append(
            "FTS5 build = the same catalog stream and search_document(), inserted into an FTS5 "
            "table (the 9 text fields) + a docs table (filters) + a doc_terms table (multi-valued "
            f"facets), then indexes, 'optimize' and ANALYZE: {f.get('load_seconds', 0):,.0f} s of "
            f"inserts, {f.get('seconds', 0) - f.get('load_seconds', 0):,.0f} s of indexes."
        )
    if "pg" in res:
        g = res["pg"]
        notes.append(
            f"PostgreSQL {res.get('pg_version', '')}: the same documents by COPY into a weighted"
            " 'simple' tsvector (generated column) + GIN, the same docs/doc_terms tables, on the "
            f"same machine ({g.get('load_seconds', 0):,.0f} s of COPY); its size is "
            "pg_database_size; its RSS is the server's, not measured."
        )
    qf = res.get("q_fairnode", {})
    if qf:
        parts = []
        for kind in KINDS:
            k = qf[kind]
            parts.append(
                f"{kind}: {k['n']} samples, backend.search {k['backend_ms']:.1f} ms + loading the "
                f"hits' records {k['load_ms']:.1f} ms on average"
            )
        notes.append("fairnode service time split (mean per query): " + "; ".join(parts) + ".")
    if "q_fts5" in res and "load_ms" in res["q_fts5"]["text"]:
        notes.append(
            "FTS5 time spent loading the hits' records (the same datasets_by_ids), mean per query: "
            + " / ".join(f"{kind} {res['q_fts5'][kind]['load_ms']:.1f} ms" for kind in KINDS)
            + "."
        )
    for sys_key, label in (("q_fairnode", "fairnode"), ("q_fts5", "FTS5"), ("q_pg", "PostgreSQL")):
        if sys_key in res:
            sizes = [
                f"{kind} median {statistics.median(res[sys_key][kind]['totals']):,.0f}"
                for kind in KINDS
            ]
            ns = ", ".join(f"{kind} {res[sys_key][kind]['n']}" for kind in KINDS)
            firsts = ", ".join(f"{kind} {len(res[sys_key][kind]['totals'])}" for kind in KINDS)
            notes.append(
                f"{label}: hits per query (median over the warm-up pass, whose length differs "
                f"between systems: {firsts} distinct queries): {', '.join(sizes)}; timed "
                f"samples: {ns}."
            )
    first_parts = []
    for key, label in (
        ("q_fairnode", "service fairnode"),
        ("q_fts5", "service FTS5"),
        ("q_pg", "service PostgreSQL"),
        ("h_fairnode", "HTTP fairnode"),
        ("h_fts5", "HTTP FTS5"),
    ):
        if key in res and res[key]["text"].get("first_ms"):
            first_parts.append(
                f"{label} "
                + " / ".join(
                    f"{pct(res[key][k]['first_ms'], 50):,.0f} (max "
                    f"{max(res[key][k]['first_ms']):,.0f}, n {len(res[key][k]['first_ms'])})"
                    for k in KINDS
                )
            )
    if first_parts:
        notes.append(
            "first run of each distinct query (the warm-up pass: nothing cached yet, e.g. "
            "fairnode's facet counts, which it keeps per query until the next commit), ms p50 "
            "(text / filtered / facets): " + "; ".join(first_parts) + "."
        )
    cpu_parts = []
    for key, label in (
        ("q_fairnode", "service fairnode"),
        ("q_fts5", "service FTS5"),
        ("q_pg", "service PostgreSQL (client side only)"),
        ("h_fairnode", "HTTP fairnode (gunicorn workers)"),
        ("h_fts5", "HTTP FTS5 (gunicorn workers)"),
    ):
        if key in res:
            cpu_parts.append(
                f"{label} " + " / ".join(f"{res[key][k].get('cpu_ms', 0):.1f}" for k in KINDS)
            )
    if cpu_parts:
        notes.append(
            "CPU ms per query, mean (text / filtered / facets): " + "; ".join(cpu_parts) + "."
        )
    agree = res.get("agreement")
    if agree:
        notes.append(agree)
    for key, label in (("h_fairnode", "fairnode"), ("h_fts5", "FTS5")):
        if key in res:
            b = ", ".join(f"{k} {res[key][k]['bytes'] / 1000:,.0f} kB" for k in KINDS)
            notes.append(f"HTTP {label}: median response body {b}.")
    notes.append(
        f"queries: limit={PAGE}, anonymous (published + public), facets computed on every query "
        "(as SearchService does), sequential; text = 2 words drawn with the documents' Zipf "
        "weights among content words; filtered = 1 word + organism + (method or licence) + an "
        "acquisition range of 0.5-3 years; facets = no text, all 9 facets. HTTP = GET "
        "/api/v1/search on gunicorn (2 sync workers, loopback, new connection per request)."
    )
    if res.get("code_changes"):
        notes.append(
            "WARNING: the node's or the bench's code changed during this run, before: "
            + ", ".join(res["code_changes"])
            + " (the phases ran different code; run again)"
        )
    else:
        notes.append(
            "code: the measured paths (" + ", ".join(MEASURED_CODE) + ", bench/search.py) were"
            " unchanged during the run"
        )
    if res.get("catalog_stats"):
        notes.append(res["catalog_stats"])
    notes.append("load average during the phases: " + "; ".join(res.get("loads", [])))
    title = f"Search ({n:,} records)"
    return table(title, header, rows, "\n".join(notes))


def agreement(res: dict) -> str:
    """Do the systems find the same things? Facet counts of the match-all query must agree
    exactly; text totals differ by design (the node's words are typo-tolerant)."""
    out = []
    a, b = res.get("q_fairnode"), res.get("q_fts5")
    if a and b:
        fa = {k: [tuple(x) for x in v] for k, v in a["facets"]["facets"].items()}
        fb = {k: [tuple(x) for x in v] for k, v in b["facets"]["facets"].items()}
        same = fa == fb
        diff = [k for k in fa if fa[k] != fb.get(k)]
        # Only the queries both systems ran in their (time-limited) warm-up can be compared.
        text = list(zip(a["text"]["totals"], b["text"]["totals"], strict=False))
        filtered = list(zip(a["filtered"]["totals"], b["filtered"]["totals"], strict=False))
        out.append(
            f"check: match-all totals {a['facets']['totals'][0]:,} (fairnode) / "
            f"{b['facets']['totals'][0]:,} (FTS5); facet counts identical: {same}"
            + (f" (differ: {', '.join(diff)})" if diff else "")
            + "; queries where fairnode finds at least as many as FTS5 (its words are "
            f"typo-tolerant), of those both ran: text {sum(x >= y for x, y in text)} / "
            f"{len(text)}, filtered {sum(x >= y for x, y in filtered)} / {len(filtered)}"
        )
    c = res.get("q_pg")
    if b and c:
        pairs = [
            (x, y)
            for kind in ("text", "filtered")
            for x, y in zip(b[kind]["totals"], c[kind]["totals"], strict=False)
        ]
        same = sum(x == y for x, y in pairs)
        out.append(
            f"check: FTS5 and PostgreSQL (both exact words) give equal totals on {same} / "
            f"{len(pairs)} text and filtered queries (their tokenizers differ on a few words)"
        )
    return "\n".join(out)


# ----------------------------------------------------------------------------- main


# What the measured paths import: a change here during a run mixes code versions.
MEASURED_CODE = (
    "node/search",
    "node/catalog",
    "node/api",
    "node/auth",
    "node/records.py",
    "node/ontologies.py",
    "node/config.py",
    "node/app.py",
    "node/errors.py",
)


def code_digest() -> dict[str, str]:
    """Digest per source file of the code on the measured paths (and of this script): the run
    warns when one changes under it (children import the code afresh, so a mid-run edit would
    mix versions)."""
    import hashlib

    files = [Path(__file__).resolve()]
    for rel in MEASURED_CODE:
        p = ROOT / rel
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return {
        str(f.relative_to(ROOT)): hashlib.blake2b(f.read_bytes(), digest_size=8).hexdigest()
        for f in files
        if f.exists()
    }


def changed_files(before: dict[str, str]) -> list[str]:
    now = code_digest()
    return sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))


def catalog_statistics(paths: Paths, analyze: bool) -> str:
    """Put the catalog's planner statistics in the state asked for: none (as the node leaves
    a catalog: it never runs ANALYZE) or fresh ones. Returns a line for the report."""
    conn = sqlite3.connect(paths.catalog)
    try:
        if analyze:
            t0 = time.perf_counter()
            conn.execute("ANALYZE")
            conn.commit()
            return (
                f"catalog statistics: ANALYZE run by the bench ({time.perf_counter() - t0:.0f} s;"
                " --analyze-catalog): NOT the node's default state"
            )
        stats = conn.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'"
        ).fetchall()
        for (name,) in stats:
            conn.execute(f"DELETE FROM {name}")
        conn.commit()
        return "catalog statistics: none (as the node leaves its catalog: it never runs ANALYZE)"
    finally:
        conn.close()


def versions() -> str:
    return report_versions(("tantivy", "SQLAlchemy", "pydantic", "Flask", "gunicorn", "psycopg"))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child_main(argv[1], argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="datasets in the catalog")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "fairnode-bench-search",
        help="work folder; the generated catalog is kept there and reused (default: %(default)s)",
    )
    ap.add_argument("--fresh", action="store_true", help="generate the catalog again")
    ap.add_argument(
        "--reindex-runs",
        type=int,
        default=3,
        help="reindex runs (the first with the catalog dropped from the page cache); the "
        "table shows the median run, and the target is met only when every run meets it",
    )
    ap.add_argument("--samples", type=int, default=300, help="timed queries per kind and system")
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=60,
        help="stop a kind's sampling after this long (once --min-samples are in)",
    )
    ap.add_argument("--min-samples", type=int, default=10)
    ap.add_argument("--warmup-seconds", type=float, default=15)
    ap.add_argument(
        "--only",
        choices=("reindex", "service", "http", "queries"),
        help="reindex: builds only; service, http or queries (both): queries only, on the indexes "
        "already built",
    )
    ap.add_argument("--no-http", action="store_true", help="skip the HTTP measurements")
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL even if reachable")
    ap.add_argument("--pg", help=f"PostgreSQL server URL (default: env or {PG_DEFAULT})")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="also cProfile the reindex path on the first N records (printed to stderr)",
    )
    ap.add_argument(
        "--analyze-catalog",
        action="store_true",
        help="run ANALYZE on the catalog before the queries (the node never does; without this "
        "flag statistics left by an earlier run are removed)",
    )
    ap.add_argument("--clean", action="store_true", help="remove the work folder at the end")
    args = ap.parse_args(argv)
    if args.reindex_runs < 1:
        ap.error(f"--reindex-runs must be at least 1, not {args.reindex_runs}")

    paths = Paths(args.work, args.records, args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    params = {
        "work": str(args.work),
        "records": args.records,
        "seed": args.seed,
        "samples": args.samples,
        "max_seconds": args.max_seconds,
        "min_samples": args.min_samples,
        "warmup_seconds": args.warmup_seconds,
        "no_pg": args.no_pg,
        "pg": args.pg,
    }
    params_path = args.work / f"params-{paths.tag}.json"
    emit(
        f"fairnode search benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n{versions()}\n"
        f"work folder: {args.work}\nratio = how many times better ours is (rate ours / "
        "alternative, or time/size alternative / ours)\n"
    )
    res: dict[str, Any] = {"loads": []}
    do_build = args.only in (None, "reindex")
    do_service = args.only in (None, "service", "queries")
    do_http = args.only in (None, "http", "queries") and not args.no_http
    pg = pg_url(params)
    if pg:
        params["pg_url"] = pg
        params["pg_database"] = f"fairnode_bench_search_{paths.tag.replace('-', '_')}"
        import psycopg

        with psycopg.connect(pg) as c:
            res["pg_version"] = c.execute("SHOW server_version").fetchone()[0].split()[0]
    params_path.write_text(json.dumps(params))

    code_at_start = code_digest()
    res["code_changes"] = []

    def phase(name: str, mode: str) -> dict:
        log(f"{name}: starting (load average {loadavg()})")
        changed = changed_files(code_at_start)
        if changed:
            res["code_changes"].append(f"{name} ({', '.join(changed)})")
            log(f"WARNING: measured code changed since the start of this run: {changed}")
        before = machine_snapshot()
        r = run_child(mode, params_path)
        r["machine"] = machine_delta(before, machine_snapshot())
        res["loads"].append(f"{name} {r.get('load', '?')}")
        log(f"{name}: done in {r['child_seconds']:.0f} s ({describe_machine(r['machine'])})")
        return r

    try:
        marker = json.loads(paths.marker.read_text()) if paths.marker.exists() else None
        if args.fresh or not marker or marker.get("records") != args.records:
            log(f"generating {args.records:,} records into {paths.catalog}")
            marker = phase("generate", "generate")
        else:
            log(f"reusing the catalog {paths.catalog} (--fresh to generate it again)")
        emit(
            f"catalog: {marker['records']:,} records generated in {marker['seconds']:,.0f} s "
            f"({marker['records'] / marker['seconds']:,.0f} rec/s, "
            f"{marker['catalog_bytes'] / 1e6:,.0f} MB of SQLite); "
            f"{marker['checked']} sampled records checked equal to Dataset.to_json() and "
            f"dataset_row_values(); vocabulary {marker['vocabulary']:,} words\n"
        )
        paths.queries.write_text(json.dumps(make_queries(args.seed, args.samples)))
        if do_build:
            # Several runs, the first from a cold catalog: one run says little on a shared
            # machine whose disk and CPU vary from minute to minute (docs/benchmarks.md).
            runs = []
            for i in range(args.reindex_runs):
                params["cold"] = i == 0
                params_path.write_text(json.dumps(params))
                state = "cold" if i == 0 else "warm"
                label = f"reindex (tantivy) {i + 1}/{args.reindex_runs}, {state} catalog"
                runs.append(phase(label, "tantivy"))
            params.pop("cold")
            params_path.write_text(json.dumps(params))
            res["tantivy_runs"] = runs
            res["tantivy"] = median_run(runs)
            res["ceiling"] = phase("tantivy alone, pre-built documents", "tantivy-ceiling")
            res["fts5"] = phase("build (FTS5)", "fts5")
            if pg:
                res["pg"] = phase("build (PostgreSQL)", "pg")
        if args.profile:
            params["profile_mode"] = "profile"
            params["profile"] = args.profile
            params["profile_out"] = str(args.work / f"reindex-{paths.tag}.prof")
            params_path.write_text(json.dumps(params))
            prof = phase(f"cProfile of the reindex path ({args.profile:,} records)", "profile")
            emit(
                f"profile: {prof['records']:,} records in {prof['seconds']:.1f} s under cProfile; "
                f"stats in {params['profile_out']}\n"
            )
            params.pop("profile_mode")
            params_path.write_text(json.dumps(params))
        if do_service or do_http:
            res["catalog_stats"] = catalog_statistics(paths, args.analyze_catalog)
        if do_service:
            res["q_fairnode"] = phase("queries (fairnode service)", "query-fairnode")
            res["q_fts5"] = phase("queries (FTS5)", "query-fts5")
            if pg:
                res["q_pg"] = phase("queries (PostgreSQL)", "query-pg")
            res["agreement"] = agreement(res)
        if do_http:
            queries = json.loads(paths.queries.read_text())
            for label, kind in (("fairnode", "fairnode"), ("FTS5", "fts5")):
                log(f"http ({label}): starting gunicorn (load average {loadavg()})")
                changed = changed_files(code_at_start)
                if changed:
                    res["code_changes"].append(f"http {label} ({', '.join(changed)})")
                with gunicorn(params_path, kind, args.workers) as (base, pid):
                    res[f"h_{kind}"] = http_measure(base, pid, params, queries, label, args.workers)
                res["loads"].append(f"http {label} {loadavg()}")
        out_json = args.work / f"results-{paths.tag}-{time.strftime('%Y%m%dT%H%M%S')}.json"
        out_json.write_text(json.dumps(res, default=str))
        log(f"raw results in {out_json}")
        emit(report(args, res))
    finally:
        if args.clean:
            shutil.rmtree(args.work, ignore_errors=True)
            if pg:
                with contextlib.suppress(Exception):
                    import psycopg

                    with psycopg.connect(pg, autocommit=True) as admin:
                        admin.execute(f'DROP DATABASE IF EXISTS "{params["pg_database"]}"')


if __name__ == "__main__":
    main()
