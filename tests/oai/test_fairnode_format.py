"""The `fairnode` metadata format: the canonical record as JSON, for node-to-node harvest."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from oai_helpers import NS, Corpus, call, harvest

from node.linkeddata.context import NodeInfo
from node.oai import views
from node.oai.formats import FAIRNODE_NS, FAIRNODE_SCHEMA_FILE, fairnode_doc, fairnode_text
from node.records import Dataset, Provenance

NODE = NodeInfo(id="test-node", name="Test", base_url="http://node.test")


def test_the_schema_is_served_where_list_metadata_formats_says(
    oai: FlaskClient, corpus: Corpus
) -> None:
    root = call(oai, verb="ListMetadataFormats")
    [fmt] = [
        f
        for f in root.findall("oai:ListMetadataFormats/oai:metadataFormat", NS)
        if f.findtext("oai:metadataPrefix", namespaces=NS) == "fairnode"
    ]
    assert fmt.findtext("oai:metadataNamespace", namespaces=NS) == FAIRNODE_NS
    url = fmt.findtext("oai:schema", namespaces=NS)
    assert url == "http://node.test/oai/fairnode-record-1.xsd"
    r = oai.get(url.removeprefix("http://node.test"))
    assert r.status_code == 200
    assert r.content_type.startswith("application/xml")
    assert r.data == FAIRNODE_SCHEMA_FILE.read_bytes()
    etree.XMLSchema(etree.fromstring(r.data))  # a valid XML Schema


def test_text_xml_cannot_hold_is_escaped_and_reads_back() -> None:
    ds = Dataset(
        id="ds-odd",
        title="Noncharacter \ufffe and tab\tand bell \x07 in a title",
        provenance=Provenance(origin_node="test-node"),
        thumbnail="im-1.png",
    )
    el = fairnode_doc(ds.to_json(), NODE)
    xml = etree.tostring(el)
    back = etree.fromstring(xml)
    assert back.get("version") == "1"
    doc = json.loads(back.text)
    assert Dataset.model_validate(doc) == ds
    # The stored text as it is cannot go into XML: the raw path says so, and the view falls
    # back to the path above.
    assert fairnode_text(ds.model_dump_json(), NODE) is None
    plain = fairnode_text(ds.model_copy(update={"title": "Plain"}).model_dump_json(), NODE)
    assert Dataset.model_validate_json(plain.text).title == "Plain"


def test_the_native_format_has_its_own_page_size(
    app: Flask, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes read `fairnode` in bigger pages than other formats (FORMAT_PAGE_SIZES); the Flask
    setting, when given, still sets every format's page size."""
    monkeypatch.setattr(views, "FORMAT_PAGE_SIZES", {"fairnode": 4})
    app.config.pop(views.PAGE_SIZE_SETTING, None)
    client = app.test_client()
    native = harvest(client, "ListRecords", metadataPrefix="fairnode")
    assert [len(p.findall("oai:ListRecords/oai:record", NS)) for p in native.pages][:-1] == [4] * (
        len(native.pages) - 1
    )
    assert sorted(native.ids) == sorted(corpus.served)
    dc = harvest(client, "ListRecords", metadataPrefix="oai_dc")
    assert len(dc.pages) == 1  # PAGE_SIZE (100) holds the whole test corpus
    assert sorted(dc.ids) == sorted(corpus.served)
    app.config[views.PAGE_SIZE_SETTING] = 3
    assert len(harvest(client, "ListRecords", metadataPrefix="fairnode").pages) == -(
        -len(corpus.served) // 3
    )
