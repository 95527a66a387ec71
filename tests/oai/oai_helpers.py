"""Helpers for the OAI-PMH tests: the official XSDs as one validator, a harvest loop that follows
resumption tokens, and a catalog holding every kind of record the endpoint must (not) show."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from threading import Thread
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from werkzeug.serving import make_server

from node.oai.formats import FAIRNODE_NS, FAIRNODE_SCHEMA_FILE
from node.records import (
    DataAccess,
    Dataset,
    Lifecycle,
    Person,
    Provenance,
    Visibility,
)

OAI = "http://www.openarchives.org/OAI/2.0/"
NS = {
    "oai": OAI,
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "odc": "http://schema.datacite.org/oai/oai-1.1/",
    "dcite": "http://datacite.org/schema/kernel-4",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "oid": "http://www.openarchives.org/OAI/2.0/oai-identifier",
}
VALIDATORS = Path(__file__).resolve().parents[1] / "data" / "validators"
HOST = "node.test"  # the host of the test configuration's base_url
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
PAGE = 3  # records per OAI page in these tests

# RDF/XML has no XML Schema, but the OAI-PMH XSD validates the metadata element's child
# strictly. This shim, written here (it is not an official validator), only declares that an
# rdf:RDF element exists; the dcat_ap payload itself is checked as RDF (tests/oai/test_verbs.py).
RDF_SHIM = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
    targetNamespace="http://www.w3.org/1999/02/22-rdf-syntax-ns#" elementFormDefault="qualified">
  <xs:element name="RDF">
    <xs:complexType>
      <xs:sequence>
        <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:anyAttribute namespace="##any" processContents="lax"/>
    </xs:complexType>
  </xs:element>
</xs:schema>"""
RDF_SHIM_URL = "urn:fairnode:test:rdf-shim.xsd"

# Every namespace a response may hold, each with its official schema (local copies, see
# tests/data/validators/SOURCES.txt). DataCite's payload element is laxly typed, so importing
# kernel-4.6 makes the envelope validate the DataCite resource inside oai_datacite too.
IMPORTS = {
    OAI: VALIDATORS / "oai-pmh" / "OAI-PMH.xsd",
    NS["oai_dc"]: VALIDATORS / "oai-pmh" / "oai_dc.xsd",
    NS["oid"]: VALIDATORS / "oai-pmh" / "oai-identifier.xsd",
    NS["odc"]: VALIDATORS / "datacite" / "oai-1.1" / "oai.xsd",
    NS["dcite"]: VALIDATORS / "datacite" / "kernel-4.6" / "metadata.xsd",
    # Ours, shipped in the package and served at /oai/fairnode-record-1.xsd.
    FAIRNODE_NS: FAIRNODE_SCHEMA_FILE,
}


class _ShimResolver(etree.Resolver):
    def resolve(self, url: str, pubid: str | None, context: Any) -> Any:
        if url == RDF_SHIM_URL:
            return self.resolve_string(RDF_SHIM, context)
        return None


@cache
def response_schema() -> etree.XMLSchema:
    """The OAI-PMH 2.0 XSD with the XSDs of every metadata format and description served."""
    imports = "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{path.as_uri()}"/>'
        for ns, path in IMPORTS.items()
    )
    imports += f'<xs:import namespace="{NS["rdf"]}" schemaLocation="{RDF_SHIM_URL}"/>'
    driver = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        f'targetNamespace="urn:fairnode:test:all">{imports}</xs:schema>'
    )
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_ShimResolver())
    return etree.XMLSchema(etree.fromstring(driver.encode(), parser))


@cache
def xsd(relative: str) -> etree.XMLSchema:
    """One official XSD (with its local includes); loading never uses the network."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(VALIDATORS / relative), parser))


def valid(body: bytes) -> etree._Element:
    """The root of an OAI-PMH response, asserted valid against the official schemas."""
    root = etree.fromstring(body)
    schema = response_schema()
    assert schema.validate(root), f"{schema.error_log}\n{body[:3000]!r}"
    return root


def call(client: FlaskClient, method: str = "GET", **args: str | list[str]) -> etree._Element:
    """One OAI-PMH request through the app (``from_`` stands for ``from``); the response is
    checked for status, media type and schema validity."""
    params = {("from" if k == "from_" else k): v for k, v in args.items()}
    if method == "GET":
        resp = client.get("/oai", query_string=params)
    else:
        resp = client.post("/oai", data=params)
    assert resp.status_code == 200, resp.data[:500]
    assert resp.content_type == "text/xml; charset=utf-8"
    return valid(resp.data)


def errors(root: etree._Element) -> list[tuple[str, str]]:
    return [(e.get("code"), e.text or "") for e in root.findall("oai:error", NS)]


def request_attrs(root: etree._Element) -> dict[str, str]:
    return dict(root.find("oai:request", NS).attrib)


def identifier(dataset_id: str) -> str:
    return f"oai:{HOST}:{dataset_id}"


def dataset_id(oai_id: str) -> str:
    prefix = f"oai:{HOST}:"
    assert oai_id.startswith(prefix), oai_id
    return oai_id[len(prefix) :]


@dataclass
class Harvest:
    """What a list harvest returned: every header in order, and every page."""

    headers: list[etree._Element] = field(default_factory=list)
    pages: list[etree._Element] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [dataset_id(h.findtext("oai:identifier", namespaces=NS)) for h in self.headers]

    @property
    def deleted(self) -> set[str]:
        return {
            dataset_id(h.findtext("oai:identifier", namespaces=NS))
            for h in self.headers
            if h.get("status") == "deleted"
        }


def first_page(client: FlaskClient, verb: str, **args: str) -> tuple[Harvest, str | None]:
    h = Harvest()
    return h, add_page(h, call(client, verb=verb, **args), verb)


def next_page(client: FlaskClient, h: Harvest, verb: str, token: str) -> str | None:
    return add_page(h, call(client, verb=verb, resumptionToken=token), verb)


def add_page(h: Harvest, root: etree._Element, verb: str) -> str | None:
    assert not errors(root), errors(root)
    h.pages.append(root)
    body = root.find(f"oai:{verb}", NS)
    if verb == "ListRecords":
        h.headers.extend(body.findall("oai:record/oai:header", NS))
    else:
        h.headers.extend(body.findall("oai:header", NS))
    token = body.find("oai:resumptionToken", NS)
    return token.text if token is not None and token.text else None


def harvest(client: FlaskClient, verb: str, **args: str) -> Harvest:
    """Follow the resumption tokens to the end of the list."""
    h, token = first_page(client, verb, **args)
    while token:
        token = next_page(client, h, verb, token)
    return h


# ------------------------------------------------------------------------------ the corpus


@dataclass
class Corpus:
    """The records written by ``populate``: what must be served, and what never."""

    datasets: dict[str, Dataset] = field(default_factory=dict)
    served: set[str] = field(default_factory=set)  # published or withdrawn, public
    deleted: set[str] = field(default_factory=set)  # withdrawn, public
    hidden: set[str] = field(default_factory=set)  # never shown to harvesters

    def matching(
        self,
        *,
        origin: str | None = None,
        access: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> set[str]:
        """The served ids of a set / [start, end) range."""
        out = set()
        for i in self.served:
            ds = self.datasets[i]
            if origin and ds.provenance.origin_node != origin:
                continue
            if access and ds.data_access.value != access:
                continue
            if start and ds.modified < start:
                continue
            if end and ds.modified >= end:
                continue
            out.add(i)
        return out


def make(
    dataset_id: str,
    modified: datetime,
    *,
    origin: str = "test-node",
    lifecycle: Lifecycle = Lifecycle.published,
    visibility: Visibility = Visibility.public,
    access: DataAccess = DataAccess.open,
    **fields: Any,
) -> Dataset:
    values: dict[str, Any] = {
        "id": dataset_id,
        "title": f"Dataset {dataset_id}",
        "description": f"Confocal stacks of {dataset_id}.",
        "creators": [Person(name="Doe, Jane", orcid="0000-0002-1825-0097")],
        "keywords": ["mitosis", "HeLa"],
        "license": "CC-BY-4.0",
        "issued": modified,
        "modified": modified,
        "lifecycle": lifecycle,
        "visibility": visibility,
        "data_access": access,
        "formats": ["OME-TIFF"],
        "provenance": Provenance(origin_node=origin, source="microscopy"),
    }
    if lifecycle is Lifecycle.withdrawn:
        values["withdrawn_reason"] = "duplicate of another dataset"
    if access is DataAccess.embargoed:
        values["embargo_end"] = datetime(2030, 1, 1, tzinfo=UTC)
    values.update(fields)
    return Dataset(**values)


def populate(catalog: Any) -> Corpus:
    """Fifteen public records (two withdrawn) over two days, from two origins, in all four
    access levels, several sharing a datestamp to the microsecond; and one record of every kind
    that must never be shown."""
    c = Corpus()
    day2 = T0 + timedelta(days=1)
    specs: list[tuple[str, datetime, dict[str, Any]]] = [
        ("ds-a01", T0, {}),
        ("ds-a02", T0, {"access": DataAccess.restricted}),  # same instant as a01, a03
        ("ds-a03", T0, {"origin": "peer-a"}),
        ("ds-a04", T0 + timedelta(seconds=1), {"access": DataAccess.embargoed}),
        ("ds-a05", T0 + timedelta(seconds=1, microseconds=500), {"access": DataAccess.closed}),
        ("ds-a06", T0 + timedelta(minutes=5), {"identifier": "ark:/99999/fk4a06"}),
        ("ds-a07", T0 + timedelta(hours=3), {"origin": "peer-a"}),
        ("ds-a08", T0 + timedelta(hours=3), {"lifecycle": Lifecycle.withdrawn}),
        ("ds-a09", T0 + timedelta(hours=11, minutes=59, seconds=59), {}),
        ("ds-b01", day2, {"access": DataAccess.restricted}),
        ("ds-b02", day2, {"origin": "peer-a", "access": DataAccess.closed}),
        ("ds-b03", day2 + timedelta(seconds=30), {"lifecycle": Lifecycle.withdrawn}),
        ("ds-b04", day2 + timedelta(hours=1), {"identifier": "10.5281/zenodo.1234567"}),
        ("ds-b05", day2 + timedelta(hours=1), {"access": DataAccess.embargoed}),
        ("ds-b06", day2 + timedelta(hours=2), {}),
    ]
    for dataset_id, modified, kw in specs:
        ds = catalog.add(make(dataset_id, modified, **kw))
        c.datasets[ds.id] = ds
        c.served.add(ds.id)
        if ds.lifecycle is Lifecycle.withdrawn:
            c.deleted.add(ds.id)
    hidden = [
        ("ds-h-draft", {"lifecycle": Lifecycle.draft}),
        ("ds-h-private", {"visibility": Visibility.private}),
        ("ds-h-institution", {"visibility": Visibility.institution}),
        ("ds-h-federation", {"visibility": Visibility.federation, "origin": "peer-a"}),
        ("ds-h-withdrawn-private", {"lifecycle": Lifecycle.withdrawn, "visibility": "private"}),
        ("ds-h-draft-institution", {"lifecycle": Lifecycle.draft, "visibility": "institution"}),
    ]
    for n, (dataset_id, kw) in enumerate(hidden):
        ds = catalog.add(make(dataset_id, T0 + timedelta(seconds=n), **kw))
        c.datasets[ds.id] = ds
        c.hidden.add(ds.id)
    return c


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """The app on a free loopback port (werkzeug's threaded server); yields the /oai URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/oai"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
