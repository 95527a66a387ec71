"""The search tests' corpus of realistic records and a config maker for each backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.config import Config, parse_config
from node.ontologies import resolve_imaging_method, resolve_organism
from node.records import (
    DataAccess,
    Dataset,
    ImageSummary,
    Lifecycle,
    Person,
    Provenance,
    Visibility,
)
from node.search.backend import SearchBackend

NODE = "test-node"
OTHER = "other-node"
BACKENDS = ["tantivy", "elasticsearch"]


def _day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 9, 0, tzinfo=UTC)


def _record(
    ds_id: str,
    title: str,
    *,
    organism: str | None = None,
    method: str | None = None,
    modified: datetime,
    origin: str = NODE,
    summary: dict[str, Any] | None = None,
    **fields: Any,
) -> Dataset:
    return Dataset(
        id=ds_id,
        title=title,
        organisms=[resolve_organism(organism)] if organism else [],
        imaging_methods=[resolve_imaging_method(method)] if method else [],
        modified=modified,
        lifecycle=fields.pop("lifecycle", Lifecycle.published),
        visibility=fields.pop("visibility", Visibility.public),
        provenance=Provenance(origin_node=origin),
        image_summary=ImageSummary(**(summary or {})),
        **fields,
    )


def corpus() -> list[Dataset]:
    """Twelve records covering every query feature; d07 and d08 must never be found
    anonymously (private, draft), d09 comes from another node."""
    return [
        _record(
            "d01",
            "Spinning disk imaging of mouse hippocampus slices",
            description="Organotypic hippocampus cultures of adult mice, live imaging.",
            organism="mouse",
            method="spinning disk confocal microscopy",
            modified=_day(2024, 1, 10),
            keywords=["neurons", "synapse"],
            creators=[Person(name="Ada Lovelace")],
            instruments=["Yokogawa CSU-W1"],
            formats=["OME-TIFF"],
            license="CC-BY-4.0",
            data_access=DataAccess.open,
            summary={
                "channel_names": ["nuclei", "GFP"],
                "fluors": ["DAPI", "EGFP"],
                "magnifications": [63.0],
                "max_channels": 2,
                "has_z": True,
                "acquired_from": _day(2023, 3, 1),
                "acquired_to": _day(2023, 3, 2),
            },
        ),
        _record(
            "d02",
            "Zebrafish heart development",
            description="Beating hearts of zebrafish larvae at 3 dpf.",
            organism="zebrafish",
            method="laser scanning confocal microscopy",
            modified=_day(2024, 2, 1),
            creators=[Person(name="Rosalind Franklin")],
            instruments=["Zeiss LSM 980"],
            formats=["CZI"],
            license="CC-BY-4.0",
            summary={
                "fluors": ["mCherry"],
                "magnifications": [20.0],
                "max_channels": 1,
                "has_t": True,
                "acquired_from": _day(2023, 6, 5),
                "acquired_to": _day(2023, 6, 5),
            },
        ),
        _record(
            "d03",
            "Drosophila embryo gastrulation time lapse",
            description="Whole embryos imaged every 30 s during gastrulation.",
            organism="Drosophila melanogaster",
            method="light sheet fluorescence microscopy",
            modified=_day(2023, 11, 20),
            formats=["OME-Zarr"],
            license="CC0-1.0",
            data_access=DataAccess.open,
            summary={
                "fluors": ["mCherry", "EGFP"],
                "magnifications": [20.0],
                "max_channels": 2,
                "has_z": True,
                "has_t": True,
                "acquired_from": _day(2022, 5, 1),
                "acquired_to": _day(2022, 5, 3),
            },
        ),
        _record(
            "d04",
            "HeLa cells stained for tubulin",
            description="Fixed HeLa cells, three channels, widefield.",
            organism="human",
            method="fluorescence microscopy",
            modified=_day(2023, 5, 2),
            instruments=["Nikon Ti2"],
            formats=["ND2"],
            license="CC-BY-4.0",
            summary={
                "channel_names": ["DNA", "tubulin", "actin"],
                "fluors": ["DAPI", "Alexa Fluor 488", "Alexa Fluor 647"],
                "magnifications": [40.0],
                "max_channels": 3,
                "acquired_from": _day(2021, 9, 9),
                "acquired_to": _day(2021, 9, 9),
            },
        ),
        _record(
            "d05",
            "Brightfield reference of yeast colonies",
            organism="Saccharomyces cerevisiae",
            method="bright-field microscopy",
            modified=_day(2022, 8, 15),
            formats=["TIFF"],
            license="CC0-1.0",
            summary={"magnifications": [10.0], "max_channels": 1},
        ),
        _record(
            "d06",
            "Mouse kidney electron micrographs",
            description="Ultrastructure of glomeruli.",
            organism="mouse",
            method="transmission electron microscopy",
            modified=_day(2023, 1, 5),
            formats=["TIFF"],
            license="CC-BY-4.0",
            data_access=DataAccess.open,
            summary={"max_channels": 1},
        ),
        _record(
            "d07",
            "Private mouse hippocampus pilot",
            organism="mouse",
            method="spinning disk confocal microscopy",
            modified=_day(2024, 3, 1),
            visibility=Visibility.private,
            summary={"fluors": ["DAPI"], "max_channels": 1},
        ),
        _record(
            "d08",
            "Draft mouse hippocampus atlas",
            organism="mouse",
            method="confocal microscopy",
            modified=_day(2024, 3, 2),
            lifecycle=Lifecycle.draft,
            summary={"fluors": ["DAPI"], "max_channels": 1},
        ),
        _record(
            "d09",
            "Zebrafish retina confocal stacks",
            description="Retinal layers of adult zebrafish.",
            organism="zebrafish",
            method="confocal microscopy",
            modified=_day(2023, 7, 7),
            origin=OTHER,
            formats=["OME-TIFF"],
            license="CC-BY-4.0",
            summary={
                "fluors": ["EGFP"],
                "magnifications": [63.0],
                "max_channels": 1,
                "has_z": True,
                "acquired_from": _day(2023, 4, 1),
                "acquired_to": _day(2023, 4, 1),
            },
        ),
        _record(
            "d10",
            "Élégans neurons: C. elegans ventral cord",
            organism="Caenorhabditis elegans",
            method="confocal microscopy",
            modified=_day(2021, 2, 2),
            formats=["OME-TIFF"],
            license="CC-BY-4.0",
            summary={"fluors": ["GCaMP6s"], "max_channels": 1, "has_t": True},
        ),
        _record(
            "d11",
            "Mitochondria dynamics in fibroblasts",
            description="MitoTracker time lapse of primary fibroblasts.",
            organism="human",
            method="spinning disk confocal microscopy",
            modified=_day(2024, 2, 20),
            formats=["OME-TIFF"],
            license="CC-BY-4.0",
            summary={
                "fluors": ["MitoTracker Red"],
                "magnifications": [100.0],
                "max_channels": 1,
                "has_t": True,
                "acquired_from": _day(2024, 1, 1),
                "acquired_to": _day(2024, 1, 31),
            },
        ),
        _record(
            "d12",
            "Escaping test <script>alert(1)</script> & friends",
            description="Notes with <b>markup</b> & ampersands about script tags.",
            modified=_day(2020, 1, 1),
            license="MIT",
            summary={"max_channels": 1},
        ),
    ]


def search_config(tmp_path: Path, *, backend: str, es_url: str | None = None) -> Config:
    data: dict[str, Any] = {
        "node": {
            "id": NODE,
            "name": "Test Imaging Node",
            "base_url": "http://node.test",
            "data_dir": str(tmp_path / "data"),
        },
        "search": {"backend": backend, "batch_size": 5, "writer_memory_mb": 32},
    }
    if es_url:
        data["search"].update({"url": es_url, "index": f"t-{uuid.uuid4().hex[:12]}"})
    return parse_config(data, env=False)


def make_backend(kind: str, tmp_path: Path, es_url: str | None = None) -> SearchBackend:
    """A fresh, empty backend of ``kind`` (its own tantivy folder or Elasticsearch alias)."""
    from node.search.factory import open_backend

    return open_backend(search_config(tmp_path, backend=kind, es_url=es_url))
