"""The linked-data surfaces over real HTTP on the demo node (the real sample files, harvested):
content negotiation, FAIR Signposting read back by the `signposting` library, the Hydra-paged
DCAT-AP catalog and every dataset validated by pyshacl with the official DCAT-AP 3.0.1 shapes,
sitemap, robots.txt and the RFC 9727 api-catalog."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import signposting
from ld_helpers import violations
from rdflib import RDF, Graph, URIRef
from werkzeug.serving import make_server

from node.app import create_app
from node.catalog.db import open_catalog
from node.config import load_config
from node.demo import build_demo
from node.harvest.runner import Harvester
from node.linkeddata.identifiers import pid_url
from node.linkeddata.mediatypes import parse
from node.linkeddata.namespaces import DCAT, HYDRA
from node.linkeddata.signposting import MAX_HEADER_ITEMS
from node.search.factory import open_backend
from node.search.indexer import drain

CORE = "dcat-ap-SHACL.ttl"
VOCABULARIES = "mdr-vocabularies.shape.ttl"
RDF_FORMATS = {
    "text/turtle": "turtle",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo node, harvested, served by werkzeug on a loopback port; yields its base URL."""
    folder = tmp_path_factory.mktemp("demo")
    cfg_path = build_demo(folder)
    server = make_server("127.0.0.1", 0, None, threaded=True)  # type: ignore[arg-type]
    port = server.server_port
    server.server_close()
    text = cfg_path.read_text().replace("http://127.0.0.1:5000", f"http://127.0.0.1:{port}")
    cfg_path.write_text(text)
    config = load_config(cfg_path)
    config.harvest.thumbnails = False
    engine = open_catalog(config.database_url)
    for source in config.sources:
        Harvester(config, engine).run(source.name)
    drain(engine, open_backend(config))
    app = create_app(config, engine=engine)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield config.node.base_url
    finally:
        server.shutdown()
        thread.join(timeout=10)
        engine.dispose()


def _ids(base: str) -> list[str]:
    body = requests.get(f"{base}/api/v1/datasets", params={"limit": 20}, timeout=10).json()
    assert body["total"] == 5
    return [d["id"] for d in body["items"]]


# ----------------------------------------------------------------------------- negotiation


def test_landing_page_negotiates_every_representation(demo: str):
    ds_id = _ids(demo)[0]
    url = f"{demo}/datasets/{ds_id}"
    html = requests.get(url, headers={"Accept": "text/html"}, timeout=10)
    assert html.status_code == 200
    assert html.headers["Content-Type"].startswith("text/html")
    assert html.headers["Vary"] == "Accept"
    embedded = re.search(r'<script type="application/ld\+json">(.*?)</script>', html.text, re.S)
    assert embedded is not None
    jsonld = requests.get(url, headers={"Accept": "application/ld+json"}, timeout=10)
    assert jsonld.headers["Content-Type"].startswith("application/ld+json")
    assert json.loads(embedded.group(1)) == jsonld.json()  # the same schema.org document
    assert jsonld.json()["@type"] == "Dataset"
    subject = URIRef(url)
    for media, fmt in RDF_FORMATS.items():
        r = requests.get(url, headers={"Accept": media}, timeout=10)
        assert r.status_code == 200, media
        assert r.headers["Content-Type"].startswith(media)
        g = Graph().parse(data=r.content, format=fmt)
        assert (subject, RDF.type, DCAT.Dataset) in g, media
    dcat_jsonld = requests.get(
        url, headers={"Accept": 'application/ld+json; profile="http://www.w3.org/ns/dcat#"'},
        timeout=10,
    )  # fmt: skip
    g = parse(dcat_jsonld.content, "application/ld+json")  # no remote context to fetch
    assert (subject, RDF.type, DCAT.Dataset) in g
    # ?format= overrides Accept; a browser's Accept gets HTML
    ttl = requests.get(url, params={"format": "ttl"}, headers={"Accept": "text/html"}, timeout=10)
    assert ttl.headers["Content-Type"].startswith("text/turtle")
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert (
        requests.get(url, headers={"Accept": browser}, timeout=10)
        .headers["Content-Type"]
        .startswith("text/html")
    )


def test_unavailable_types_get_406_listing_the_available(demo: str):
    url = f"{demo}/datasets/{_ids(demo)[0]}"
    r = requests.get(url, headers={"Accept": "image/png"}, timeout=10)
    assert r.status_code == 406
    message = r.text
    for media in ("text/html", "application/ld+json", "text/turtle", "application/rdf+xml"):
        assert media in message
    bad = requests.get(url, params={"format": "pdf"}, timeout=10)
    assert bad.status_code == 400
    assert "format='pdf' is not available here; use one of" in unescape(bad.text)


def test_landing_pages_pass_the_dcat_ap_shapes(demo: str):
    for ds_id in _ids(demo):
        r = requests.get(f"{demo}/datasets/{ds_id}", params={"format": "ttl"}, timeout=10)
        g = Graph().parse(data=r.content, format="turtle")
        for shapes in (CORE, VOCABULARIES):
            assert violations(g, shapes) == [], (ds_id, shapes)


# ----------------------------------------------------------------------------- signposting


def test_signposting_level_1_read_back(demo: str):
    ds = requests.get(f"{demo}/api/v1/datasets/{_ids(demo)[0]}", timeout=10).json()
    url = f"{demo}/datasets/{ds['id']}"
    s = signposting.find_signposting_http(url)
    assert s.citeAs is not None
    pid = ds["identifier"]
    assert str(s.citeAs.target) == (pid_url(pid, demo) if pid else url)
    described = {str(d.type) for d in s.describedBy}
    assert described >= {"text/turtle", "application/rdf+xml", "application/n-triples"}
    for d in s.describedBy:  # every describedby target really answers in its type
        r = requests.get(str(d.target), timeout=10)
        assert r.headers["Content-Type"].startswith(str(d.type))
    assert {str(t.target) for t in s.types} == {
        "https://schema.org/Dataset",
        "https://schema.org/AboutPage",
    }
    assert s.license is not None
    assert str(s.license.target).startswith("https://spdx.org/licenses/")
    # items beyond MAX_HEADER_ITEMS are in the linkset only (headers must stay small)
    assert len(s.items) == min(ds["image_count"], MAX_HEADER_ITEMS)
    assert {str(link.type) for link in s.linksets} == {
        "application/linkset+json",
        "application/linkset",
    }


@pytest.mark.parametrize("media", ["application/linkset+json", "application/linkset"])
def test_signposting_level_2_linkset_read_back(demo: str, media: str):
    ds_id = _ids(demo)[0]
    url = f"{demo}/datasets/{ds_id}/linkset"
    r = requests.get(url, headers={"Accept": media}, timeout=10)
    assert r.headers["Content-Type"].startswith(media)
    s = signposting.find_signposting_linkset(url, acceptType=media)
    landing = f"{demo}/datasets/{ds_id}"
    mine = s.for_context(landing)
    assert mine.citeAs is not None
    assert len(mine.describedBy) == 4
    assert mine.license is not None
    header = signposting.find_signposting_http(landing)
    assert {str(i.target) for i in mine.items} >= {str(i.target) for i in header.items}
    count = requests.get(f"{demo}/api/v1/datasets/{ds_id}", timeout=10).json()["image_count"]
    assert len(mine.items) == count


# ----------------------------------------------------------------------------- catalog


def test_catalog_is_hydra_paged_and_valid(demo: str):
    seen: list[str] = []
    url: str | None = f"{demo}/catalog?limit=2"
    pages = 0
    while url:
        r = requests.get(url, headers={"Accept": "text/turtle"}, timeout=30)
        assert r.status_code == 200
        g = Graph().parse(data=r.content, format="turtle")
        for shapes in (CORE, VOCABULARIES):
            assert violations(g, shapes) == [], (url, shapes)
        catalog = URIRef(f"{demo}/catalog")
        seen += [str(d) for d in g.objects(catalog, DCAT.dataset)]
        view = next(g.subjects(RDF.type, HYDRA.PartialCollectionView))
        assert g.value(view, HYDRA.first) == URIRef(f"{demo}/catalog?limit=2")
        # keyset pages (the key of the last record served): no page numbers, no hydra:last
        assert g.value(view, HYDRA.last) is None
        nxt = g.value(view, HYDRA.next)
        url = str(nxt) if nxt else None
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(f"{demo}/datasets/{i}" for i in _ids(demo))


def test_catalog_filters_by_modified_since_and_explains_bad_input(demo: str):
    everything = requests.get(f"{demo}/catalog", params={"format": "nt"}, timeout=30)
    g = Graph().parse(data=everything.content, format="nt")
    assert len(list(g.objects(URIRef(f"{demo}/catalog"), DCAT.dataset))) == 5
    future = requests.get(
        f"{demo}/catalog", params={"modified_since": "2999-01-01", "format": "nt"}, timeout=30
    )
    g = Graph().parse(data=future.content, format="nt")
    assert list(g.objects(URIRef(f"{demo}/catalog"), DCAT.dataset)) == []
    for params, message in (
        ({"modified_since": "last week"}, "modified_since='last week' is not an ISO 8601"),
        ({"limit": "0"}, "limit=0 is out of range"),
        ({"after": "not-a-cursor"}, "cursor 'not-a-cursor' is not valid"),
        ({"page": "2"}, "'page'"),  # pages are keyed: the next link carries `after`
        ({"color": "red"}, "'color'"),
    ):
        r = requests.get(f"{demo}/catalog", params=params, timeout=10)
        assert r.status_code == 400, params
        assert message in unescape(r.text), params


# ----------------------------------------------------------------------------- the rest


def test_sitemap_and_robots(demo: str):
    r = requests.get(f"{demo}/sitemap.xml", timeout=10)
    assert r.headers["Content-Type"].startswith("application/xml")
    locs = re.findall(r"<loc>(.*?)</loc>", r.text)
    assert set(locs) == {f"{demo}/"} | {f"{demo}/datasets/{i}" for i in _ids(demo)}
    assert len(re.findall(r"<lastmod>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</lastmod>", r.text)) == 5
    robots = requests.get(f"{demo}/robots.txt", timeout=10).text
    assert f"Sitemap: {demo}/sitemap.xml" in robots
    assert "Disallow: /search" in robots


def test_api_catalog(demo: str):
    head = requests.head(f"{demo}/.well-known/api-catalog", timeout=10)
    assert head.status_code == 200
    assert 'rel="api-catalog"' in head.headers["Link"]
    r = requests.get(f"{demo}/.well-known/api-catalog", timeout=10)
    assert r.headers["Content-Type"].startswith("application/linkset+json")
    assert 'profile="https://www.rfc-editor.org/info/rfc9727"' in r.headers["Content-Type"]
    linkset = r.json()["linkset"]
    items = {i["href"] for i in linkset[0]["item"]}
    assert {f"{demo}/api/v1/", f"{demo}/oai", f"{demo}/catalog"} <= items
    described = {c["anchor"]: c for c in linkset[1:]}
    openapi = described[f"{demo}/api/v1/"]["service-desc"][0]["href"]
    assert requests.get(openapi, timeout=10).json()["openapi"] == "3.1.0"
    s = signposting.find_signposting_linkset(f"{demo}/.well-known/api-catalog")
    assert s.signposts  # the library reads our linkset


def test_hydra_links_keep_the_filter(demo: str):
    r = requests.get(
        f"{demo}/catalog",
        params={"limit": 2, "modified_since": "2000-01-01T00:00:00Z", "format": "ttl"},
        timeout=30,
    )
    g = Graph().parse(data=r.content, format="turtle")
    view = next(g.subjects(RDF.type, HYDRA.PartialCollectionView))
    nxt = urlsplit(str(g.value(view, HYDRA.next)))
    query = parse_qs(nxt.query)
    assert set(query) == {"after", "limit", "modified_since"}
    assert query["limit"] == ["2"]
    assert query["modified_since"] == ["2000-01-01T00:00:00Z"]
