"""The node resolves its ARKs (node/pid/views.py): redirects, both label forms, normalisation,
the ?info inflections, tombstones (410) for withdrawn records, and 404 for everything it must not
reveal or does not know."""

from __future__ import annotations

import http.client
import importlib.util
import threading
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from pid_helpers import add_dataset, stored
from sqlalchemy import Engine
from werkzeug.serving import make_server

from node.catalog import publishing
from node.config import Config
from node.pid import ark
from node.records import Lifecycle, Visibility

# The portal's markup rules (one h1, landmarks, no inline script or style...): the page tests'.
_spec = importlib.util.spec_from_file_location(
    "portal_page_checks", Path(__file__).resolve().parents[1] / "web" / "test_pages.py"
)
_pages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pages)
check_html = _pages.check_html
HOSTILE = "<script>alert(1)</script>"


def published(engine: Engine, config: Config, dataset_id: str, **fields) -> str:
    add_dataset(engine, dataset_id, **fields)
    return publishing.publish(engine, dataset_id, config=config).pid


def test_a_published_arks_resolves_to_its_landing_page(
    client: FlaskClient, engine: Engine, config: Config
):
    pid = published(engine, config, "ds-pub")
    name = pid.removeprefix("ark:/99999/")
    for path in (
        f"/ark:/99999/{name}",  # classic label
        f"/ark:99999/{name}",  # modern label
        f"/ARK:/99999/{name}",  # the label is case-insensitive
        f"/ark:/99999/{name[:3]}-{name[3:7]}-{name[7:]}",  # hyphens are identity-inert
        f"/ark:/99999/{name}/",  # a final structural character is dropped
    ):
        r = client.get(path)
        assert r.status_code == 302, path
        assert r.headers["Location"] == "/datasets/ds-pub", path
        assert r.headers["Link"] == f'<http://node.test/{pid}>; rel="cite-as"'
    # Another query travels to the landing page (content negotiation by ?format=).
    r = client.get(f"/{pid}?format=ttl")
    assert (r.status_code, r.headers["Location"]) == (302, "/datasets/ds-pub?format=ttl")


def test_info_inflections_return_the_erc_record(
    client: FlaskClient, engine: Engine, config: Config
):
    pid = published(engine, config, "ds-info", title="Mitosis\nin HeLa cells")
    issued = stored(engine, "ds-info").issued.date().isoformat()
    expected = (
        "erc:\n"
        "who: Ada Lovelace; Charles Babbage\n"
        "what: Mitosis in HeLa cells\n"
        f"when: {issued}\n"
        f"where: http://node.test/{pid}\n"
        f"id: {pid}\n"
        "publisher: Test Imaging Node\n"
        "target: http://node.test/datasets/ds-info\n"
        "status: published\n"
        "persistence: none: NAAN 99999 is reserved for testing, so this ARK may stop resolving "
        "at any time; do not cite it\n"
        "\n"
    )
    for inflection in ("?info", "??"):
        r = client.get(f"/{pid}{inflection}")
        assert r.status_code == 200, inflection
        assert r.mimetype == "text/plain"
        assert r.get_data(as_text=True) == expected, inflection


def test_the_bare_question_mark_inflection_over_real_http(app, engine: Engine, config: Config):
    """WSGI drops an empty query; the node sees a bare '?' in the raw request URI, which the
    test client cannot send: a real server on loopback and a raw HTTP request can."""
    pid = published(engine, config, "ds-raw")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        answers = {}
        for target in (f"/{pid}?", f"/{pid}"):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            conn.request("GET", target)
            r = conn.getresponse()
            answers[target] = (r.status, r.getheader("Content-Type"), r.read().decode())
            conn.close()
    finally:
        server.shutdown()
        thread.join(10)
    status, ctype, body = answers[f"/{pid}?"]
    assert (status, ctype) == (200, "text/plain; charset=utf-8")
    assert body.startswith("erc:\nwho: Ada Lovelace; Charles Babbage\nwhat: Dataset ds-raw\n")
    assert answers[f"/{pid}"][0] == 302


def test_unknown_foreign_and_mistyped_arks_are_404_with_a_clear_message(
    client: FlaskClient, engine: Engine, config: Config
):
    pid = published(engine, config, "ds-x")
    name = pid.removeprefix("ark:/99999/")

    def message(path: str) -> str:
        r = client.get(path)
        assert r.status_code == 404, path
        _pages.check_html(r.get_data(as_text=True))
        return r.get_data(as_text=True)

    zone = "99999/fk4bcdfghjk"
    unknown = f"ark:/{zone}{ark.check_char(zone)}"
    assert f"no record on this node has the ARK {unknown}" in message(f"/{unknown}")
    assert "check character does not match" not in message(f"/{unknown}")
    typo = f"ark:/99999/{name[:4]}{'b' if name[4] != 'b' else 'c'}{name[5:]}"
    assert "its check character does not match: was it mistyped?" in message(f"/{typo}")
    foreign = message(f"/ark:/12345/{name}")
    assert "this node resolves ARKs of NAAN 99999 only, not ark:/12345/" in foreign
    assert f"https://n2t.net/ark:/12345/{name}" in foreign
    # The name is case-sensitive (ARK spec): upper case is another, unknown, ARK.
    assert "no record on this node has the ARK" in message(f"/ark:/99999/{name.upper()}")
    assert "names a whole dataset" in message(f"/{pid}/part/file.tif")
    assert "needs a name after the NAAN" in message("/ark:/99999/")
    assert "needs a name after the NAAN" in message("/ark:99999")


@pytest.mark.parametrize(
    ("lifecycle", "visibility"),
    [
        (Lifecycle.published, Visibility.private),
        (Lifecycle.published, Visibility.institution),
        (Lifecycle.withdrawn, Visibility.private),
    ],
)
def test_records_the_policy_hides_answer_like_unknown_ones(
    client: FlaskClient, engine: Engine, config: Config, lifecycle, visibility
):
    pid = published(engine, config, "ds-hidden", visibility=visibility)
    if lifecycle is Lifecycle.withdrawn:
        publishing.withdraw(engine, "ds-hidden", reason="secret", config=config)
    for suffix in ("", "?info"):
        r = client.get(f"/{pid}{suffix}")
        assert r.status_code == 404
        body = r.get_data(as_text=True)
        assert f"no record on this node has the ARK {pid}" in body
        assert "ds-hidden" not in body
        assert "secret" not in body


def test_a_draft_carrying_an_ark_is_not_resolved(client: FlaskClient, engine: Engine):
    zone = "99999/fk4draft0"
    pid = f"ark:/{zone}{ark.check_char(zone)}"
    add_dataset(engine, "ds-draft", identifier=pid)
    assert client.get(f"/{pid}").status_code == 404


def test_a_withdrawn_records_ark_shows_its_tombstone(
    client: FlaskClient, engine: Engine, config: Config
):
    pid = published(engine, config, "ds-gone", title=f"Old scans {HOSTILE}")
    year = stored(engine, "ds-gone").issued.year
    publishing.withdraw(engine, "ds-gone", reason=f"consent withdrawn {HOSTILE}", config=config)
    r = client.get(f"/{pid}")
    assert r.status_code == 410
    assert r.mimetype == "text/html"
    assert r.headers["Link"] == f'<http://node.test/{pid}>; rel="cite-as"'
    body = r.get_data(as_text=True)
    check_html(body)
    assert HOSTILE not in body
    assert "&lt;script&gt;" in body
    citation = (
        f"Ada Lovelace; Charles Babbage ({year}). "
        "<cite>Old scans &lt;script&gt;alert(1)&lt;/script&gt;</cite>. Test Imaging Node."
    )
    assert citation in body
    assert f'<a href="http://node.test/{pid}">{pid}</a>' in body
    assert "This dataset has been withdrawn." in body
    assert "consent withdrawn &lt;script&gt;" in body

    info = client.get(f"/{pid}?info").get_data(as_text=True)
    assert "status: withdrawn\n" in info
    assert "withdrawn-reason: consent withdrawn <script>alert(1)</script>\n" in info


def test_render_tombstone_without_a_pid_cites_the_landing_page(app, engine: Engine, config: Config):
    from node.web.tombstone import render_tombstone

    add_dataset(engine, "ds-nopid", lifecycle=Lifecycle.withdrawn, withdrawn_reason="mistake")
    with app.test_request_context("/datasets/ds-nopid"):
        r = render_tombstone(stored(engine, "ds-nopid"))
    assert r.status_code == 410
    body = r.get_data(as_text=True)
    check_html(body)
    assert (
        '<a href="http://node.test/datasets/ds-nopid">http://node.test/datasets/ds-nopid</a>'
        in body
    )
    assert r.headers["Link"] == '<http://node.test/datasets/ds-nopid>; rel="cite-as"'
