"""Real OAI-PMH harvesters over real HTTP: sickle, oaipmh-scythe and oaipmh (pyoai's maintained
fork) harvest the node served by werkzeug on a loopback port, across several resumption pages.
Each must get every public record exactly once, the withdrawn ones as deleted, with and
without sets and from/until, over GET and POST."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from lxml import etree
from oai_helpers import NS, PAGE, Corpus, dataset_id, live_server, make
from oaipmh.client import Client as PyoaiClient
from oaipmh.metadata import MetadataReader, MetadataRegistry, oai_dc_reader
from oaipmh_scythe import Scythe
from oaipmh_scythe.config import HTTPConfig
from rdflib import Graph
from sickle import Sickle

from node.records import Lifecycle

# (arguments, the ids expected): every combination pages through at least one token.
DAY2 = datetime(2024, 3, 2, tzinfo=UTC)


def _cases(corpus: Corpus) -> list[tuple[dict[str, str], set[str]]]:
    return [
        ({}, corpus.served),
        ({"set": "origin:test-node"}, corpus.matching(origin="test-node")),
        ({"set": "access:open"}, corpus.matching(access="open")),
        ({"set": "visibility:public"}, corpus.served),
        (
            {"from": "2024-03-01T12:00:01Z", "until": "2024-03-02T12:00:30Z"},
            {
                i
                for i in corpus.served
                if "2024-03-01T12:00:01" <= _stamp(corpus, i) <= "2024-03-02T12:00:30"
            },
        ),
        (
            {"from": "2024-03-02", "set": "origin:test-node"},
            corpus.matching(origin="test-node", start=DAY2),
        ),
        ({"until": "2024-03-01"}, corpus.matching(end=DAY2)),
    ]


def _stamp(corpus: Corpus, i: str) -> str:
    return corpus.datasets[i].modified.strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture
def server(oai_app: Flask) -> Iterator[str]:
    with live_server(oai_app) as url:
        yield url


# --------------------------------------------------------------------------- the three clients
# Each returns [(identifier, deleted)] for a list verb, following resumption tokens itself.

Harvester = Callable[[str, str, str, dict[str, str]], list[tuple[str, bool]]]


def sickle_get(url: str, verb: str, prefix: str, args: dict[str, str]) -> list[tuple[str, bool]]:
    return _sickle(Sickle(url, timeout=30), verb, prefix, args)


def sickle_post(url: str, verb: str, prefix: str, args: dict[str, str]) -> list[tuple[str, bool]]:
    return _sickle(Sickle(url, http_method="POST", timeout=30), verb, prefix, args)


def _sickle(s: Sickle, verb: str, prefix: str, args: dict[str, str]) -> list[tuple[str, bool]]:
    items = getattr(s, verb)(metadataPrefix=prefix, **args)
    if verb == "ListRecords":
        return [(r.header.identifier, r.deleted) for r in items]
    return [(h.identifier, h.deleted) for h in items]


def scythe_get(url: str, verb: str, prefix: str, args: dict[str, str]) -> list[tuple[str, bool]]:
    return _scythe(Scythe(url, http_config=HTTPConfig(timeout=30)), verb, prefix, args)


def scythe_post(url: str, verb: str, prefix: str, args: dict[str, str]) -> list[tuple[str, bool]]:
    config = HTTPConfig(http_method="POST", timeout=30)
    return _scythe(Scythe(url, http_config=config), verb, prefix, args)


def _scythe(sc: Scythe, verb: str, prefix: str, args: dict[str, str]) -> list[tuple[str, bool]]:
    kw = {"metadata_prefix": prefix, "from_": args.get("from"), "until": args.get("until")}
    kw["set_"] = args.get("set")
    with sc:
        if verb == "ListRecords":
            return [(r.header.identifier, r.deleted) for r in sc.list_records(**kw)]
        return [(h.identifier, h.deleted) for h in sc.list_identifiers(**kw)]


def _raw_reader(element: etree._Element) -> dict[str, list[etree._Element]]:
    return {"payload": list(element)}


def _pyoai(url: str, *, get: bool) -> PyoaiClient:
    registry = MetadataRegistry()
    registry.registerReader("oai_dc", oai_dc_reader)
    for prefix in ("oai_datacite", "dcat_ap", "fairnode"):
        registry.registerReader(prefix, MetadataReader(fields={}, namespaces={}))
    client = PyoaiClient(url, registry, force_http_get=get)
    client.updateGranularity()  # reads Identify: seconds
    return client


def pyoai_get(url: str, verb: str, prefix: str, args: dict[str, str]) -> list[tuple[str, bool]]:
    return _pyoai_list(_pyoai(url, get=True), verb, prefix, args)


def pyoai_post(url: str, verb: str, prefix: str, args: dict[str, str]) -> list[tuple[str, bool]]:
    return _pyoai_list(_pyoai(url, get=False), verb, prefix, args)


def _pyoai_list(
    client: PyoaiClient, verb: str, prefix: str, args: dict[str, str]
) -> list[tuple[str, bool]]:
    kw: dict[str, object] = {"metadataPrefix": prefix}
    # pyoai takes datetimes and writes them at the granularity Identify announced.
    for name, key in (("from", "from_"), ("until", "until")):
        if name in args:
            kw[key] = _as_datetime(args[name], end=name == "until")
    if "set" in args:
        kw["set"] = args["set"]
    if verb == "ListRecords":
        return [(h.identifier(), h.isDeleted()) for h, _md, _about in client.listRecords(**kw)]
    return [(h.identifier(), h.isDeleted()) for h in client.listIdentifiers(**kw)]


def _as_datetime(value: str, *, end: bool) -> datetime:
    """pyoai takes naive datetimes, meaning UTC (it asserts that they are naive)."""
    if len(value) == 10:  # a day: pyoai sends seconds, so the day's first or last second
        day = datetime.strptime(value, "%Y-%m-%d")
        return day.replace(hour=23, minute=59, second=59) if end else day
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")


HARVESTERS: dict[str, Harvester] = {
    "sickle-GET": sickle_get,
    "sickle-POST": sickle_post,
    "scythe-GET": scythe_get,
    "scythe-POST": scythe_post,
    "oaipmh-GET": pyoai_get,
    "oaipmh-POST": pyoai_post,
}


@pytest.mark.parametrize("client", list(HARVESTERS))
@pytest.mark.parametrize("verb", ["ListRecords", "ListIdentifiers"])
def test_full_harvest(server: str, corpus: Corpus, client: str, verb: str) -> None:
    harvest = HARVESTERS[client]
    for args, want in _cases(corpus):
        got = harvest(server, verb, "oai_dc", args)
        ids = [dataset_id(i) for i, _ in got]
        assert len(ids) == len(set(ids)), (args, ids)  # each record exactly once
        assert set(ids) == want, args
        assert {dataset_id(i) for i, deleted in got if deleted} == want & corpus.deleted, args
    assert len(corpus.served) > 3 * PAGE  # the full harvest needed several resumption pages


@pytest.mark.parametrize("client", ["sickle-GET", "scythe-POST", "oaipmh-GET"])
@pytest.mark.parametrize("prefix", ["oai_datacite", "dcat_ap", "fairnode"])
def test_harvest_other_formats(server: str, corpus: Corpus, client: str, prefix: str) -> None:
    got = HARVESTERS[client](server, "ListRecords", prefix, {})
    assert sorted(dataset_id(i) for i, _ in got) == sorted(corpus.served)


def test_sickle_reads_the_metadata(server: str, corpus: Corpus) -> None:
    s = Sickle(server, timeout=30)
    identify = s.Identify()
    assert identify.granularity == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.deletedRecord == "persistent"
    assert {f.metadataPrefix for f in s.ListMetadataFormats()} == {
        "oai_dc",
        "oai_datacite",
        "dcat_ap",
        "fairnode",
    }
    assert "origin:peer-a" in {x.setSpec for x in s.ListSets()}
    record = s.GetRecord(identifier="oai:node.test:ds-a06", metadataPrefix="oai_dc")
    assert record.metadata["title"] == ["Dataset ds-a06"]
    assert record.header.setSpecs == ["origin:test-node", "visibility:public", "access:open"]
    rdf = s.GetRecord(identifier="oai:node.test:ds-a06", metadataPrefix="dcat_ap")
    [payload] = rdf.xml.find(".//oai:metadata", NS)
    graph = Graph().parse(data=etree.tostring(payload), format="xml")
    assert len(graph) > 20
    deleted = s.GetRecord(identifier="oai:node.test:ds-a08", metadataPrefix="oai_dc")
    assert deleted.deleted


def test_scythe_reads_the_metadata(server: str, corpus: Corpus) -> None:
    with Scythe(server, http_config=HTTPConfig(timeout=30)) as sc:
        assert sc.identify().repositoryName == "Test Imaging Node"
        record = sc.get_record(identifier="oai:node.test:ds-b04", metadata_prefix="oai_datacite")
        resource = record.xml.find(".//dcite:resource", NS)
        assert resource.findtext("dcite:identifier", namespaces=NS) == "10.5281/zenodo.1234567"


def test_pyoai_reads_the_metadata(server: str, corpus: Corpus) -> None:
    client = _pyoai(server, get=False)
    header, metadata, _ = client.getRecord(
        identifier="oai:node.test:ds-a06", metadataPrefix="oai_dc"
    )
    assert metadata.getField("title") == ["Dataset ds-a06"]
    assert header.datestamp() == datetime(2024, 3, 1, 12, 5)
    assert {p for p, _, _ in client.listMetadataFormats()} == {
        "oai_dc",
        "oai_datacite",
        "dcat_ap",
        "fairnode",
    }
    assert ("access:closed", "Data not accessible (closed)", None) in list(client.listSets())


@pytest.mark.parametrize("client", ["sickle", "scythe", "oaipmh"])
def test_harvest_while_records_change(
    server: str,
    catalog,
    corpus: Corpus,
    client: str,
) -> None:
    """A real harvester iterating lazily while the catalog changes under it: after its first
    page, a served record and an unserved one are edited, one is withdrawn and one added. The
    list repeats nothing and holds every record unchanged during the harvest; the next
    incremental harvest brings the changes."""
    started = datetime.now(UTC).replace(microsecond=0)
    order = sorted(corpus.served, key=lambda i: (corpus.datasets[i].modified, i))
    items = _lazy(client, server)
    got: list[str] = []
    changed_unserved: set[str] = set()
    for n, (identifier, _deleted) in enumerate(items):
        got.append(dataset_id(identifier))
        if n == PAGE - 1:  # the first page is consumed: the next item needs a request
            now = datetime.now(UTC)
            first = corpus.datasets[order[0]]
            catalog.add(first.model_copy(update={"modified": now, "title": "edited"}))
            for i, update in (
                (order[5], {"title": "edited"}),
                (order[7], {"lifecycle": Lifecycle.withdrawn}),
            ):
                catalog.add(corpus.datasets[i].model_copy(update={"modified": now, **update}))
                changed_unserved.add(i)
            catalog.add(make("ds-new", now))
    assert len(got) == len(set(got))
    assert got == [i for i in order if i not in changed_unserved]
    later = HARVESTERS[f"{client}-GET"](
        server, "ListIdentifiers", "oai_dc", {"from": started.strftime("%Y-%m-%dT%H:%M:%SZ")}
    )
    assert {dataset_id(i) for i, _ in later} == {order[0], order[5], order[7], "ds-new"}
    assert [dataset_id(i) for i, deleted in later if deleted] == [order[7]]


def _lazy(client: str, url: str) -> Iterator[tuple[str, bool]]:
    """ListIdentifiers as the client's own lazy iterator (one request per page)."""
    if client == "sickle":
        for h in Sickle(url, timeout=30).ListIdentifiers(metadataPrefix="oai_dc"):
            yield h.identifier, h.deleted
    elif client == "scythe":
        with Scythe(url, http_config=HTTPConfig(timeout=30)) as sc:
            for h in sc.list_identifiers(metadata_prefix="oai_dc"):
                yield h.identifier, h.deleted
    else:
        for h in _pyoai(url, get=True).listIdentifiers(metadataPrefix="oai_dc"):
            yield h.identifier(), h.isDeleted()
