"""Records → API JSON: the one mapping per record type used by every JSON response.

The JSON is derived from the canonical record (node/records.py) and adds what a client needs to
follow links: landing page, API and thumbnail URLs, all built from the node's ``base_url``.
Physical pixel sizes are given twice on purpose: ``physical_size_um`` holds only trusted µm
values (null where unknown *or* suspicious), ``physical_size_detail`` keeps the original value,
unit, source and why it is not trusted, so that a curator can judge.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from node.records import AXES, Dataset, Image, Person


def _quote(record_id: str) -> str:
    return quote(record_id, safe="")


def thumbnail_url(image: Image, base_url: str = "") -> str | None:
    """Where the image's thumbnail is served, or None when it has none."""
    if not image.thumbnail:
        return None
    return f"{base_url}/thumbnails/{_quote(image.id)}.png"


def dataset_thumbnail_image_id(dataset: Dataset) -> str | None:
    """The id of the image whose thumbnail represents ``dataset``, or None.

    aggregate_images copies the first image thumbnail's file name, which the harvester writes
    as ``<image id>.png``; the thumbnail route then checks access to that image as usual.
    """
    name = dataset.thumbnail
    if not name or not name.endswith(".png"):
        return None
    return name[: -len(".png")]


def dataset_thumbnail_url(dataset: Dataset, base_url: str = "") -> str | None:
    """The thumbnail of a dataset: the one of its first image that has one."""
    image_id = dataset_thumbnail_image_id(dataset)
    return f"{base_url}/thumbnails/{_quote(image_id)}.png" if image_id else None


def _physical_size_detail(image: Image) -> dict[str, dict[str, Any] | None]:
    detail: dict[str, dict[str, Any] | None] = {}
    for axis in AXES:
        ps = image.physical_size.get(axis)
        detail[axis] = (
            None
            if ps is None
            else {
                "value_um": ps.value_um,
                "original_value": ps.original_value,
                "original_unit": ps.original_unit,
                "source": ps.source,
                "suspicious": ps.suspicious,
            }
        )
    return detail


def image_to_json(image: Image, *, base_url: str = "") -> dict[str, Any]:
    """The API representation of one image."""
    size = image.size.model_dump(mode="json") if image.size else None
    return {
        "id": image.id,
        "dataset_id": image.dataset_id,
        "name": image.name,
        "path": image.path,
        "files": list(image.files),
        "series": image.series,
        "format": image.format,
        "media_type": image.media_type,
        "file_size": image.file_size,
        "size": size,
        "dimension_order": image.dimension_order,
        "pixel_type": image.pixel_type,
        "physical_size_um": image.physical_size_um,
        "physical_size_detail": _physical_size_detail(image),
        "time_increment_s": image.time_increment_s,
        "channels": [c.model_dump(mode="json") for c in image.channels],
        "objective": image.objective.model_dump(mode="json") if image.objective else None,
        "microscope": image.microscope.model_dump(mode="json") if image.microscope else None,
        "detectors": [d.model_dump(mode="json") for d in image.detectors],
        "acquired_at": image.acquired_at.isoformat() if image.acquired_at else None,
        "plate": image.plate,
        "well": image.well,
        "key_values": dict(image.key_values),
        "tags": list(image.tags),
        "pyramid_levels": image.pyramid_levels,
        "status": image.status.value,
        "error": image.error,
        "notes": list(image.notes),
        "thumbnail_url": thumbnail_url(image, base_url),
        "url": f"{base_url}/images/{_quote(image.id)}",
        "api_url": f"{base_url}/api/v1/images/{_quote(image.id)}",
    }


def _person(p: Person) -> dict[str, Any]:
    return {**p.model_dump(mode="json"), "orcid_iri": p.orcid_iri}


def dataset_to_json(
    dataset: Dataset, *, images: list[Image] | None = None, base_url: str = ""
) -> dict[str, Any]:
    """The API representation of a dataset; ``images`` adds the ``images`` list (detail view)."""
    body = dataset.to_json()
    # Internal bookkeeping of the thumbnail file name is replaced by its URL.
    body.pop("thumbnail", None)
    body["creators"] = [_person(p) for p in dataset.creators]
    body["contributors"] = [_person(p) for p in dataset.contributors]
    body["license_iri"] = dataset.license_iri
    body["thumbnail_url"] = dataset_thumbnail_url(dataset, base_url)
    body["url"] = f"{base_url}/datasets/{_quote(dataset.id)}"
    body["api_url"] = f"{base_url}/api/v1/datasets/{_quote(dataset.id)}"
    if images is not None:
        body["images"] = [image_to_json(im, base_url=base_url) for im in images]
    return body
