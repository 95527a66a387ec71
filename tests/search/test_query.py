"""The query syntax and every error a person can make in it: a 400 that says what to fix."""

from __future__ import annotations

import pytest

from node.errors import BadRequestError
from node.search.backend import Clause, ClauseKind, Sort
from node.search.query import build_query, parse_text

W, P, X = ClauseKind.word, ClauseKind.phrase, ClauseKind.prefix


@pytest.mark.parametrize(
    ("q", "clauses"),
    [
        ("Confocal  MOUSE", [Clause(W, ("confocal",)), Clause(W, ("mouse",))]),
        ('"spinning disk"', [Clause(P, ("spinning", "disk"))]),
        ("spinning-disk", [Clause(P, ("spinning", "disk"))]),  # one token, two words
        ("conf*", [Clause(X, ("conf",))]),
        ("-zebrafish", [Clause(W, ("zebrafish",), negated=True)]),
        ("title:brain", [Clause(W, ("brain",), field="title")]),
        ("Title:Brain", [Clause(W, ("brain",), field="title")]),
        ("author:curie", [Clause(W, ("curie",), field="creator")]),  # alias
        ('-organism:"mus musculus"', [Clause(P, ("mus", "musculus"), "organism", True)]),
        ("method:conf*", [Clause(X, ("conf",), field="method")]),
        ("mouse AND brain", [Clause(W, ("mouse",)), Clause(W, ("brain",))]),
        ("https://doi.org/10.1", [Clause(P, ("https", "doi", "org", "10", "1"))]),
        ("  ", []),
        ("!!! ,,,", []),
        ('""', []),
    ],
)
def test_parse(q: str, clauses: list[Clause]):
    assert list(parse_text(q)) == clauses


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ('"spinning disk', "unbalanced quote in q: the '\"' at position 1 has no closing quote"),
        ('mouse "a" "b', "position 11"),
        ("colour:red", "unknown search field 'colour' in 'colour:red': use one of channel,"),
        ("mouse OR rat", "'OR' is not supported in q"),
        ("NOT rat", "'NOT' is not supported"),
        ("c*", "prefix 'c*' needs one word of at least 2 letters"),
        ("*", "prefix '*' needs one word"),
        ("co*nf", "wildcard in 'co*nf': only a '*' at the end of a word"),
        ("m?use", "wildcard in 'm?use'"),
        ("x" * 501, "q is 501 characters long; the limit is 500"),
        (" ".join(["w"] * 21), "q has more than 20 terms"),
        ('"' + " ".join(f"w{i}" for i in range(13)) + '"', "has 13 words; the limit is 12"),
        ("mouse\x00", "q contains control characters"),
    ],
)
def test_bad_text_is_explained(q: str, message: str):
    with pytest.raises(BadRequestError) as e:
        parse_text(q)
    assert message in str(e.value)


def _build(**args: str | list[str]):
    lists = {k: v if isinstance(v, list) else [v] for k, v in args.items()}
    return build_query(
        lists,
        lifecycles=frozenset({"published"}),
        visibilities=frozenset({"public"}),
        origins=None,
        default_limit=20,
        max_limit=100,
    )


def test_build_resolves_terms_and_defaults():
    q = _build(q="brain", organism=["mouse", "NCBITaxon:7955"], method="confocal microscopy")
    obo = "http://purl.obolibrary.org/obo/"
    # each term with its sub-classes (the mouse subspecies; spinning-disk and single-spot)
    assert q.filters["organism"][0] == obo + "NCBITaxon_10090"
    assert obo + "NCBITaxon_10092" in q.filters["organism"]  # Mus musculus domesticus
    assert obo + "NCBITaxon_7955" in q.filters["organism"]
    assert q.filters["method"][0] == obo + "FBbi_00000251"
    assert {obo + "FBbi_00000252", obo + "FBbi_00000253"} <= set(q.filters["method"])
    assert (q.limit, q.sort, q.cursor) == (20, Sort.relevance, None)
    q = _build(acquired_from="2023-01-01", acquired_to="2023-01-31", sort="newest", limit="5")
    assert q.acquired_from.isoformat() == "2023-01-01T00:00:00+00:00"
    assert q.acquired_to.isoformat() == "2023-01-31T23:59:59.999999+00:00"  # the whole day
    assert (q.limit, q.sort) == (5, Sort.newest)
    # an IRI of a vocabulary the node does not ship (a harvested record's) is kept as is
    other = "https://example.org/taxon/42"
    assert _build(organism=other).filters["organism"] == (other,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"color": "red"}, "unknown parameter 'color'; search takes: q, organism"),
        ({"organism": "unicorn"}, "organism='unicorn': 'unicorn' is not a known NCBITaxon"),
        ({"organism": "mose"}, "did you mean"),
        ({"method": "telepathy"}, "method='telepathy'"),
        ({"limit": "0"}, "limit=0 is out of range: use 1 to 100"),
        ({"limit": "1000000"}, "limit=1000000 is out of range"),
        ({"limit": "ten"}, "limit='ten' is not a whole number"),
        ({"limit": ["1", "2"]}, "parameter 'limit' is given 2 times"),
        ({"min_channels": "-1"}, "min_channels=-1 is out of range"),
        ({"has_z": "maybe"}, "has_z='maybe' is not a boolean; use true or false"),
        ({"acquired_from": "yesterday"}, "acquired_from='yesterday' is not a date"),
        (
            {"acquired_from": "2024-02-01", "acquired_to": "2024-01-01"},
            "acquired_from (2024-02-01) is after acquired_to (2024-01-01)",
        ),
        ({"sort": "random"}, "sort='random' is not supported: use one of relevance, newest"),
        ({"fluor": ["x"] * 21}, "fluor is given 21 values; the limit is 20"),
        ({"license": "y" * 301}, "a value of license is 301 characters long"),
        ({"cursor": "c" * 2001}, "cursor is too long"),
    ],
)
def test_bad_parameters_are_explained(args: dict, message: str):
    with pytest.raises(BadRequestError) as e:
        _build(**args)
    assert message in str(e.value)
