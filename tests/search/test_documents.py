"""The one mapping record → search document (node/search/documents.py)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from node.ontologies import resolve_imaging_method, resolve_organism
from node.records import Dataset, Lifecycle, Provenance
from node.search.backend import ALL_TEXT, analyse
from node.search.documents import search_document


def _two_organisms() -> Dataset:
    # Mouse and human share most of their lineage (Eukaryota, Mammalia, ...); the two methods
    # share their super-classes (microscopy, light microscopy, ...).
    return Dataset(
        id="d1",
        title="Mouse and human cells",
        description="Cells of mouse and human origin",
        organisms=[resolve_organism("mouse"), resolve_organism("human")],
        imaging_methods=[
            resolve_imaging_method("spinning disk confocal microscopy"),
            resolve_imaging_method("bright-field microscopy"),
        ],
        modified=datetime(2024, 1, 1, tzinfo=UTC),
        lifecycle=Lifecycle.published,
        provenance=Provenance(origin_node="n"),
    )


def test_all_text_holds_every_word_of_the_text_fields():
    doc = search_document(_two_organisms().to_json())
    found = {w for value in doc[ALL_TEXT] for w in analyse(value)}
    for field in ("title", "description", "organism", "method"):
        values = doc[field] if isinstance(doc[field], list) else [doc[field]]
        words = {w for v in values for w in analyse(v)}
        assert words, field
        assert words <= found, (field, words - found)
    assert {"sapiens", "musculus", "human", "confocal", "spinning"} <= found


def test_lineage_is_not_in_the_document():
    """Super-classes are matched at query time (node/search/lineage.py): the document holds
    the terms' own names and synonyms, none of their ancestors' names."""
    doc = search_document(_two_organisms().to_json())
    words = {
        w for field in ("organism", "method", ALL_TEXT) for v in doc[field] for w in analyse(v)
    }
    assert {"musculus", "mouse", "sapiens", "human", "confocal", "bright"} <= words
    assert not {"eukaryota", "mammalia", "rodents", "vertebrata", "fluorescence"} & words
    assert doc["f_organism"] == [
        "http://purl.obolibrary.org/obo/NCBITaxon_10090",
        "http://purl.obolibrary.org/obo/NCBITaxon_9606",
    ]


def test_all_text_names_each_ontology_word_once():
    """all_text only says which documents hold a word: words the organisms' and methods' names
    share are given once each (the per-field text keeps every name for phrases)."""
    doc = search_document(_two_organisms().to_json())
    organism_words = [w for v in doc["organism"] for w in analyse(v)]
    assert Counter(organism_words)["mouse"] >= 2  # 'mouse', 'house mouse'
    text_words = [w for value in doc[ALL_TEXT] for w in analyse(value)]
    assert Counter(text_words)["mouse"] == 3  # title, description, the organism words once
    method_words = [w for v in doc["method"] for w in analyse(v)]
    assert Counter(method_words)["microscopy"] == 2
    assert Counter(text_words)["microscopy"] == 1  # only the method words name it here


def test_an_unknown_acquisition_date_is_left_out():
    """tantivy refuses a null date: a record without acquisition dates (and without ``created``)
    has no such keys, and its other dates are RFC 3339 UTC strings."""
    doc = search_document(_two_organisms().to_json())
    assert "acquired_from" not in doc
    assert "acquired_to" not in doc
    assert doc["modified"].startswith("2024-01-01T00:00:00")
    assert doc["modified"].endswith("Z")
    assert None not in doc.values()
    dated = _two_organisms().model_copy(update={"created": datetime(2023, 5, 2, tzinfo=UTC)})
    doc = search_document(dated.to_json())
    assert doc["acquired_from"] == doc["acquired_to"]
    assert doc["acquired_from"].startswith("2023-05-02T00:00:00")
