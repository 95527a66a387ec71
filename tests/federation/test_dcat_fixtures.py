"""The DCAT reader over real captures (FAIR Data Point, ckanext-dcat, DCAT-AP 2.1.1 and 3.0.1),
each served by a loopback server with its media type: every dcat:Dataset rdflib finds in a
capture lands as a RemoteRecord or is reported as a RecordProblem with a reason; a capture that
does not parse fails the read with a PeerError saying why.

The whole corpus is ``../shared/fixtures/dcat/`` (skipped when absent); a small permissively
licensed part is copied in ``tests/data/federation/dcat/`` (see its README.md) and always runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rdflib import RDF, URIRef
from test_dcat_source import PEER, StaticSite, reader, serving

from node.config import FederationSettings
from node.federation.fetch import Fetcher
from node.federation.model import PeerError, RecordProblem, RemoteRecord
from node.linkeddata.dcat_catalog import CatalogPage
from node.linkeddata.mediatypes import parse
from node.linkeddata.namespaces import DCAT

LOCAL = Path(__file__).resolve().parents[1] / "data" / "federation" / "dcat"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "dcat"
MEDIA = {
    ".ttl": "text/turtle",
    ".rdf": "application/rdf+xml",
    ".owl": "application/rdf+xml",
    ".xml": "application/rdf+xml",
    ".jsonld": "application/ld+json",
    ".json": "application/json",
    ".nt": "application/n-triples",
}
# The DCAT-AP examples name their context by URL; the reader is given the local copy.
DCAT_AP_CONTEXT = (
    "https://semiceu.github.io/uri.semic.eu-generated/DCAT-AP/releases/3.0.0/html/examples/"
    "context.jsonld"
)


def contexts(root: Path) -> dict[str, Any]:
    path = root / "dcat-ap-3.0.1" / "examples" / "context.jsonld"
    return {DCAT_AP_CONTEXT: json.loads(path.read_text())["@context"]} if path.exists() else {}


def captures(root: Path) -> list[Path]:
    """Every RDF document of a capture folder (JSON-LD context files are not documents)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix in MEDIA and p.name != "context.jsonld" and "context" not in p.parent.name
    )


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = Fetcher(FederationSettings(timeout_seconds=5, max_retries=0), peer_id=PEER)
    yield f
    f.close()


@pytest.fixture
def site() -> Iterator[StaticSite]:
    s = StaticSite()
    with serving(s) as url:
        s.url = url
        yield s


def check_capture(path: Path, root: Path, site: StaticSite, fetcher: Fetcher) -> str:
    """Serve one capture, read it, and check every dataset is accounted for; returns a
    one-line summary (for the failure message of the corpus test)."""
    media = MEDIA[path.suffix]
    ctx = contexts(root)
    rel = path.relative_to(root).as_posix()
    url = site.add("/" + rel, path.read_bytes(), media)
    items: list[Any] = []
    error: PeerError | None = None
    try:
        for item in reader(fetcher, url, contexts=ctx).read(None):
            items.append(item)
    except PeerError as exc:
        error = exc
    # What rdflib finds in the capture, parsed here independently of the reader.
    mt = "application/ld+json" if media == "application/json" else media
    try:
        g = parse(path.read_bytes(), mt, contexts=ctx, base=url)
    except ValueError as exc:
        g, rdflib_error = None, str(exc)
    if g is None:
        assert error is not None, f"{rel}: rdflib fails ({rdflib_error}) but the reader did not"
        assert rel in str(error), str(error)
        assert "could not be parsed" in str(error) or "context" in str(error), str(error)
        assert not items
        return f"{rel}: PeerError {error}"
    datasets = set(g.subjects(RDF.type, DCAT.Dataset))
    page = CatalogPage(g)
    names = {d.remote_id for d in page.datasets()}
    assert len(page.datasets()) == len(datasets)
    links = set(page.listed_links())
    landed = [i for i in items if isinstance(i, RemoteRecord)]
    problems = [i for i in items if isinstance(i, RecordProblem)]
    assert all(p.reason.strip() for p in problems), problems
    dataset_problems = [p for p in problems if p.remote_id not in links]
    # Each dataset once: a record, or a problem with a reason (blank nodes without a name too).
    assert len(landed) + len(dataset_problems) == len(datasets), (rel, items)
    accounted = {r.remote_id for r in landed} | {p.remote_id for p in dataset_problems}
    assert accounted == names, (rel, accounted ^ names)
    for r in landed:
        assert r.dataset is not None
        assert r.dataset.title.strip()
        assert r.dataset.provenance.origin_node == PEER
        assert r.source_record_url  # the landing page, or the dataset IRI
    # Listed, undescribed resources live on the capture's original hosts: reported, not fetched.
    assert {p.remote_id for p in problems if p.remote_id in links} == links
    assert site.paths.count("/" + rel) == 1
    if error is not None:  # rdflib read the page: only paging may have failed (udata captures)
        assert "next page" in str(error), str(error)
    return f"{rel}: {len(landed)} records, {len(dataset_problems)} problems"


@pytest.mark.parametrize("path", captures(LOCAL), ids=lambda p: p.relative_to(LOCAL).as_posix())
def test_local_captures(path: Path, site: StaticSite, fetcher: Fetcher) -> None:
    check_capture(path, LOCAL, site, fetcher)


@pytest.mark.corpus
def test_whole_shared_corpus(site: StaticSite, fetcher: Fetcher) -> None:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the shared DCAT captures)")
    summary = [check_capture(p, SHARED, site, fetcher) for p in captures(SHARED)]
    landed = sum(int(s.split(": ")[1].split()[0]) for s in summary if "records" in s)
    assert landed >= 10, "\n".join(summary)  # most real datasets map (fewer fields)


def test_local_captures_map_most_datasets(site: StaticSite, fetcher: Fetcher) -> None:
    """Not only reported: the FDP and DCAT-AP datasets with a title land as records."""
    summary = {
        p.name: check_capture(p, LOCAL, site, fetcher)
        for p in captures(LOCAL)
        if p.name in ("disgenet.ttl", "example-bee-population-2022-2023.jsonld", "example1.nt")
    }
    assert summary == {
        "disgenet.ttl": "fairdatapoint/rdf-examples/disgenet.ttl: 1 records, 0 problems",
        "example-bee-population-2022-2023.jsonld": "dcat-ap-3.0.1/examples/"
        "example-bee-population-2022-2023.jsonld: 2 records, 0 problems",
        "example1.nt": "dcat-ap-2.1.1/example1.nt: 1 records, 0 problems",
    }


# ----------------------------------------------------------------------------- a FAIR Data Point


def fdp_site(site: StaticSite) -> dict[str, str]:
    """The FDP documentation examples served as an FDP serves them: each resource at its own
    IRI, the examples' host (www.dtls.nl) replaced by the loopback server's."""
    served = {}
    for path in sorted((LOCAL / "fairdatapoint" / "rdf-examples").glob("*.ttl")):
        body = path.read_bytes().replace(b"http://www.dtls.nl", site.url.encode())
        g = parse(body, "text/turtle")
        for s in set(g.subjects()):
            if isinstance(s, URIRef) and s.startswith(site.url):
                served[s[len(site.url) :]] = path.name
                site.add(s[len(site.url) :], body)
    return served


def test_a_fair_data_point_read_from_its_root(site: StaticSite, fetcher: Fetcher) -> None:
    served = fdp_site(site)
    assert served["/fdp"] == "dtl-fdp.ttl"

    items = list(reader(fetcher, f"{site.url}/fdp", known_remote_ids=["x"]).read(None))

    landed = {r.remote_id: r for r in items if isinstance(r, RemoteRecord)}
    assert sorted(landed) == [
        f"{site.url}/fdp/comparativeGenomics/goNlSvR5",
        f"{site.url}/fdp/textmining/gene-disease-association_disgenet",
        f"{site.url}/fdp/transcriptomics/fantom5",
    ]
    disgenet = landed[f"{site.url}/fdp/textmining/gene-disease-association_disgenet"]
    assert disgenet.dataset.title == "DisGeNET"
    assert disgenet.dataset.id == "gene-disease-association_disgenet"
    assert disgenet.dataset.keywords == ["DisGeNET", "gene-disease association", "text mining"]
    assert disgenet.source_record_url == "http://www.disgenet.org/"
    assert disgenet.datestamp.isoformat() == "2016-02-24T13:13:12+00:00"
    # The textmining catalog links the LUMC dataset at an IRI the examples never serve (its
    # file describes it under /textmining/, without /fdp/): reported with the HTTP status.
    [problem] = [i for i in items if isinstance(i, RecordProblem)]
    assert problem.remote_id == f"{site.url}/fdp/textmining/gene-disease-association_lumc"
    assert "HTTP 404" in problem.reason
    assert not [i for i in items if isinstance(i, RemoteRecord) and i.deleted]  # incomplete
    # The root, three catalogs and four listed datasets, each once; no distribution.
    assert sorted(site.paths) == sorted(
        [
            "/fdp",
            "/fdp/comparativeGenomics",
            "/fdp/textmining",
            "/fdp/transcriptomics",
            "/fdp/comparativeGenomics/goNlSvR5",
            "/fdp/textmining/gene-disease-association_disgenet",
            "/fdp/textmining/gene-disease-association_lumc",
            "/fdp/transcriptomics/fantom5",
        ]
    )
