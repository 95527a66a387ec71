"""Real-world captures harvested end to end (issue 5, "Proof"): every record lands or is reported.

The reader tests (test_oai_fixtures.py, test_dcat_fixtures.py) stop at the reader; here the
local capture copies (tests/data/federation/oai and dcat) are served on loopback the same way,
configured as peers (protocol oai-pmh / dcat) and harvested by node.federation.runner.federate
into a real catalog (SQLite, and PostgreSQL when configured). For each capture: the catalog's
records plus the problems the run reported equal the records of the capture; every stored
record names the peer as its origin and keeps the capture's DOI/URL as its source record URL;
a second run adds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree
from misbehaving import MisbehavingServer, Reply, Seen, identify_page
from rdflib import RDF
from sqlalchemy import Engine, func, select
from test_dcat_fixtures import LOCAL as DCAT_LOCAL
from test_dcat_fixtures import MEDIA, fdp_site
from test_dcat_fixtures import captures as dcat_captures
from test_dcat_source import StaticSite, serving
from test_federate_runner import harvester_config
from test_oai_fixtures import LOCAL as OAI_LOCAL
from test_oai_fixtures import OAI, Replay
from test_oai_fixtures import captures as oai_captures

from node.catalog.models import DatasetRow, FederatedRecordRow
from node.catalog.runs import RunStore
from node.config import Config
from node.federation.runner import PeerRun, federate
from node.linkeddata.mediatypes import parse
from node.linkeddata.namespaces import DCAT
from node.records import Dataset

PEER = "capture-peer"
# A DOI or a web address among a record's identifiers: what a source record URL is made of.
LINKLIKE = re.compile(r"^\s*(?:https?://|doi:|(?:info:doi/)?10\.\d{4,9}/)", re.IGNORECASE)


# ----------------------------------------------------------------------------- the catalog


def stored(engine: Engine) -> dict[str, Dataset]:
    """The catalog's records by the peer's remote id (through the peer-to-record mapping)."""
    with engine.connect() as c:
        rows = c.execute(
            select(FederatedRecordRow.remote_id, DatasetRow.doc).join(
                DatasetRow, DatasetRow.id == FederatedRecordRow.dataset_id
            )
        ).all()
    return {r.remote_id: Dataset.model_validate(r.doc) for r in rows}


def catalog_count(engine: Engine) -> int:
    with engine.connect() as c:
        return c.scalar(select(func.count()).select_from(DatasetRow)) or 0


def reported(engine: Engine, run: PeerRun) -> int:
    """The problems the run recorded (shown with the run: node/catalog/runs.py)."""
    assert run.run_id is not None
    errors = RunStore(engine).get_run(run.run_id)
    assert all(e.reason.strip() for e in errors.errors), errors.errors
    return errors.error_total


def harvest_twice(config: Config, engine: Engine, peer: dict) -> tuple[PeerRun, PeerRun, list]:
    """Two runs of ``peer``; the catalog after the first (the second must leave it alone)."""
    cfg = harvester_config(config, [{"id": PEER, "schedule": "", **peer}])
    first = federate(cfg, engine)[PEER]
    after_first = snapshot(engine)
    second = federate(cfg, engine)[PEER]
    return first, second, after_first


def snapshot(engine: Engine) -> list:
    with engine.connect() as c:
        return sorted(
            c.execute(
                select(
                    DatasetRow.id,
                    DatasetRow.identifier,
                    DatasetRow.title,
                    DatasetRow.lifecycle,
                    DatasetRow.origin_node,
                )
            ).all()
        )


def assert_second_run_adds_nothing(engine: Engine, second: PeerRun, after_first: list) -> None:
    """Nothing added, nothing withdrawn, the same records. (``updated`` is not asserted here:
    a record whose metadata has no modification date is stamped with the read time, so each
    read is "newer"; see test_an_unchanged_capture_read_again_rewrites_nothing.)"""
    assert second.status == "completed", second.message
    assert (second.counts.added, second.counts.withdrawn) == (0, 0)
    assert snapshot(engine) == after_first


# ----------------------------------------------------------------------------- OAI-PMH


OAI_CASES = {
    # capture folder, metadataPrefix, the ListRecords pages in the order the tokens chain them
    "zenodo-oai_dc": (
        "zenodo",
        "oai_dc",
        [
            "list-records_oai_dc_short-page.xml",
            "list-records_resumption_cursor50.xml",
            "list-records_resumption_last-page.xml",
        ],
    ),
    "zenodo-datacite": ("zenodo", "datacite", ["list-records_datacite.xml"]),
    "dspace-erasmus": ("dspace-erasmus", "oai_dc", ["list-records_from-2003-04-10.xml"]),
    "sickle": ("sickle-anonymised", "oai_dc", ["ListRecords.xml"]),
    "sickle-no-identifier": ("sickle-anonymised", "oai_dc", ["ListRecords4.xml"]),
}


def oai_replay(folder: Path, pages: list[str]) -> callable:
    """test_oai_fixtures' Replay of ``pages``, answering whatever ``from`` the harvester asks
    (a capture is one moment: the second, incremental run gets the same records again, which a
    repository may do, and which must add nothing) and Identify from the capture when there is
    one (else a plain Identify page)."""
    names = pages + (["identify.xml"] if (folder / "identify.xml").is_file() else [])
    caps = [
        replace(c, params={k: v for k, v in c.params.items() if k != "from"})
        for c in oai_captures(folder, *names)
    ]
    replay = Replay(caps)
    has_identify = any(c.params.get("verb") == "Identify" for c in caps)

    def answer(seen: Seen) -> Reply:
        params = {k: v for k, v in seen.params.items() if k != "from"}
        if params.get("verb") == "Identify" and not has_identify:
            return Reply(body=identify_page())
        return replay(Seen(seen.path, params, seen.headers, seen.at))

    return answer


def capture_records(folder: Path, pages: list[str]) -> list[etree._Element]:
    out = []
    for page in pages:
        root = etree.parse(str(folder / page)).getroot()
        out += root.findall(f"{{{OAI}}}ListRecords/{{{OAI}}}record")
    return out


def header_id(rec: etree._Element) -> str | None:
    text = rec.findtext(f"{{{OAI}}}header/{{{OAI}}}identifier")
    return text.strip() if text and text.strip() else None


def is_deleted(rec: etree._Element) -> bool:
    return rec.find(f"{{{OAI}}}header").get("status") == "deleted"


def has_link(rec: etree._Element) -> bool:
    """The record's metadata names a DOI or a web address as an identifier."""
    for el in rec.iterfind(f"{{{OAI}}}metadata//*"):
        if not isinstance(el.tag, str):
            continue
        name = etree.QName(el).localname
        if name in ("identifier", "alternateIdentifier") and LINKLIKE.match(el.text or ""):
            return True
    return False


@pytest.fixture
def srv() -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as server:
        yield server


@pytest.mark.parametrize("case", sorted(OAI_CASES))
def test_oai_pmh_captures_land_or_are_reported(
    config: Config, engine: Engine, srv: MisbehavingServer, case: str
):
    name, prefix, pages = OAI_CASES[case]
    folder = OAI_LOCAL / name
    srv.on("/oai", oai_replay(folder, pages))
    peer = {"url": srv.url("/oai"), "protocol": "oai-pmh", "metadata_prefix": prefix}
    first, second, after_first = harvest_twice(config, engine, peer)

    assert first.status == "completed", first.message
    records = capture_records(folder, pages)
    # A deletion of a record this node never had is nothing to store and nothing wrong.
    deletions = [r for r in records if is_deleted(r) and header_id(r)]
    live = [r for r in records if r not in deletions]
    problems = reported(engine, first)
    assert problems == first.counts.skipped
    assert catalog_count(engine) + problems == len(live), (first.counts, first.counts.problems)
    assert first.counts.read == len(records)  # each record read once, whatever became of it

    by_remote = stored(engine)
    assert len(by_remote) == catalog_count(engine)  # one mapping per record: no duplicates
    capture_by_id = {header_id(r): r for r in live if header_id(r)}
    for remote_id, ds in by_remote.items():
        assert ds.provenance.origin_node == PEER
        assert ds.provenance.harvested_via == [PEER]
        assert ds.title.strip()
        if has_link(capture_by_id[remote_id]):
            url = ds.provenance.source_record_url
            assert url, remote_id
            # It is the capture's own DOI or address, not something made up.
            raw = etree.tostring(capture_by_id[remote_id], encoding="unicode")
            assert url.removeprefix("https://doi.org/") in raw, (remote_id, url)

    assert_second_run_adds_nothing(engine, second, after_first)
    assert reported(engine, second) == problems  # the same bad records, reported again


# ----------------------------------------------------------------------------- DCAT


def dcat_cases() -> list[Path]:
    # The FAIR Data Point examples are one FDP served resource by resource (IRIs of the
    # documentation's host): test_dcat_fixtures reads it as a whole; here each document alone.
    return dcat_captures(DCAT_LOCAL)


@pytest.fixture
def site() -> Iterator[StaticSite]:
    s = StaticSite()
    with serving(s) as url:
        s.url = url
        yield s


@pytest.mark.parametrize("path", dcat_cases(), ids=lambda p: p.relative_to(DCAT_LOCAL).as_posix())
def test_dcat_captures_land_or_are_reported(
    config: Config, engine: Engine, site: StaticSite, path: Path
):
    rel = path.relative_to(DCAT_LOCAL).as_posix()
    media = MEDIA[path.suffix]
    url = site.add("/" + rel, path.read_bytes(), media)
    first, second, after_first = harvest_twice(config, engine, {"url": url, "protocol": "dcat"})

    # What rdflib finds in the capture, parsed here on its own (no contexts: the runner has
    # none to give, and fetches none).
    mt = "application/ld+json" if media == "application/json" else media
    try:
        g = parse(path.read_bytes(), mt, base=url)
    except ValueError:
        g = None
    if g is None:
        # The whole capture is unreadable: the run fails and says why, naming the document.
        assert first.status == "failed", rel
        assert url in (first.message or "")
        assert catalog_count(engine) == 0
        assert second.status == "failed"
        return
    assert first.status == "completed", first.message
    datasets = set(g.subjects(RDF.type, DCAT.Dataset))
    errors = RunStore(engine).get_run(first.run_id).errors
    assert all(e.reason.strip() for e in errors)
    # Listed members the capture does not describe (on its original hosts): reported, not
    # fetched; they are not records of this capture.
    listed = [
        e for e in errors if e.path.startswith("http") and "listed by the catalog" in e.reason
    ]
    problems = reported(engine, first) - len(listed)
    assert catalog_count(engine) + problems == len(datasets), (rel, first.counts.problems)

    for remote_id, ds in stored(engine).items():
        assert ds.provenance.origin_node == PEER
        assert ds.title.strip()
        if remote_id.startswith(("http://", "https://")) or ds.landing_page:
            assert ds.provenance.source_record_url, remote_id

    assert_second_run_adds_nothing(engine, second, after_first)


def test_a_fair_data_point_harvested_from_its_root(
    config: Config, engine: Engine, site: StaticSite
):
    """The FDP examples served as an FDP serves them (test_dcat_fixtures.fdp_site): the root
    lists catalogs, which list datasets, each fetched at its IRI. Four datasets are listed;
    one is linked at an IRI the examples never serve: three land, one is reported."""
    fdp_site(site)
    first, second, after_first = harvest_twice(
        config, engine, {"url": f"{site.url}/fdp", "protocol": "dcat"}
    )
    assert first.status == "completed", first.message
    landed = stored(engine)
    assert sorted(landed) == [
        f"{site.url}/fdp/comparativeGenomics/goNlSvR5",
        f"{site.url}/fdp/textmining/gene-disease-association_disgenet",
        f"{site.url}/fdp/transcriptomics/fantom5",
    ]
    errors = RunStore(engine).get_run(first.run_id).errors
    assert [e.path for e in errors] == [f"{site.url}/fdp/textmining/gene-disease-association_lumc"]
    assert "HTTP 404" in errors[0].reason
    assert catalog_count(engine) + len(errors) == 4
    for ds in landed.values():
        assert ds.provenance.origin_node == PEER
        assert ds.provenance.source_record_url
    disgenet = landed[f"{site.url}/fdp/textmining/gene-disease-association_disgenet"]
    assert disgenet.provenance.source_record_url == "http://www.disgenet.org/"
    assert_second_run_adds_nothing(engine, second, after_first)


def test_an_unchanged_capture_read_again_rewrites_nothing(
    config: Config, engine: Engine, srv: MisbehavingServer
):
    name, prefix, pages = OAI_CASES["dspace-erasmus"]
    srv.on("/oai", oai_replay(OAI_LOCAL / name, pages))
    peer = {"url": srv.url("/oai"), "protocol": "oai-pmh", "metadata_prefix": prefix}
    first, second, _ = harvest_twice(config, engine, peer)
    assert first.counts.added == 16
    assert second.counts.updated == 0
    assert second.counts.unchanged == 16
