"""schema.org / Bioschemas Dataset JSON-LD: the profile's own JSON Schema, the schema.org 30.0
vocabulary and context (local copies), and record → JSON-LD → record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft7Validator, FormatChecker
from ld_helpers import (
    BASE_URL,
    assert_carries,
    bioschemas_dataset_profile,
    bioschemas_dataset_profile_as_published,
    bioschemas_profile_defects,
    schema_context,
    schema_vocabulary,
)
from rdflib import RDF, Literal, URIRef

from node.linkeddata.context import NodeInfo
from node.linkeddata.namespaces import SCHEMA
from node.linkeddata.schemaorg import (
    SCHEMAORG_FIELDS,
    dataset_from_jsonld,
    dataset_jsonld,
    graph_from_jsonld,
    schema_contexts,
)
from node.records import DataAccess, Dataset, Image

# Recommended Bioschemas properties a record cannot fill: an alias and a source dataset.
NOT_APPLICABLE = {"alternateName", "isBasedOn"}


@pytest.fixture(params=["curated", "harvested", "draft"])
def record(request: pytest.FixtureRequest) -> Dataset:
    return request.getfixturevalue(request.param)


def _doc(ds: Dataset, node_info: NodeInfo, images: list[Image] | None = None) -> dict[str, Any]:
    return dataset_jsonld(ds, images, base_url=BASE_URL, node=node_info)


def _profile_errors(doc: dict[str, Any]) -> list[str]:
    validator = Draft7Validator(bioschemas_dataset_profile(), format_checker=FormatChecker())
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_profile_has_only_the_known_defect() -> None:
    # The publisher may be a Person or an Organization, but with ``oneOf`` an
    # Organization with a name also matches the Person definition and is refused. If the
    # profile copy changes, this says whether the reading as anyOf is still needed.
    assert bioschemas_profile_defects(bioschemas_dataset_profile_as_published()) == {"publisher"}


def test_documents_follow_the_bioschemas_profile(
    curated: Dataset, harvested: Dataset, node_info: NodeInfo, sample_images: list[Image]
) -> None:
    profile = bioschemas_dataset_profile()
    full = _doc(curated, node_info, sample_images)
    for doc in (full, _doc(harvested, node_info)):
        assert _profile_errors(doc) == []
        assert set(profile["required"]) <= set(doc)
    # A fully curated record fills every recommended property that applies to it.
    assert set(profile["recommended"]) - set(full) == NOT_APPLICABLE


def test_draft_without_licence_misses_only_the_licence(draft: Dataset, node_info: NodeInfo) -> None:
    # A draft has no licence yet: the profile must say so (proves the validator is live), and
    # nothing else may be missing.
    errors = _profile_errors(_doc(draft, node_info))
    assert errors == [": 'license' is a required property"]


def test_wrong_types_are_reported(curated: Dataset, node_info: NodeInfo) -> None:
    doc = _doc(curated, node_info)
    doc["datePublished"] = "1 February 2024"
    doc["url"] = 42
    errors = _profile_errors(doc)
    assert any(e.startswith("datePublished:") for e in errors)
    assert any(e.startswith("url:") for e in errors)


def test_parsed_with_the_local_schema_org_context(
    curated: Dataset, node_info: NodeInfo, sample_images: list[Image]
) -> None:
    doc = _doc(curated, node_info, sample_images)
    g = graph_from_jsonld(json.dumps(doc), contexts=schema_contexts(schema_context()))
    s = URIRef(f"{BASE_URL}/datasets/ds-curated")
    fbbi = URIRef("http://purl.obolibrary.org/obo/FBbi_00000251")
    expected = [
        (s, RDF.type, SCHEMA.Dataset),
        (s, SCHEMA.name, Literal(curated.title)),
        (s, SCHEMA.license, URIRef("https://spdx.org/licenses/CC-BY-4.0")),
        (s, SCHEMA.identifier, Literal(f"{BASE_URL}/ark:/99999/fk4curated7")),
        (s, SCHEMA.measurementTechnique, fbbi),
        (fbbi, RDF.type, SCHEMA.DefinedTerm),
        (fbbi, SCHEMA.termCode, Literal("FBbi:00000251")),
        (s, SCHEMA.about, URIRef("http://purl.obolibrary.org/obo/NCBITaxon_10090")),
        (URIRef("http://purl.obolibrary.org/obo/NCBITaxon_10090"), RDF.type, SCHEMA.Taxon),
        (s, SCHEMA.creator, URIRef("https://orcid.org/0000-0002-1825-0097")),
        (s, SCHEMA.includedInDataCatalog, URIRef(f"{BASE_URL}/catalog")),
        (URIRef(f"{BASE_URL}/catalog"), RDF.type, SCHEMA.DataCatalog),
        (s, SCHEMA.keywords, Literal("mitosis")),
        (
            s,
            URIRef("http://purl.org/dc/terms/conformsTo"),
            URIRef("https://bioschemas.org/profiles/Dataset/1.0-RELEASE"),
        ),
    ]
    missing = [t for t in expected if t not in g]
    assert missing == []


def test_every_schema_org_term_exists_in_release_30(
    curated: Dataset, harvested: Dataset, node_info: NodeInfo, sample_images: list[Image]
) -> None:
    vocabulary = schema_vocabulary()
    contexts = schema_contexts(schema_context())
    used = set()
    for doc in (_doc(curated, node_info, sample_images), _doc(harvested, node_info)):
        g = graph_from_jsonld(doc, contexts=contexts)
        used |= {str(p) for p in g.predicates() if str(p).startswith(str(SCHEMA))}
        used |= {str(o) for o in g.objects(None, RDF.type) if str(o).startswith(str(SCHEMA))}
    unknown = sorted(used - vocabulary)
    assert used
    assert unknown == []


def test_remote_contexts_are_never_fetched(curated: Dataset, node_info: NodeInfo) -> None:
    doc = _doc(curated, node_info)
    doc["@context"] = ["https://schema.org/", "https://evil.example.org/context.jsonld"]
    with pytest.raises(ValueError, match=r"evil\.example\.org.*has no local copy"):
        graph_from_jsonld(doc, contexts=schema_contexts(schema_context()))


def test_round_trip_is_lossless(
    curated: Dataset, harvested: Dataset, node_info: NodeInfo, sample_images: list[Image]
) -> None:
    for ds, images in ((curated, sample_images), (harvested, None)):
        text = json.dumps(_doc(ds, node_info, images))
        back = dataset_from_jsonld(text)
        days = frozenset({"issued", "created", "modified"})
        assert_carries(ds, back, SCHEMAORG_FIELDS, day_precision=days)


def test_record_without_keywords_keeps_its_terms_apart(
    curated: Dataset, node_info: NodeInfo
) -> None:
    bare = curated.model_copy(update={"keywords": [], "subjects": []})
    doc = _doc(bare, node_info)
    assert [k["name"] for k in doc["keywords"]] == [
        "confocal microscopy",
        "spinning disk confocal microscopy",
        "Homo sapiens",
        "Mus musculus",
    ]
    back = dataset_from_jsonld(doc)
    assert (back.keywords, back.subjects) == ([], [])
    assert back.imaging_methods == bare.imaging_methods


def test_contributor_roles_and_open_access(curated: Dataset, node_info: NodeInfo) -> None:
    doc = _doc(curated.model_copy(update={"data_access": DataAccess.open}), node_info)
    assert doc["contributor"][0]["@type"] == "Role"
    assert doc["contributor"][0]["roleName"] == "DataCurator"
    assert doc["isAccessibleForFree"] is True
    assert dataset_from_jsonld(doc).data_access == "open"
    restricted = _doc(curated, node_info)
    assert restricted["isAccessibleForFree"] is False
    assert "data-requests@node.test" in restricted["conditionsOfAccess"]


def test_document_without_dataset_names_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r'expected one schema.org Dataset node \("@type"'):
        dataset_from_jsonld({"@context": "https://schema.org/", "@type": "Person", "name": "x"})
