"""DCAT-AP 3.0.1: the official SHACL shapes on real records, and record → RDF → record."""

from __future__ import annotations

import pytest
from ld_helpers import (
    BASE_URL,
    DANGLING_3_0_1,
    DCAT_AP,
    assert_carries,
    dangling_property_shapes,
    shacl,
    violations,
)
from rdflib import RDF, Graph, Literal, URIRef
from rdflib.collection import Collection

from node.linkeddata.context import CatalogPage, NodeInfo
from node.linkeddata.dcat import (
    DCAT_FIELDS,
    catalog_graph,
    dataset_from_graph,
    dataset_graph,
)
from node.linkeddata.mediatypes import RDF_MEDIA_TYPES, parse, serialise
from node.linkeddata.namespaces import (
    ADMS,
    BIBO,
    DCAT,
    DCTERMS,
    FOAF,
    HYDRA,
    SKOS,
    VCARD,
)
from node.records import DataAccess, Dataset, Image

CORE = "dcat-ap-SHACL.ttl"  # DCAT-AP 3.0.1 release shapes: mandatory, cardinality, ranges
RECOMMENDED = "shapes_recommended.ttl"  # published with the 3.0.1 HTML spec: sh:Warning
VOCABULARIES = "mdr-vocabularies.shape.ttl"  # controlled vocabularies (EU tables, IANA)

# DCAT-AP orders the records unordered in RDF: these come back sorted.
UNORDERED = frozenset(
    {"keywords", "subjects", "organisms", "imaging_methods", "related_publications", "formats"}
)

# Recommended properties the node leaves out, and why (class or focus kind, property).
ALLOWED_RECOMMENDED = {
    # Microscopy images have no geographic coverage.
    (str(DCAT.Dataset), str(DCTERMS.spatial)),
    # Only for records whose files gave no acquisition date (the harvested one here).
    (str(DCAT.Dataset), str(DCTERMS.temporal)),
    # The catalog's country is an EU Country table IRI: its geometry lives in that table.
    (str(DCTERMS.Location), str(DCAT.bbox)),
    (str(DCTERMS.Location), str(DCAT.centroid)),
    # The node cannot know the planned availability of an institute's storage.
    (str(DCAT.Distribution), "http://data.europa.eu/r5r/availability"),
    # Formats without an EU file type (CZI, ND2): EDAM names them in dct:conformsTo instead.
    (str(DCAT.Distribution), str(DCTERMS["format"])),
    # ADMS publisher types classify organisations; there is none for a person.
    (str(FOAF.Person), str(DCTERMS.type)),
    # The ADMS licence type of an SPDX licence is not in the SPDX list.
    (str(DCTERMS.LicenseDocument), str(DCTERMS.type)),
    # Not node settings (yet): when the catalog started, the licence of its metadata.
    (str(DCAT.Catalog), str(DCTERMS.issued)),
    (str(DCAT.Catalog), str(DCTERMS.license)),
}
# Vocabulary warnings that are right for this node: it is not an EU body, and FBbi/NCBITaxon
# themes are deliberately outside the EU data-theme table (TECH is given as well).
ALLOWED_VOCABULARY = {str(DCTERMS.publisher), str(DCAT.theme)}


def _kind(result_types: frozenset[str]) -> str:
    kinds = (
        FOAF.Person,
        DCTERMS.LicenseDocument,
        DCTERMS.Location,
        DCAT.Distribution,
        DCAT.Catalog,
    )
    for kind in kinds:
        if str(kind) in result_types:
            return str(kind)
    return str(DCAT.Dataset) if str(DCAT.Dataset) in result_types else ",".join(result_types)


@pytest.fixture(params=["curated", "harvested", "draft"])
def record(request: pytest.FixtureRequest) -> Dataset:
    return request.getfixturevalue(request.param)


def _graph(ds: Dataset, node_info: NodeInfo, images: list[Image] | None = None) -> Graph:
    return dataset_graph(ds, images, base_url=BASE_URL, node=node_info)


# --------------------------------------------------------------------------- validation


def test_shapes_file_has_only_the_known_upstream_defect() -> None:
    # If SEMICeu fixes issue #448 (or the copy changes), this tells us to drop the workaround.
    raw = Graph().parse(DCAT_AP / CORE)
    assert dangling_property_shapes(raw) == DANGLING_3_0_1


def test_dataset_graphs_have_no_violation(
    record: Dataset, node_info: NodeInfo, sample_images: list[Image]
) -> None:
    images = sample_images if record.id == "ds-curated" else None
    g = _graph(record, node_info, images)
    for shapes_name in (CORE, VOCABULARIES):
        assert violations(g, shapes_name) == [], shapes_name


def test_catalog_graph_has_no_violation(
    curated: Dataset, harvested: Dataset, draft: Dataset, node_info: NodeInfo
) -> None:
    page = CatalogPage(
        url=f"{BASE_URL}/catalog?page=2",
        first=f"{BASE_URL}/catalog",
        previous=f"{BASE_URL}/catalog",
        next=f"{BASE_URL}/catalog?page=3",
        total_items=9,
    )
    g = catalog_graph([curated, harvested, draft], base_url=BASE_URL, node=node_info, page=page)
    for shapes_name in (CORE, VOCABULARIES):
        assert violations(g, shapes_name) == [], shapes_name


def test_recommended_properties_are_present(
    curated: Dataset, harvested: Dataset, node_info: NodeInfo, sample_images: list[Image]
) -> None:
    graphs = [
        _graph(curated, node_info, sample_images),
        _graph(harvested, node_info),
        catalog_graph([curated, harvested], base_url=BASE_URL, node=node_info),
    ]
    missing = set()
    for g in graphs:
        for r in shacl(g, RECOMMENDED):
            assert r.severity == "Warning", r
            missing.add((_kind(r.focus_types), r.path))
    assert missing <= ALLOWED_RECOMMENDED, missing - ALLOWED_RECOMMENDED


def test_vocabulary_warnings_are_the_expected_ones(
    curated: Dataset, node_info: NodeInfo, sample_images: list[Image]
) -> None:
    g = catalog_graph([curated], base_url=BASE_URL, node=node_info)
    g += _graph(curated, node_info, sample_images)
    results = shacl(g, VOCABULARIES)
    assert {r.severity for r in results} <= {"Warning"}
    assert {r.path for r in results} <= ALLOWED_VOCABULARY


@pytest.mark.parametrize(
    ("prop", "shape_path"),
    [(DCTERMS.title, DCTERMS.title), (DCTERMS.description, DCTERMS.description)],
)
def test_missing_mandatory_dataset_property_is_a_violation(
    curated: Dataset, node_info: NodeInfo, prop: URIRef, shape_path: URIRef
) -> None:
    g = _graph(curated, node_info)
    subject = URIRef(f"{BASE_URL}/datasets/ds-curated")
    g.remove((subject, prop, None))
    found = violations(g, CORE)
    assert [(r.focus, r.path) for r in found] == [(str(subject), str(shape_path))]


def test_catalog_without_publisher_is_a_violation(curated: Dataset, node_info: NodeInfo) -> None:
    g = catalog_graph([curated], base_url=BASE_URL, node=node_info)
    g.remove((URIRef(f"{BASE_URL}/catalog"), DCTERMS.publisher, None))
    found = violations(g, CORE)
    assert [(r.focus, r.path) for r in found] == [(f"{BASE_URL}/catalog", str(DCTERMS.publisher))]


def test_untyped_licence_is_a_range_violation(curated: Dataset, node_info: NodeInfo) -> None:
    g = _graph(curated, node_info)
    g.remove((URIRef("https://spdx.org/licenses/CC-BY-4.0"), RDF.type, None))
    found = violations(g, CORE)
    assert found
    assert {r.path for r in found} == {str(DCTERMS.license)}


# --------------------------------------------------------------------------- content


def test_dataset_graph_content(
    curated: Dataset, node_info: NodeInfo, sample_images: list[Image]
) -> None:
    g = _graph(curated, node_info, sample_images)
    s = URIRef(f"{BASE_URL}/datasets/ds-curated")
    assert (s, RDF.type, DCAT.Dataset) in g
    assert (s, DCTERMS.identifier, Literal("ds-curated")) in g
    assert (s, DCAT.landingPage, s) in g
    [pid] = g.objects(s, ADMS.identifier)
    assert g.value(pid, SKOS.notation) == Literal("ark:/99999/fk4curated7")
    themes = set(g.objects(s, DCAT.theme))
    assert {
        URIRef("http://purl.obolibrary.org/obo/FBbi_00000251"),
        URIRef("http://purl.obolibrary.org/obo/NCBITaxon_9606"),
        URIRef("http://publications.europa.eu/resource/authority/data-theme/TECH"),
    } <= themes
    creators = list(Collection(g, g.value(s, BIBO.authorList)))
    assert creators[:2] == [
        URIRef("https://orcid.org/0000-0002-1825-0097"),
        URIRef("https://orcid.org/0000-0001-5109-3700"),
    ]
    assert g.value(s, DCTERMS.accessRights) == URIRef(
        "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
    )
    contact = g.value(s, DCAT.contactPoint)
    assert g.value(contact, VCARD.hasEmail) == URIRef("mailto:data-requests@node.test")
    period = g.value(s, DCTERMS.temporal)
    assert g.value(period, DCAT.startDate) == Literal(curated.image_summary.acquired_from)
    dists = {str(g.value(d, DCTERMS.title)): d for d in g.objects(s, DCAT.distribution)}
    assert set(dists) == {"CZI", "ND2", "OME-TIFF"}
    tiff = dists["OME-TIFF"]
    assert g.value(tiff, DCAT.mediaType) == URIRef(
        "https://www.iana.org/assignments/media-types/image/tiff"
    )
    assert g.value(tiff, DCTERMS["format"]) == URIRef(
        "http://publications.europa.eu/resource/authority/file-type/TIFF"
    )
    assert g.value(tiff, DCTERMS.conformsTo) == URIRef("http://edamontology.org/format_3727")
    assert g.value(tiff, DCTERMS.license) == URIRef("https://spdx.org/licenses/CC-BY-4.0")
    assert g.value(tiff, DCAT.accessURL) == URIRef(curated.data_location.url)
    tiff_bytes = sum(
        {im.path: im.file_size for im in sample_images if im.format == "OME-TIFF"}.values()
    )
    assert int(g.value(tiff, DCAT.byteSize)) == tiff_bytes


def test_catalog_graph_content(curated: Dataset, harvested: Dataset, node_info: NodeInfo) -> None:
    page = CatalogPage(url=f"{BASE_URL}/catalog?cursor=abc", next=f"{BASE_URL}/catalog?cursor=def")
    g = catalog_graph([curated, harvested], base_url=BASE_URL, node=node_info, page=page)
    cat = URIRef(f"{BASE_URL}/catalog")
    assert set(g.objects(cat, DCAT.dataset)) == {
        URIRef(f"{BASE_URL}/datasets/ds-curated"),
        URIRef(f"{BASE_URL}/datasets/ds-peer-1"),
    }
    services = set(g.objects(cat, DCAT.service))
    assert URIRef(f"{BASE_URL}/api/v1/") in services
    assert g.value(cat, DCTERMS.modified) == Literal(harvested.modified)
    assert g.value(cat, DCTERMS.spatial) == URIRef(
        "http://publications.europa.eu/resource/authority/country/DEU"
    )
    view = g.value(cat, HYDRA.view)
    assert (view, RDF.type, HYDRA.PartialCollectionView) in g
    assert g.value(view, HYDRA.next) == URIRef(f"{BASE_URL}/catalog?cursor=def")
    # The peer's record names its own origin node as publisher, not this node.
    peer = g.value(URIRef(f"{BASE_URL}/datasets/ds-peer-1"), DCTERMS.publisher)
    assert g.value(peer, DCTERMS.identifier) == Literal("peer-node")


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("media_type", list(RDF_MEDIA_TYPES))
def test_round_trip_is_lossless(
    curated: Dataset,
    harvested: Dataset,
    node_info: NodeInfo,
    sample_images: list[Image],
    media_type: str,
) -> None:
    for ds, images in ((curated, sample_images), (harvested, None)):
        data = serialise(_graph(ds, node_info, images), media_type)
        parsed = parse(data, media_type)
        back = dataset_from_graph(parsed)
        assert_carries(ds, back, DCAT_FIELDS, unordered=UNORDERED)


def test_datasets_read_back_from_a_catalog_page(
    curated: Dataset, harvested: Dataset, node_info: NodeInfo
) -> None:
    g = catalog_graph([curated, harvested], base_url=BASE_URL, node=node_info)
    back = dataset_from_graph(g, f"{BASE_URL}/datasets/ds-peer-1")
    assert_carries(harvested, back, DCAT_FIELDS, unordered=UNORDERED)
    assert back.provenance.origin_node == "peer-node"


def test_draft_normalisations(draft: Dataset, node_info: NodeInfo) -> None:
    # What a bare draft gains on the way out (documented in DCAT_FIELDS and docs/mapping.md).
    back = dataset_from_graph(_graph(draft, node_info))
    assert "Microscopy dataset" in (back.description or "")
    assert back.access_contact == node_info.contact_email
    assert back.publisher == node_info.name
    assert (back.id, back.title, back.license, back.formats) == ("ds-draft", "plate-3", None, [])


def test_closed_and_embargoed_are_told_apart(harvested: Dataset, node_info: NodeInfo) -> None:
    closed = harvested.model_copy(update={"data_access": DataAccess.closed, "embargo_end": None})
    assert dataset_from_graph(_graph(closed, node_info)).data_access == "closed"
    assert dataset_from_graph(_graph(harvested, node_info)).data_access == "embargoed"


def test_graph_without_dataset_names_what_was_expected() -> None:
    g = Graph()
    g.add((URIRef("http://x.test/a"), RDF.type, DCAT.Catalog))
    with pytest.raises(ValueError, match=r"no dcat:Dataset.*http://www.w3.org/ns/dcat#Dataset"):
        dataset_from_graph(g)
    with pytest.raises(ValueError, match=r"<http://x.test/a> is not typed .*dcat#Dataset"):
        dataset_from_graph(g, "http://x.test/a")


def test_foreign_dataset_needs_an_origin() -> None:
    g = Graph()
    s = URIRef("https://ckan.example.org/dataset/abc")
    g.add((s, RDF.type, DCAT.Dataset))
    g.add((s, DCTERMS.title, Literal("Foreign")))
    g.add((s, DCTERMS.identifier, Literal("abc")))
    # A theme given by IRI only: the label comes from the node's own vocabulary.
    g.add((s, DCAT.theme, URIRef("http://purl.obolibrary.org/obo/NCBITaxon_10090")))
    with pytest.raises(ValueError, match="names no origin node"):
        dataset_from_graph(g)
    ds = dataset_from_graph(g, origin_node="ckan")
    assert (ds.id, ds.title, ds.provenance.origin_node) == ("abc", "Foreign", "ckan")
    assert [t.label for t in ds.organisms] == ["Mus musculus"]
