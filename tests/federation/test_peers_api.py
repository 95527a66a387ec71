"""GET /api/v1/peers and the admin page /admin/peers: each peer's state, last success, last
error, record counts and next run; peer text escaped; no token variable names shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import Engine

from node.config import Config, PeerSettings
from node.federation.ingest import Ingester
from node.federation.model import RemoteRecord
from node.federation.peers import PeerStore
from node.federation.state import PeerStateStore
from node.records import Dataset, Lifecycle, Provenance, Visibility

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> peer said & "so"'


def remote(n: int, visibility: Visibility = Visibility.public) -> RemoteRecord:
    ds = Dataset(
        id=f"ds-{n}",
        identifier=f"ark:/99999/fk4p{n:04d}",
        title=f"Record {n}",
        modified=T0,
        lifecycle=Lifecycle.published,
        provenance=Provenance(origin_node="inst-a"),
    )
    return RemoteRecord(f"oai:inst-a:ds-{n}", T0, ds, visibility=visibility)


@pytest.fixture
def with_peers(config: Config, engine: Engine, app: Flask) -> None:
    config.federation.peers = [
        PeerSettings(id="inst-a", url="http://inst-a.test", schedule="*/30 * * * *")
    ]
    PeerStore(config, engine).add(
        PeerSettings(
            id="zenodo",
            url="https://zenodo.org/oai2d",
            protocol="oai-pmh",
            schedule="",
            token_env="ZENODO_SECRET_TOKEN",
        )
    )
    ing = Ingester(config, engine)
    ing.apply_batch("inst-a", [remote(1), remote(2), remote(3, Visibility.federation)])
    states = PeerStateStore(engine)
    states.started("inst-a", T0)
    states.succeeded("inst-a", T0, {"read": 3, "added": 3}, T0)
    states.started("zenodo", T0 + timedelta(hours=1))
    states.failed("zenodo", HOSTILE, {"read": 0}, T0 + timedelta(hours=1))


def test_api_lists_peers_with_state_counts_and_next_run(client, with_peers) -> None:
    r = client.get("/api/v1/peers")
    assert r.status_code == 200
    items = {p["id"]: p for p in r.get_json()["items"]}
    assert list(items) == ["inst-a", "zenodo"]
    a, z = items["inst-a"], items["zenodo"]
    assert (a["url"], a["protocol"], a["schedule"], a["origin"]) == (
        "http://inst-a.test",
        "fairnode",
        "*/30 * * * *",
        "config",
    )
    assert a["state"]["last_success"] == T0.isoformat()
    assert a["state"]["last_counts"] == {"read": 3, "added": 3}
    assert a["state"]["last_error"] is None
    next_run = datetime.fromisoformat(a["state"]["next_run"])
    assert next_run > datetime.now(UTC)
    assert next_run.minute in (0, 30)
    # Anonymous callers count only the records they may read (the federation one is hidden).
    assert a["records"] == 2
    assert z["origin"] == "cli"
    assert z["state"]["last_error"] == HOSTILE
    assert z["state"]["last_success"] is None
    assert z["state"]["next_run"] is None  # manual only
    assert z["records"] == 0
    assert "ZENODO_SECRET_TOKEN" not in r.get_data(as_text=True)
    assert "token_env" not in a


def test_api_peers_rejects_unknown_parameters(client, with_peers) -> None:
    r = client.get("/api/v1/peers?limit=3")
    assert r.status_code == 400
    assert "limit" in r.get_json()["error"]


def test_api_peers_is_in_the_openapi_document(client) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["paths"]["/peers"]["get"]["operationId"] == "listPeers"
    assert "Peer" in doc["components"]["schemas"]


def test_admin_page_shows_peers_escaped(client, with_peers) -> None:
    r = client.get("/admin/peers")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<tr id="peer-inst-a">' in html
    assert '<a href="http://inst-a.test" rel="nofollow noopener">' in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; peer said &amp; &#34;so&#34;" in html
    assert "<script>" not in html
    assert "ZENODO_SECRET_TOKEN" not in html
    assert "status-failed" in html  # zenodo's error is newer than any success
    assert "manual only" in html


def test_admin_page_without_peers(client) -> None:
    r = client.get("/admin/peers")
    assert r.status_code == 200
    assert "harvests no peers yet" in r.get_data(as_text=True)
