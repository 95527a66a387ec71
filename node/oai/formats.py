"""The metadata formats the OAI-PMH endpoint disseminates, each from one linked-data profile.

- ``oai_dc``: simple Dublin Core (``node.linkeddata.dublincore``), which every harvester reads.
- ``oai_datacite``: the DataCite Metadata Schema 4.6 ``resource`` in DataCite's OAI wrapper
  (oai_datacite 1.1: ``schemaVersion``, ``datacentreSymbol``, ``payload``), the way DataCite's
  own OAI-PMH service and InvenioRDM/Zenodo publish it.
- ``dcat_ap``: the whole record as DCAT-AP 3.0.1 RDF/XML (``node.linkeddata.dcat``), for any
  DCAT-aware harvester. RDF/XML has no XML Schema; ``schema`` names the DCAT-AP 3.0.1 SHACL
  shapes the graph conforms to and ``metadataNamespace`` is DCAT-AP's own namespace.
- ``fairnode``: the canonical record itself, as JSON inside one element (schema
  ``schemas/fairnode-record-1.xsd``, served by the node at ``/oai/fairnode-record-1.xsd``),
  what one fairnode node harvests from another. It carries every field with no mapping loss,
  and costs a fraction of DCAT: rdflib takes ~3.4 ms to write and ~5.4 ms to read one record's
  DCAT graph, which caps a node-to-node harvest near 150 records/s on two cores; the JSON is
  written from the stored document without building the record (docs/architecture.md).

Every format is available for every record, so ``ListMetadataFormats`` answers the same for
any record that has metadata.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from node.linkeddata import datacite
from node.linkeddata.context import NodeInfo
from node.linkeddata.dcat import dataset_graph
from node.linkeddata.dublincore import OAI_DC, oai_dc_element
from node.linkeddata.mediatypes import serialise
from node.linkeddata.namespaces import DCAT_AP_3
from node.records import Dataset

OAI_DATACITE_NS = "http://schema.datacite.org/oai/oai-1.1/"
OAI_DATACITE_SCHEMA = "http://schema.datacite.org/oai/oai-1.1/oai.xsd"
DATACITE_SCHEMA_VERSION = re.search(r"kernel-(\d+\.\d+)", datacite.SCHEMA_LOCATION).group(1)
DCAT_AP_SHACL = "https://semiceu.github.io/DCAT-AP/releases/3.0.1/shacl/dcat-ap-SHACL.ttl"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
# Our own serialisations: trusted, but parsed without network or entities all the same.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)


FAIRNODE_NS = "https://w3id.org/fairnode/ns/record/1"
FAIRNODE_SCHEMA_FILE = Path(__file__).with_name("schemas") / "fairnode-record-1.xsd"
FAIRNODE_SCHEMA_PATH = "/oai/fairnode-record-1.xsd"  # served by node.oai.views
FAIRNODE_VERSION = "1"


@dataclass(frozen=True)
class MetadataFormat:
    """One ``metadataFormat`` of ListMetadataFormats and how a record is written in it.

    ``schema`` is a URL, or a path on this node (starting with "/"). ``from_doc``, when set,
    writes the record straight from its stored JSON document, without building the record."""

    prefix: str
    schema: str
    namespace: str
    element: Callable[[Dataset, NodeInfo], etree._Element]
    from_doc: Callable[[dict[str, Any], NodeInfo], etree._Element] | None = None
    # the stored JSON text itself, unparsed (the fastest path; None: not possible)
    from_text: Callable[[str, NodeInfo], etree._Element | None] | None = None

    def schema_url(self, base_url: str) -> str:
        return base_url + self.schema if self.schema.startswith("/") else self.schema


def oai_dc(ds: Dataset, node: NodeInfo) -> etree._Element:
    return oai_dc_element(ds, base_url=node.base_url)


def oai_datacite(ds: Dataset, node: NodeInfo) -> etree._Element:
    root = etree.Element(f"{{{OAI_DATACITE_NS}}}oai_datacite", nsmap={None: OAI_DATACITE_NS})
    root.set(f"{{{XSI}}}schemaLocation", f"{OAI_DATACITE_NS} {OAI_DATACITE_SCHEMA}")
    etree.SubElement(root, f"{{{OAI_DATACITE_NS}}}schemaVersion").text = DATACITE_SCHEMA_VERSION
    # The symbol of the DataCite repository that registered the record: the node stands for
    # itself (it need not be a DataCite member), so its id.
    etree.SubElement(root, f"{{{OAI_DATACITE_NS}}}datacentreSymbol").text = node.id
    payload = etree.SubElement(root, f"{{{OAI_DATACITE_NS}}}payload")
    xml = datacite.to_datacite_xml(ds, base_url=node.base_url, node=node)
    payload.append(etree.fromstring(xml, _PARSER))
    return root


def dcat_ap(ds: Dataset, node: NodeInfo) -> etree._Element:
    # Distributions are sized from the record's totals (the images are not loaded per record).
    graph = dataset_graph(ds, base_url=node.base_url, node=node)
    return etree.fromstring(serialise(graph, "application/rdf+xml"), _PARSER)


def _fairnode_element(text: str) -> etree._Element:
    el = etree.Element(f"{{{FAIRNODE_NS}}}record", nsmap={None: FAIRNODE_NS})
    el.set("version", FAIRNODE_VERSION)
    el.set("mediaType", "application/json")
    el.text = text
    return el


def fairnode_doc(doc: dict[str, Any], node: NodeInfo) -> etree._Element:
    """The ``fairnode`` record of a stored document: the canonical JSON. (Its ``thumbnail``
    names a file of this node's thumbnail folder: a harvesting node drops it.)"""
    try:
        return _fairnode_element(orjson.dumps(doc).decode())
    except ValueError:
        # lxml refuses characters XML 1.0 cannot hold (U+FFFE, lone surrogates): JSON escapes
        # them when asked to write ASCII only. Slower, so only then.
        return _fairnode_element(json.dumps(doc, ensure_ascii=True))


def fairnode_text(text: str, node: NodeInfo) -> etree._Element | None:
    """The ``fairnode`` record straight from the stored JSON text (no parse, no re-dump: a
    third of a serving node's work per record); None when XML cannot hold the text as it is."""
    try:
        return _fairnode_element(text)
    except ValueError:
        return None


def fairnode_record(ds: Dataset, node: NodeInfo) -> etree._Element:
    return fairnode_doc(ds.to_json(), node)


FORMATS: dict[str, MetadataFormat] = {
    f.prefix: f
    for f in (
        MetadataFormat("oai_dc", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC, oai_dc),
        MetadataFormat("oai_datacite", OAI_DATACITE_SCHEMA, OAI_DATACITE_NS, oai_datacite),
        MetadataFormat("dcat_ap", DCAT_AP_SHACL, str(DCAT_AP_3), dcat_ap),
        MetadataFormat(
            "fairnode",
            FAIRNODE_SCHEMA_PATH,
            FAIRNODE_NS,
            fairnode_record,
            fairnode_doc,
            fairnode_text,
        ),
    )
}
