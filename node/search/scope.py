"""Search scope: which origin nodes a scope covers, from this node's place in the federation.

``institute`` is this node's own records; ``university`` and ``national`` add the records of
nodes under the same university or country; ``international`` is everything the node holds.
On a lone node (no federation yet) every record is this node's own, so the first three scopes
are the same set and ``international`` adds nothing. The federation work replaces
``known_nodes`` with what peers' descriptors say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

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
    this: NodePlace
    known_nodes: Mapping[str, NodePlace] = field(default_factory=dict)

    @classmethod
    def lone(cls, config: Config) -> ScopeResolver:
        return cls(NodePlace(config.node.id, config.node.level))

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

    def origins(self, scope: Scope) -> frozenset[str] | None:
        """Origin node ids of ``scope``; None means every origin (no filter)."""
        if scope is Scope.international:
            return None
        own = {self.this.id}
        if scope is Scope.institute:
            return frozenset(own)
        if scope is Scope.national:
            country = self.this.country
            return frozenset(
                own
                | {
                    n.id
                    for n in self.known_nodes.values()
                    if country is not None and n.country == country
                }
            )
        # university: nodes sharing a university-level ancestor (or this node, if it is one)
        universities = {
            a
            for a in self._ancestors(self.this.id) | {self.this.id}
            if (place := self._place(a)) is not None and place.level == "university"
        }
        return frozenset(
            own
            | {
                n.id
                for n in self.known_nodes.values()
                if universities & (self._ancestors(n.id) | {n.id})
            }
        )


def parse_scope(raw: str | None) -> Scope:
    if raw is None or raw == "":
        return Scope.international
    try:
        return Scope(raw)
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        raise BadRequestError(f"scope={raw[:40]!r} is not a scope: use one of {known}") from None
