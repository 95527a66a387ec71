"""Elasticsearch-specific behaviour of ElasticsearchBackend, against a real ES API: the noida-db
emulator these tests start (or the cluster FAIRNODE_TEST_ES_URL names). No mocks: where a
test needs a misbehaving cluster (429s) or must see the wire (credentials), a small real HTTP
server on loopback stands in front of it or in its place.

Every test uses its own alias (a uuid), so tests never see each other's indices.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.client import HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest
from elasticsearch import BadRequestError as EsBadRequestError
from elasticsearch import Elasticsearch
from noida import elasticsearch_server, free_port

from node.config import Config, ConfigError, parse_config
from node.errors import BadRequestError
from node.records import Dataset, ImageSummary, Lifecycle, Provenance, Visibility
from node.search import elastic
from node.search.backend import SearchQuery, Sort
from node.search.elastic import ElasticsearchBackend, build_query
from node.search.errors import SearchIndexError, SearchUnavailableError
from node.search.query import parse_text

NODE = "test-node"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SECRET_ENV = ("FAIRNODE_SEARCH_API_KEY", "FAIRNODE_SEARCH_USERNAME", "FAIRNODE_SEARCH_PASSWORD")


# ----------------------------------------------------------------------------- helpers


def es_config(tmp_path: Path, url: str, **search: Any) -> Config:
    """A node config using Elasticsearch at ``url`` under a fresh alias."""
    settings = {"backend": "elasticsearch", "url": url, "index": f"t-{uuid.uuid4().hex[:12]}"}
    settings.update(search)
    return parse_config(
        {
            "node": {"id": NODE, "name": "Test Node", "data_dir": str(tmp_path / "data")},
            "search": settings,
        },
        env=False,
    )


def record(ds_id: str, title: str, *, days: int = 0, **fields: Any) -> dict[str, Any]:
    """A published public dataset record in its JSON form (what the backends index)."""
    ds = Dataset(
        id=ds_id,
        title=title,
        modified=T0 + timedelta(days=days),
        lifecycle=fields.pop("lifecycle", Lifecycle.published),
        visibility=fields.pop("visibility", Visibility.public),
        provenance=Provenance(origin_node=NODE),
        image_summary=ImageSummary(max_channels=2, has_z=True),
        **fields,
    )
    return ds.to_json()


def records(n: int, word: str = "alpha", prefix: str = "r") -> list[dict[str, Any]]:
    return [record(f"{prefix}{i:04d}", f"{word} record {i}", days=i % 50) for i in range(n)]


def q(text: str = "", **kw: Any) -> SearchQuery:
    return SearchQuery(clauses=parse_text(text), **kw)


def raw_client(url: str) -> Elasticsearch:
    return Elasticsearch(url, request_timeout=10)


@pytest.fixture
def backend_factory(es_url: str, tmp_path: Path) -> Iterator[Callable[..., ElasticsearchBackend]]:
    """Makes backends on the session's Elasticsearch; closes them all at the end."""
    made: list[ElasticsearchBackend] = []

    def make(config: Config | None = None, **search: Any) -> ElasticsearchBackend:
        backend = ElasticsearchBackend(config or es_config(tmp_path, es_url, **search))
        made.append(backend)
        return backend

    yield make
    for b in made:
        b.close()


# ----------------------------------------------------------------------------- loopback HTTP


@dataclass
class Seen:
    """What a loopback server received."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bulk_bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port for the block; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    seen: Seen

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass  # keep the test output clean

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        sent = {"Content-Type": "application/json", "X-Elastic-Product": "Elasticsearch"}
        sent.update(headers or {})
        for k, v in sent.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def recording_server(seen: Seen) -> type[BaseHTTPRequestHandler]:
    """A stand-in cluster that records every request and knows no alias (HEAD → 404)."""

    class Recorder(_Handler):
        def _any(self) -> None:
            self._body()
            with seen.lock:
                seen.requests.append(
                    (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
            if self.command == "HEAD":
                self._reply(404, b"")
            else:
                self._reply(200, json.dumps({"count": 0}).encode())

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _any

    return Recorder


def rejecting_proxy(
    upstream: str, seen: Seen, reject: Callable[[int, list[dict[str, Any]]], Any]
) -> type[BaseHTTPRequestHandler]:
    """A proxy to ``upstream`` that lets ``reject(n, docs)`` decide about the n-th bulk request
    (n from 1): return "all" to answer HTTP 429, a set of ids to reject those items with a
    429 item status (the rest are forwarded), or None to forward everything."""
    target = urlsplit(upstream)

    class Proxy(_Handler):
        def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "content-length", "connection")
            }
            req = Request(
                f"{target.scheme}://{target.netloc}{self.path}",
                data=body if self.command in ("POST", "PUT") else None,
                headers=headers,
                method=self.command,
            )
            try:
                with urlopen(req, timeout=10) as resp:
                    return resp.status, dict(resp.headers), resp.read()
            except Exception as e:  # an HTTPError carries the upstream's answer
                code = getattr(e, "code", None)
                if code is None:
                    raise
                return code, dict(e.headers), e.read()  # type: ignore[attr-defined]

        def _any(self) -> None:
            body = self._body()
            if "_bulk" not in self.path:
                status, headers, data = self._forward(body)
                keep = {k: v for k, v in headers.items() if k.lower() in ("content-type",)}
                self._reply(status, data, keep)
                return
            with seen.lock:
                seen.bulk_bodies.append(body)
                n = len(seen.bulk_bodies)
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            pairs = list(zip(lines[0::2], lines[1::2], strict=True))  # index ops only
            decision = reject(n, [doc for _, doc in pairs])
            if decision == "all":
                error = {"type": "es_rejected_execution_exception", "reason": "test: busy"}
                self._reply(429, json.dumps({"error": error, "status": 429}).encode())
                return
            rejected = set(decision or ())
            passed = [(a, d) for a, d in pairs if d["id"] not in rejected]
            forwarded: list[dict[str, Any]] = []
            if passed:
                out = b"".join(json.dumps(x).encode() + b"\n" for pair in passed for x in pair)
                status, _, data = self._forward(out)
                assert status == 200, data
                forwarded = json.loads(data)["items"]
            items = []
            it = iter(forwarded)
            for action, doc in pairs:
                if doc["id"] in rejected:
                    items.append(
                        {
                            "index": {
                                "_index": action["index"].get("_index"),
                                "_id": doc["id"],
                                "status": 429,
                                "error": {
                                    "type": "es_rejected_execution_exception",
                                    "reason": "test: queue full",
                                },
                            }
                        }
                    )
                else:
                    items.append(next(it))
            reply = {"took": 1, "errors": bool(rejected), "items": items}
            self._reply(200, json.dumps(reply).encode())

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _any

    return Proxy


# ----------------------------------------------------------------------------- tests


def test_index_search_delete_round_trip(backend_factory: Callable[..., ElasticsearchBackend]):
    es = backend_factory()
    assert es.name == "elasticsearch"
    assert es.health().ok is False  # nothing created before first use
    docs = [
        record("a1", "Confocal imaging of zebrafish heart", days=1),
        record("a2", "Light sheet zebrafish embryo", days=2),
        record("a3", "Mouse cortex", days=3, lifecycle=Lifecycle.draft),
    ]
    assert es.index(docs) == 3
    # Visible on return, no refresh wait: index() refreshes.
    result = es.search(q("zebrafish", sort=Sort.newest))
    assert [h.id for h in result.hits] == ["a2", "a1"]
    assert result.total == 2
    assert result.facets["origin"][0].value == NODE
    assert result.facets["origin"][0].label == "Test Node"  # node_names from the config
    # typo tolerance reaches Elasticsearch as a fuzzy query, not as a query language
    assert {h.id for h in es.search(q("zebarfish")).hits} == {"a1", "a2"}
    # the draft is there but the default policy hides it
    drafts = es.search(q("cortex", lifecycles=frozenset({"draft"})))
    assert [h.id for h in drafts.hits] == ["a3"]
    # replace: same id, new text
    es.index([record("a1", "Widefield kidney", days=1)])
    assert {h.id for h in es.search(q("zebrafish")).hits} == {"a2"}
    # delete: absent ids are fine, visible on return
    assert es.delete(["a2", "never-there", "a2"]) == 2
    assert es.search(q("zebrafish")).total == 0
    health = es.health()
    assert health.ok, health.detail
    assert health.backend == "elasticsearch"
    assert health.documents == 2
    assert es.url in health.detail


def test_template_mappings_and_alias(
    es_url: str, backend_factory: Callable[..., ElasticsearchBackend]
):
    es = backend_factory()
    es.index([record("m1", "Größe-3D café_x naïve")])
    client = raw_client(es_url)
    try:
        alias = es.alias
        templates = client.indices.get_index_template(name=f"{alias}-template")
        template = templates["index_templates"][0]["index_template"]
        assert template["index_patterns"] == [f"{alias}-*"]
        settings = template["template"]["settings"]["index"]
        assert str(settings["max_result_window"]) == "100000"
        assert str(settings["number_of_shards"]) == "1"
        analysis = settings["analysis"]
        assert analysis["tokenizer"]["fairnode_words"]["pattern"] == r"[^\p{L}\p{N}]+"
        assert analysis["analyzer"]["fairnode_words"]["filter"][0] == "lowercase"

        # the alias points at exactly one concrete index named <alias>-<timestamp>
        indices = list(client.indices.get_alias(name=alias))
        assert len(indices) == 1
        assert re.fullmatch(rf"{re.escape(alias)}-\d{{20}}", indices[0])
        mappings = client.indices.get_mapping(index=alias)[indices[0]]["mappings"]
        assert mappings["dynamic"] == "strict"
        props = mappings["properties"]
        assert props["title"] == {
            "type": "text",
            "analyzer": "fairnode_words",
            "index_options": "offsets",
        }
        assert props["organism"]["type"] == "text"
        for name in ("id", "policy", "f_method", "f_origin", "title_key"):
            assert props[name]["type"] == "keyword", name
        for name in ("acquired_from", "acquired_to", "modified"):
            assert props[name]["type"] == "date", name
        assert props["has_z"]["type"] == props["has_t"]["type"] == "boolean"
        assert props["channel_count"]["type"] == "integer"
        assert props["date_key"]["type"] == "long"
        assert mappings["_meta"]["fairnode"]["fingerprint"] == elastic.fingerprint()

        # strict: a field the mapping does not know is refused, not guessed
        with pytest.raises(EsBadRequestError, match="strict"):
            client.index(index=alias, id="x", document={"id": "x", "surprise": 1}, refresh=True)

        # the analyser splits like backend.analyse(): letters and digits, lowercased
        for word in ("größe", "3d", "café", "x", "naïve"):
            assert [h.id for h in es.search(q(f"title:{word}")).hits] == ["m1"], word
        assert es.search(q('"café x"')).total == 1
        # words of 40 bytes or more are dropped, as tantivy's default tokenizer drops them
        es.index([record("m2", f"{'k' * 39} {'w' * 40}")])
        assert [h.id for h in es.search(q("kkk*")).hits] == ["m2"]
        assert es.search(q("www*")).total == 0
    finally:
        client.close()


def test_reindex_swaps_the_alias_while_searches_keep_answering(
    backend_factory: Callable[..., ElasticsearchBackend],
):
    writer = backend_factory(batch_size=25)
    reader = backend_factory(index=writer.alias)  # a second process, e.g. the web app
    old = records(60)
    writer.index(old)
    client = writer.client
    old_index = list(client.indices.get_alias(name=writer.alias))
    assert len(old_index) == 1

    totals: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()
    reindexed = threading.Event()

    def search_forever() -> None:
        while not stop.is_set():
            try:
                totals.append(reader.search(q("alpha", limit=5)).total)
            except BaseException as e:  # any failure fails the test below
                failures.append(e)
            if reindexed.is_set() and totals and totals[-1] == 300:
                return

    during: list[int] = []

    def slow_records() -> Iterator[dict[str, Any]]:
        """The new records, slowly, checking meanwhile that the old index still answers."""
        for i, r in enumerate(records(300)):
            if i % 50 == 25:
                during.append(reader.search(q("alpha")).total)
            time.sleep(0.004)
            yield r

    progress: list[int] = []
    thread = threading.Thread(target=search_forever, daemon=True)
    thread.start()
    try:
        searches_before = len(totals)
        assert writer.reindex(slow_records(), progress.append) == 300
        searches_during = len(totals) - searches_before
        reindexed.set()
        thread.join(timeout=20)
    finally:
        stop.set()
        thread.join(timeout=20)

    assert not failures, failures[:3]
    assert searches_during > 5, "the reader thread did not search during the reindex"
    # never empty, never half-built: the old index (60) until the swap, then the new (300)
    assert set(totals) <= {60, 300}, sorted(set(totals))
    assert totals[-1] == 300
    assert during
    assert set(during) == {60}
    assert sum(progress) == 300
    assert progress == [25] * 12
    # the alias moved to a new index; the old one is gone
    new_index = list(client.indices.get_alias(name=writer.alias))
    assert len(new_index) == 1
    assert new_index != old_index
    assert not client.indices.exists(index=old_index[0])
    assert writer.health().ok


def test_reindex_failure_leaves_the_live_index_alone(
    es_url: str, backend_factory: Callable[..., ElasticsearchBackend]
):
    es = backend_factory(batch_size=10)
    es.index(records(5))
    live = list(es.client.indices.get_alias(name=es.alias))
    # an index left behind by a reindex that died (same name shape) and another alias's index
    orphan = f"{es.alias}-{'1' * 20}"
    neighbour = f"{es.alias}-other-{'2' * 20}"
    es.client.indices.create(index=orphan)
    es.client.indices.create(index=neighbour)

    def broken() -> Iterator[dict[str, Any]]:
        yield from records(15)
        raise RuntimeError("catalog went away")

    with pytest.raises(RuntimeError, match="catalog went away"):
        es.reindex(broken())
    assert list(es.client.indices.get_alias(name=es.alias)) == live
    assert es.search(q("alpha")).total == 5
    ours = {i for i in es.client.indices.get(index=f"{es.alias}-*") if es._is_ours(i)}
    assert ours == {live[0], orphan}  # the half-built index was dropped

    assert es.reindex(records(7)) == 7
    assert es.search(q("alpha")).total == 7
    ours = {i for i in es.client.indices.get(index=f"{es.alias}-*") if es._is_ours(i)}
    assert len(ours) == 1
    assert orphan not in ours
    assert es.client.indices.exists(index=neighbour)  # not ours: untouched
    es.client.indices.delete(index=neighbour)


def test_bulk_retries_429_until_every_document_lands(
    es_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(elastic, "BULK_INITIAL_BACKOFF", 0.01)
    seen = Seen()
    rejected_later: set[str] = set()

    def reject(n: int, docs: list[dict[str, Any]]) -> Any:
        if n <= 3:
            return "all"  # HTTP 429 for the whole request (the client retries, then the helper)
        if n == 4:
            ids = {d["id"] for d in docs[len(docs) // 2 :]}
            rejected_later.update(ids)
            return ids  # half the items rejected with 429, retried alone after a backoff
        return None

    config_kw = {"batch_size": 20, "max_retries": 2}
    with loopback(rejecting_proxy(es_url, seen, reject)) as proxy_url:
        es = ElasticsearchBackend(es_config(tmp_path, proxy_url, **config_kw))
        try:
            docs = records(20, word="bravo")
            assert es.index(docs) == 20
        finally:
            es.close()
    # every document landed, read back directly from the cluster
    direct = ElasticsearchBackend(es_config(tmp_path, es_url, index=es.alias))
    try:
        hits = direct.search(q("bravo", limit=50))
        assert hits.total == 20
        assert {h.id for h in hits.hits} == {d["id"] for d in docs}
    finally:
        direct.close()
    assert len(seen.bulk_bodies) >= 5
    assert rejected_later
    # the last bulk request carried exactly the items rejected before, nothing else
    last = [json.loads(line) for line in seen.bulk_bodies[-1].splitlines() if line.strip()]
    assert {d["id"] for d in last[1::2]} == rejected_later


def test_documents_still_rejected_after_retries_are_named(
    es_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(elastic, "BULK_INITIAL_BACKOFF", 0.01)

    def reject(n: int, docs: list[dict[str, Any]]) -> Any:
        return {"r0003", "r0007"}

    with loopback(rejecting_proxy(es_url, Seen(), reject)) as proxy_url:
        es = ElasticsearchBackend(es_config(tmp_path, proxy_url, batch_size=4, max_retries=2))
        try:
            with pytest.raises(SearchIndexError) as caught:
                es.index(records(10))
        finally:
            es.close()
    message = str(caught.value)
    assert "r0003" in message
    assert "r0007" in message
    assert "r0001" not in message
    assert "429" in message
    assert len(caught.value.errors) == 2
    # the others landed
    direct = ElasticsearchBackend(es_config(tmp_path, es_url, index=es.alias))
    try:
        assert direct.search(q("alpha")).total == 8
    finally:
        direct.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"FAIRNODE_SEARCH_API_KEY": "a2V5LWlkOmtleS1zZWNyZXQ="},
            "ApiKey a2V5LWlkOmtleS1zZWNyZXQ=",
        ),
        (
            {"FAIRNODE_SEARCH_USERNAME": "elastic", "FAIRNODE_SEARCH_PASSWORD": "pa55:wörd"},
            "Basic " + base64.b64encode("elastic:pa55:wörd".encode()).decode(),
        ),
        (  # both: the API key wins
            {
                "FAIRNODE_SEARCH_API_KEY": "the-key",
                "FAIRNODE_SEARCH_USERNAME": "elastic",
                "FAIRNODE_SEARCH_PASSWORD": "pw",
            },
            "ApiKey the-key",
        ),
        ({}, None),
    ],
)
def test_credentials_come_from_the_environment_in_a_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str | None
):
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen = Seen()
    with loopback(recording_server(seen)) as url:
        es = ElasticsearchBackend(es_config(tmp_path, url))
        try:
            health = es.health()
        finally:
            es.close()
    assert health.ok is False
    assert "reindex" in health.detail
    assert seen.requests
    for _method, path, headers in seen.requests:
        assert headers.get("authorization") == expected
        for secret in env.values():
            assert secret not in path
            assert secret not in health.detail
    for secret in env.values():
        assert secret not in es.url


def test_a_user_name_without_password_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAIRNODE_SEARCH_USERNAME", "elastic")
    with pytest.raises(ConfigError, match="FAIRNODE_SEARCH_PASSWORD"):
        ElasticsearchBackend(es_config(tmp_path, "http://127.0.0.1:9"))


def test_health_and_errors_when_the_cluster_is_down(tmp_path: Path):
    with elasticsearch_server(tmp_path / "es-down") as url:
        es = ElasticsearchBackend(es_config(tmp_path, url, max_retries=1, timeout_seconds=2))
        es.index(records(3))
        assert es.health().ok
    # the server is gone now (a real cluster from FAIRNODE_TEST_ES_URL stays up: use a dead port)
    if not _down(url):
        es.close()
        url = f"http://127.0.0.1:{free_port()}"
        es = ElasticsearchBackend(es_config(tmp_path, url, max_retries=1, timeout_seconds=2))
    try:
        started = time.monotonic()
        health = es.health()
        assert time.monotonic() - started < 10
        assert health.ok is False
        assert health.documents is None
        assert url in health.detail
        assert "refused" in health.detail.lower() or "connect" in health.detail.lower()
        for action in (
            lambda: es.search(q("alpha")),
            lambda: es.index(records(1)),
            lambda: es.delete(["r0000"]),
        ):
            with pytest.raises(SearchUnavailableError) as caught:
                action()
            assert caught.value.status == 503
            assert url in str(caught.value)
    finally:
        es.close()


def _down(url: str) -> bool:
    """Whether nothing answers at ``url``. A server still shutting down (or another process that
    took the port) can answer with a broken status line: that is not down."""
    try:
        with urlopen(url + "/", timeout=1):
            return False
    except HTTPException:
        return False
    except OSError:
        return True


def test_cursors_are_checked_before_they_reach_elasticsearch(
    backend_factory: Callable[..., ElasticsearchBackend],
):
    es = backend_factory()
    es.index(records(12))
    first = es.search(q("alpha", sort=Sort.newest, limit=5))
    assert first.next
    second = es.search(q("alpha", sort=Sort.newest, limit=5, cursor=first.next))
    assert not {h.id for h in first.hits} & {h.id for h in second.hits}

    def forged(payload: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    bad = [
        "not-a-cursor",
        first.next,  # a newest cursor given to sort=oldest
        forged({"v": 1, "s": "oldest", "a": ["x", "y"]}),  # wrong types
        forged({"v": 1, "s": "oldest", "a": [1]}),  # wrong length
        forged({"v": 1, "s": "oldest", "a": [True, "id"]}),  # a boolean is no number
        forged({"v": 2, "s": "oldest", "a": [1, "id"]}),  # another version
        forged({"v": 1, "s": "relevance", "o": 10**9}),  # beyond the result window
        base64.urlsafe_b64encode(b'{"v":1,"s":"oldest","a":[NaN,"x"]}').decode(),
    ]
    for cursor in bad:
        sort = Sort.relevance if '"relevance"' in _peek(cursor) else Sort.oldest
        with pytest.raises(BadRequestError, match="cursor"):
            es.search(q("alpha", sort=sort, cursor=cursor))


def _peek(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:
        return ""


def test_relevance_pages_visit_every_hit_once(backend_factory: Callable[..., ElasticsearchBackend]):
    es = backend_factory()
    # equal scores everywhere: paging must still be exact (ties broken by id)
    es.index(records(23))
    seen: list[str] = []
    cursor = None
    while True:
        page = es.search(q("alpha", limit=5, cursor=cursor, facets=False))
        seen.extend(h.id for h in page.hits)
        assert all(h.score is not None for h in page.hits)
        cursor = page.next
        if cursor is None:
            break
    assert sorted(seen) == [f"r{i:04d}" for i in range(23)]
    assert seen == sorted(seen)  # ties broken by id


def test_user_text_never_becomes_a_query_language(
    backend_factory: Callable[..., ElasticsearchBackend],
):
    es = backend_factory()
    es.index([record("u1", "Query syntax c 2 notes"), record("u2", "Other")])
    text = r'title:"syntax notes" -c~2 qu* h^9 (e) /g/ {x} [1 TO 2] \\ "OR:1" &&'
    query = SearchQuery(clauses=parse_text(text))
    body = json.dumps(build_query(query))
    for language in ("query_string", "simple_query_string", "regexp", "wildcard", "script"):
        assert f'"{language}"' not in body
    # every piece is a literal word, phrase or prefix: the cluster answers, nothing matches
    assert es.search(query).total == 0
    assert [h.id for h in es.search(q(r'qu* "c 2" (syntax)')).hits] == ["u1"]
