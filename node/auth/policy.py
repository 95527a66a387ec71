"""The access policy: the single gate deciding which records an identity may read.

Every read path (pages, API, thumbnails, and later search, RDF, OAI-PMH and the
federation feed) asks this module; none decides on its own. Sign-in arrives
later (OIDC): until then every caller is anonymous and sees only published,
public records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.records import Dataset, Lifecycle, Visibility


@dataclass(frozen=True)
class Identity:
    """Who is asking. ``roles`` come from the identity provider later."""

    user: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    peer: bool = False  # an authenticated federation peer

    @property
    def is_curator(self) -> bool:
        return bool(self.roles & {"curator", "admin"})


ANONYMOUS = Identity()


@dataclass(frozen=True)
class ReadScope:
    """The lifecycles and visibilities an identity may read; storage turns it into a filter."""

    lifecycles: frozenset[Lifecycle]
    visibilities: frozenset[Visibility]


def read_scope(identity: Identity) -> ReadScope:
    """What ``identity`` may list and read."""
    if identity.is_curator:
        return ReadScope(frozenset(Lifecycle), frozenset(Visibility))
    visibilities = {Visibility.public}
    if identity.user or identity.peer:
        visibilities.add(Visibility.federation)
    if identity.user:
        visibilities.add(Visibility.institution)
    return ReadScope(frozenset({Lifecycle.published}), frozenset(visibilities))


def can_read(identity: Identity, dataset: Dataset) -> bool:
    """Whether ``identity`` may read ``dataset`` (and its images and thumbnails)."""
    scope = read_scope(identity)
    return dataset.lifecycle in scope.lifecycles and dataset.visibility in scope.visibilities


def tombstone_scope(identity: Identity) -> ReadScope:
    """Withdrawn records ``identity`` may see as tombstones (citation and reason, HTTP 410):
    those it could read when they were published, so a withdrawal never reveals more."""
    return ReadScope(frozenset({Lifecycle.withdrawn}), read_scope(identity).visibilities)


# What may leave the node, whoever asks (OAI-PMH, the federation's harvests): `institution` and
# `private` records never do, not even for a signed-in user or a curator, and drafts never do.
EXPORTABLE = frozenset({Visibility.public, Visibility.federation})


def export_scope(identity: Identity) -> ReadScope:
    """The records served to ``identity`` as a harvester: public ones to anyone, and
    `federation` ones to an authenticated peer (what ``read_scope`` grants, within EXPORTABLE)."""
    scope = read_scope(identity)
    return ReadScope(scope.lifecycles & {Lifecycle.published}, scope.visibilities & EXPORTABLE)


def export_tombstone_scope(identity: Identity) -> ReadScope:
    """Withdrawn records served to ``identity`` as deleted: those it could harvest before."""
    return ReadScope(frozenset({Lifecycle.withdrawn}), export_scope(identity).visibilities)
