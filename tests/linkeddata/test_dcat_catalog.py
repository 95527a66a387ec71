"""Reading one page of another catalog (node/linkeddata/dcat_catalog.py) from Turtle bodies:
blank-node datasets and their names, undated literals, Hydra paging that disagrees with itself,
and what counts as a page worth following. The reader over HTTP is tested in
tests/federation/test_dcat_source.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from node.linkeddata.dcat_catalog import CatalogPage, CatalogPageError

URL = "http://peer.example/catalog"
PREFIXES = """
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix hydra: <http://www.w3.org/ns/hydra/core#> .
@prefix ldp: <http://www.w3.org/ns/ldp#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""


def page(turtle: str, url: str = URL) -> CatalogPage:
    return CatalogPage.parse((PREFIXES + turtle).encode(), "text/turtle", url=url)


def test_a_blank_node_dataset_goes_by_its_landing_page_and_reads_as_a_record() -> None:
    p = page(
        """
        <> dcat:dataset [ a dcat:Dataset ; dct:title "Zebrafish heart" ;
              dcat:landingPage <http://peer.example/ds/7> ;
              dct:modified "2024-03-05" ; dct:issued "2023-01-02T10:00:00Z"^^xsd:dateTime ] ,
            [ a dcat:Dataset ; dct:title "No name" ] .
        """
    )
    named, unnamed = sorted(p.datasets(), key=lambda d: d.remote_id is None)
    assert named.remote_id == "http://peer.example/ds/7"
    assert not named.has_iri
    assert unnamed.remote_id is None
    read = p.read_dataset(named, origin_node="peer")
    assert read.dataset.title == "Zebrafish heart"
    assert read.dataset.provenance.origin_node == "peer"
    # a plain literal date is read as ISO 8601, at midnight UTC
    assert read.modified == datetime(2024, 3, 5, tzinfo=UTC)
    assert read.issued == datetime(2023, 1, 2, 10, tzinfo=UTC)
    assert read.landing_page == "http://peer.example/ds/7"
    with pytest.raises(ValueError, match="no name"):
        p.read_dataset(unnamed, origin_node="peer")


def test_a_dataset_without_title_cannot_be_read_and_says_so() -> None:
    p = page("<http://peer.example/ds/1> a dcat:Dataset .")
    (item,) = p.datasets()
    assert item.remote_id == "http://peer.example/ds/1"
    assert item.has_iri
    with pytest.raises(ValueError, match="no dct:title"):
        p.read_dataset(item, origin_node="peer")


def test_the_next_page_is_absolute_and_the_pages_own_view_wins() -> None:
    assert page("<> hydra:next <catalog?page=2> .").next_page(URL) == URL + "?page=2"
    assert page('<> hydra:nextPage "?page=3" .').next_page(URL) == URL + "?page=3"
    assert page("<> a dcat:Catalog .").next_page(URL) is None
    two = page("<> hydra:next <catalog?page=2> . <other> hydra:next <catalog?page=9> .")
    assert two.next_page(URL) == URL + "?page=2"
    ambiguous = page("<a> hydra:next <catalog?page=2> . <b> hydra:next <catalog?page=9> .")
    with pytest.raises(CatalogPageError, match=r"several next pages .*page=2.*page=9"):
        ambiguous.next_page(URL)


def test_listed_members_and_what_is_worth_following() -> None:
    fdp = page(
        """
        <> a ldp:DirectContainer ; ldp:hasMemberRelation dcat:dataset ;
           ldp:contains <http://peer.example/ds/1> , <http://peer.example/ds/2> .
        <http://peer.example/ds/2> a dcat:Dataset ; dct:title "Described here" .
        """
    )
    # ds/2 is described on the page: only ds/1 needs a GET of its own
    assert fdp.listed_links() == ["http://peer.example/ds/1"]
    assert fdp.describes_dataset_or_catalog(URL)
    container = page("<> a ldp:BasicContainer .")
    assert container.describes_dataset_or_catalog(URL)
    assert not container.describes_dataset_or_catalog("http://peer.example/elsewhere")
    assert not page("<> dct:title 'A web page' .").describes_dataset_or_catalog(URL)


def test_a_body_that_does_not_parse_names_the_parsers_complaint() -> None:
    with pytest.raises(CatalogPageError, match="text/turtle"):
        CatalogPage.parse(b"<> a dcat:Catalog", "text/turtle", url=URL)
