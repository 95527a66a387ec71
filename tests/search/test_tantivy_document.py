"""What the tantivy backend sends tantivy (node/search/tantivy_index.py ``_json``) indexes the
same as the search document it comes from, and the title column orders like the title key."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
import tantivy
from tantivy import Query

from node.ontologies import resolve_imaging_method, resolve_organism
from node.records import Dataset, Lifecycle, Provenance
from node.search.documents import search_document, title_key
from node.search.tantivy_index import (
    TITLE_PREFIX_CHARS,
    _json,
    build_schema,
    title_prefix_key,
)


def _records() -> list[Dataset]:
    def record(i: int, title: str, organisms: list[str], keywords: list[str]) -> Dataset:
        return Dataset(
            id=f"d{i}",
            title=title,
            description=f"Record {i} of the joined-field check",
            keywords=keywords,
            organisms=[resolve_organism(o) for o in organisms],
            imaging_methods=[resolve_imaging_method("spinning disk confocal microscopy")],
            modified="2024-01-01T00:00:00Z",
            lifecycle=Lifecycle.published,
            provenance=Provenance(origin_node="n"),
        )

    return [
        record(1, "Mouse and human cells", ["mouse", "human"], ["cell biology", "cancer"]),
        record(2, "Zebrafish heart", ["zebrafish"], ["heart"]),
        record(3, "Mouse cortex", ["mouse"], ["cancer cell", "biology"]),
        record(4, "Yeast", ["yeast"], []),
    ]


def _index(folder: Path, lines: list[str]) -> tuple[tantivy.Index, tantivy.Schema]:
    schema = build_schema()
    folder.mkdir()
    index = tantivy.Index(schema, path=str(folder))
    writer = index.writer(heap_size=50_000_000, num_threads=1)
    for line in lines:
        writer.add_json(line)
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index, schema


def _as_lists(doc: dict) -> str:
    """The search document as it is, lists and all (the title key as the column wants it)."""
    return orjson.dumps({**doc, "title_key": title_prefix_key(doc["title_key"])}).decode()


def test_joined_lists_index_the_same_terms_positions_and_lengths(tmp_path: Path):
    docs = [search_document(r.to_json()) for r in _records()]
    assert len(docs[0]["organism"]) > 5  # lists to join
    assert len(docs[0]["keywords"]) == 2
    lists, _ = _index(tmp_path / "lists", [_as_lists(d) for d in docs])
    joined, schema = _index(tmp_path / "joined", [_json(d) for d in docs])
    queries = {
        # a phrase inside one value, and phrases across the end of one value and the start
        # of the next (which must not match: tantivy leaves a gap between a list's values)
        "phrase in a value": Query.phrase_query(schema, "organism", ["mus", "musculus"]),
        "across values": Query.phrase_query(schema, "keywords", ["biology", "cancer"]),
        "phrase in keywords": Query.phrase_query(schema, "keywords", ["cell", "biology"]),
        # scores: term frequencies and field lengths must be the same
        "term": Query.term_query(schema, "organism", "mouse"),  # in several names
        "term 2": Query.term_query(schema, "keywords", "cancer"),
        "method": Query.term_query(schema, "method", "microscopy"),
        "all_text": Query.term_query(schema, "all_text", "sapiens"),
        "prefix": Query.fuzzy_term_query(schema, "all_text", "x", distance=0, prefix=True),
        "gap word": Query.term_query(schema, "organism", "x" * 41),
    }
    for name, q in queries.items():
        found = []
        for index in (lists, joined):
            searcher = index.searcher()
            found.append(
                [(searcher.doc(a)["id"][0], round(s, 5)) for s, a in searcher.search(q, 10).hits]
            )
        assert found[0] == found[1], name
    searcher = joined.searcher()
    assert searcher.search(queries["across values"], 10).count == 0
    # d1's keywords say "cell biology"; d3's end one value with "cell" and start the next
    # with "biology"
    hits = searcher.search(queries["phrase in keywords"], 10).hits
    assert [searcher.doc(a)["id"][0] for _, a in hits] == ["d1"]
    assert searcher.search(queries["gap word"], 10).count == 0
    assert searcher.search(queries["term"], 10).count == 2  # the mouse records


ALPHABET = "aAzZ09 -_.,:!({~\x00\x7féßİ" + "abcdefghijklmnopqrstuvwxyz" * 2 + "  "


def test_title_prefix_key_orders_like_the_title_key():
    rnd = random.Random(20261128)
    keys = [
        title_key("".join(rnd.choices(ALPHABET, k=rnd.randint(0, 16))), f"ds-{i}")
        for i in range(20_000)
    ]
    keys += [title_key(t, "ds-x") for t in ("", "a", "a b", "a-b", "a!z", "a#a", "zz~", "zz{")]
    ordered = sorted(keys)
    prefixes = [title_prefix_key(k) for k in ordered]
    assert prefixes == sorted(prefixes)  # a < b implies prefix(a) <= prefix(b)
    assert all(0 <= p < 2**63 for p in prefixes)  # a signed 64-bit column


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [("mouse b", "mouse br"), ("a!z", "a#a"), ("a", "b"), ("a b", "ab"), ("x9", "xa"), ("", "0")],
)
def test_title_prefix_key_tells_common_titles_apart(smaller: str, larger: str):
    assert title_prefix_key(title_key(smaller, "z")) < title_prefix_key(title_key(larger, "a"))


def test_title_prefix_keys_tie_beyond_their_characters():
    same = "x" * TITLE_PREFIX_CHARS
    assert title_prefix_key(same + "a") == title_prefix_key(same + "b")
    # the id after the title is left out: equal titles tie
    assert title_prefix_key(title_key("Ab", "d2")) == title_prefix_key(title_key("ab", "d1"))
