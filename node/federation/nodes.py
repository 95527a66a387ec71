"""The nodes of the federation this node has heard of (table ``federation_nodes``).

Peers' descriptors (``/.well-known/fairnode``) say where each node sits: its level, its parents
and its country. The search scopes are computed from these places (``node.search.scope``), the
landing page of a harvested record names its origin node from them, and this node's own
descriptor passes them on (``knownNodes``) so that a national node harvesting a university learns
the institutes under it.

What a node says about itself is first-hand and wins: an entry another node lists about it
(hearsay) never overwrites it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from node.catalog.db import session_factory
from node.catalog.models import FederationNodeRow
from node.search.scope import NodePlace


@dataclass(frozen=True)
class FederationNode:
    """One node as a descriptor describes it."""

    id: str
    level: str
    name: str = ""
    country: str | None = None
    parents: tuple[str, ...] = ()
    ror: str | None = None
    url: str | None = None

    @property
    def place(self) -> NodePlace:
        return NodePlace(self.id, self.level, self.parents, self.country)


@dataclass(frozen=True)
class KnownNode(FederationNode):
    """A stored node: who told us (``learnt_from``) and when."""

    learnt_from: str = ""
    updated_at: datetime | None = None


def _known(row: FederationNodeRow) -> KnownNode:
    return KnownNode(
        id=row.id,
        level=row.level,
        name=row.name or "",
        country=row.country or None,
        parents=tuple(row.parents or ()),
        ror=row.ror or None,
        url=row.url or None,
        learnt_from=row.learnt_from,
        updated_at=row.updated_at,
    )


def known_nodes(engine: Engine) -> list[KnownNode]:
    """Every node heard of, by id."""
    with session_factory(engine)() as s:
        rows = s.scalars(select(FederationNodeRow).order_by(FederationNodeRow.id)).all()
        return [_known(r) for r in rows]


def known_places(engine: Engine) -> dict[str, NodePlace]:
    """The place of every node heard of, by id (what ``ScopeResolver.known_nodes`` takes)."""
    return {n.id: n.place for n in known_nodes(engine)}


def get_node(engine: Engine, node_id: str) -> KnownNode | None:
    with session_factory(engine)() as s:
        row = s.get(FederationNodeRow, node_id)
        return None if row is None else _known(row)


def nodes_by_id(engine: Engine, ids: Iterable[str]) -> dict[str, KnownNode]:
    """The stored nodes among ``ids`` (unknown ids are left out)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    with session_factory(engine)() as s:
        rows = s.scalars(select(FederationNodeRow).where(FederationNodeRow.id.in_(wanted))).all()
        return {r.id: _known(r) for r in rows}


def upsert_nodes(
    engine: Engine,
    nodes: Sequence[FederationNode],
    *,
    learnt_from: str,
    speaker: str | None = None,
    this_node_id: str | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Store what peer ``learnt_from``'s descriptor says about ``nodes``; the ids written.

    ``speaker`` is the id of the node whose descriptor it is (its entry about itself is
    first-hand). An entry naming this node is ignored (this node's place comes from its config,
    never from a peer). A first-hand entry (stored with ``learnt_from == id``) is only replaced
    by that node's own word, never by what another node lists about it.
    """
    now = now or datetime.now(UTC)
    written: list[str] = []
    with session_factory(engine)() as s, s.begin():
        for node in nodes:
            if node.id == this_node_id:
                continue
            first_hand = node.id in (speaker, learnt_from)
            row = s.get(FederationNodeRow, node.id)
            if row is None:
                row = FederationNodeRow(id=node.id)
                s.add(row)
            elif row.learnt_from == row.id and not first_hand:
                continue  # the node's own descriptor said otherwise: hearsay does not win
            row.name = node.name
            row.level = node.level
            row.country = node.country
            row.parents = list(node.parents)
            row.ror = node.ror
            row.url = node.url
            row.learnt_from = learnt_from
            row.updated_at = now
            written.append(node.id)
    return written
