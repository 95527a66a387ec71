"""Portal pages (node/web/): they render, show the record's technical values, escape hostile
text, hide what the caller may not read, send security headers and serve thumbnails safely."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

from node.records import (
    DataLocation,
    Lifecycle,
    Person,
    ReadStatus,
    Term,
    Visibility,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class StructureChecker(HTMLParser):
    """A small HTML5 sanity check: balanced non-void elements, unique ids, no inline script
    or style, images with alt text, one <h1>, and the landmarks of the page frame."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if "id" in a:
            if a["id"] in self.ids:
                self.problems.append(f"duplicate id {a['id']!r}")
            self.ids.add(a["id"] or "")
        # JSON-LD is a data block, never executed (CSP and browsers agree): the one <script>
        # allowed, and only in the head.
        data_block = tag == "script" and a.get("type") == "application/ld+json"
        if data_block and "body" in self.stack:
            self.problems.append("JSON-LD data block outside <head>")
        if (tag == "script" and not data_block) or tag == "style" or "style" in a:
            self.problems.append(f"inline {tag} / style attribute")
        if any(k.startswith("on") for k in a):
            self.problems.append(f"event handler attribute on <{tag}>")
        if tag == "img" and "alt" not in a:
            self.problems.append("img without alt")
        for k in ("href", "src"):
            if a.get(k) and a[k].strip().lower().startswith(("javascript:", "data:text")):
                self.problems.append(f"dangerous {k}={a[k]!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()


def check_html(body: str) -> None:
    assert body.startswith("<!doctype html>")
    checker = StructureChecker()
    checker.feed(body)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []
    assert checker.tags.count("h1") == 1
    assert {"header", "nav", "main", "footer"} <= set(checker.tags)
    assert '<html lang="en">' in body


def page(client: FlaskClient, url: str, status: int = 200) -> str:
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code)
    assert r.mimetype == "text/html"
    body = r.get_data(as_text=True)
    check_html(body)
    return body


def full_dataset(catalog, dataset_id: str = "ds-full", title: str = "Mitosis in HeLa cells"):
    ds = catalog.dataset(
        dataset_id,
        title,
        description="Time-lapse of dividing HeLa cells.\r\n\r\nSecond paragraph.",
        creators=[
            Person(
                name="Ada Lovelace",
                orcid="0000-0002-1825-0097",
                affiliation="https://ror.org/02mhbdp94",
            )
        ],
        keywords=["mitosis", "live imaging"],
        organisms=[Term(label="Homo sapiens", iri="http://purl.obolibrary.org/obo/NCBITaxon_9606")],
        imaging_methods=[
            Term(label="confocal microscopy", iri="http://purl.obolibrary.org/obo/FBbi_00000251")
        ],
        license="CC-BY-4.0",
        created=datetime(2023, 11, 1, tzinfo=UTC),
        issued=datetime(2024, 1, 15, tzinfo=UTC),
        data_location=DataLocation(path="lab/mitosis", url="https://omero.example.org/d/12"),
        related_publications=["10.1234/example.5678"],
        access_contact="imaging@example.org",
    )
    good = catalog.with_thumbnail(catalog.image(ds.id, "cells"))
    failed = catalog.image(
        ds.id,
        "broken",
        status=ReadStatus.failed,
        error="truncated TIFF: offset 4096 beyond end of file",
    )
    return catalog.add(ds, [good, failed]), good, failed


# ---------------------------------------------------------------------------------- pages


def test_every_page_renders(client, catalog) -> None:
    ds, good, _failed = full_dataset(catalog)
    catalog.run_with_errors("microscopy", [("lab/bad.tif", "not a TIFF file")])
    for url in ("/", "/datasets", f"/datasets/{ds.id}", f"/images/{good.id}", "/harvest/runs"):
        body = page(client, url)
        assert "Test Imaging Node" in body
    r = client.get("/static/portal.css")
    assert r.status_code == 200
    assert r.mimetype == "text/css"
    r.close()


def test_home_shows_node_counts_and_latest(client, catalog) -> None:
    catalog.add_simple("ds-a", 2, title="Alpha dataset")
    catalog.add_simple("ds-b", 1, title="Beta dataset", modified=T0 + timedelta(hours=1))
    body = page(client, "/")
    assert "A node made by the test suite." in body
    assert 'id="count-datasets">2<' in body
    assert 'id="count-images">3<' in body
    assert body.index("Beta dataset") < body.index("Alpha dataset")  # newest first
    assert 'action="/search"' in body
    assert 'name="q"' in body
    # Old links to the list's search box now lead to the search page.
    r = client.get("/datasets?q=mitosis")
    assert r.status_code == 301
    assert r.headers["Location"].endswith("/search?q=mitosis")


def test_dataset_page_shows_record_and_technical_values(client, catalog) -> None:
    ds, good, failed = full_dataset(catalog)
    body = page(client, f"/datasets/{ds.id}")
    assert "<h1>Mitosis in HeLa cells</h1>" in body
    assert "<p>Second paragraph.</p>" in body
    assert 'href="https://orcid.org/0000-0002-1825-0097"' in body
    assert 'href="https://ror.org/02mhbdp94"' in body
    assert "mitosis, live imaging" in body
    assert '<a href="http://purl.obolibrary.org/obo/NCBITaxon_9606">Homo sapiens</a>' in body
    assert '<a href="http://purl.obolibrary.org/obo/FBbi_00000251">confocal microscopy</a>' in body
    assert 'href="https://spdx.org/licenses/CC-BY-4.0"' in body
    assert "Created 2023-11-01" in body
    assert "Issued 2024-01-15" in body
    assert "Metadata: public · Data: restricted" in body
    assert "imaging@example.org" in body
    assert "<code>lab/mitosis</code>" in body
    assert 'href="https://omero.example.org/d/12"' in body
    assert 'href="https://doi.org/10.1234/example.5678"' in body
    assert "Origin node: test-node, source microscopy" in body
    # The image table: technical values read from the files.
    assert f'href="/images/{good.id}"' in body
    assert good.path in body
    assert f'src="/thumbnails/{good.id}.png"' in body
    assert "512×256×7×2×3" in body
    assert "uint16" in body
    assert "x: 0.065 µm" in body
    assert '<strong class="suspicious">suspicious</strong>' in body
    assert "original 0.01389 inch" in body
    assert "72 dpi is a scanner/screen default" in body
    assert "DAPI · DAPI · ex 358 / em 461 nm" in body
    assert "GFP · EGFP · ex 488 / em 507 nm" in body
    assert "Zeiss Plan-Apochromat 63× NA 1.4 Oil" in body
    assert "2023-11-05 09:30 UTC" in body
    assert "status-failed" in body
    assert failed.error in body


def test_image_page_shows_all_technical_metadata(client, catalog) -> None:
    _ds, good, _failed = full_dataset(catalog)
    body = page(client, f"/images/{good.id}")
    assert "<h1>cells</h1>" in body
    assert 'href="/datasets/ds-full">Mitosis in HeLa cells</a>' in body
    for text in (
        "512×256×7×2×3, order XYZCT",
        "uint16",
        "0.065 µm",
        "original 0.01389 inch",
        "2.5 s",
        "EGFP",
        "<td>488</td><td>507</td>",
        "Zeiss LSM 980 (Inverted)",
        "Hamamatsu ORCA-Fusion",
        "2023-11-05 09:30 UTC",
        "<dt>Operator</dt><dd>lab-robot-7</dd>",
        "<dt>Stain</dt><dd>Hoechst 33342</dd>",
        "<li>mitosis</li>",
        "<li>HeLa</li>",
        "image id repaired from duplicate UUID",
        "120.6 KiB",
    ):
        assert text in body, text


def test_dataset_list_pages_through_every_dataset(client, catalog) -> None:
    titles = []
    for i in range(7):
        ds, _ = catalog.add_simple(
            f"ds-{i}",
            1,
            title=f"Dataset number {i}",
            description="word " * 200,
            modified=T0 + timedelta(minutes=i),
        )
        titles.append(ds.title)
    seen: list[str] = []
    url: str | None = "/datasets"
    for _ in range(10):
        body = page(client, url)
        assert "7 datasets." in body
        seen += re.findall(r'<a href="/datasets/ds-\d">([^<]+)</a>', body)
        assert "…" in body  # descriptions are cut to a snippet
        m = re.search(r'<a rel="next" href="([^"]+)">', body)
        url = m.group(1).replace("&amp;", "&") if m else None
        if url is None:
            break
    assert sorted(seen) == sorted(titles)
    assert len(seen) == len(set(seen))


def test_harvest_runs_page_lists_errors(client, catalog) -> None:
    catalog.run_with_errors(
        "microscopy",
        [("lab/a/broken.ome.tif", "truncated TIFF"), ("lab/b/secret", "permission denied")],
    )
    body = page(client, "/harvest/runs")
    assert "Run 1: microscopy" in body
    assert "<code>lab/a/broken.ome.tif</code>" in body
    assert "truncated TIFF" in body
    assert "permission denied" in body
    assert "files seen: 10" in body
    body = page(client, "/harvest/runs?source=other")
    assert "No harvest has run yet." in body
    page(client, "/harvest/runs?source=NOT%20A%20SLUG", 400)


# ---------------------------------------------------------------------------------- hostile text


def test_hostile_text_is_escaped_everywhere(client, catalog) -> None:
    ds = catalog.dataset(
        "ds-evil",
        HOSTILE,
        description=f"{HOSTILE} <img src=x onerror=alert(2)>",
        creators=[Person(name=HOSTILE)],
        keywords=[HOSTILE],
        organisms=[Term(label=HOSTILE, iri="javascript:alert(3)")],
        data_location=DataLocation(path=HOSTILE, url="javascript:alert(4)"),
        related_publications=["javascript:alert(5)"],
    )
    image = catalog.with_thumbnail(
        catalog.image(
            ds.id,
            HOSTILE,
            key_values={HOSTILE: HOSTILE},
            tags=[HOSTILE],
            notes=[HOSTILE],
            error=HOSTILE,
            status=ReadStatus.metadata_only,
        )
    )
    catalog.add(ds, [image])
    catalog.run_with_errors("microscopy", [(HOSTILE, HOSTILE)])
    for url in ("/", "/datasets", f"/datasets/{ds.id}", f"/images/{image.id}", "/harvest/runs"):
        body = page(client, url)  # also checks: no script element, no javascript: links
        assert HOSTILE not in body, url
        assert HOSTILE_ESCAPED in body, url
        assert "<img src=x" not in body
    # Links from record values keep only http(s): the hostile IRIs are shown as text.
    body = page(client, f"/datasets/{ds.id}")
    assert 'href="javascript:' not in body
    assert "javascript:alert(4)" in body


# ---------------------------------------------------------------------------------- 404 and access


@pytest.mark.parametrize(
    "url", ["/datasets/ds-nope", "/images/im-nope", "/datasets/ds-draft", "/no/such/page"]
)
def test_unknown_and_draft_records_get_the_404_page(client, catalog, url) -> None:
    catalog.add(catalog.dataset("ds-draft", "Draft only", lifecycle=Lifecycle.draft))
    body = page(client, url, 404)
    assert "<h1>Not found</h1>" in body
    assert "Draft only" not in body


def test_bad_cursor_gets_the_400_page(client) -> None:
    body = page(client, "/datasets?cursor=bogus", 400)
    assert "<h1>Bad request</h1>" in body
    assert "bogus" in body


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/datasets",
        "/datasets/ds-nope",
        "/api/v1/datasets",
        "/api/v1/nope",
        "/static/portal.css",
    ],
)
def test_security_headers_on_every_response(client, url) -> None:
    r = client.get(url)
    r.close()
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp


# ---------------------------------------------------------------------------------- thumbnails


def test_thumbnails_follow_the_access_policy(client, catalog) -> None:
    _public, (public_image,) = catalog.add_simple("ds-public", 1)
    _private, (private_image,) = catalog.add_simple("ds-private", 1, visibility=Visibility.private)
    with client.get(f"/thumbnails/{public_image.id}.png") as r:
        assert r.status_code == 200
        assert r.mimetype == "image/png"
        assert r.data.startswith(b"\x89PNG\r\n\x1a\n")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "private" in r.headers["Cache-Control"]
    assert (catalog.config.thumbnail_dir / f"{private_image.id}.png").is_file()
    r = client.get(f"/thumbnails/{private_image.id}.png")
    assert r.status_code == 404
    assert r.mimetype == "text/html"


@pytest.mark.parametrize(
    "stored_name",
    [
        None,
        "../../catalog.sqlite3",
        "/etc/passwd",
        "sub/dir.png",
        "missing.png",
        ".hidden.png",
        "ok.png\n",
    ],
)
def test_thumbnail_names_from_records_are_never_trusted_as_paths(
    client, catalog, stored_name
) -> None:
    image = catalog.image("ds-t", "t", thumbnail=stored_name)
    catalog.add(catalog.dataset("ds-t"), [image])
    r = client.get(f"/thumbnails/{image.id}.png")
    assert r.status_code == 404
    r.close()


def test_thumbnail_url_with_path_tricks_is_404(client, catalog) -> None:
    catalog.add_simple("ds-public", 1)
    for url in (
        "/thumbnails/..%2Fcatalog.sqlite3.png",
        "/thumbnails/../catalog.png",
        "/thumbnails/%00.png",
    ):
        r = client.get(url)
        assert r.status_code == 404, url
        r.close()
