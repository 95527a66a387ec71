"""Search scope: which origin nodes a scope covers, from this node's place in the federation.

``institute`` is this node's own records; ``university`` and ``national`` add the records of
nodes under the same university or country; ``international`` is everything the node holds.
On a lone node (no federation yet) every record is this node's own, so the first three scopes
are the same set and ``international`` adds nothing. In a federation ``FederationScopes`` gives
the resolver the places peers' descriptors told (``node.federation.nodes``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Engine

from node.config import Config
from node.errors import BadRequestError


class Scope(StrEnum):
    institute = "institute"
    university = "university"
    national = "national"
    international = "international"


@dataclass(frozen=True)
class NodePlace:
    """Where a node sits: its level, its parents' ids and its country."""

    id: str
    level: str
    parents: tuple[str, ...] = ()
    country: str | None = None


@dataclass
class ScopeResolver:
    """The origin nodes of each scope, seen from ``this`` node, knowing ``known_nodes``.

    A node's place in the federation is its parent chain (parents, their parents, …, as the
    descriptors say) and its country (its own, else the nearest ancestor's that has one).
    ``university``: the nodes whose chain holds a university-level node of this node's chain (or
    this node, if it is a university). ``national``: the nodes whose chain holds a national-level
    node of this node's chain, and the nodes in this node's country. A node above the scope's
    level (a national node asked for ``university``) has no such ancestor: the scope is then its
    own records. Nodes nobody described (a foreign repository) are only in ``international``.
    """

    this: NodePlace
    known_nodes: Mapping[str, NodePlace] = field(default_factory=dict)

    @classmethod
    def lone(cls, config: Config) -> ScopeResolver:
        return cls(this_place(config))

    def _place(self, node_id: str) -> NodePlace | None:
        return self.this if node_id == self.this.id else self.known_nodes.get(node_id)

    def _ancestors(self, node_id: str) -> set[str]:
        seen: set[str] = set()
        stack = [node_id]
        while stack:
            place = self._place(stack.pop())
            for parent in place.parents if place else ():
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def _chain(self, node_id: str) -> set[str]:
        return self._ancestors(node_id) | {node_id}

    def _country(self, node_id: str) -> str | None:
        """The node's country, or its nearest ancestor's (breadth first; cycles are harmless)."""
        seen = {node_id}
        queue = [node_id]
        while queue:
            place = self._place(queue.pop(0))
            if place is None:
                continue
            if place.country:
                return place.country
            for parent in place.parents:
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        return None

    def _under(self, level: str) -> set[str]:
        """The nodes under (or being) a ``level``-level node of this node's chain."""
        tops = {
            a
            for a in self._chain(self.this.id)
            if (place := self._place(a)) is not None and place.level == level
        }
        if not tops:
            return set()
        return {n for n in self._all_ids() if tops & self._chain(n)}

    def _all_ids(self) -> set[str]:
        return {self.this.id, *self.known_nodes}

    def origins(self, scope: Scope) -> frozenset[str] | None:
        """Origin node ids of ``scope``; None means every origin (no filter)."""
        if scope is Scope.international:
            return None
        own = {self.this.id}
        if scope is Scope.institute:
            return frozenset(own)
        if scope is Scope.university:
            return frozenset(own | self._under("university"))
        country = self._country(self.this.id)
        same_country = (
            {n for n in self._all_ids() if self._country(n) == country} if country else set()
        )
        return frozenset(own | self._under("national") | same_country)


def this_place(config: Config) -> NodePlace:
    """This node's place, from its ``[node]`` settings."""
    node = config.node
    country = (getattr(node, "country", "") or "").strip().upper() or None
    return NodePlace(node.id, node.level, tuple(getattr(node, "parents", ()) or ()), country)


class FederationScopes:
    """The ScopeResolver of a node in a federation: its own place from the config, the others'
    from ``federation_nodes`` (what peers' descriptors said). Read again when older than
    ``max_age`` seconds, so that a search does not query the table each time and a refreshed
    descriptor shows within a minute in every web process."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        *,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.engine = engine
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._resolver: ScopeResolver | None = None
        self._origins: dict[Scope, frozenset[str] | None] = {}
        self._read_at = 0.0

    def resolver(self) -> ScopeResolver:
        with self._lock:
            now = self.clock()
            if self._resolver is None or now - self._read_at >= self.max_age:
                from node.federation.nodes import known_places  # federation imports this module

                this = this_place(self.config)
                known = {k: v for k, v in known_places(self.engine).items() if k != this.id}
                self._resolver = ScopeResolver(this, known)
                self._origins = {}
                self._read_at = now
            return self._resolver

    def invalidate(self) -> None:
        """Forget the cached places: the next search reads them again."""
        with self._lock:
            self._resolver = None

    def origins(self, scope: Scope) -> frozenset[str] | None:
        resolver = self.resolver()
        with self._lock:
            if self._resolver is not resolver:  # refreshed meanwhile: do not cache stale sets
                return resolver.origins(scope)
            if scope not in self._origins:
                self._origins[scope] = resolver.origins(scope)
            return self._origins[scope]


def parse_scope(raw: str | None) -> Scope:
    if raw is None or raw == "":
        return Scope.international
    try:
        return Scope(raw)
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        raise BadRequestError(f"scope={raw[:40]!r} is not a scope: use one of {known}") from None
