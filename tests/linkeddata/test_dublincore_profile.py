"""oai_dc: the official OAI-PMH oai_dc XSD, record → XML → record."""

from __future__ import annotations

import pytest
from ld_helpers import BASE_URL, NODE_ID, assert_carries, xml_schema
from lxml import etree

from node.linkeddata.dublincore import (
    DC,
    DC_FIELDS,
    from_oai_dc,
    oai_dc_element,
    to_oai_dc,
)
from node.linkeddata.xmlsafe import parse_xml
from node.records import Dataset

XSD = "oai-pmh/oai_dc.xsd"


@pytest.fixture(params=["curated", "harvested", "draft"])
def record(request: pytest.FixtureRequest) -> Dataset:
    return request.getfixturevalue(request.param)


def test_valid_against_the_official_xsd(record: Dataset) -> None:
    schema = xml_schema(XSD)
    doc = etree.fromstring(to_oai_dc(record, base_url=BASE_URL))
    assert schema.validate(doc), schema.error_log


def test_unknown_element_is_invalid(curated: Dataset) -> None:
    schema = xml_schema(XSD)
    doc = oai_dc_element(curated, base_url=BASE_URL)
    etree.SubElement(doc, f"{{{DC}}}organism").text = "Mus musculus"  # not a DC element
    assert not schema.validate(doc)


def test_content(curated: Dataset, harvested: Dataset) -> None:
    doc = oai_dc_element(curated, base_url=BASE_URL)

    def values(name: str) -> list[str]:
        return [e.text for e in doc.findall(f"{{{DC}}}{name}")]

    assert values("identifier") == [
        f"{BASE_URL}/ark:/99999/fk4curated7",
        f"{BASE_URL}/datasets/ds-curated",
    ]
    assert values("creator") == ["Doe, Jane", "Roe, Richard", "Poe, Ann"]
    assert values("rights") == [
        "https://spdx.org/licenses/CC-BY-4.0",
        "info:eu-repo/semantics/restrictedAccess",
    ]
    assert values("relation")[0] == "https://doi.org/10.1038/s41592-019-0686-2"
    assert "Mus musculus" in values("subject")
    assert values("type") == ["Dataset"]
    embargoed = oai_dc_element(harvested, base_url=BASE_URL)
    dates = [e.text for e in embargoed.findall(f"{{{DC}}}date")]
    assert dates == ["2024-05-02", "info:eu-repo/date/embargoEnd/2026-01-01"]


def test_round_trip_is_lossless(curated: Dataset, harvested: Dataset) -> None:
    for ds, origin in ((curated, NODE_ID), (harvested, "peer-node")):
        back = from_oai_dc(to_oai_dc(ds, base_url=BASE_URL), origin_node=origin)
        days = frozenset({"issued", "embargo_end"})
        assert_carries(ds, back, DC_FIELDS, day_precision=days)
        # dc:subject merges keywords and term labels; they all read back as keywords.
        terms = [t.label for t in (*ds.subjects, *ds.imaging_methods, *ds.organisms)]
        assert back.keywords == [*ds.keywords, *terms]


def test_element_reads_back_too(curated: Dataset) -> None:
    back = from_oai_dc(oai_dc_element(curated, base_url=BASE_URL), origin_node=NODE_ID)
    assert back.id == curated.id


def test_refusals() -> None:
    with pytest.raises(ValueError, match="expected .*oai_dc/}dc"):
        from_oai_dc(b"<dc/>", origin_node=NODE_ID)
    with pytest.raises(ValueError, match="no dc:title"):
        from_oai_dc(
            b'<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/"/>',
            origin_node=NODE_ID,
        )
    with pytest.raises(ValueError, match="more than the 100 byte limit"):
        parse_xml(b"<a>" + b"x" * 200 + b"</a>", "oai_dc XML", max_bytes=100)
