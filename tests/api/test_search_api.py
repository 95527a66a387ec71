"""GET /api/v1/search: hits, facets and cursors through the real app, within the access
policy (also in the counts), and a 400 that says what to fix for every bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from node.records import Lifecycle, Term, Visibility
from node.search.factory import open_backend
from node.search.indexer import drain

MOUSE = Term(label="Mus musculus", iri="http://purl.obolibrary.org/obo/NCBITaxon_10090")
FISH = Term(label="Danio rerio", iri="http://purl.obolibrary.org/obo/NCBITaxon_7955")
SPINNING = Term(
    label="spinning disk confocal microscopy", iri="http://purl.obolibrary.org/obo/FBbi_00000253"
)
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def indexed(config, engine, catalog):
    """Five datasets with images (so image summaries are real), indexed by a queue drain."""
    catalog.add_simple("ds-mouse", 2, title="Hippocampus slices", organisms=[MOUSE],
                       imaging_methods=[SPINNING], license="CC-BY-4.0", modified=T0)  # fmt: skip
    catalog.add_simple("ds-fish", 1, title="Zebrafish heart", organisms=[FISH],
                       modified=T0 - timedelta(days=1))  # fmt: skip
    catalog.add_simple("ds-private", 1, title="Private mouse pilot", organisms=[MOUSE],
                       visibility=Visibility.private)  # fmt: skip
    catalog.add_simple("ds-draft", 1, title="Draft mouse atlas", organisms=[MOUSE],
                       lifecycle=Lifecycle.draft)  # fmt: skip
    catalog.add_simple("ds-other", 1, title="Plain", modified=T0 - timedelta(days=2))
    report = drain(engine, open_backend(config))
    assert report.indexed == 5


def test_search_returns_readable_hits_with_facets(client, indexed):
    r = client.get("/api/v1/search?q=mouse")
    assert r.status_code == 200
    body = r.get_json()
    assert list(body) == ["total", "items", "facets", "scope", "next"]
    assert body["total"] == 1
    (item,) = body["items"]
    assert item["id"] == "ds-mouse"
    assert item["url"] == "http://node.test/datasets/ds-mouse"
    assert item["thumbnail_url"].startswith("http://node.test/thumbnails/")
    assert item["score"] > 0
    assert item["organisms"] == [MOUSE.model_dump()]
    organism = body["facets"]["organism"]
    assert organism == [{"value": MOUSE.iri, "label": "Mus musculus", "count": 1}]
    assert body["scope"] == "international"
    assert body["next"] is None


def test_image_facts_reach_the_filters(client, indexed):
    """The conftest images have DAPI/EGFP channels, a 63× objective, Z and T: the dataset's
    image summary carries them into the index."""
    body = client.get("/api/v1/search?fluor=DAPI&magnification=63&has_z=true&min_channels=2")
    ids = {i["id"] for i in body.get_json()["items"]}
    assert ids == {"ds-mouse", "ds-fish", "ds-other"}
    facets = client.get("/api/v1/search").get_json()["facets"]
    assert {f["value"]: f["count"] for f in facets["fluor"]} == {"DAPI": 3, "EGFP": 3}
    assert facets["magnification"] == [{"value": "63", "label": "63×", "count": 3}]
    found = client.get("/api/v1/search?acquired_from=2023-11-05&acquired_to=2023-11-05")
    assert found.get_json()["total"] == 3


def test_counts_never_include_what_the_caller_cannot_read(client, indexed):
    body = client.get("/api/v1/search").get_json()
    assert body["total"] == 3
    assert {i["id"] for i in body["items"]} == {"ds-mouse", "ds-fish", "ds-other"}
    mouse = [f for f in body["facets"]["organism"] if f["value"] == MOUSE.iri]
    assert mouse[0]["count"] == 1  # the private and draft mouse datasets are not counted


def test_a_record_hidden_after_indexing_is_not_served(client, indexed, catalog):
    """The index lags the catalog until the next drain; the service checks the catalog."""
    hidden = catalog.dataset("ds-fish", "Zebrafish heart", visibility=Visibility.private)
    catalog.add(hidden)
    body = client.get("/api/v1/search?q=zebrafish").get_json()
    assert body["items"] == []


def test_cursor_pages_through_everything(client, indexed):
    first = client.get("/api/v1/search?sort=newest&limit=2").get_json()
    assert [i["id"] for i in first["items"]] == ["ds-mouse", "ds-fish"]
    second = client.get(f"/api/v1/search?sort=newest&limit=2&cursor={first['next']}").get_json()
    assert [i["id"] for i in second["items"]] == ["ds-other"]
    assert second["next"] is None


def test_scope_parameter(client, indexed):
    for scope in ("institute", "university", "national", "international"):
        body = client.get(f"/api/v1/search?scope={scope}").get_json()
        assert body["total"] == 3, scope  # a lone node: everything is its own
        assert body["scope"] == scope


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('q="open', "unbalanced quote"),
        ("q=colour:red", "unknown search field 'colour'"),
        ("limit=100000", "limit=100000 is out of range: use 1 to 20"),
        ("scope=planet", "scope='planet' is not a scope: use one of institute"),
        ("scope=a&scope=b", "'scope' is given more than once"),
        ("cursor=nonsense&sort=newest", "cursor 'nonsense' is not valid"),
        ("organism=unicorn", "'unicorn' is not a known NCBITaxon"),
        ("bogus=1", "unknown parameter 'bogus'"),
        ("q=" + "a" * 600, "q is 600 characters long"),
        ("q=%00", "control characters"),
    ],
)
def test_bad_queries_get_400_with_what_to_fix(client, indexed, query: str, message: str):
    r = client.get(f"/api/v1/search?{query}")
    assert r.status_code == 400
    body = r.get_json()
    assert message in body["error"]
    assert body["status"] == 400


def test_hostile_text_is_not_a_query_language(client, indexed):
    """Syntax of the backends' own languages is plain text here: no error, no injection."""
    for q in ("title:* OR 1=1", '{"match_all":{}}', "a~2 b^10 [* TO *]", "\\\\ /regex/"):
        r = client.get("/api/v1/search", query_string={"q": q})
        assert r.status_code in (200, 400), q
        if r.status_code == 200:
            assert r.get_json()["total"] <= 3


def test_a_damaged_index_answers_503_and_the_rest_keeps_working(client, indexed, config):
    """A broken index file is a clear 503 naming the fix; the catalog pages do not depend on it."""
    current = (config.search_dir / "CURRENT").read_text()
    for f in (config.search_dir / current).iterdir():
        if f.suffix in (".idx", ".term", ".pos", ".store", ".fast"):
            f.write_bytes(b"\x00" * 16)
    (config.search_dir / current / "meta.json").write_text("{not json")
    fresh = client.application.extensions["fairnode"].search.backend
    fresh.close()  # reopen from disk, as a new web process would
    r = client.get("/api/v1/search?q=mouse")
    assert r.status_code == 503
    assert "run `fairnode reindex`" in r.get_json()["error"]
    assert client.get("/api/v1/datasets").status_code == 200
