"""Provenance travels: the DCAT a node serves for a record carries the chain of nodes it came
through (in order) and its source record, in every RDF syntax and through OAI-PMH's dcat_ap, so
the next node rebuilds them; the graph still passes the DCAT-AP 3.0.1 shapes. The landing page of
a harvested record says where it comes from, escaped."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from lxml import etree
from rdflib import RDF, BNode, Literal, URIRef
from rdflib.collection import Collection
from sqlalchemy import Engine

from node.federation.nodes import FederationNode, upsert_nodes
from node.linkeddata.context import NodeInfo
from node.linkeddata.dcat import dataset_graph
from node.linkeddata.dcat_read import dataset_from_graph
from node.linkeddata.mediatypes import RDF_MEDIA_TYPES, parse, serialise
from node.linkeddata.namespaces import DCTERMS, FAIRNODE, PROV
from node.oai.identifiers import oai_identifier
from node.records import Dataset, Lifecycle, Provenance

# The DCAT-AP SHACL helpers of the linked-data tests (official shapes, local copies).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "linkeddata"))
from ld_helpers import violations  # noqa: E402

BASE_URL = "http://node.test"
NODE = NodeInfo(id="test-node", name="Test Imaging Node", base_url=BASE_URL)
# Not in sorted order: the chain's order is what must survive.
CHAIN = ["inst-a1", "univ-a", "nat-fr"]
SOURCE = "https://nat-fr.example.org/datasets/ds-peer-7"
SEEN = datetime(2024, 4, 1, 8, 0, tzinfo=UTC)
HARVESTED = datetime(2024, 6, 2, 9, 30, tzinfo=UTC)


def harvested(**provenance: object) -> Dataset:
    values = {"origin_node": "inst-a1", "harvested_via": CHAIN, "source_record_url": SOURCE,
              "first_seen": SEEN, "last_harvested": HARVESTED} | provenance  # fmt: skip
    return Dataset(
        id="ds-peer-7",
        title="Organoids from the institute",
        description="Brain organoids, day 30.",
        publisher="Institut A1",
        lifecycle=Lifecycle.published,
        modified=datetime(2024, 6, 1, tzinfo=UTC),
        provenance=Provenance(**values),
    )


@pytest.mark.parametrize("media_type", list(RDF_MEDIA_TYPES))
def test_chain_and_source_survive_every_syntax(media_type: str) -> None:
    ds = harvested()
    data = serialise(dataset_graph(ds, None, base_url=BASE_URL, node=NODE), media_type)
    back = dataset_from_graph(parse(data, media_type))
    assert back.provenance.origin_node == "inst-a1"
    assert back.provenance.harvested_via == CHAIN
    assert back.provenance.source_record_url == SOURCE
    # first seen and last harvested are the receiving node's own facts: they do not travel
    assert back.provenance.first_seen is None


def test_the_triples_are_an_ordered_list_and_a_derivation() -> None:
    g = dataset_graph(harvested(), None, base_url=BASE_URL, node=NODE)
    s = URIRef(f"{BASE_URL}/datasets/ds-peer-7")
    statement = g.value(s, DCTERMS.provenance)
    chain = g.value(statement, FAIRNODE.harvestedVia)
    assert [str(n) for n in Collection(g, chain)] == CHAIN
    assert g.value(s, PROV.wasDerivedFrom) == URIRef(SOURCE)


def test_a_record_without_a_chain_writes_none_and_reads_back_empty() -> None:
    ds = harvested(origin_node="test-node", harvested_via=[], source_record_url=None)
    g = dataset_graph(ds, None, base_url=BASE_URL, node=NODE)
    assert not list(g.objects(None, FAIRNODE.harvestedVia))
    assert not list(g.objects(None, PROV.wasDerivedFrom))
    back = dataset_from_graph(g)
    assert (back.provenance.harvested_via, back.provenance.source_record_url) == ([], None)


def test_provenance_keeps_dcat_ap_valid() -> None:
    g = dataset_graph(harvested(), None, base_url=BASE_URL, node=NODE)
    for shapes_name in ("dcat-ap-SHACL.ttl", "mdr-vocabularies.shape.ttl"):
        assert violations(g, shapes_name) == [], shapes_name


def test_a_looping_chain_is_refused_by_name() -> None:
    g = dataset_graph(harvested(), None, base_url=BASE_URL, node=NODE)
    statement = g.value(URIRef(f"{BASE_URL}/datasets/ds-peer-7"), DCTERMS.provenance)
    head, tail = BNode(), BNode()
    g.add((head, RDF.first, Literal("a")))
    g.add((head, RDF.rest, tail))
    g.add((tail, RDF.first, Literal("b")))
    g.add((tail, RDF.rest, head))  # back to the start: a list without end
    g.set((statement, FAIRNODE.harvestedVia, head))
    with pytest.raises(ValueError, match="harvestedVia is a looping rdf:List"):
        dataset_from_graph(g)


# --------------------------------------------------------------------------- through OAI-PMH


def test_the_chain_travels_through_oai_dcat_ap(client: FlaskClient, catalog) -> None:
    catalog.add(harvested())
    r = client.get(
        "/oai",
        query_string={"verb": "GetRecord", "metadataPrefix": "dcat_ap",
                      "identifier": oai_identifier(BASE_URL, "ds-peer-7")},
    )  # fmt: skip
    root = etree.fromstring(r.data)
    rdf = root.find(".//{http://www.openarchives.org/OAI/2.0/}metadata")[0]
    g = parse(etree.tostring(rdf), "application/rdf+xml")
    back = dataset_from_graph(g)
    assert back.provenance.harvested_via == CHAIN
    assert back.provenance.source_record_url == SOURCE


# --------------------------------------------------------------------------- landing page


def test_landing_page_says_where_a_harvested_record_comes_from(
    client: FlaskClient, catalog, engine: Engine
) -> None:
    upsert_nodes(
        engine,
        [
            FederationNode(
                "inst-a1",
                "institute",
                "Institut <b>A1</b> & co",
                "FR",
                ("univ-a",),
                url="https://inst-a1.example.org",
            ),  # fmt: skip
            FederationNode("univ-a", "university", "Université A", "FR"),
        ],
        learnt_from="univ-a",
    )
    catalog.add(harvested())
    html = client.get("/datasets/ds-peer-7", headers={"Accept": "text/html"}).get_data(as_text=True)
    block = html.split('<section class="harvested"', 1)[1].split("</section>", 1)[0]
    # the origin's name from the federation's nodes, escaped, linked to its node
    assert "Institut &lt;b&gt;A1&lt;/b&gt; &amp; co" in block
    assert "<b>A1</b>" not in block
    assert '<a href="https://inst-a1.example.org">' in block
    # the chain in order, known nodes by name, unknown ones by id
    assert block.index("Université A") < block.index("<code>nat-fr</code>")
    assert f'<a href="{SOURCE}" rel="alternate">{SOURCE}</a>' in block
    assert "First seen here 2024-04-01" in block
    assert "Last harvested 2024-06-02" in block


def test_a_hostile_source_url_is_not_linked(client: FlaskClient, catalog) -> None:
    catalog.add(harvested(source_record_url="javascript:alert(1)", harvested_via=["<x>"]))
    html = client.get("/datasets/ds-peer-7").get_data(as_text=True)
    block = html.split('<section class="harvested"', 1)[1].split("</section>", 1)[0]
    assert 'href="javascript' not in block
    assert "Source record: javascript:alert(1)" in block
    assert "&lt;x&gt;" in block
    assert "<x>" not in block
    assert "node <code>inst-a1</code>" in block  # an origin no descriptor described: its id


def test_own_records_have_no_harvested_block(client: FlaskClient, catalog) -> None:
    catalog.add(catalog.dataset("ds-own"))
    assert 'class="harvested"' not in client.get("/datasets/ds-own").get_data(as_text=True)
