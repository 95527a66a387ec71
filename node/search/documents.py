"""The one mapping from a canonical record to a search document, and facet labels.

The organism and method text fields carry the record's own terms' names and synonyms ('mouse'
finds Mus musculus); the ``f_`` keyword fields carry the terms' IRIs. Their lineage is matched
at query time (node/search/lineage.py): a word that names a super-class ('rodents',
'fluorescence microscopy') finds the records of its sub-classes through their IRIs, and a
filter on a class is expanded to its sub-classes (node/search/query.py). Documents stay small:
indexing every record's lineage text cost 10-15 % of a reindex. Changing this module changes
what is indexed: bump ``DOCUMENT_VERSION`` so that health() asks for a reindex.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from node.ontologies import (
    imaging_method_names,
    organism_names,
    resolve_license,
    term_label,
)
from node.records import Dataset
from node.search.backend import ALL_TEXT, analyse, policy_key

# 3: all_text, policy (one field instead of lifecycle + visibility); 4: all_text holds the
# organism and method words once each; 5: no lineage text (matched at query time)
DOCUMENT_VERSION = 5

SearchDocument = dict[str, Any]


@functools.lru_cache(maxsize=8192)
def _organism(iri: str, label: str) -> tuple[str, ...]:
    return tuple(n for n in organism_names(iri) if n != label)


@functools.lru_cache(maxsize=8192)
def _method(iri: str, label: str) -> tuple[str, ...]:
    return tuple(n for n in imaging_method_names(iri) if n != label)


def _expand(terms: list[dict[str, Any]], expand: Any) -> tuple[list[str], list[str], str]:
    """(text to index, the record's own IRIs, or labels for terms without one, the text's
    distinct words for ``all_text``)."""
    key = tuple([(term["label"], term.get("iri")) for term in terms])
    text, own, words = _expand_terms(key, expand)
    return list(text), list(own), words  # fresh lists: a document is the caller's to change


@functools.lru_cache(maxsize=8192)
def _expand_terms(
    terms: tuple[tuple[str, str | None], ...], expand: Any
) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    # Cached per whole list of (label, IRI): records repeat a few hundred combinations of
    # organisms and of methods, so most documents skip the loop and the de-duplication.
    text: list[str] = []
    own: list[str] = []
    for label, iri in terms:
        own.append(iri or label)
        text.append(label)
        if iri:
            text.extend(expand(iri, label))
    # all_text only records which documents hold a word, so a word said twice is indexed for
    # nothing (names repeat: a label and its synonyms share words).
    words = " ".join(dict.fromkeys(w for t in text for w in analyse(t)))
    return tuple(text), tuple(_unique(own) if len(own) > 1 else own), words


def _unique(values: list[str]) -> list[str]:
    """The non-empty values, first occurrences in order (on a reindex's hot path: no
    Python-level loop)."""
    if len(values) < 2:
        return values[:] if values and values[0] else []
    unique = dict.fromkeys(values)
    unique.pop("", None)
    return list(unique)


@functools.lru_cache(maxsize=1024)
def magnification_value(mag: float) -> str:
    """Facet value of an objective magnification: '63', '1.25' (no trailing zeros)."""
    return f"{mag:g}"


def title_key(title: str, dataset_id: str) -> str:
    """Sort key of ``sort=title``: case- and accent-folded title, then the id (unique)."""
    if not title.isascii():
        title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return f"{' '.join(title.casefold().split())[:200]}\x00{dataset_id}"


def date_key(when: datetime, dataset_id: str) -> int:
    """Integer sort key of ``sort=newest|oldest``: the second of ``when`` in the high bits and
    24 bits of a hash of the id below, so that keys almost never tie (cursor code still copes
    with ties). Fits a signed 64-bit integer for any year between 1 and 9999."""
    seconds = int(when.timestamp())
    low = int.from_bytes(hashlib.blake2b(dataset_id.encode(), digest_size=3).digest(), "big")
    return (seconds << 24) | low


def _utc(value: str | None) -> str | None:
    """An RFC 3339 UTC string from a record's JSON date (already UTC: records store UTC)."""
    if not value:
        return None
    return (
        value
        if value.endswith("Z")
        else datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )


def search_document(record: Mapping[str, Any]) -> SearchDocument:
    """The search document of a dataset record in its JSON form (``Dataset.to_json()``, the
    form the catalog stores): reading the stored JSON directly, without building the pydantic
    model again, keeps a full reindex fast (the catalog validated it when it was written).

    Keys are the fields of both backends' schemas; dates are RFC 3339 UTC strings, and an
    unknown acquisition date has no key."""
    summary = record.get("image_summary") or {}
    organism_text, organisms, organism_words = _expand(record["organisms"], _organism)
    method_text, methods, method_words = _expand(record["imaging_methods"], _method)
    created = record.get("created")
    acquired_from = summary.get("acquired_from") or created
    acquired_to = summary.get("acquired_to") or created
    fluors = summary.get("fluors") or []
    instruments = record.get("instruments") or []
    formats = record.get("formats") or []
    license_id = record.get("license")
    modified = record["modified"]
    ds_id = record["id"]
    title = record["title"]
    description = record.get("description") or ""
    keywords = [*record.get("keywords", ()), *(t["label"] for t in record.get("subjects", ()))]
    creators = [p["name"] for p in (*record.get("creators", ()), *record.get("contributors", ()))]
    channels = _unique([*(summary.get("channel_names") or []), *fluors])
    doc = {
        "id": ds_id,
        "title": title,
        "description": description,
        "keywords": keywords,
        "creators": creators,
        "channels": channels,
        "organism": organism_text,
        "method": method_text,
        "instrument": instruments,
        "format": formats,
        # the words of every text field above, for unrestricted word and prefix clauses
        ALL_TEXT: [
            title,
            description,
            *keywords,
            *creators,
            *channels,
            organism_words,
            method_words,
            *instruments,
            *formats,
        ],
        "policy": policy_key(record["lifecycle"], record["visibility"]),
        "f_organism": organisms,
        "f_method": methods,
        "f_instrument": _unique(instruments),
        "f_magnification": _unique(
            [magnification_value(m) for m in summary.get("magnifications") or ()]
        ),
        "f_fluor": _unique(fluors),
        "f_format": _unique(formats),
        "f_origin": [record["provenance"]["origin_node"]],
        "f_license": [license_id] if license_id else [],
        "f_access": [record["data_access"]],
        "modified": _utc(modified),
        "has_z": bool(summary.get("has_z")),
        "has_t": bool(summary.get("has_t")),
        "channel_count": int(summary.get("max_channels") or 0),
        "date_key": date_key(datetime.fromisoformat(modified), ds_id),
        "title_key": title_key(record["title"], ds_id),
    }
    # Left out rather than null when unknown: tantivy refuses a null date, and a document
    # without a value is what the range filters skip in both backends.
    if acquired_from:
        doc["acquired_from"] = _utc(acquired_from)
    if acquired_to:
        doc["acquired_to"] = _utc(acquired_to)
    return doc


def dataset_document(ds: Dataset) -> SearchDocument:
    """``search_document`` of a Dataset model."""
    return search_document(ds.to_json())


@functools.lru_cache(maxsize=8192)
def _label(value: str) -> str:
    return term_label(value) or value


def facet_label(facet: str, value: str, *, node_names: dict[str, str] | None = None) -> str:
    """The label a person reads for a facet value (the value itself when nothing better)."""
    if facet in ("organism", "method"):
        return _label(value)
    if facet == "license":
        try:
            return resolve_license(value).name
        except ValueError:
            return value
    if facet == "magnification":
        return f"{value}×"
    if facet == "origin" and node_names:
        return node_names.get(value, value)
    if facet == "access":
        return {"open": "Open", "restricted": "Restricted", "embargoed": "Embargoed"}.get(
            value, value
        )
    return value
