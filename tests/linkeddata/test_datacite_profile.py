"""DataCite 4.6 XML: the official kernel-4.6 and 4.7 XSDs, record → XML → record, hostile XML."""

from __future__ import annotations

import pytest
from ld_helpers import BASE_URL, NODE_ID, assert_carries, xml_schema
from lxml import etree

from node.linkeddata.context import NodeInfo
from node.linkeddata.datacite import DATACITE_FIELDS, NS, from_datacite_xml, to_datacite_xml
from node.records import Dataset, Person

KERNELS = ["datacite/kernel-4.6/metadata.xsd", "datacite/kernel-4.7/metadata.xsd"]
D = {"d": NS}


@pytest.fixture(params=["curated", "harvested", "draft"])
def record(request: pytest.FixtureRequest) -> Dataset:
    return request.getfixturevalue(request.param)


def _xml(ds: Dataset, node_info: NodeInfo) -> bytes:
    return to_datacite_xml(ds, base_url=BASE_URL, node=node_info)


@pytest.mark.parametrize("kernel", KERNELS)
def test_valid_against_the_official_xsd(record: Dataset, node_info: NodeInfo, kernel: str) -> None:
    schema = xml_schema(kernel)
    doc = etree.fromstring(_xml(record, node_info))
    assert schema.validate(doc), schema.error_log


def test_missing_title_is_invalid(curated: Dataset, node_info: NodeInfo) -> None:
    schema = xml_schema(KERNELS[0])
    doc = etree.fromstring(_xml(curated, node_info))
    titles = doc.find("d:titles", D)
    doc.remove(titles)
    assert not schema.validate(doc)
    assert "titles" in str(schema.error_log)


def test_unknown_contributor_type_is_invalid(curated: Dataset, node_info: NodeInfo) -> None:
    schema = xml_schema(KERNELS[0])
    doc = etree.fromstring(_xml(curated, node_info))
    doc.find("d:contributors/d:contributor", D).set("contributorType", "Photographer")
    assert not schema.validate(doc)


def test_identifiers(
    curated: Dataset, harvested: Dataset, draft: Dataset, node_info: NodeInfo
) -> None:
    def identifier(ds: Dataset) -> tuple[str | None, str | None]:
        el = etree.fromstring(_xml(ds, node_info)).find("d:identifier", D)
        return el.get("identifierType"), el.text

    assert identifier(harvested) == ("DOI", "10.5281/zenodo.1234567")
    assert identifier(curated) == ("ARK", "ark:/99999/fk4curated7")
    assert identifier(draft) == ("URL", f"{BASE_URL}/datasets/ds-draft")


def test_content(curated: Dataset, node_info: NodeInfo) -> None:
    doc = etree.fromstring(_xml(curated, node_info))
    creator = doc.find("d:creators/d:creator", D)
    ident = creator.find("d:nameIdentifier", D)
    assert (ident.get("nameIdentifierScheme"), ident.text) == (
        "ORCID",
        "https://orcid.org/0000-0002-1825-0097",
    )
    subjects = {s.text: s.attrib for s in doc.findall("d:subjects/d:subject", D)}
    assert subjects["confocal microscopy"]["subjectScheme"] == "FBbi"
    assert subjects["confocal microscopy"]["valueURI"].endswith("FBbi_00000251")
    assert subjects["Mus musculus"]["valueURI"].endswith("NCBITaxon_10090")
    rights = [r.attrib for r in doc.findall("d:rightsList/d:rights", D)]
    assert rights[0]["rightsIdentifier"] == "CC-BY-4.0"
    assert rights[0]["rightsURI"] == "https://spdx.org/licenses/CC-BY-4.0"
    assert rights[1]["rightsURI"] == "info:eu-repo/semantics/restrictedAccess"
    related = doc.find("d:relatedIdentifiers/d:relatedIdentifier", D)
    assert (related.get("relatedIdentifierType"), related.text) == (
        "DOI",
        "10.1038/s41592-019-0686-2",
    )
    funder = doc.find("d:fundingReferences/d:fundingReference/d:funderIdentifier", D)
    assert funder.get("funderIdentifierType") == "ROR"
    publisher = doc.find("d:publisher", D)
    assert publisher.get("publisherIdentifier") == node_info.ror
    assert doc.find("d:publicationYear", D).text == "2024"


def test_round_trip_is_lossless(curated: Dataset, harvested: Dataset, node_info: NodeInfo) -> None:
    for ds, origin in ((curated, NODE_ID), (harvested, "peer-node")):
        back = from_datacite_xml(_xml(ds, node_info), origin_node=origin)
        assert_carries(ds, back, DATACITE_FIELDS)


def test_free_text_roles_become_other(curated: Dataset, node_info: NodeInfo) -> None:
    ds = curated.model_copy(update={"contributors": [Person(name="A", role="did the stains")]})
    doc = etree.fromstring(_xml(ds, node_info))
    assert doc.find("d:contributors/d:contributor", D).get("contributorType") == "Other"
    assert from_datacite_xml(_xml(ds, node_info), origin_node=NODE_ID).contributors[0].role is None


def test_draft_without_creators_is_unavailable_not_invented(
    draft: Dataset, node_info: NodeInfo
) -> None:
    xml = _xml(draft, node_info)
    assert b"<creatorName>(:unav)</creatorName>" in xml
    assert from_datacite_xml(xml, origin_node=NODE_ID).creators == []


HOSTILE = [
    (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<resource xmlns="http://datacite.org/schema/kernel-4"><titles><title>&b;</title>'
        b"</titles></resource>",
        "declares a DTD",
    ),
    (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<resource xmlns="http://datacite.org/schema/kernel-4"><titles><title>&x;</title>'
        b"</titles></resource>",
        "declares a DTD",
    ),
    (b"<resource><titles>", "not well-formed"),
    (b"<other xmlns='urn:x'/>", "expected {http://datacite.org/schema/kernel-4}resource"),
]


@pytest.mark.parametrize(("data", "reason"), HOSTILE)
def test_hostile_or_broken_xml_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        from_datacite_xml(data, origin_node=NODE_ID)
    assert "root:" not in str(info.value)  # the passwd file never reaches a message
