"""The portal's search page: works without JavaScript (links and one GET form), shows facets
with counts, removable active filters, scope tabs and result cards; bad input is explained."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest
from test_pages import page

from node.records import Term
from node.search.factory import open_backend
from node.search.indexer import drain

MOUSE = Term(label="Mus musculus", iri="http://purl.obolibrary.org/obo/NCBITaxon_10090")
SPINNING = Term(
    label="spinning disk confocal microscopy", iri="http://purl.obolibrary.org/obo/FBbi_00000253"
)


@pytest.fixture
def indexed(config, engine, catalog):
    catalog.add_simple(
        "ds-mouse",
        1,
        title="Hippocampus slices <b>bold</b>",
        description="Adult mouse hippocampus, spinning disk.",
        organisms=[MOUSE],
        imaging_methods=[SPINNING],
        modified=datetime(2024, 3, 1, tzinfo=UTC),
    )
    catalog.add_simple("ds-plain", 1, title="Plain dataset")
    drain(engine, open_backend(config))


def _links(body: str) -> dict[str, str]:
    """Link text → href of every <a> (text without tags, entities decoded)."""
    out = {}
    for href, text in re.findall(r'<a href="([^"]*)"[^>]*>(.*?)</a>', body, re.S):
        out[unescape(re.sub(r"<[^>]+>", "", text)).strip()] = unescape(href)
    return out


def test_search_page_shows_hits_facets_scope_tabs(client, indexed):
    body = page(client, "/search?q=hippocampus")
    assert '<span id="total">1</span> dataset for “hippocampus”' in body
    assert "<mark>Hippocampus</mark> slices &lt;b&gt;bold&lt;/b&gt;" in body  # escaped, marked
    assert "Mus musculus" in body
    assert "spinning disk confocal microscopy" in body
    assert 'src="/thumbnails/' in body
    links = _links(body)
    assert links["Mus musculus"].startswith("/search?q=hippocampus&organism=http")
    for scope in ("Institute", "University", "National", "International"):
        assert f"scope={scope.lower()}" in links[scope]
    assert 'aria-current="page">International' in body  # the default scope


def test_facet_link_filters_and_active_filter_removes(client, indexed):
    body = page(client, "/search")
    organism_href = _links(body)["Mus musculus"]
    filtered = page(client, organism_href)
    assert '<span id="total">1</span>' in filtered
    remove = _links(filtered)["Organism: Mus musculus ✕"]
    assert remove == "/search"
    assert '<span id="total">2</span>' in page(client, remove)


def test_form_keeps_filters_and_query(client, indexed):
    body = page(client, f"/search?q=slices&organism={MOUSE.iri}&sort=newest")
    assert 'value="slices"' in body
    assert f'<input type="hidden" name="organism" value="{MOUSE.iri}">' in body
    assert '<input type="hidden" name="sort" value="newest">' in body
    assert "<script" not in body


def test_bad_query_is_explained_on_the_page(client, indexed):
    body = page(client, '/search?q="unclosed', status=400)
    assert 'id="search-error"' in body
    assert "unbalanced quote" in body
    assert 'value="&#34;unclosed"' in body  # the query stays in the box to be fixed


def test_no_results_says_what_to_do(client, indexed):
    assert "Remove a filter or try fewer words" in page(client, "/search?q=nonexistentword")


def test_home_box_and_old_list_links_lead_to_search(client, indexed):
    assert 'action="/search"' in page(client, "/")
    r = client.get("/datasets?q=mouse")
    assert r.status_code == 301
    assert r.headers["Location"].endswith("/search?q=mouse")
