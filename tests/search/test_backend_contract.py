"""The shared behavioural suite: every backend must give these answers (node/search/backend.py).

Each test runs on tantivy and on Elasticsearch; ``test_backends_agree`` runs a list of queries
on both in one test and compares hits, totals and facet counts.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from search_helpers import NODE, OTHER, corpus, make_backend

from node.errors import BadRequestError
from node.ontologies import resolve_organism
from node.records import Visibility
from node.search.backend import FACET_FIELDS, SearchBackend, SearchQuery
from node.search.documents import search_document
from node.search.query import build_query

ANON = {"lifecycles": frozenset({"published"}), "visibilities": frozenset({"public"})}
PUBLIC = {d.id for d in corpus() if d.lifecycle.value == "published" and d.visibility == "public"}


def query(origins: frozenset[str] | None = None, **args: str | list[str]) -> SearchQuery:
    """A SearchQuery from API-style parameters, as an anonymous caller's."""
    as_lists = {k: v if isinstance(v, list) else [v] for k, v in args.items()}
    return build_query(as_lists, **ANON, origins=origins, default_limit=50, max_limit=100)


def ids(backend: SearchBackend, q: SearchQuery) -> set[str]:
    return {h.id for h in backend.search(q).hits}


# ----------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # organism names and synonyms from NCBITaxon: 'mouse' finds Mus musculus
        ("mouse", {"d01", "d06"}),
        ("mice", {"d01", "d06"}),  # d01 says "mice"; d06 is Mus, whose common name it is
        ("rodents", {"d01", "d06"}),  # the order's common name
        ("Danio", {"d02", "d09"}),
        ("zebrafish", {"d02", "d09"}),
        # lineage: a mammal query finds mouse and human records
        ("Mammalia", {"d01", "d04", "d06", "d11"}),
        # FBbi super-classes: 'confocal' finds spinning-disk and single-spot confocal records
        ("confocal", {"d01", "d02", "d09", "d10", "d11"}),
        # SPIM's label lacks the word: its super-class 'fluorescence microscopy' has it
        ("fluorescence", {"d01", "d02", "d03", "d04", "d09", "d10", "d11"}),
        ("hippocampus", {"d01"}),  # private d07 and draft d08 never show
        # AND by default
        ("zebrafish heart", {"d02"}),
        ("mouse zebrafish", set()),
        # typo tolerance
        ("hipocampus", {"d01"}),
        ("zebrafsh", {"d02", "d09"}),
        # phrases
        ('"mouse hippocampus"', {"d01"}),
        ('"hippocampus mouse"', set()),
        # prefix
        ("mito*", {"d11"}),
        ("gastrul*", {"d03"}),
        # fields
        ("title:mouse", {"d01", "d06"}),
        ("description:mouse", set()),
        ("channel:mCherry", {"d02", "d03"}),
        ("fluor:dapi", {"d01", "d04"}),
        ("creator:lovelace", {"d01"}),
        ("keyword:synapse", {"d01"}),
        ("instrument:yokogawa", {"d01"}),
        ("format:zarr", {"d03"}),
        ('organism:"Mus musculus"', {"d01", "d06"}),
        ("method:spim", {"d03"}),
        # exclusion, alone and combined
        ("mouse -kidney", {"d01"}),
        ("-confocal -fluorescence", {"d05", "d06", "d12"}),
        # accents and punctuation are analysed like the index
        ("elegans", {"d10"}),
        ("C. elegans", {"d10"}),
    ],
)
def test_text_queries(backend: SearchBackend, q: str, expected: set[str]):
    assert ids(backend, query(q=q)) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # Lineage words are in no document (node/search/lineage.py matches them at query
        # time): every kind of clause must still find the records of the sub-classes.
        ("mamalia", {"d01", "d04", "d06", "d11"}),  # a typo of Mammalia
        ("mammal*", {"d01", "d04", "d06", "d11"}),  # a prefix of Mammalia and 'mammals'
        ('"great apes"', {"d04", "d11"}),  # a phrase in the common name of Hominidae
        ('"hominidae great"', set()),  # ... that never spans two names
        ('"light microscopy"', {"d01", "d02", "d03", "d04", "d05", "d09", "d10", "d11"}),
        ("organism:rodents", {"d01", "d06"}),  # the clause's own field
        ("organism:mammal*", {"d01", "d04", "d06", "d11"}),
        ("method:fluorescence", {"d01", "d02", "d03", "d04", "d09", "d10", "d11"}),
        ("method:rodents", set()),  # ... and no other
        ("title:rodents", set()),
        ("confocal -rodents", {"d02", "d09", "d10", "d11"}),  # excluded through the lineage
        ("rodents microscopy", {"d01", "d06"}),  # AND across the lineages and the text
        ("chordata -mammalia", {"d02", "d09"}),  # phylum, not class
    ],
)
def test_lineage_queries(backend: SearchBackend, q: str, expected: set[str]):
    assert ids(backend, query(q=q)) == expected


def test_a_lineage_match_scores_a_constant(backend: SearchBackend):
    """Records found through their lineage only score the same, whatever their terms: the
    match is a set of IRIs, scored as a constant (1 plus twice the field's boost)."""
    scores = {h.id: h.score for h in backend.search(query(q="chordata")).hits}
    assert set(scores) == {"d01", "d02", "d04", "d06", "d09", "d11"}
    assert len({round(v, 4) for v in scores.values()}) == 1
    scores = {h.id: h.score for h in backend.search(query(q="rodents")).hits}
    assert set(scores) == {"d01", "d06"}
    assert round(scores["d01"], 4) == round(scores["d06"], 4) == 5.0  # 1 + 2 x organism's 2.0


def test_every_hit_is_public_and_published(backend: SearchBackend):
    result = backend.search(query(limit="50"))
    assert {h.id for h in result.hits} == PUBLIC
    assert result.total == len(PUBLIC)


def test_a_curator_policy_sees_private_and_draft_records(backend: SearchBackend):
    q = replace(
        query(q="hippocampus"),
        lifecycles=frozenset({"published", "draft"}),
        visibilities=frozenset({"public", "private"}),
    )
    assert ids(backend, q) == {"d01", "d07", "d08"}


# ----------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"organism": "mouse"}, {"d01", "d06"}),
        ({"organism": ["mouse", "zebrafish"]}, {"d01", "d02", "d06", "d09"}),  # OR within
        ({"organism": "Vertebrata"}, {"d01", "d02", "d04", "d06", "d09", "d11"}),  # sub-taxa
        ({"organism": "http://purl.obolibrary.org/obo/NCBITaxon_7227"}, {"d03"}),
        ({"method": "confocal microscopy"}, {"d01", "d02", "d09", "d10", "d11"}),  # sub-classes
        ({"method": "FBbi:00000253"}, {"d01", "d11"}),
        ({"organism": "mouse", "method": "confocal microscopy"}, {"d01"}),  # AND across
        ({"fluor": "DAPI"}, {"d01", "d04"}),
        ({"magnification": "63"}, {"d01", "d09"}),
        ({"instrument": "Zeiss LSM 980"}, {"d02"}),
        ({"format": "OME-TIFF"}, {"d01", "d09", "d10", "d11"}),
        ({"license": "CC0-1.0"}, {"d03", "d05"}),
        ({"access": "open"}, {"d01", "d03", "d06"}),
        ({"origin": OTHER}, {"d09"}),
        ({"has_z": "true"}, {"d01", "d03", "d09"}),
        ({"has_t": "true", "has_z": "false"}, {"d02", "d10", "d11"}),
        ({"min_channels": "2"}, {"d01", "d03", "d04"}),
        ({"min_channels": "3"}, {"d04"}),
        # acquisition intervals overlapping the range
        ({"acquired_from": "2023-01-01", "acquired_to": "2023-12-31"}, {"d01", "d02", "d09"}),
        ({"acquired_from": "2024-01-15"}, {"d11"}),  # d11 runs through January 2024
        ({"acquired_to": "2021-12-31"}, {"d04"}),
        ({"acquired_from": "2023-03-02", "acquired_to": "2023-03-02"}, {"d01"}),  # last day
        ({"q": "confocal", "organism": "zebrafish", "acquired_from": "2023-05-01"}, {"d02"}),
    ],
)
def test_filters(backend: SearchBackend, args: dict, expected: set[str]):
    assert ids(backend, query(**args)) == expected


def test_scope_restricts_origins(backend: SearchBackend):
    assert ids(backend, query(origins=frozenset({NODE}), q="zebrafish")) == {"d02"}
    assert ids(backend, query(origins=None, q="zebrafish")) == {"d02", "d09"}


# ----------------------------------------------------------------------------- facets


def expected_facets(visible: set[str]) -> dict[str, Counter]:
    """Facet counts computed from the documents themselves (the oracle)."""
    counts: dict[str, Counter] = {name: Counter() for name in FACET_FIELDS}
    for ds in corpus():
        if ds.id not in visible:
            continue
        doc = search_document(ds.to_json())
        for name, field in FACET_FIELDS.items():
            counts[name].update(doc[field])
    return counts


def test_facet_counts_cover_all_matches_and_respect_the_policy(backend: SearchBackend):
    result = backend.search(query(limit="1"))
    assert len(result.hits) == 1  # facets count every match, not just the page
    want = expected_facets(PUBLIC)
    for name in FACET_FIELDS:
        got = {f.value: f.count for f in result.facets[name]}
        assert got == dict(want[name]), name
        order = [(-f.count, f.value) for f in result.facets[name]]
        assert order == sorted(order), f"{name} facet not sorted by count then value"
    # private d07 and draft d08 add nothing to the counts
    mouse = next(f for f in result.facets["organism"] if f.value.endswith("NCBITaxon_10090"))
    assert mouse.count == 2
    assert mouse.label == "Mus musculus"


def test_facets_follow_the_query_and_carry_labels(backend: SearchBackend):
    result = backend.search(query(q="confocal"))
    methods = {f.label: f.count for f in result.facets["method"]}
    assert methods == {
        "spinning disk confocal microscopy": 2,
        "single-spot confocal microscopy": 1,
        "confocal microscopy": 2,
    }
    origin = {f.value: (f.label, f.count) for f in result.facets["origin"]}
    assert origin[NODE] == ("Test Imaging Node", 4)
    assert origin[OTHER] == (OTHER, 1)
    lic = {f.value: f.label for f in result.facets["license"]}
    assert lic["CC-BY-4.0"] == "Creative Commons Attribution 4.0 International"
    mags = {f.value: f.label for f in backend.search(query()).facets["magnification"]}
    assert mags["63"] == "63×"


def test_facet_size_cuts_the_longest_facets(backend: SearchBackend):
    result = backend.search(replace(query(), facet_size=2))
    assert all(len(values) <= 2 for values in result.facets.values())
    assert [f.count for f in result.facets["license"]] == [7, 2]


# ----------------------------------------------------------------------------- sort and paging


def _all_pages(backend: SearchBackend, q: SearchQuery) -> list[str]:
    seen: list[str] = []
    cursor = q.cursor
    for _ in range(20):
        page = backend.search(replace(q, cursor=cursor))
        seen.extend(h.id for h in page.hits)
        cursor = page.next
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


def _by_modified(desc: bool) -> list[str]:
    public = [d for d in corpus() if d.id in PUBLIC]
    return [d.id for d in sorted(public, key=lambda d: d.modified, reverse=desc)]


@pytest.mark.parametrize("sort", ["newest", "oldest", "title", "relevance"])
def test_paging_visits_every_hit_once(backend: SearchBackend, sort: str):
    everything = backend.search(query(sort=sort, limit="50"))
    pages = _all_pages(backend, query(sort=sort, limit="3"))
    assert len(pages) == len(set(pages)) == everything.total == len(PUBLIC)
    assert pages == [h.id for h in everything.hits]
    if sort == "newest":
        assert pages == _by_modified(desc=True)
    if sort == "oldest":
        assert pages == _by_modified(desc=False)
    if sort == "title":
        titles = {d.id: d.title for d in corpus()}
        assert pages[:4] == ["d05", "d03", "d10", "d12"]  # "Élégans" folds to "elegans"
        assert pages == sorted(pages, key=lambda i: (titles[i].casefold().replace("é", "e"), i))


TIED_TITLES = [  # same first characters (the tantivy column's key ties), same titles
    "Mouse brain section 10",
    "Mouse brain section 2",
    "Mouse brain section 1",
    "mouse brain section 1",
    "Mouse brain",
    "Mouse brain",
    "Mouse-brain a",
    "Mouse!brain z",
    "Mouse#brain a",
    "Mouse brain séction 3",
    "Mouse  brain   section 0",
    "Mouse brain sectio",
    "Mouse brain sectioN 11",
]


def _tied_title_pages(backend: SearchBackend, limit: str) -> tuple[list[str], list[str]]:
    """(ids paged by title, ids in the exact expected order) of records whose titles tie."""
    base = corpus()[0]
    records = [
        base.model_copy(update={"id": f"t{i:02d}", "title": t, "description": "quokka"})
        for i, t in enumerate(reversed(TIED_TITLES))
    ]
    backend.index(r.to_json() for r in records)
    pages = _all_pages(backend, query(q="quokka", sort="title", limit=limit))

    def folded(title: str) -> str:  # accents off, case folded, spaces collapsed
        ascii_ = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
        return " ".join(ascii_.casefold().split())

    return pages, [r.id for r in sorted(records, key=lambda r: (folded(r.title), r.id))]


@pytest.mark.parametrize("limit", ["1", "2", "3", "5"])
def test_title_order_is_exact_when_titles_share_their_start(backend: SearchBackend, limit: str):
    """Paging by title gives the exact order (folded title, then id), also where many titles
    share their first characters and the ties cross the pages' edges."""
    pages, expected = _tied_title_pages(backend, limit)
    assert pages == expected


@pytest.mark.parametrize("limit", ["1", "2", "3", "5"])
def test_tantivy_reads_ties_longer_than_its_margin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str
):
    """tantivy's title column ties on the first 8 characters; a tie longer than the hits fetched
    around a page is read with a range query (and counted from its start): shrinking the
    margin to one record makes every tie here take that path."""
    from node.search import tantivy_index

    monkeypatch.setattr(tantivy_index, "_TIE_MARGIN", 1)
    monkeypatch.setattr(tantivy_index, "_TIE_FETCH", 2)  # and fetch a long tie twice
    backend = make_backend("tantivy", tmp_path)
    try:
        pages, expected = _tied_title_pages(backend, limit)
    finally:
        backend.close()
    assert pages == expected


def test_relevance_puts_title_matches_first(backend: SearchBackend):
    hits = backend.search(query(q="hippocampus mouse")).hits
    assert [h.id for h in hits] == ["d01"]
    hits = backend.search(query(q="zebrafish")).hits
    assert {h.id for h in hits} == {"d02", "d09"}
    assert all(h.score is not None and h.score > 0 for h in hits)


def test_date_cursor_survives_new_records(backend: SearchBackend):
    """Keyset paging: a record added between pages never shifts or repeats hits."""
    first = backend.search(query(sort="newest", limit="4"))
    newer = corpus()[0].model_copy(
        update={"id": "d99", "title": "Brand new", "modified": datetime(2030, 1, 1, tzinfo=UTC)}
    )
    backend.index([newer.to_json()])
    rest = _all_pages(backend, replace(query(sort="newest", limit="4"), cursor=first.next))
    served = [h.id for h in first.hits] + rest
    assert served == _by_modified(desc=True)  # d99 is newer than page 1: not served later


@pytest.mark.parametrize("cursor", ["garbage", "eyJ2IjoxfQ", "x" * 300])
def test_bad_cursor_is_a_bad_request(backend: SearchBackend, cursor: str):
    with pytest.raises(BadRequestError, match="cursor"):
        backend.search(replace(query(sort="newest"), cursor=cursor))


def test_a_cursor_of_another_sort_is_refused(backend: SearchBackend):
    nxt = backend.search(query(sort="newest", limit="2")).next
    assert nxt is not None
    with pytest.raises(BadRequestError, match="cursor"):
        backend.search(replace(query(sort="title", limit="2"), cursor=nxt))


# ----------------------------------------------------------------------------- highlights


def test_highlights_mark_matches_and_escape_the_record(backend: SearchBackend):
    (hit,) = backend.search(query(q="script")).hits
    fragments = " ".join(hit.highlights.get("title", []) + hit.highlights.get("description", []))
    assert "<mark>script</mark>" in fragments.replace("<mark>Script</mark>", "<mark>script</mark>")
    assert "&lt;" in fragments
    without_marks = fragments.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in without_marks  # nothing from the record is markup


def test_highlights_are_optional(backend: SearchBackend):
    (hit,) = backend.search(replace(query(q="hippocampus"), highlight=False)).hits
    assert hit.highlights == {}


# ----------------------------------------------------------------------------- writes


def test_index_replaces_and_delete_removes(backend: SearchBackend):
    changed = corpus()[0].model_copy(update={"title": "Renamed cortex study"})
    backend.index([changed.to_json()])
    assert ids(backend, query(q="cortex")) == {"d01"}
    assert backend.search(query()).total == len(PUBLIC)  # replaced, not added
    backend.delete(["d01", "not-there"])
    assert ids(backend, query(q="cortex")) == set()
    assert backend.search(query()).total == len(PUBLIC) - 1
    # a record that becomes private leaves the results at its next indexing
    hidden = corpus()[1].model_copy(update={"visibility": Visibility.private})
    backend.index([hidden.to_json()])
    assert "d02" not in ids(backend, query(q="zebrafish"))


def test_repeated_query_totals_and_facets_follow_writes(backend: SearchBackend):
    """Totals and facet counts may be kept per query, but never across a write."""
    q = query(q="zebrafish", limit="1")
    first = backend.search(q)
    assert first.total == 2
    page2 = backend.search(replace(q, cursor=first.next))  # a page turn: same total
    assert page2.total == 2
    assert {h.id for h in first.hits + page2.hits} == {"d02", "d09"}
    twin = corpus()[1].model_copy(update={"id": "d98", "identifier": None})
    backend.index([twin.to_json()])
    again = backend.search(q)
    assert again.total == 3
    counts = {f.value: f.count for f in again.facets["organism"]}
    assert counts == {v: c + 1 for v, c in ((f.value, f.count) for f in first.facets["organism"])}
    backend.delete(["d98"])
    assert backend.search(q).total == 2


def test_a_lineage_match_finds_an_organism_new_to_the_index(backend: SearchBackend):
    """tantivy cuts a lineage set down to the organisms its index holds, kept until the next
    commit: a record of a new organism must be found as soon as it is indexed."""
    assert ids(backend, query(q="rodents")) == {"d01", "d06"}  # only mice so far
    rat = corpus()[0].model_copy(
        update={
            "id": "d96",
            "title": "Cortex slices",
            "organisms": [resolve_organism("Rattus norvegicus")],
            "identifier": None,
        }
    )
    backend.index([rat.to_json()])
    assert ids(backend, query(q="rodents")) == {"d01", "d06", "d96"}
    assert ids(backend, query(q="organism:rodent")) == {"d01", "d06", "d96"}
    backend.delete(["d96"])
    assert ids(backend, query(q="rodents")) == {"d01", "d06"}


def test_exact_words_rank_above_typo_neighbours(backend: SearchBackend):
    near = corpus()[0].model_copy(
        update={
            "id": "d97",
            "title": "Hipocampus slices",
            "description": "Organotypic cultures.",
            "identifier": None,
        }
    )
    backend.index([near.to_json()])
    hits = backend.search(query(q="hippocampus")).hits
    assert [h.id for h in hits] == ["d01", "d97"]  # d97 only has the misspelt word
    assert hits[0].score is not None
    assert hits[1].score is not None
    assert hits[0].score > hits[1].score


def test_reindex_swaps_in_a_new_index(backend: SearchBackend):
    before = backend.search(query(q="confocal"))
    seen: list[int] = []
    n = backend.reindex((d.to_json() for d in corpus()[:6]), progress=seen.append)
    assert n == 6
    assert sum(seen) == 6
    assert ids(backend, query(q="confocal")) == {"d01", "d02"}
    assert backend.search(query()).total == 6  # d01..d06 are all public
    assert before.total == 5
    health = backend.health()
    assert health.ok, health.detail
    assert health.documents == 6


def test_empty_backend_answers_and_reports_health(empty_backend: SearchBackend):
    result = empty_backend.search(query(q="anything"))
    assert result.hits == []
    assert result.total == 0
    health = empty_backend.health()
    assert health.backend == empty_backend.name
    assert health.detail


# ----------------------------------------------------------------------------- agreement

AGREEMENT = [
    {},
    {"q": "mouse"},
    {"q": "confocal", "sort": "newest"},
    {"q": "fluorescence -zebrafish"},
    {"q": "zebrafsh"},
    {"q": "cel*"},
    {"q": '"ventral cord"'},
    {"organism": "Vertebrata", "has_z": "true"},
    {"method": "light microscopy", "min_channels": "2"},
    {"acquired_from": "2022-01-01", "sort": "oldest"},
    {"q": "time lapse", "sort": "title"},
    {"license": "CC-BY-4.0", "format": "OME-TIFF", "sort": "newest"},
]


def test_backends_agree(tmp_path: Path, request: pytest.FixtureRequest):
    """Same queries → same hits, same totals, same facet counts on both backends."""
    es = request.getfixturevalue("es_url")
    backends = [make_backend(kind, tmp_path / kind, es) for kind in ("tantivy", "elasticsearch")]
    try:
        for b in backends:
            b.index(d.to_json() for d in corpus())
        for args in AGREEMENT:
            a, b = (backend.search(query(**args)) for backend in backends)
            assert a.total == b.total, args
            if args.get("sort") in ("newest", "oldest", "title"):
                assert [h.id for h in a.hits] == [h.id for h in b.hits], args
            else:
                assert {h.id for h in a.hits} == {h.id for h in b.hits}, args
            assert {k: [(f.value, f.label, f.count) for f in v] for k, v in a.facets.items()} == {
                k: [(f.value, f.label, f.count) for f in v] for k, v in b.facets.items()
            }, args
    finally:
        for b in backends:
            b.close()


def test_facet_counts_follow_writes(backend: SearchBackend):
    """Facet counts may be reused between pages, never across a write."""
    before = {f.value: f.count for f in backend.search(query()).facets["license"]}
    assert "Apache-2.0" not in before
    changed = corpus()[0].model_copy(update={"license": "Apache-2.0"})
    backend.index([changed.to_json()])
    after = {f.value: f.count for f in backend.search(query()).facets["license"]}
    assert after["Apache-2.0"] == 1
    assert after["CC-BY-4.0"] == before["CC-BY-4.0"] - 1
    backend.delete(["d01"])
    assert "Apache-2.0" not in {f.value for f in backend.search(query()).facets["license"]}
