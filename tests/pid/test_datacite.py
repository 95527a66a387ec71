"""DataCite DOIs (node/pid/datacite_client.py, scheme "datacite"): the REST API contract, tested
against a real HTTP server on loopback that checks each request the way DataCite documents it
(basic auth, ``application/vnd.api+json``, the JSON:API body with base64 DataCite XML) and answers
with DataCite's documented bodies: 201 with the DOI, 422 and 401 with its ``errors`` list, 5xx,
and answers too slow to wait for. DataCite itself cannot be reached from here."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree
from pid_helpers import add_dataset, fairnode, pid_rows, stored, with_pid
from sqlalchemy import Engine

from node.catalog import publishing
from node.catalog.db import open_catalog
from node.config import Config
from node.pid import ark
from node.pid.datacite_client import DataCiteClient
from node.pid.errors import (
    DataCiteCredentialsError,
    DataCiteRejectedError,
    DataCiteUnavailableError,
)
from node.pid.service import PidService
from node.records import Lifecycle

USER, PASSWORD = "TEST.FAIRNODE", "s3cret-pass"
PREFIX = "10.80000"
KERNEL = "http://datacite.org/schema/kernel-4"
LANDING = "http://node.test/datasets/"


class DataCiteServer(ThreadingHTTPServer):
    """DataCite's ``/dois`` endpoint as documented, answering POSTs from a script of outcomes:
    ``created`` (201), ``taken`` / ``invalid`` (422), ``unauthorized`` (401), ``unavailable``
    (503), ``error`` (500) and ``slow`` (registers, then answers after the client gave up)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, script: list[str], *, fallback: str = "created"):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.fallback = fallback
        self.posts: list[dict] = []
        self.gets: list[str] = []
        self.problems: list[str] = []  # every way a request broke DataCite's documented contract
        self.registered: dict[str, str] = {}  # doi -> url
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def next_outcome(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else self.fallback


class _Handler(BaseHTTPRequestHandler):
    server: DataCiteServer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.api+json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a client that gave up waiting (the timeout tests)

    def _check_auth(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.server.problems.append(f"authorization {self.headers.get('Authorization')!r}")

    def do_GET(self) -> None:  # GET /dois/{doi}
        self.server.gets.append(self.path)
        self._check_auth()
        doi = self.path.removeprefix("/dois/").lower()
        if doi not in self.server.registered:
            self._answer(
                404,
                {
                    "errors": [
                        {
                            "status": "404",
                            "title": "The resource you are looking for doesn't exist.",
                        }
                    ]
                },
            )
            return
        self._answer(200, _created_body(doi, self.server.registered[doi]))

    def do_POST(self) -> None:  # POST /dois
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = self._check(raw)
        self.server.posts.append(body)
        attributes = (body.get("data") or {}).get("attributes") or {}
        doi, url = str(attributes.get("doi", "")).lower(), attributes.get("url", "")
        outcome = self.server.next_outcome()
        if outcome == "created":
            self.server.registered[doi] = url
            self._answer(201, _created_body(doi, url))
        elif outcome == "slow":
            self.server.registered[doi] = url
            time.sleep(1.0)
            self._answer(201, _created_body(doi, url))
        elif outcome == "taken":
            self._answer(
                422,
                {
                    "errors": [
                        {"source": "doi", "uid": doi, "title": "This DOI has already been taken"}
                    ]
                },
            )
        elif outcome == "invalid":
            self._answer(
                422, {"errors": [{"source": "metadata", "uid": doi, "title": "Is invalid"}]}
            )
        elif outcome == "unauthorized":
            self._answer(401, {"errors": [{"status": "401", "title": "Bad credentials."}]})
        elif outcome == "unavailable":
            self._answer(503, {"errors": [{"status": "503", "title": "Service Unavailable"}]})
        else:
            self._answer(500, {"errors": [{"status": "500", "title": "Internal Server Error"}]})

    def _check(self, raw: bytes) -> dict:
        """The request as DataCite documents it ("Creating DOIs with the REST API")."""
        problems = self.server.problems
        self._check_auth()
        if self.path != "/dois":
            problems.append(f"path {self.path!r}")
        if self.headers.get("Content-Type") != "application/vnd.api+json":
            problems.append(f"content type {self.headers.get('Content-Type')!r}")
        try:
            body = json.loads(raw)
            data = body["data"]
            attributes = data["attributes"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"not a JSON:API document: {raw[:200]!r}")
            return {}
        if data.get("type") != "dois":
            problems.append(f"data.type {data.get('type')!r}")
        doi = attributes.get("doi", "")
        if not doi.startswith(PREFIX + "/"):
            problems.append(f"doi {doi!r} outside the prefix")
        if attributes.get("event") != "publish":
            problems.append(f"event {attributes.get('event')!r}")
        if not str(attributes.get("url", "")).startswith(LANDING):
            problems.append(f"url {attributes.get('url')!r}")
        try:
            root = etree.fromstring(base64.b64decode(attributes["xml"], validate=True))
        except (KeyError, ValueError, etree.XMLSyntaxError) as e:
            problems.append(f"xml: {e}")
            return body
        ns = {"d": KERNEL}
        ident = root.find("d:identifier", ns)
        if ident is None or ident.text != doi or ident.get("identifierType") != "DOI":
            problems.append("xml identifier is not the DOI")
        for mandatory in (
            "creators/d:creator",
            "titles/d:title",
            "publisher",
            "publicationYear",
            "resourceType",
        ):
            if root.find(f"d:{mandatory}", ns) is None:
                problems.append(f"xml lacks {mandatory}")
        return body


def _created_body(doi: str, url: str) -> dict:
    """DataCite's 201 answer (the documented example's shape: data.id, data.attributes.doi)."""
    prefix, suffix = doi.split("/", 1)
    return {
        "data": {
            "id": doi,
            "type": "dois",
            "attributes": {
                "doi": doi,
                "prefix": prefix,
                "suffix": suffix,
                "identifiers": [],
                "url": url,
                "state": "findable",
                "isActive": True,
                "schemaVersion": "http://datacite.org/schema/kernel-4",
            },
            "relationships": {"client": {"data": {"id": USER.lower(), "type": "clients"}}},
        }
    }


@pytest.fixture
def serve() -> Iterator:
    servers: list[DataCiteServer] = []

    def start(*script: str, fallback: str = "created") -> DataCiteServer:
        server = DataCiteServer(list(script), fallback=fallback)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client_for(server: DataCiteServer, **kw) -> DataCiteClient:
    return DataCiteClient(
        server.url, USER, PASSWORD, **{"timeout": 0.4, "retries": 3, "backoff": 0.01, **kw}
    )


def doi_config(config: Config, server: DataCiteServer) -> Config:
    return with_pid(config, scheme="datacite", datacite_prefix=PREFIX, datacite_url=server.url)


def publish_doi(config: Config, engine: Engine, server: DataCiteServer, dataset_id: str, **kw):
    cfg = doi_config(config, server)
    service = PidService(cfg, engine, datacite=client_for(server, **kw))
    return publishing.publish(engine, dataset_id, config=cfg, pids=service)


def test_publishing_registers_a_findable_doi(serve, config: Config, engine: Engine):
    server = serve("created")
    add_dataset(engine, "ds-doi", title="Mitosis in HeLa cells")
    out = publish_doi(config, engine, server, "ds-doi")
    assert server.problems == []
    [post] = server.posts
    attributes = post["data"]["attributes"]
    doi = attributes["doi"]
    assert out.pid == doi
    assert out.message == f"dataset 'ds-doi' published as {doi}"
    suffix = doi.removeprefix(PREFIX + "/")
    assert suffix.startswith("fk4")
    assert len(suffix) == 3 + 8 + 1
    assert suffix[-1] == ark.check_char(f"{PREFIX}/{suffix[:-1]}")
    assert attributes["url"] == "http://node.test/datasets/ds-doi"
    xml = etree.fromstring(base64.b64decode(attributes["xml"]))
    assert xml.findtext(f"{{{KERNEL}}}titles/{{{KERNEL}}}title") == "Mitosis in HeLa cells"
    ds = stored(engine, "ds-doi")
    assert (ds.lifecycle, ds.identifier) == (Lifecycle.published, doi)
    assert pid_rows(engine) == [(doi, "ds-doi", "datacite", "active")]


def test_a_doi_datacite_calls_taken_is_dropped_for_another(serve, config: Config, engine: Engine):
    server = serve("taken", "created")
    add_dataset(engine, "ds-t")
    out = publish_doi(config, engine, server, "ds-t")
    first, second = (p["data"]["attributes"]["doi"] for p in server.posts)
    assert first != second
    assert out.pid == second
    assert pid_rows(engine) == [(second, "ds-t", "datacite", "active")]
    assert server.problems == []


def test_invalid_metadata_is_a_clear_error_and_nothing_is_published(
    serve, config: Config, engine: Engine
):
    server = serve("invalid")
    add_dataset(engine, "ds-bad")
    with pytest.raises(DataCiteRejectedError) as e:
        publish_doi(config, engine, server, "ds-bad")
    doi = server.posts[0]["data"]["attributes"]["doi"]
    assert e.value.message == f"DataCite refused {doi} (HTTP 422): metadata: Is invalid"
    assert e.value.errors == ["metadata: Is invalid"]
    assert stored(engine, "ds-bad").lifecycle is Lifecycle.draft
    assert pid_rows(engine) == []


def test_bad_credentials_say_which_variables_to_fix(serve, config: Config, engine: Engine):
    server = serve("unauthorized")
    add_dataset(engine, "ds-401")
    with pytest.raises(DataCiteCredentialsError) as e:
        publish_doi(config, engine, server, "ds-401")
    assert "DataCite refused the repository account (HTTP 401: Bad credentials.)" in e.value.message
    assert "FAIRNODE_DATACITE_USERNAME/FAIRNODE_DATACITE_PASSWORD" in e.value.message
    assert len(server.posts) == 1  # a refusal is not retried
    assert stored(engine, "ds-401").lifecycle is Lifecycle.draft


def test_5xx_answers_are_retried(serve, config: Config, engine: Engine):
    server = serve("unavailable", "error", "created")
    add_dataset(engine, "ds-503")
    out = publish_doi(config, engine, server, "ds-503")
    dois = {p["data"]["attributes"]["doi"] for p in server.posts}
    assert len(server.posts) == 3
    assert dois == {out.pid}  # the same request, retried
    assert server.problems == []


def test_datacite_down_is_a_clear_error_after_the_retries(serve, config: Config, engine: Engine):
    server = serve(fallback="unavailable")
    add_dataset(engine, "ds-down")
    with pytest.raises(DataCiteUnavailableError) as e:
        publish_doi(config, engine, server, "ds-down", retries=2)
    assert len(server.posts) == 3
    assert f"DataCite at {server.url} did not answer usefully while registering" in e.value.message
    assert "HTTP 503 (Service Unavailable), 3 attempts; nothing was published" in e.value.message
    assert stored(engine, "ds-down").lifecycle is Lifecycle.draft
    assert pid_rows(engine) == []


def test_timeouts_are_retried_then_reported(serve):
    server = serve(fallback="slow")
    client = client_for(server, timeout=0.2, retries=1)
    with pytest.raises(DataCiteUnavailableError, match=r"no answer within 0.2s, 2 attempts"):
        client.register(f"{PREFIX}/fk4slow", url=LANDING + "x", xml=_xml(f"{PREFIX}/fk4slow"))


def test_an_answer_lost_to_a_timeout_is_recognised_as_our_doi(serve):
    # The first POST registers the DOI but answers too late; the retry meets "already taken";
    # GET /dois/{doi} shows it points at our URL: it is ours.
    server = serve("slow", "taken")
    client = client_for(server, timeout=0.3)
    doi = f"{PREFIX}/fk4lost"
    assert client.register(doi, url=LANDING + "lost", xml=_xml(doi)) == doi
    assert len(server.posts) == 2
    assert server.gets == [f"/dois/{doi}"]
    # Someone else's DOI with the same name is not mistaken for ours.
    server.script = ["unavailable", "taken"]
    server.registered[f"{PREFIX}/fk4other"] = "https://elsewhere.example/x"
    with pytest.raises(DataCiteRejectedError, match="This DOI has already been taken"):
        client.register(f"{PREFIX}/fk4other", url=LANDING + "other", xml=_xml(f"{PREFIX}/fk4other"))


def test_a_refused_connection_is_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = DataCiteClient(f"http://127.0.0.1:{port}", USER, PASSWORD, retries=1, backoff=0.01)
    with pytest.raises(DataCiteUnavailableError, match="connection failed"):
        client.register(f"{PREFIX}/fk4x", url=LANDING + "x", xml=_xml(f"{PREFIX}/fk4x"))


def test_credentials_come_from_the_environment_only(monkeypatch):
    monkeypatch.delenv("FAIRNODE_DATACITE_USERNAME", raising=False)
    monkeypatch.delenv("FAIRNODE_DATACITE_PASSWORD", raising=False)
    with pytest.raises(DataCiteCredentialsError, match="FAIRNODE_DATACITE_USERNAME"):
        DataCiteClient.from_env("https://api.test.datacite.org")
    monkeypatch.setenv("FAIRNODE_DATACITE_USERNAME", USER)
    monkeypatch.setenv("FAIRNODE_DATACITE_PASSWORD", PASSWORD)
    assert DataCiteClient.from_env("https://api.test.datacite.org/").auth == (USER, PASSWORD)


def test_the_publish_command_registers_through_datacite(serve, tmp_path: Path, db_url: str):
    server = serve("created")
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        f'[node]\nid = "cli-node"\nname = "CLI node"\nbase_url = "http://node.test"\n'
        f'data_dir = "{tmp_path / "var"}"\n[database]\nurl = "{db_url}"\n'
        f'[pid]\nscheme = "datacite"\ndatacite_prefix = "{PREFIX}"\ndatacite_url = "{server.url}"\n'
    )
    engine = open_catalog(db_url)
    try:
        add_dataset(engine, "ds-cli")
        env = {"FAIRNODE_DATACITE_USERNAME": USER, "FAIRNODE_DATACITE_PASSWORD": PASSWORD}
        res = fairnode("--config", str(cfg), "publish", "ds-cli", env=env)
        assert res.returncode == 0, res.stderr
        doi = stored(engine, "ds-cli").identifier
        assert res.stdout == f"dataset 'ds-cli' published as {doi}\n"
        assert server.problems == []
        assert [p["data"]["attributes"]["doi"] for p in server.posts] == [doi]

        add_dataset(engine, "ds-cli-2")
        server.script = ["unauthorized"]
        res = fairnode("--config", str(cfg), "publish", "ds-cli-2", env=env)
        assert res.returncode == 1
        assert "error: DataCite refused the repository account (HTTP 401: Bad credentials.)" in (
            res.stderr
        )
    finally:
        engine.dispose()


def _xml(doi: str) -> bytes:
    return (
        f'<resource xmlns="{KERNEL}"><identifier identifierType="DOI">{doi}</identifier>'
        "<creators><creator><creatorName>Lovelace, Ada</creatorName></creator></creators>"
        "<titles><title>T</title></titles><publisher>P</publisher>"
        "<publicationYear>2024</publicationYear>"
        '<resourceType resourceTypeGeneral="Dataset">Microscopy images</resourceType></resource>'
    ).encode()
