"""The six verbs over GET and POST: every response valid against the official OAI-PMH 2.0 XSD
(with the oai_dc, oai-identifier, oai_datacite and DataCite 4.6 XSDs for what it carries), and
the metadata of each format checked against its own schema or profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from lxml import etree
from oai_helpers import (
    HOST,
    NS,
    PAGE,
    Corpus,
    Harvest,
    add_page,
    call,
    dataset_id,
    errors,
    harvest,
    identifier,
    request_attrs,
    xsd,
)
from rdflib import Graph
from rdflib.compare import isomorphic

from node.config import Config
from node.linkeddata.context import NodeInfo
from node.linkeddata.dcat import dataset_from_graph, dataset_graph
from node.linkeddata.namespaces import new_graph
from node.oai.formats import FAIRNODE_SCHEMA_FILE
from node.records import Dataset

METHODS = ["GET", "POST"]
FORMATS = {
    "oai_dc": (
        "http://www.openarchives.org/OAI/2.0/oai_dc.xsd",
        "http://www.openarchives.org/OAI/2.0/oai_dc/",
    ),
    "oai_datacite": (
        "http://schema.datacite.org/oai/oai-1.1/oai.xsd",
        "http://schema.datacite.org/oai/oai-1.1/",
    ),
    "dcat_ap": (
        "https://semiceu.github.io/DCAT-AP/releases/3.0.1/shacl/dcat-ap-SHACL.ttl",
        "http://data.europa.eu/r5r/",
    ),
    "fairnode": (
        "http://node.test/oai/fairnode-record-1.xsd",
        "https://w3id.org/fairnode/ns/record/1",
    ),
}


@pytest.mark.parametrize("method", METHODS)
def test_identify(oai: FlaskClient, corpus: Corpus, method: str) -> None:
    root = call(oai, method, verb="Identify")
    assert request_attrs(root) == {"verb": "Identify"}
    assert root.findtext("oai:request", namespaces=NS) == "http://node.test/oai"
    ident = root.find("oai:Identify", NS)
    assert ident.findtext("oai:repositoryName", namespaces=NS) == "Test Imaging Node"
    assert ident.findtext("oai:baseURL", namespaces=NS) == "http://node.test/oai"
    assert ident.findtext("oai:protocolVersion", namespaces=NS) == "2.0"
    assert ident.findtext("oai:adminEmail", namespaces=NS) == "webmaster@node.test"
    # The oldest datestamp of a *served* record (hidden ones are as old, but never shown).
    assert ident.findtext("oai:earliestDatestamp", namespaces=NS) == "2024-03-01T12:00:00Z"
    assert ident.findtext("oai:deletedRecord", namespaces=NS) == "persistent"
    assert ident.findtext("oai:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    desc = ident.find("oai:description/oid:oai-identifier", NS)
    assert desc.findtext("oid:repositoryIdentifier", namespaces=NS) == HOST
    assert desc.findtext("oid:sampleIdentifier", namespaces=NS).startswith(f"oai:{HOST}:")
    # The response date is now, in UTC, at seconds granularity.
    stamp = root.findtext("oai:responseDate", namespaces=NS)
    responded = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(responded - datetime.now(UTC)) < timedelta(minutes=1)


def test_identify_of_an_empty_node_and_an_ip_base_url(config: Config, engine) -> None:
    """No records: earliestDatestamp is the response date. A base URL on an IP address has no
    domain to put in an oai-identifier description (its XSD wants one), so none is sent, and the
    contact address from the configuration is the adminEmail."""
    from node.app import create_app

    config.node.base_url = "http://127.0.0.1:5000"
    config.node.contact_email = "imaging@uni.example.org"
    client = create_app(config, engine=engine).test_client()
    root = call(client, verb="Identify")
    ident = root.find("oai:Identify", NS)
    assert ident.findtext("oai:earliestDatestamp", namespaces=NS) == root.findtext(
        "oai:responseDate", namespaces=NS
    )
    assert ident.find("oai:description", NS) is None
    assert ident.findtext("oai:adminEmail", namespaces=NS) == "imaging@uni.example.org"
    assert root.findtext("oai:request", namespaces=NS) == "http://127.0.0.1:5000/oai"


@pytest.mark.parametrize("method", METHODS)
def test_list_metadata_formats(oai: FlaskClient, corpus: Corpus, method: str) -> None:
    for args in ({}, {"identifier": identifier("ds-a01")}):
        root = call(oai, method, verb="ListMetadataFormats", **args)
        assert request_attrs(root) == {"verb": "ListMetadataFormats", **args}
        got = {
            f.findtext("oai:metadataPrefix", namespaces=NS): (
                f.findtext("oai:schema", namespaces=NS),
                f.findtext("oai:metadataNamespace", namespaces=NS),
            )
            for f in root.findall("oai:ListMetadataFormats/oai:metadataFormat", NS)
        }
        assert got == FORMATS


@pytest.mark.parametrize("method", METHODS)
def test_list_sets(oai: FlaskClient, corpus: Corpus, method: str) -> None:
    root = call(oai, method, verb="ListSets")
    specs = [s.text for s in root.findall("oai:ListSets/oai:set/oai:setSpec", NS)]
    # Parents of the hierarchy, and the leaves that hold served records (never a value only
    # hidden records have: peer-a's federation record adds nothing, nor does a visibility
    # other than public).
    assert specs == [
        "origin",
        "origin:peer-a",
        "origin:test-node",
        "visibility",
        "visibility:public",
        "access",
        "access:closed",
        "access:embargoed",
        "access:open",
        "access:restricted",
    ]
    names = {
        s.findtext("oai:setSpec", namespaces=NS): s.findtext("oai:setName", namespaces=NS)
        for s in root.findall("oai:ListSets/oai:set", NS)
    }
    assert names["origin:test-node"] == "Records born at node test-node (this node)"
    assert names["access:restricted"] == "Data available on request (restricted)"
    assert root.find("oai:ListSets/oai:resumptionToken", NS) is None


def test_list_sets_of_an_empty_node(oai: FlaskClient) -> None:
    root = call(oai, verb="ListSets")
    specs = [s.text for s in root.findall("oai:ListSets/oai:set/oai:setSpec", NS)]
    assert specs == ["origin", "visibility", "visibility:public", "access"]


def test_every_set_of_list_sets_selects_its_records(oai: FlaskClient, corpus: Corpus) -> None:
    root = call(oai, verb="ListSets")
    for spec in (s.text for s in root.findall("oai:ListSets/oai:set/oai:setSpec", NS)):
        family, _, value = spec.partition(":")
        want = corpus.matching(
            origin=value if family == "origin" and value else None,
            access=value if family == "access" and value else None,
        )
        got = harvest(oai, "ListIdentifiers", metadataPrefix="oai_dc", set=spec)
        assert sorted(got.ids) == sorted(want), spec
        for h in got.headers:
            # A record is in a set, or in one of its children (a hierarchy of depth two).
            specs = [s.text for s in h.findall("oai:setSpec", NS)]
            assert any(s == spec or s.startswith(f"{spec}:") for s in specs), (spec, specs)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("prefix", list(FORMATS))
def test_get_record(
    oai: FlaskClient, corpus: Corpus, config: Config, method: str, prefix: str
) -> None:
    ds = corpus.datasets["ds-a06"]
    root = call(oai, method, verb="GetRecord", identifier=identifier(ds.id), metadataPrefix=prefix)
    assert request_attrs(root) == {
        "verb": "GetRecord",
        "identifier": identifier(ds.id),
        "metadataPrefix": prefix,
    }
    record = root.find("oai:GetRecord/oai:record", NS)
    head = record.find("oai:header", NS)
    assert head.get("status") is None
    assert head.findtext("oai:identifier", namespaces=NS) == "oai:node.test:ds-a06"
    assert head.findtext("oai:datestamp", namespaces=NS) == "2024-03-01T12:05:00Z"
    assert [s.text for s in head.findall("oai:setSpec", NS)] == [
        "origin:test-node",
        "visibility:public",
        "access:open",
    ]
    [payload] = record.find("oai:metadata", NS)
    check_payload(prefix, payload, ds, config)


def check_payload(prefix: str, payload: etree._Element, ds: Dataset, config: Config) -> None:
    """The metadata of ``ds`` in ``prefix``, checked with that format's own validator."""
    doc = etree.fromstring(etree.tostring(payload))  # standalone, as a harvester stores it
    if prefix == "oai_dc":
        assert xsd("oai-pmh/oai_dc.xsd").validate(doc), xsd("oai-pmh/oai_dc.xsd").error_log
        assert doc.findtext("dc:title", namespaces=NS) == ds.title
        assert f"http://node.test/datasets/{ds.id}" in [
            e.text for e in doc.findall("dc:identifier", NS)
        ]
    elif prefix == "oai_datacite":
        wrapper = xsd("datacite/oai-1.1/oai.xsd")
        assert wrapper.validate(doc), wrapper.error_log
        assert doc.findtext("odc:schemaVersion", namespaces=NS) == "4.6"
        assert doc.findtext("odc:datacentreSymbol", namespaces=NS) == "test-node"
        [resource] = doc.find("odc:payload", NS)
        resource = etree.fromstring(etree.tostring(resource))
        kernel = xsd("datacite/kernel-4.6/metadata.xsd")
        assert kernel.validate(resource), kernel.error_log
        assert resource.findtext("dcite:titles/dcite:title", namespaces=NS) == ds.title
    elif prefix == "fairnode":
        schema = etree.XMLSchema(etree.parse(str(FAIRNODE_SCHEMA_FILE)))
        assert schema.validate(doc), schema.error_log
        assert doc.get("version") == "1"
        # The canonical record, whole: it reads back equal.
        back = Dataset.model_validate_json(doc.text)
        assert back == ds
    else:
        assert doc.tag == f"{{{NS['rdf']}}}RDF"
        got = Graph().parse(data=etree.tostring(doc), format="xml")
        node = NodeInfo.from_config(config)
        want = dataset_graph(ds, base_url=node.base_url, node=node)
        assert isomorphic(got, want)  # the profile's graph, which passes the DCAT-AP shapes
        back = dataset_from_graph(_with_prefixes(got), f"http://node.test/datasets/{ds.id}")
        assert (back.id, back.title) == (ds.id, ds.title)


def _with_prefixes(g: Graph) -> Graph:
    out = new_graph()
    for t in g:
        out.add(t)
    return out


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("verb", ["ListIdentifiers", "ListRecords"])
def test_full_list_over_pages(oai: FlaskClient, corpus: Corpus, verb: str, method: str) -> None:
    h, token = _first(oai, method, verb)
    pages = 1
    cursors = []
    while token:
        body = h.pages[-1].find(f"oai:{verb}", NS)
        rt = body.find("oai:resumptionToken", NS)
        cursors.append(int(rt.get("cursor")))
        assert int(rt.get("completeListSize")) == len(corpus.served)
        assert rt.get("expirationDate").endswith("Z")
        root = call(oai, method, verb=verb, resumptionToken=token)
        assert request_attrs(root) == {"verb": verb, "resumptionToken": token}
        h.pages.append(root)
        body = root.find(f"oai:{verb}", NS)
        h.headers.extend(body.iter(f"{{{NS['oai']}}}header"))
        rt = body.find("oai:resumptionToken", NS)
        token = rt.text if rt is not None and rt.text else None
        pages += 1
    # Every served record once, in datestamp order; the list completes with an empty token.
    assert h.ids == sorted(corpus.served, key=lambda i: (corpus.datasets[i].modified, i))
    assert pages == -(-len(corpus.served) // PAGE)
    assert cursors == list(range(0, PAGE * (pages - 1), PAGE))
    last = h.pages[-1].find(f"oai:{verb}/oai:resumptionToken", NS)
    assert last is not None
    assert not last.text
    assert last.get("cursor") == str(PAGE * (pages - 1))
    assert last.get("expirationDate") is None
    assert h.deleted == corpus.deleted
    for header in h.headers:
        i = dataset_id(header.findtext("oai:identifier", namespaces=NS))
        want = corpus.datasets[i].modified.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert header.findtext("oai:datestamp", namespaces=NS) == want


def _first(oai: FlaskClient, method: str, verb: str) -> tuple[Harvest, str | None]:
    h = Harvest()
    root = call(oai, method, verb=verb, metadataPrefix="oai_dc")
    assert request_attrs(root) == {"verb": verb, "metadataPrefix": "oai_dc"}
    return h, add_page(h, root, verb)


@pytest.mark.parametrize("prefix", list(FORMATS))
def test_list_records_in_every_format(
    oai: FlaskClient, corpus: Corpus, config: Config, prefix: str
) -> None:
    h = harvest(oai, "ListRecords", metadataPrefix=prefix)
    assert sorted(h.ids) == sorted(corpus.served)
    for page in h.pages:
        for record in page.findall("oai:ListRecords/oai:record", NS):
            i = dataset_id(record.findtext("oai:header/oai:identifier", namespaces=NS))
            metadata = record.find("oai:metadata", NS)
            if i in corpus.deleted:
                # A tombstone: identifier, datestamp and sets, no metadata.
                assert record.find("oai:header", NS).get("status") == "deleted"
                assert metadata is None
            else:
                [payload] = metadata
                check_payload(prefix, payload, corpus.datasets[i], config)


def test_withdrawn_record_is_deleted_everywhere(oai: FlaskClient, corpus: Corpus) -> None:
    root = call(oai, verb="GetRecord", identifier=identifier("ds-a08"), metadataPrefix="oai_dc")
    record = root.find("oai:GetRecord/oai:record", NS)
    head = record.find("oai:header", NS)
    assert head.get("status") == "deleted"
    assert head.findtext("oai:datestamp", namespaces=NS) == "2024-03-01T15:00:00Z"
    assert record.find("oai:metadata", NS) is None
    assert "duplicate" not in etree.tostring(root).decode()  # nothing of the record leaks


def test_hidden_records_never_appear(oai: FlaskClient, corpus: Corpus) -> None:
    """Drafts and private, institution and federation records: not in any list, set, format or
    single read, not even as deleted headers."""
    seen: set[str] = set()
    for verb in ("ListIdentifiers", "ListRecords"):
        for prefix in FORMATS:
            for args in ({}, {"set": "origin:peer-a"}, {"from_": "2024-03-01"}):
                h = harvest(oai, verb, metadataPrefix=prefix, **args)
                seen.update(h.ids)
                body = b"".join(etree.tostring(p) for p in h.pages).decode()
                for hidden in corpus.hidden:
                    assert hidden not in body
    assert seen == corpus.served
    for hidden in corpus.hidden:
        for prefix in FORMATS:
            root = call(oai, verb="GetRecord", identifier=identifier(hidden), metadataPrefix=prefix)
            assert [c for c, _ in errors(root)] == ["idDoesNotExist"]
        root = call(oai, verb="ListMetadataFormats", identifier=identifier(hidden))
        assert [c for c, _ in errors(root)] == ["idDoesNotExist"]


@pytest.mark.parametrize("verb", ["ListIdentifiers", "ListRecords"])
def test_from_until(oai: FlaskClient, corpus: Corpus, verb: str) -> None:
    """Both bounds are inclusive, at either granularity: a day covers all its seconds, a
    date-time all its microseconds."""
    day2 = datetime(2024, 3, 2, tzinfo=UTC)
    cases = [
        ({"from_": "2024-03-02"}, corpus.matching(start=day2)),
        ({"until": "2024-03-01"}, corpus.matching(end=day2)),
        ({"from_": "2024-03-01", "until": "2024-03-01"}, corpus.matching(end=day2)),
        # until=12:00:01 includes ds-a05 at 12:00:01.000500
        (
            {"from_": "2024-03-01T12:00:01Z", "until": "2024-03-01T12:00:01Z"},
            {"ds-a04", "ds-a05"},
        ),
        ({"until": "2024-03-01T12:00:00Z"}, {"ds-a01", "ds-a02", "ds-a03"}),
        (
            {"from_": "2024-03-01T23:59:59Z", "until": "2024-03-02T12:00:00Z"},
            {"ds-a09", "ds-b01", "ds-b02"},
        ),
        ({"from_": "2024-03-02T12:00:31Z"}, {"ds-b04", "ds-b05", "ds-b06"}),
        ({"from_": "2024-03-01T15:00:00Z", "set": "origin:peer-a"}, {"ds-a07", "ds-b02"}),
        (
            {"until": "2024-03-01T15:00:00Z", "set": "access:open"},
            {"ds-a01", "ds-a03", "ds-a06", "ds-a07", "ds-a08"},
        ),
        ({"from_": "2030-01-01"}, set()),
    ]
    for args, want in cases:
        if not want:
            root = call(oai, verb=verb, metadataPrefix="oai_dc", **args)
            assert [c for c, _ in errors(root)] == ["noRecordsMatch"]
            continue
        got = harvest(oai, verb, metadataPrefix="oai_dc", **args)
        assert sorted(got.ids) == sorted(want), args
        assert len(got.ids) == len(set(got.ids))


def test_get_and_post_answer_alike(oai: FlaskClient, corpus: Corpus) -> None:
    args = {"verb": "ListRecords", "metadataPrefix": "oai_datacite", "set": "access:closed"}
    got = [call(oai, m, **args) for m in METHODS]
    for root in got:
        root.find("oai:responseDate", NS).text = ""
        token = root.find("oai:ListRecords/oai:resumptionToken", NS)
        assert token is None  # two records: one page
    assert etree.tostring(got[0]) == etree.tostring(got[1])
