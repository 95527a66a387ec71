"""The node descriptor: GET /.well-known/fairnode over real HTTP, read as JSON-LD by rdflib with
no network, linked from the api-catalog; parse_descriptor refusing bad input by field; and
refresh_descriptor teaching a national node the institutes under the university it harvests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
import requests
from flask import Flask
from misbehaving import MisbehavingServer, Reply
from rdflib import RDF, Literal, URIRef
from sqlalchemy import Engine
from werkzeug.serving import make_server

from node.app import create_app
from node.catalog.db import open_catalog
from node.config import Config, FederationSettings, parse_config
from node.federation.descriptor import DescriptorError, parse_descriptor, refresh_descriptor
from node.federation.fetch import Fetcher
from node.federation.model import PeerError
from node.federation.nodes import FederationNode, get_node, known_nodes, upsert_nodes
from node.linkeddata.mediatypes import parse
from node.linkeddata.namespaces import FAIRNODE, SCHEMA
from node.records import Provenance, Visibility

FAST = FederationSettings(timeout_seconds=5, max_retries=0)


@contextlib.contextmanager
def serving(app: Flask) -> Iterator[str]:
    """``app`` on a real loopback HTTP server; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def node_config(tmp_path: Path, db_url: str, **node: Any) -> Config:
    values = {
        "id": "univ-a",
        "name": "Université A <Imaging>",
        "base_url": "http://univ-a.test",
        "data_dir": str(tmp_path / "data"),
        "level": "university",
        "country": "FR",
        "parents": ["nat-fr"],
        "ror": "https://ror.org/035xkbk20",
    }
    values.update(node)
    return parse_config({"node": values, "database": {"url": db_url}}, env=False)


def add(catalog, dataset_id: str, origin: str | None = None, **kw: Any) -> None:
    ds = catalog.dataset(dataset_id, **kw)
    if origin is not None:
        ds = ds.model_copy(update={"provenance": Provenance(origin_node=origin)})
    catalog.add(ds)


INSTITUTES = [
    FederationNode(
        "inst-a1", "institute", "Institut A1", "FR", ("univ-a",), None, "http://inst-a1.test"
    ),  # fmt: skip
    FederationNode("inst-a2", "institute", "Institut A2", None, ("univ-a",)),
]


@pytest.fixture
def univ(tmp_path: Path, db_url: str) -> Config:
    return node_config(tmp_path, db_url)


@pytest.fixture
def univ_app(univ: Config, engine: Engine, catalog) -> Flask:
    """The university node: own records (public, private), a harvested public one, and the
    two institutes it heard of."""
    catalog.config = univ
    add(catalog, "ds-own-1", origin="univ-a")
    add(catalog, "ds-own-private", origin="univ-a", visibility=Visibility.private)
    add(catalog, "ds-from-a1", origin="inst-a1")
    add(catalog, "ds-from-a1-fed", origin="inst-a1", visibility=Visibility.federation)
    upsert_nodes(engine, INSTITUTES, learnt_from="inst-a1")
    app = create_app(univ, engine=engine)
    app.testing = True
    return app


def test_descriptor_says_who_the_node_is(univ_app: Flask) -> None:
    with serving(univ_app) as base:
        r = requests.get(f"{base}/.well-known/fairnode", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/ld+json")
    doc = r.json()
    assert doc["identifier"] == "univ-a"
    assert doc["name"] == "Université A <Imaging>"
    assert (doc["level"], doc["country"], doc["parents"]) == ("university", "FR", ["nat-fr"])
    assert doc["ror"] == "https://ror.org/035xkbk20"
    assert doc["url"] == "http://univ-a.test"
    assert doc["endpoints"] == {
        "oai": "http://univ-a.test/oai",
        "catalog": "http://univ-a.test/catalog",
        "search": "http://univ-a.test/api/v1/search",
        "sitemap": "http://univ-a.test/sitemap.xml",
        "apiCatalog": "http://univ-a.test/.well-known/api-catalog",
    }
    assert doc["softwareVersion"]
    # only published public records count: the private and federation ones are not announced
    assert doc["recordCounts"] == {"public": 2, "own": 1, "harvested": 1}
    known = {n["identifier"]: n for n in doc["knownNodes"]}
    assert set(known) == {"inst-a1", "inst-a2"}
    assert known["inst-a1"]["parents"] == ["univ-a"]
    assert known["inst-a1"]["url"] == "http://inst-a1.test"
    assert "country" not in known["inst-a2"]


def test_descriptor_is_json_ld_rdflib_reads_offline(univ_app: Flask) -> None:
    """The context is inline: rdflib expands it without fetching anything."""
    body = univ_app.test_client().get("/.well-known/fairnode").get_data()
    g = parse(body, "application/ld+json")  # refuses to fetch any remote @context
    me = URIRef("http://univ-a.test/#node")
    assert (me, RDF.type, SCHEMA.Organization) in g
    assert (me, RDF.type, FAIRNODE.Node) in g
    assert (me, SCHEMA.identifier, Literal("univ-a")) in g
    assert (me, FAIRNODE.level, Literal("university")) in g
    assert (me, FAIRNODE.parent, Literal("nat-fr")) in g
    assert (me, SCHEMA.sameAs, URIRef("https://ror.org/035xkbk20")) in g
    endpoints = g.value(me, FAIRNODE.endpoints)
    assert g.value(endpoints, FAIRNODE.oaiPmh) == URIRef("http://univ-a.test/oai")
    counts = g.value(me, FAIRNODE.recordCounts)
    assert g.value(counts, FAIRNODE.publicRecords).toPython() == 2
    a1 = URIRef("http://inst-a1.test/#node")
    assert a1 in set(g.objects(me, FAIRNODE.knownNode))
    assert (a1, FAIRNODE.parent, Literal("univ-a")) in g


def test_api_catalog_links_the_descriptor(univ_app: Flask) -> None:
    with serving(univ_app) as base:
        linkset = requests.get(f"{base}/.well-known/api-catalog", timeout=10).json()["linkset"]
    items = {i["href"] for i in linkset[0]["item"]}
    assert "http://univ-a.test/.well-known/fairnode" in items
    described = {c["anchor"]: c for c in linkset[1:]}
    [link] = described["http://univ-a.test/.well-known/fairnode"]["describedby"]
    assert link["type"] == "application/ld+json"


# --------------------------------------------------------------------------- refresh


def test_a_national_node_learns_the_institutes_under_a_university(
    univ_app: Flask, tmp_path: Path
) -> None:
    """The national node's own catalog is a separate database, as on a separate machine."""
    national = open_catalog(f"sqlite:///{tmp_path / 'national.sqlite3'}")
    try:
        with serving(univ_app) as base, Fetcher(FAST, peer_id="univ-a") as fetcher:
            nodes = refresh_descriptor(fetcher, base, national, "univ-a", this_node_id="nat-fr")
        assert [n.id for n in nodes] == ["univ-a", "inst-a1", "inst-a2"]
        stored = {n.id: n for n in known_nodes(national)}
        assert set(stored) == {"univ-a", "inst-a1", "inst-a2"}
        assert stored["univ-a"].parents == ("nat-fr",)
        assert stored["univ-a"].url == "http://univ-a.test"
        assert stored["inst-a2"].place.parents == ("univ-a",)
        assert {n.learnt_from for n in stored.values()} == {"univ-a"}
    finally:
        national.dispose()


def descriptor(node_id: str, **extra: Any) -> dict[str, Any]:
    return {"identifier": node_id, "name": node_id.upper(), "level": "university",
            "parents": [], **extra}  # fmt: skip


def test_refresh_never_stores_this_node_and_hearsay_never_beats_first_hand(
    engine: Engine,
) -> None:
    first_hand = FederationNode("inst-a1", "institute", "Institut A1", "FR", ("univ-a",))
    upsert_nodes(engine, [first_hand], learnt_from="inst-a1")
    doc = descriptor(
        "univ-b",
        knownNodes=[
            {"identifier": "nat-fr", "level": "national", "name": "Pretends to be us"},
            {"identifier": "inst-a1", "level": "institute", "parents": ["univ-b"]},
            {"identifier": "inst-b1", "level": "institute", "parents": ["univ-b"]},
        ],
    )
    with MisbehavingServer() as srv, Fetcher(FAST, peer_id="univ-b") as fetcher:
        srv.on("/.well-known/fairnode", Reply(body=_json(doc), content_type="application/ld+json"))
        refresh_descriptor(fetcher, srv.url(""), engine, "univ-b", this_node_id="nat-fr")
    assert get_node(engine, "nat-fr") is None
    assert get_node(engine, "inst-a1").parents == ("univ-a",)  # its own word stands
    assert get_node(engine, "inst-b1").learnt_from == "univ-b"
    # the node's own descriptor does replace what it said before
    with MisbehavingServer() as srv, Fetcher(FAST, peer_id="inst-a1") as fetcher:
        moved = {**descriptor("inst-a1"), "level": "institute", "parents": ["univ-b"]}
        srv.on("/.well-known/fairnode", Reply(body=_json(moved), content_type="application/json"))
        refresh_descriptor(fetcher, srv.url(""), engine, "inst-a1", this_node_id="nat-fr")
    assert get_node(engine, "inst-a1").parents == ("univ-b",)


def _json(doc: Any) -> bytes:
    import json

    return json.dumps(doc).encode()


def test_refresh_reports_a_bad_descriptor_as_a_peer_error(engine: Engine) -> None:
    bad = descriptor("univ-b", knownNodes=[{"identifier": "x-1", "level": "galaxy"}])
    with MisbehavingServer() as srv, Fetcher(FAST, peer_id="univ-b") as fetcher:
        srv.on("/.well-known/fairnode", Reply(body=_json(bad), content_type="application/json"))
        with pytest.raises(PeerError) as e:
            refresh_descriptor(fetcher, srv.url(""), engine, "univ-b", this_node_id="nat-fr")
        assert "peer univ-b" in str(e.value)
        assert "descriptor.knownNodes[0].level is 'galaxy'" in str(e.value)
        srv.on("/.well-known/fairnode", Reply(body=b"<html>hello</html>", content_type="text/html"))
        with pytest.raises(PeerError, match="not JSON"):
            refresh_descriptor(fetcher, srv.url(""), engine, "univ-b", this_node_id="nat-fr")
    assert known_nodes(engine) == []


# --------------------------------------------------------------------------- parse_descriptor


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "descriptor is list: expected a JSON object"),
        ({"level": "institute"}, "descriptor.identifier is None: expected a node id"),
        (descriptor("Bad Id"), "descriptor.identifier is 'Bad Id': expected a node id"),
        ({"identifier": "a", "level": 3}, "descriptor.level is int: expected a string"),
        (descriptor("a", country="France"), "descriptor.country is 'France': expected an ISO"),
        (descriptor("a", parents="../x"), "descriptor.parents[0] is '../x'"),
        (descriptor("a", parents={"x": 1}), "descriptor.parents is dict: expected a list"),
        (descriptor("a", url="javascript:alert(1)"), "descriptor.url is 'javascript:alert(1)'"),
        (descriptor("a", name="x" * 501), "descriptor.name is 501 characters long"),
        (descriptor("a", knownNodes={}), "descriptor.knownNodes is dict: expected a list"),
        (descriptor("a", knownNodes=["b"]), "descriptor.knownNodes[0] is str"),
        (
            descriptor("a", knownNodes=[descriptor("b"), descriptor("b")]),
            "descriptor.knownNodes[1].identifier 'b' is listed twice",
        ),
        (descriptor("a", knownNodes=[descriptor("a")]), "knownNodes[0].identifier 'a' is listed"),
        (b"\xff{", "descriptor is not JSON"),
    ],
)
def test_parse_descriptor_names_the_bad_field(doc: Any, message: str) -> None:
    with pytest.raises(DescriptorError) as e:
        parse_descriptor(doc)
    assert message in str(e.value)


def test_parse_descriptor_reads_a_good_one() -> None:
    doc = descriptor(
        "univ-a",
        country="fr",
        parents="nat-fr",  # a one-element set compacted to its value
        url="https://univ-a.example.org/",
        knownNodes=[{"identifier": "inst-a1", "level": "institute", "parents": ["univ-a"]}],
    )
    me, inst = parse_descriptor(doc)
    assert me == FederationNode(
        "univ-a", "university", "UNIV-A", "FR", ("nat-fr",), None, "https://univ-a.example.org"
    )
    assert inst.place.parents == ("univ-a",)
