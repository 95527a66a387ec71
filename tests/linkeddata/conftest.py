"""Records for the linked-data tests: real images extracted from the sample files, datasets
aggregated from them as the harvester does, completed the way a curator would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ld_helpers import BASE_URL, NODE_ID, extract_samples

from node.linkeddata.context import NodeInfo
from node.ontologies import resolve_imaging_method, resolve_organism
from node.records import (
    DataAccess,
    DataLocation,
    Dataset,
    Funding,
    Image,
    Lifecycle,
    Person,
    Provenance,
    Term,
    aggregate_images,
)


@pytest.fixture(scope="session")
def node_info() -> NodeInfo:
    return NodeInfo(
        id=NODE_ID,
        name="Test Imaging Node",
        base_url=BASE_URL,
        contact_email="imaging@node.test",
        description="The imaging facility's catalog, made by the test suite.",
        country="DEU",
        ror="https://ror.org/04t3en479",
    )


@pytest.fixture(scope="session")
def sample_images() -> list[Image]:
    """OME-TIFF, CZI and ND2 images read from tests/data/samples by the real extractors."""
    images = extract_samples("ome-tiff", "czi", "nd2")
    assert {im.format for im in images} == {"OME-TIFF", "CZI", "ND2"}
    return [im.model_copy(update={"dataset_id": "ds-curated"}) for im in images]


@pytest.fixture(scope="session")
def curated(sample_images: list[Image]) -> Dataset:
    """A published dataset of this node with every field a curator fills."""
    ds = Dataset(
        id="ds-curated",
        identifier="ark:/99999/fk4curated7",
        title="Mitosis in HeLa and mouse fibroblasts",
        description="Live-cell confocal time lapses of dividing cells, two stains.",
        creators=[
            Person(
                name="Doe, Jane",
                orcid="0000-0002-1825-0097",
                affiliation="https://ror.org/04t3en479",
                role="ProjectLeader",
            ),
            Person(name="Roe, Richard", orcid="0000-0001-5109-3700", affiliation="Cell Lab"),
            Person(name="Poe, Ann"),
        ],
        contributors=[
            Person(name="Moe, Max", orcid="0000-0003-1419-2405", role="DataCurator"),
            Person(name="Imaging core team", affiliation="https://ror.org/04t3en479"),
        ],
        keywords=["mitosis", "live imaging", "HeLa"],
        subjects=[Term(label="Cell biology", iri="http://edamontology.org/topic_2229")],
        organisms=[resolve_organism("human"), resolve_organism("mouse")],
        imaging_methods=[
            resolve_imaging_method("confocal microscopy"),
            resolve_imaging_method("spinning disk confocal microscopy"),
        ],
        license="CC-BY-4.0",
        created=datetime(2023, 11, 5, 9, 30, tzinfo=UTC),
        issued=datetime(2024, 2, 1, 8, 0, tzinfo=UTC),
        modified=datetime(2024, 3, 1, 12, 0, 30, tzinfo=UTC),
        publisher="Test Imaging Node",
        funding=[
            Funding(
                funder="Deutsche Forschungsgemeinschaft",
                funder_id="https://ror.org/018mejw64",
                award="SFB 1234",
            ),
            Funding(funder="Example Foundation", funder_id="https://doi.org/10.13039/100000001"),
        ],
        related_publications=["10.1038/s41592-019-0686-2", "https://example.org/preprint/42"],
        version="2",
        data_location=DataLocation(
            path="group/project/mitosis", url="https://omero.node.test/webclient/?show=project-7"
        ),
        data_access=DataAccess.restricted,
        access_contact="data-requests@node.test",
        lifecycle=Lifecycle.published,
        provenance=Provenance(origin_node=NODE_ID, source="microscopy"),
    )
    return aggregate_images(ds, sample_images)


@pytest.fixture(scope="session")
def harvested() -> Dataset:
    """A record harvested from a peer: DOI, embargoed data, one format, no images here."""
    return Dataset(
        id="ds-peer-1",
        identifier="10.5281/zenodo.1234567",
        title="Zebrafish heart light-sheet recordings",
        description="Beating hearts of 5 dpf larvae.",
        creators=[Person(name="Smith, Kim", orcid="0000-0002-9079-593X")],
        keywords=["heart", "zebrafish"],
        organisms=[resolve_organism("Danio rerio")],
        imaging_methods=[resolve_imaging_method("SPIM")],
        license="CC0-1.0",
        issued=datetime(2024, 5, 2, tzinfo=UTC),
        modified=datetime(2024, 6, 1, 7, 15, tzinfo=UTC),
        embargo_end=datetime(2026, 1, 1, tzinfo=UTC),
        publisher="Peer University Imaging",
        formats=["OME-TIFF"],
        total_size=987_654_321,
        file_count=12,
        image_count=12,
        data_access=DataAccess.embargoed,
        access_contact="https://peer.example.org/request-access",
        lifecycle=Lifecycle.published,
        provenance=Provenance(
            origin_node="peer-node",
            harvested_via=["peer-node"],
            source_record_url="https://peer.example.org/datasets/ds-peer-1",
        ),
    )


@pytest.fixture(scope="session")
def draft() -> Dataset:
    """A freshly harvested draft: only what the files and the folder gave."""
    return Dataset(
        id="ds-draft",
        title="plate-3",
        modified=datetime(2024, 1, 2, tzinfo=UTC),
        provenance=Provenance(origin_node=NODE_ID, source="microscopy"),
    )
