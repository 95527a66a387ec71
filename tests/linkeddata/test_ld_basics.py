"""The shared pieces: media types and serialisation, NodeInfo, PIDs, namespaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from ld_helpers import BASE_URL
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic

from node.config import parse_config
from node.linkeddata.context import NodeInfo, dataset_id_from_iri, dataset_iri
from node.linkeddata.identifiers import (
    PidKind,
    bare_doi,
    pid_from_url,
    pid_kind,
    pid_url,
    publication_iri,
    publication_value,
)
from node.linkeddata.mediatypes import (
    FORMAT_NAMES,
    RDF_MEDIA_TYPES,
    media_type_of,
    parse,
    serialise,
)
from node.linkeddata.namespaces import DCTERMS, SCHEMA, new_graph
from node.records import Dataset


@pytest.mark.parametrize("media_type", list(RDF_MEDIA_TYPES))
def test_serialise_and_parse_are_inverse(curated: Dataset, media_type: str) -> None:
    g = new_graph()
    s = URIRef(f"{BASE_URL}/datasets/x")
    g.add((s, DCTERMS.title, Literal("Zellen – µm, 日本")))  # non-ASCII survives every format
    g.add((s, SCHEMA.version, Literal(2)))
    data = serialise(g, f"{media_type}; charset=utf-8")
    assert isinstance(data, bytes)
    assert isomorphic(parse(data, media_type), g)


def test_turtle_uses_the_prefixes() -> None:
    g = new_graph()
    g.add((URIRef("http://x.test/a"), DCTERMS.title, Literal("t")))
    assert b"dct:title" in serialise(g, "text/turtle")
    assert b'"dct": "http://purl.org/dc/terms/"' in serialise(g, "application/ld+json")


def test_unknown_media_type_is_named() -> None:
    with pytest.raises(ValueError, match=r"'text/html' is not an RDF media type .*text/turtle"):
        serialise(Graph(), "text/html")
    assert media_type_of("Application/LD+JSON ; profile=x") == "application/ld+json"
    assert set(FORMAT_NAMES.values()) == set(RDF_MEDIA_TYPES)


def test_parse_errors_name_the_media_type() -> None:
    with pytest.raises(ValueError, match="text/turtle: could not be parsed"):
        parse(b"<a> <b> .", "text/turtle")
    with pytest.raises(ValueError, match="has no local copy"):
        parse(b'{"@context": "https://example.org/x", "@id": "http://a"}', "application/ld+json")


def test_node_info_from_config(tmp_path: Path) -> None:
    config = parse_config(
        {
            "node": {
                "id": "my-node",
                "name": "My Node",
                "base_url": "https://imaging.example.org",
                "data_dir": str(tmp_path),
                "contact_email": "help@example.org",
            }
        },
        env=False,
    )
    info = NodeInfo.from_config(config)
    assert (info.id, info.name, info.base_url, info.contact_email) == (
        "my-node",
        "My Node",
        "https://imaging.example.org",
        "help@example.org",
    )
    assert info.iri == "https://imaging.example.org/#node"
    assert info.catalog_iri == "https://imaging.example.org/catalog"


def test_node_info_checks_its_values() -> None:
    with pytest.raises(ValueError, match="must not end with '/'"):
        NodeInfo(id="n", name="N", base_url="http://x.test/")
    with pytest.raises(ValueError, match="'ftp://x' is not an http"):
        NodeInfo(id="n", name="N", base_url="ftp://x")
    info = NodeInfo(id="n", name="N", base_url="http://x.test", ror="04t3en479", country="de")
    assert info.ror == "https://ror.org/04t3en479"
    assert info.eu_country is None  # alpha-2 cannot name an EU Country table entry
    assert NodeInfo(id="n", name="N", base_url="http://x.test", country="nld").eu_country == "NLD"


def test_dataset_iris() -> None:
    iri = dataset_iri(BASE_URL, "ds a/b")
    assert iri == f"{BASE_URL}/datasets/ds%20a%2Fb"
    assert dataset_id_from_iri(iri) == "ds a/b"
    assert dataset_id_from_iri("https://example.org/other/x") is None


def test_pids() -> None:
    assert pid_kind("10.5281/zenodo.1") is PidKind.doi
    assert pid_kind("ark:/99999/fk4abc") is PidKind.ark
    assert pid_kind("ark:99999/fk4abc") is PidKind.ark
    with pytest.raises(ValueError, match="'hdl:1/2' is not a PID"):
        pid_kind("hdl:1/2")
    assert pid_url("10.5281/zenodo.1", BASE_URL) == "https://doi.org/10.5281/zenodo.1"
    assert pid_url("ark:/99999/fk4abc", BASE_URL) == f"{BASE_URL}/ark:/99999/fk4abc"
    assert pid_from_url(f"{BASE_URL}/ark:/99999/fk4abc") == "ark:/99999/fk4abc"
    assert pid_from_url("https://doi.org/10.5281/zenodo.1") == "10.5281/zenodo.1"
    assert pid_from_url(f"{BASE_URL}/datasets/x") is None


def test_publications() -> None:
    assert bare_doi("doi:10.1000/xyz") == "10.1000/xyz"
    assert bare_doi("http://dx.doi.org/10.1000/xyz") == "10.1000/xyz"
    assert publication_iri("10.1000/xyz") == "https://doi.org/10.1000/xyz"
    assert publication_iri("https://example.org/p") == "https://example.org/p"
    assert publication_value("https://doi.org/10.1000/xyz") == "10.1000/xyz"
