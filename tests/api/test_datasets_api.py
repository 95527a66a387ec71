"""The REST API (node/api/): paging, the access policy on every read path, the one error shape,
the image JSON, harvest runs, and the OpenAPI document. Real app, real database, no mocks."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from node.api.serialise import image_to_json
from node.catalog.service import encode_cursor
from node.records import DataAccess, Lifecycle, Person, ReadStatus, Term, Visibility

BASE_URL = "http://node.test"  # tests/conftest.py sets node.base_url to this
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

# Everything anonymous callers must never see, as (lifecycle, visibility).
HIDDEN = [
    pytest.param(Lifecycle.draft, Visibility.public, id="draft"),
    pytest.param(Lifecycle.withdrawn, Visibility.public, id="withdrawn"),
    pytest.param(Lifecycle.published, Visibility.federation, id="federation"),
    pytest.param(Lifecycle.published, Visibility.institution, id="institution"),
    pytest.param(Lifecycle.published, Visibility.private, id="private"),
]


def get_json(client: FlaskClient, url: str, status: int = 200) -> Any:
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code, r.get_data(as_text=True)[:500])
    assert r.mimetype == "application/json"
    return r.get_json()


def assert_error_shape(body: Any, status: int) -> None:
    assert set(body) == {"error", "errors", "status"}
    assert body["status"] == status
    assert isinstance(body["error"], str)
    assert body["error"]
    assert isinstance(body["errors"], list)
    assert all(isinstance(e, str) for e in body["errors"])


def walk(client: FlaskClient, url: str, limit: int) -> tuple[list[str], list[int]]:
    """Follow ``next`` cursors from the first page; return ids seen and ``total`` per page."""
    ids: list[str] = []
    totals: list[int] = []
    cursor = None
    for _ in range(100):  # bounded: a cursor that never ends fails the test
        page_url = f"{url}?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = get_json(client, page_url)
        assert set(body) == {"items", "next", "total"}
        assert len(body["items"]) <= limit
        ids += [item["id"] for item in body["items"]]
        totals.append(body["total"])
        cursor = body["next"]
        if cursor is None:
            return ids, totals
    raise AssertionError("paging did not end")


# ---------------------------------------------------------------------------------- paging


def test_paging_visits_every_public_published_dataset_exactly_once(client, catalog) -> None:
    expected = []
    for i in range(8):
        # Pairs share a modification time, so the id tie-break of the keyset is exercised too.
        ds = catalog.dataset(f"ds-pub-{i}", modified=T0 + timedelta(minutes=i // 2))
        catalog.add(ds, [catalog.image(ds.id)])
        expected.append(ds.id)
    for lifecycle, visibility in [p.values for p in HIDDEN]:
        catalog.add(
            catalog.dataset(
                f"ds-hidden-{lifecycle}-{visibility}",
                lifecycle=lifecycle,
                visibility=visibility,
                modified=T0 + timedelta(minutes=1),
            )
        )

    for limit in (1, 3, 5, 8, 20):
        ids, totals = walk(client, "/api/v1/datasets", limit)
        assert sorted(ids) == sorted(expected), limit
        assert len(ids) == len(set(ids)) == 8
        assert set(totals) == {8}

    first = get_json(client, "/api/v1/datasets")
    assert len(first["items"]) == 3  # config web.page_size
    # Newest first.
    mods = [item["modified"] for item in get_json(client, "/api/v1/datasets?limit=20")["items"]]
    assert mods == sorted(mods, reverse=True)


def test_empty_catalog_lists_nothing(client) -> None:
    assert get_json(client, "/api/v1/datasets") == {"items": [], "next": None, "total": 0}
    assert get_json(client, "/api/v1/harvest/runs") == {"items": [], "next": None, "total": 0}


# ---------------------------------------------------------------------------------- access


@pytest.mark.parametrize(("lifecycle", "visibility"), HIDDEN)
def test_hidden_records_never_reach_anonymous_callers(
    client, catalog, lifecycle, visibility
) -> None:
    public, public_images = catalog.add_simple("ds-public", 1)
    hidden_ds = catalog.dataset(
        "ds-hidden",
        "Secret hidden dataset",
        lifecycle=lifecycle,
        visibility=visibility,
        modified=T0 + timedelta(days=1),
    )
    hidden_image = catalog.with_thumbnail(catalog.image(hidden_ds.id, "secret"))
    catalog.add(hidden_ds, [hidden_image])

    # Lists and counts.
    body = get_json(client, "/api/v1/datasets?limit=20")
    assert [d["id"] for d in body["items"]] == [public.id]
    assert body["total"] == 1
    home = client.get("/").get_data(as_text=True)
    assert 'id="count-datasets">1<' in home
    assert 'id="count-images">1<' in home
    assert "Secret hidden dataset" not in home
    listing = client.get("/datasets").get_data(as_text=True)
    assert "Secret hidden dataset" not in listing
    assert public.title in listing

    # Detail, images and thumbnails: the same 404 as for something that does not exist.
    for url in (
        f"/api/v1/datasets/{hidden_ds.id}",
        f"/api/v1/images/{hidden_image.id}",
    ):
        assert_error_shape(get_json(client, url, 404), 404)
    for url in (
        f"/datasets/{hidden_ds.id}",
        f"/images/{hidden_image.id}",
        f"/thumbnails/{hidden_image.id}.png",
    ):
        r = client.get(url)
        if lifecycle is Lifecycle.withdrawn and url.startswith("/datasets/"):
            # A withdrawn public record keeps its citation on a tombstone (410 Gone); its
            # images and files are gone with it.
            assert r.status_code == 410, url
            continue
        assert r.status_code == 404, url
        assert "Secret hidden dataset" not in r.get_data(as_text=True)
    # The public twin is readable on the same paths.
    assert get_json(client, f"/api/v1/images/{public_images[0].id}")["dataset_id"] == public.id
    with client.get(f"/thumbnails/{public_images[0].id}.png") as r:  # closes the file
        assert r.status_code == 200


# ---------------------------------------------------------------------------------- errors


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BAD_REQUESTS = [
    # (url, status, text the message must contain)
    ("/api/v1/datasets?limit=abc", 400, "'abc'"),
    ("/api/v1/datasets?limit=0", 400, "limit 0"),
    ("/api/v1/datasets?limit=-5", 400, "limit -5"),
    ("/api/v1/datasets?limit=21", 400, "limit 21"),
    ("/api/v1/datasets?limit=2.5", 400, "'2.5'"),
    ("/api/v1/datasets?limit=" + "9" * 40, 400, "is not an integer"),
    ("/api/v1/datasets?limit=1&limit=2", 400, "'limit' given more than once"),
    ("/api/v1/datasets?lmit=3&q=x", 400, "'lmit', 'q'"),
    ("/api/v1/datasets?cursor=not*a*cursor", 400, "not*a*cursor"),
    ("/api/v1/datasets?cursor=" + _b64(["x"]), 400, "is not valid"),
    ("/api/v1/datasets?cursor=" + _b64({"a": 1}), 400, "is not valid"),
    ("/api/v1/datasets?cursor=" + _b64([1, 2]), 400, "is not valid"),
    ("/api/v1/datasets?cursor=" + "A" * 600, 400, "is not valid"),
    ("/api/v1/datasets/ds-nope", 404, "'ds-nope'"),
    ("/api/v1/datasets/ds-nope?expand=1", 400, "'expand'"),
    ("/api/v1/datasets/%00", 404, "no dataset"),
    ("/api/v1/datasets/" + "x" * 300, 404, "no dataset"),
    ("/api/v1/images/im-nope", 404, "'im-nope'"),
    ("/api/v1/images/im-nope?x=1", 400, "'x'"),
    ("/api/v1/harvest/runs?limit=abc", 400, "'abc'"),
    ("/api/v1/harvest/runs?limit=1000", 400, "limit 1000"),
    ("/api/v1/harvest/runs?status=failed", 400, "'status'"),
    ("/api/v1/harvest/runs?cursor=" + _b64(["x"]), 400, "is not valid"),
    ("/api/v1/harvest/runs?cursor=" + _b64([1, 2]), 400, "is not valid"),
    ("/api/v1/harvest/runs?source=Bad%20Name", 400, "'Bad Name'"),
    ("/api/v1/harvest/runs/12345", 404, "12345"),
    ("/api/v1/harvest/runs/abc", 404, "'abc'"),
    ("/api/v1/harvest/runs/99999999999", 404, "99999999999"),
    ("/api/v1/harvest/runs/7?verbose=1", 400, "'verbose'"),
    ("/api/v1/?x=1", 400, "'x'"),
    ("/api/v1/openapi.json?x=1", 400, "'x'"),
    ("/api/v1/no-such-endpoint", 404, "not found"),
]


@pytest.mark.parametrize(("url", "status", "names"), BAD_REQUESTS)
def test_every_endpoint_answers_errors_in_one_shape(client, catalog, url, status, names) -> None:
    catalog.add_simple("ds-one", 1)
    body = get_json(client, url, status)
    assert_error_shape(body, status)
    assert names in body["error"], body


def test_bad_limit_names_the_allowed_range(client) -> None:
    body = get_json(client, "/api/v1/datasets?limit=abc", 400)
    assert "from 1 to 20" in body["error"]  # config web.max_page_size
    assert body["errors"] == ["limit: 'abc' is not an integer from 1 to 20"]


def test_wrong_method_is_405_with_allow_header(client) -> None:
    r = client.post("/api/v1/datasets")
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"]
    assert_error_shape(r.get_json(), 405)


FORGED_CURSORS = [
    pytest.param("/api/v1/datasets", ["2024-01-01T00:00:00+00:00", 5], id="datasets-int-id"),
    pytest.param("/api/v1/datasets", ["2024-01-01T00:00:00+00:00", None], id="datasets-null-id"),
    pytest.param("/api/v1/datasets", ["2024-01-01", "ds-x"], id="datasets-naive-date"),
    pytest.param("/api/v1/harvest/runs", [True], id="runs-bool-id"),
]


@pytest.mark.parametrize(("url", "keys"), FORGED_CURSORS)
def test_forged_cursor_contents_are_400_not_500(client, catalog, url, keys) -> None:
    """A cursor that decodes but holds the wrong types must not reach SQL (it gave 500s)."""
    catalog.add_simple("ds-one", 1)
    catalog.run_with_errors("microscopy", [])
    body = get_json(client, f"{url}?cursor={encode_cursor(*keys)}", 400)
    assert_error_shape(body, 400)


def test_unexpected_exceptions_are_500_without_internals(app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("secret-internal-detail /srv/private/path")

    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    app.add_url_rule("/boom", "web_boom", boom)
    client = app.test_client()
    r = client.get("/api/v1/boom")
    assert r.status_code == 500
    assert_error_shape(r.get_json(), 500)
    assert "secret-internal-detail" not in r.get_data(as_text=True)
    r = client.get("/boom")
    assert r.status_code == 500
    assert r.mimetype == "text/html"
    assert "secret-internal-detail" not in r.get_data(as_text=True)


# ---------------------------------------------------------------------------------- records


def test_image_json_carries_the_technical_metadata(client, catalog) -> None:
    image = catalog.with_thumbnail(catalog.image("ds-tech", "cells"))
    catalog.add(catalog.dataset("ds-tech"), [image])

    body = get_json(client, f"/api/v1/images/{image.id}")
    assert body["id"] == image.id
    assert body["dataset_id"] == "ds-tech"
    assert body["name"] == "cells"
    assert body["path"] == "ds-tech/cells.ome.tif"
    assert body["files"] == ["ds-tech/cells.ome.tif"]
    assert body["series"] == 0
    assert body["format"] == "OME-TIFF"
    assert body["size"] == {"x": 512, "y": 256, "z": 7, "c": 2, "t": 3}
    assert body["pixel_type"] == "uint16"
    # z is a 72-dpi default: no trusted µm value, but the original is kept for curators.
    assert body["physical_size_um"] == {"x": 0.065, "y": 0.065, "z": None}
    z = body["physical_size_detail"]["z"]
    assert z["original_value"] == pytest.approx(0.013888)
    assert z["original_unit"] == "inch"
    assert z["source"] == "tiff-resolution"
    assert "72 dpi" in z["suspicious"]
    assert z["value_um"] is None
    x = body["physical_size_detail"]["x"]
    assert x == {
        "value_um": 0.065,
        "original_value": 65.0,
        "original_unit": "nm",
        "source": "ome-xml",
        "suspicious": None,
    }
    assert [c["name"] for c in body["channels"]] == ["DAPI", "GFP"]
    assert body["channels"][1]["fluor"] == "EGFP"
    assert body["channels"][1]["excitation_nm"] == 488.0
    assert body["channels"][1]["emission_nm"] == 507.0
    assert body["objective"]["magnification"] == 63.0
    assert body["objective"]["na"] == 1.4
    assert body["microscope"] == {"manufacturer": "Zeiss", "model": "LSM 980", "type": "Inverted"}
    assert body["acquired_at"] == "2023-11-05T09:30:00+00:00"
    assert body["status"] == "ok"
    assert body["error"] is None
    assert body["key_values"]["Stain"] == "Hoechst 33342"
    assert body["tags"] == ["mitosis", "HeLa"]
    assert body["thumbnail_url"] == f"{BASE_URL}/thumbnails/{image.id}.png"
    assert body == image_to_json(image, base_url=BASE_URL)


def test_image_json_for_sparse_and_failed_images(client, catalog) -> None:
    bare = catalog.image(
        "ds-sparse",
        "bare",
        size=None,
        physical_size={},
        channels=[],
        objective=None,
        microscope=None,
        acquired_at=None,
    )
    failed = catalog.image(
        "ds-sparse",
        "broken",
        status=ReadStatus.failed,
        error="truncated TIFF: offset 4096 beyond end of file (1024 bytes)",
    )
    catalog.add(catalog.dataset("ds-sparse"), [bare, failed])

    body = get_json(client, f"/api/v1/images/{bare.id}")
    assert body["size"] is None
    assert body["physical_size_um"] == {"x": None, "y": None, "z": None}
    assert body["physical_size_detail"] == {"x": None, "y": None, "z": None}
    assert body["objective"] is None
    assert body["microscope"] is None
    assert body["thumbnail_url"] is None
    body = get_json(client, f"/api/v1/images/{failed.id}")
    assert body["status"] == "failed"
    assert body["error"].startswith("truncated TIFF")


def test_dataset_detail_has_its_images_and_record_fields(client, catalog) -> None:
    ds = catalog.dataset(
        "ds-full",
        "Mitosis in HeLa cells",
        description="Time-lapse of dividing cells.",
        creators=[Person(name="Ada Lovelace", orcid="0000-0002-1825-0097")],
        keywords=["mitosis"],
        organisms=[Term(label="Homo sapiens", iri="http://purl.obolibrary.org/obo/NCBITaxon_9606")],
        license="CC-BY-4.0",
        data_access=DataAccess.open,
    )
    images = [catalog.with_thumbnail(catalog.image(ds.id, f"cell{i}")) for i in range(3)]
    catalog.add(ds, images)

    body = get_json(client, f"/api/v1/datasets/{quote(ds.id)}")
    assert body["title"] == "Mitosis in HeLa cells"
    assert body["creators"][0]["orcid_iri"] == "https://orcid.org/0000-0002-1825-0097"
    assert body["license_iri"] == "https://spdx.org/licenses/CC-BY-4.0"
    assert body["image_count"] == 3
    assert body["formats"] == ["OME-TIFF"]
    assert body["provenance"]["origin_node"] == "test-node"
    assert body["url"] == f"{BASE_URL}/datasets/ds-full"
    assert body["thumbnail_url"] == f"{BASE_URL}/thumbnails/{images[0].id}.png"
    assert [im["id"] for im in body["images"]] == [im.id for im in images]
    assert body["images"][0] == image_to_json(images[0], base_url=BASE_URL)
    # List items are summaries: no image list.
    item = get_json(client, "/api/v1/datasets")["items"][0]
    assert "images" not in item
    assert item["id"] == ds.id


# ---------------------------------------------------------------------------------- runs


def test_runs_show_errors_with_path_and_reason(client, catalog) -> None:
    first = catalog.run_with_errors("microscopy", [])
    second = catalog.run_with_errors(
        "microscopy",
        [
            ("lab/a/broken.ome.tif", "truncated TIFF: offset beyond end of file"),
            ("lab/b/secret", "permission denied"),
        ],
    )
    other = catalog.run_with_errors("archive", [("x.czi", "unsupported format")], status="failed")

    body = get_json(client, "/api/v1/harvest/runs")
    assert [r["id"] for r in body["items"]] == [other, second, first]
    assert body["total"] == 3
    run = body["items"][1]
    assert run["source"] == "microscopy"
    assert run["status"] == "completed"
    assert run["start"]
    assert run["end"]
    assert run["counts"] == {"files_seen": 10, "images": 7, "errors": 2}
    assert run["errors"] == [
        {
            "path": "lab/a/broken.ome.tif",
            "reason": "truncated TIFF: offset beyond end of file",
            "level": "error",
        },
        {"path": "lab/b/secret", "reason": "permission denied", "level": "error"},
    ]
    assert get_json(client, f"/api/v1/harvest/runs/{second}") == run

    ids, totals = walk(client, "/api/v1/harvest/runs", 1)
    assert ids == [other, second, first]
    assert set(totals) == {3}
    only = get_json(client, "/api/v1/harvest/runs?source=archive")
    assert [r["id"] for r in only["items"]] == [other]
    assert only["items"][0]["errors"][0]["reason"] == "unsupported format"


# ---------------------------------------------------------------------------------- index


def test_index_links_to_every_endpoint(client) -> None:
    body = get_json(client, "/api/v1/")
    links = body["links"]
    assert links["datasets"] == f"{BASE_URL}/api/v1/datasets"
    assert links["openapi"] == f"{BASE_URL}/api/v1/openapi.json"
    assert {"dataset", "image", "harvest_runs", "harvest_run", "thumbnail"} <= set(links)


def test_create_app_opens_the_configured_database(config, engine, catalog) -> None:
    from node.app import create_app

    catalog.add_simple("ds-one", 1)
    threads = threading.active_count()
    app = create_app(config)  # no engine given: opens config.database_url itself
    try:
        body = app.test_client().get("/api/v1/datasets").get_json()
        assert [d["id"] for d in body["items"]] == ["ds-one"]
        ctx = app.extensions["fairnode"]
        assert ctx.config is config
        # No scheduler (or any other background thread) starts inside the web app.
        assert threading.active_count() == threads
    finally:
        app.extensions["fairnode"].records.engine.dispose()


def test_secret_key_comes_from_the_environment_or_is_random(config, engine, monkeypatch) -> None:
    from node.app import create_app

    monkeypatch.setenv("FAIRNODE_SECRET_KEY", "from-the-environment")
    assert create_app(config, engine=engine).secret_key == "from-the-environment"
    monkeypatch.delenv("FAIRNODE_SECRET_KEY")
    first = create_app(config, engine=engine).secret_key
    second = create_app(config, engine=engine).secret_key
    assert first != second
    assert len(first) >= 32
