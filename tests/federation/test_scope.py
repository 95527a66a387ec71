"""Search scopes from the federation's places: which origin nodes each scope covers, seen from an
institute, a university and a national node, with the places read from federation_nodes (as
peers' descriptors left them); and the same through the real search API on a small catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from node.app import create_app
from node.config import Config, parse_config
from node.federation.nodes import FederationNode, upsert_nodes
from node.records import Provenance
from node.search.factory import open_backend
from node.search.indexer import drain
from node.search.scope import FederationScopes, Scope

# Two institutes under univ-a, one under univ-b, both universities under the French national
# node; a German university with one institute. Only nodes at the top of a chain say their
# country: the others inherit it through their parents.
FEDERATION = [
    FederationNode("nat-fr", "national", "France", "FR"),
    FederationNode("univ-a", "university", "Univ A", None, ("nat-fr",)),
    FederationNode("univ-b", "university", "Univ B", None, ("nat-fr",)),
    FederationNode("inst-a1", "institute", "Inst A1", None, ("univ-a",)),
    FederationNode("inst-a2", "institute", "Inst A2", None, ("univ-a",)),
    FederationNode("inst-b1", "institute", "Inst B1", None, ("univ-b",)),
    FederationNode("univ-de", "university", "Uni DE", "DE"),
    FederationNode("inst-de", "institute", "Inst DE", None, ("univ-de",)),
]
FRANCE = {"nat-fr", "univ-a", "univ-b", "inst-a1", "inst-a2", "inst-b1"}


def config_of(tmp_path: Path, db_url: str, node_id: str) -> Config:
    place = next(n for n in FEDERATION if n.id == node_id)
    node = {
        "id": node_id,
        "name": place.name,
        "base_url": f"http://{node_id}.test",
        "data_dir": str(tmp_path / "data"),
        "level": place.level,
        "country": place.country or "",
        "parents": list(place.parents),
    }
    return parse_config(
        {"node": node, "database": {"url": db_url}, "web": {"max_page_size": 50}}, env=False
    )


@pytest.fixture
def federation(engine: Engine) -> None:
    """What the descriptors said, stored as refresh_descriptor stores it."""
    upsert_nodes(engine, FEDERATION, learnt_from="nat-fr")


EXPECTED: dict[str, dict[Scope, set[str] | None]] = {
    "inst-a1": {
        Scope.institute: {"inst-a1"},
        Scope.university: {"univ-a", "inst-a1", "inst-a2"},
        Scope.national: FRANCE,
        Scope.international: None,
    },
    "univ-a": {
        Scope.institute: {"univ-a"},
        Scope.university: {"univ-a", "inst-a1", "inst-a2"},
        Scope.national: FRANCE,
        Scope.international: None,
    },
    "nat-fr": {
        Scope.institute: {"nat-fr"},
        Scope.university: {"nat-fr"},  # above every university: its own records
        Scope.national: FRANCE,
        Scope.international: None,
    },
    "inst-de": {
        Scope.institute: {"inst-de"},
        Scope.university: {"univ-de", "inst-de"},
        Scope.national: {"univ-de", "inst-de"},
        Scope.international: None,
    },
}


@pytest.mark.parametrize("node_id", list(EXPECTED))
def test_origins_of_each_scope_from_each_level(
    tmp_path: Path, db_url: str, engine: Engine, federation: None, node_id: str
) -> None:
    scopes = FederationScopes(config_of(tmp_path, db_url, node_id), engine)
    for scope, expected in EXPECTED[node_id].items():
        got = scopes.origins(scope)
        assert (None if got is None else set(got)) == expected, (node_id, scope)


def test_places_are_cached_and_read_again_when_old(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    """A clock the test turns stands in for time: no sleeping, no timing threshold."""
    now = [0.0]
    scopes = FederationScopes(
        config_of(tmp_path, db_url, "inst-a1"), engine, max_age=60, clock=lambda: now[0]
    )
    assert scopes.origins(Scope.university) == {"inst-a1"}  # nothing known yet: a lone node
    upsert_nodes(engine, FEDERATION, learnt_from="nat-fr")
    now[0] = 59.0
    assert scopes.origins(Scope.university) == {"inst-a1"}  # still the cached places
    now[0] = 60.0
    assert scopes.origins(Scope.university) == {"univ-a", "inst-a1", "inst-a2"}
    upsert_nodes(
        engine, [FederationNode("inst-a3", "institute", "", None, ("univ-a",))], learnt_from="x"
    )
    scopes.invalidate()
    assert "inst-a3" in scopes.origins(Scope.university)


def test_a_peer_cannot_place_this_node(tmp_path: Path, db_url: str, engine: Engine) -> None:
    """A stored entry under this node's id (another node's claim) does not move it: its place
    is its config's."""
    claim = FederationNode("nat-fr", "national", "", "DE", ("univ-de",))
    upsert_nodes(engine, [*FEDERATION[1:], claim], learnt_from="univ-de")
    scopes = FederationScopes(config_of(tmp_path, db_url, "nat-fr"), engine)
    assert set(scopes.origins(Scope.national)) == FRANCE


# --------------------------------------------------------------------------- search API

ORIGINS = ["nat-fr", "inst-a1", "inst-a2", "inst-b1", "inst-de", "zenodo"]


@pytest.mark.parametrize("node_id", ["nat-fr", "inst-a1"])
def test_search_api_scopes(
    tmp_path: Path, db_url: str, engine: Engine, catalog: Any, federation: None, node_id: str
) -> None:
    config = config_of(tmp_path, db_url, node_id)
    catalog.config = config
    for origin in ORIGINS:
        ds = catalog.dataset(f"ds-{origin}", title=f"Cells from {origin}")
        catalog.add(ds.model_copy(update={"provenance": Provenance(origin_node=origin)}))
    assert drain(engine, open_backend(config)).indexed == len(ORIGINS)
    client = create_app(config, engine=engine).test_client()

    def origins(scope: str | None) -> set[str]:
        query = {"limit": "50"} | ({"scope": scope} if scope else {})
        body = client.get("/api/v1/search", query_string=query).get_json()
        assert body["scope"] == (scope or "international")
        return {item["provenance"]["origin_node"] for item in body["items"]}

    held = set(ORIGINS)
    for scope, expected in EXPECTED[node_id].items():
        want = held if expected is None else expected & held
        assert origins(scope.value) == want, scope
    assert origins(None) == held
    # the search page uses the same scopes
    page = client.get("/search", query_string={"scope": "university"}).get_data(as_text=True)
    shown = {o for o in ORIGINS if f"Cells from {o}" in page}
    assert shown == (EXPECTED[node_id][Scope.university] or held) & held
