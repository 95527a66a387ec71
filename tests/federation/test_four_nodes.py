"""Four real nodes on loopback, started from the CLI: two institutes → a university → a nation.

Each node is its own `fairnode serve` process with its own config, catalog and search index;
harvests are `fairnode harvest` and `fairnode federate` processes. The test checks what a user
of each node sees through the search API: the scopes at every level, an update and a withdrawal
travelling up two hops, a cycle added on purpose changing nothing, and records that are not
public never reaching a node that may not read them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

SAMPLE = (
    Path(__file__).resolve().parents[1] / "data" / "samples" / "ome-tiff" / "single-channel.ome.tif"
)
TOKEN_A = "inst-a-federation-secret"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    id: str
    level: str
    parents: list[str]
    root: Path
    port: int = field(default_factory=_port)
    # source name -> (visibility, [dataset titles])
    sources: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    peers: list[tuple[str, str]] = field(default_factory=list)  # (peer id, token env or "")
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.root / "node.toml"


def _write(node: Node, nodes: dict[str, Node]) -> None:
    lines = [
        "[node]",
        f'id = "{node.id}"',
        f'name = "Node {node.id}"',
        f'base_url = "{node.url}"',
        f'level = "{node.level}"',
        'country = "FR"',
        f"parents = {node.parents!r}".replace("'", '"'),
        'data_dir = "var"',
        "",
        "[harvest]",
        "thumbnails = false",
        "",
        "[federation]",
        "timeout_seconds = 20",
        "overlap_seconds = 0",
        "",
    ]
    for name, (visibility, titles) in node.sources.items():
        folder = node.root / "data" / name
        for i, title in enumerate(titles):
            ds = folder / f"ds{i}"
            ds.mkdir(parents=True, exist_ok=True)
            shutil.copy2(SAMPLE, ds / SAMPLE.name)
            (ds / "dataset.toml").write_text(
                f'title = "{title}"\nlicense = "CC-BY-4.0"\n', encoding="utf-8"
            )
        lines += [
            "[[harvest.sources]]",
            f'name = "{name}"',
            f'path = "data/{name}"',
            'schedule = ""',
            f'visibility = "{visibility}"',
            'data_access = "open"',
            'publish = "auto"',
            "dataset_depth = 1",
            "",
        ]
    for peer_id, token_env in node.peers:
        lines += [
            "[[federation.peers]]",
            f'id = "{peer_id}"',
            f'url = "{nodes[peer_id].url}"',
            'protocol = "fairnode"',
            'schedule = ""',
        ]
        if token_env:
            lines.append(f'token_env = "{token_env}"')
        lines.append("")
    node.config.write_text("\n".join(lines), encoding="utf-8")


def _cli(node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **node.env, "FAIRNODE_CONFIG": str(node.config)}
    env.pop("FAIRNODE_DATABASE_URL", None)  # each node keeps its own SQLite catalog
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"fairnode {' '.join(args)} on {node.id} exited {proc.returncode}:\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _serve(node: Node) -> None:
    env = {**os.environ, **node.env, "FAIRNODE_CONFIG": str(node.config)}
    env.pop("FAIRNODE_DATABASE_URL", None)
    log = node.root / "serve.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        node.proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "serve", "--port", str(node.port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise AssertionError(f"{node.id} exited: {log.read_text(errors='replace')}")
        try:
            if requests.get(node.url + "/.well-known/fairnode", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{node.id} did not answer on {node.url}")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    root = tmp_path_factory.mktemp("federation")
    nodes = {
        "inst-a": Node(
            "inst-a",
            "institute",
            ["univ-x"],
            root / "inst-a",
            sources={
                "open": ("public", ["A open one", "A open two"]),
                "shared": ("federation", ["A shared with peers"]),
                "inside": ("institution", ["A institution only"]),
                "own": ("private", ["A private"]),
            },
            env={"FAIRNODE_FEDERATION_TOKEN": TOKEN_A},
        ),
        "inst-b": Node(
            "inst-b",
            "institute",
            ["univ-x"],
            root / "inst-b",
            sources={"open": ("public", ["B open"])},
        ),
        "univ-x": Node(
            "univ-x",
            "university",
            ["fr-nat"],
            root / "univ-x",
            sources={"open": ("public", ["U open"])},
            peers=[("inst-a", "TOKEN_FOR_INST_A"), ("inst-b", "")],
            env={"TOKEN_FOR_INST_A": TOKEN_A},
        ),
        "fr-nat": Node(
            "fr-nat",
            "national",
            [],
            root / "fr-nat",
            sources={"open": ("public", ["N open"])},
            peers=[("univ-x", "")],
        ),
    }
    for node in nodes.values():
        node.root.mkdir(parents=True)
        _write(node, nodes)
        _cli(node, "harvest", "--quiet")
        _serve(node)
    try:
        yield nodes
    finally:
        for node in nodes.values():
            if node.proc is not None:
                node.proc.terminate()
                try:
                    node.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()


def _titles(node: Node, scope: str = "international", **params: str) -> list[str]:
    """Every title the node's search API shows an anonymous user in ``scope``."""
    out: list[str] = []
    cursor = None
    while True:
        query = {"scope": scope, "limit": "100", "sort": "title", **params}
        if cursor:
            query["cursor"] = cursor
        r = requests.get(node.url + "/api/v1/search", params=query, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        out += [item["title"] for item in body["items"]]
        cursor = body.get("next")
        if not cursor:
            return sorted(out)


def _federate(node: Node) -> None:
    _cli(node, "federate", "--quiet")


def _hits(node: Node, title: str) -> list[dict]:
    r = requests.get(node.url + "/api/v1/search", params={"q": f'"{title}"'}, timeout=10)
    assert r.status_code == 200, r.text
    return [i for i in r.json()["items"] if i["title"] == title]


PUBLIC = ["A open one", "A open two", "B open", "N open", "U open"]


def test_four_nodes(nodes: dict[str, Node]) -> None:
    a, b, u, n = nodes["inst-a"], nodes["inst-b"], nodes["univ-x"], nodes["fr-nat"]
    _federate(u)
    _federate(n)

    # -- scopes at every level (an anonymous user: public records only)
    assert _titles(a, "institute") == ["A open one", "A open two"]
    assert _titles(a, "international") == ["A open one", "A open two"]
    assert _titles(u, "institute") == ["U open"]
    assert _titles(u, "university") == ["A open one", "A open two", "B open", "U open"]
    assert _titles(u, "national") == ["A open one", "A open two", "B open", "U open"]
    assert _titles(u, "international") == ["A open one", "A open two", "B open", "U open"]
    assert _titles(n, "institute") == ["N open"]
    assert _titles(n, "national") == PUBLIC
    assert _titles(n, "international") == PUBLIC

    # -- the university holds inst-a's federation record (it presented the token), not visible
    # to anonymous users; the nation (no token) never gets it; institution and private records
    # leave no node
    shared = requests.get(
        u.url + "/oai",
        params={"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"},
        timeout=10,
    )
    assert "A shared" not in shared.text
    held = _cli(u, "peers", "list").stdout
    assert "inst-a" in held
    for node in (u, n):
        for where in ("/oai?verb=ListRecords&metadataPrefix=oai_dc", "/catalog", "/sitemap.xml"):
            text = requests.get(node.url + where, timeout=10).text
            assert "A institution only" not in text
            assert "A private" not in text
    a_oai_for_peer = requests.get(
        a.url + "/oai",
        params={"verb": "ListRecords", "metadataPrefix": "oai_dc"},
        headers={"Authorization": f"Bearer {TOKEN_A}"},
        timeout=10,
    ).text
    assert "A shared with peers" in a_oai_for_peer
    assert "A institution only" not in a_oai_for_peer
    nation_oai = requests.get(
        n.url + "/oai", params={"verb": "ListRecords", "metadataPrefix": "oai_dc"}, timeout=10
    ).text
    assert "A shared with peers" not in nation_oai

    # -- provenance: the nation's copy names its origin and the chain it came through
    [hit] = _hits(n, "A open one")
    landing = requests.get(f"{n.url}/datasets/{hit['id']}", timeout=10)
    assert landing.status_code == 200
    assert "inst-a" in landing.text
    assert "univ-x" in landing.text

    # -- an update travels up two hops
    card = a.root / "data" / "open" / "ds0" / "dataset.toml"
    card.write_text('title = "A open one, revised"\nlicense = "CC-BY-4.0"\n', encoding="utf-8")
    _cli(a, "harvest", "--quiet")
    _federate(u)
    _federate(n)
    assert "A open one, revised" in _titles(n, "national")
    assert "A open one" not in _titles(n, "national")

    # -- a withdrawal travels up two hops, as a tombstone
    [two_at_a] = _hits(a, "A open two")
    [two_at_n] = _hits(n, "A open two")
    _cli(a, "withdraw", two_at_a["id"], "--reason", "Superseded by a corrected acquisition")
    _federate(u)
    _federate(n)
    assert "A open two" not in _titles(n, "international")
    assert "A open two" not in _titles(u, "international")
    gone = requests.get(f"{n.url}/datasets/{two_at_n['id']}", timeout=10)
    assert gone.status_code == 410

    # -- a cycle on purpose: the institute and the university also harvest the nation
    expected = {node.id: _titles(node, "international") for node in nodes.values()}
    _cli(a, "peers", "add", "fr-nat", n.url, "--protocol", "fairnode")
    _cli(u, "peers", "add", "fr-nat", n.url, "--protocol", "fairnode")
    for _ in range(2):
        for node in (a, u, n):
            _federate(node)
    # the institute now sees the others' public records once each, and never its own twice
    assert _titles(a, "international") == sorted(
        ["A open one, revised", "B open", "N open", "U open"]
    )
    assert _titles(a, "institute") == ["A open one, revised"]
    assert _titles(u, "international") == sorted([*expected["univ-x"], "N open"])
    assert _titles(n, "international") == expected["fr-nat"]
    assert _titles(b, "international") == expected["inst-b"]
