"""The federation's shared vocabulary: what a reader yields, what ingest does with it.

Readers (``node.federation.sources``) turn a peer's answers into ``RemoteRecord``s, one at a
time, and report a record they cannot map as a ``RecordProblem`` instead of stopping; a failure
of the peer itself (down, endless resumption tokens, a response that is not what it should be)
raises ``PeerError`` and ends that peer's run. Ingest (``node.federation.ingest``) decides what
each remote record becomes in the catalog; the runner (``node.federation.runner``) ties a peer's
reader, ingest and the peer's state together.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from node.errors import NodeError
from node.records import Dataset, Visibility


@dataclass(frozen=True)
class RemoteRecord:
    """One record as a peer serves it: mapped to a Dataset, or a deletion.

    ``remote_id`` is the peer's own name for it (the OAI identifier, or the DCAT dataset IRI):
    a later deletion names the record by it. ``dataset`` is None for a deletion (an OAI header
    with status="deleted"). ``visibility`` is what the peer says the record's visibility is
    (the OAI ``visibility:…`` set of a fairnode peer), public when the peer says nothing.
    ``harvested_via`` is the chain of nodes the record already came through before this peer
    served it, nearest-origin first, as the peer's metadata says (empty for foreign sources).
    """

    remote_id: str
    datestamp: datetime
    dataset: Dataset | None
    visibility: Visibility = Visibility.public
    source_record_url: str | None = None
    harvested_via: tuple[str, ...] = ()
    # A deletion the reader inferred (DCAT: absent from a complete read), not one the peer
    # stated: ingest undoes it if the record is served again, whatever its `modified`.
    inferred: bool = False

    @property
    def deleted(self) -> bool:
        return self.dataset is None


@dataclass(frozen=True)
class RecordProblem:
    """A record the reader found but could not map: reported, skipped, the run goes on."""

    remote_id: str | None
    reason: str


class PeerError(NodeError):
    """The peer itself failed (down, timed out, too big, not OAI-PMH/DCAT, endless paging).

    The message names the peer, the URL and why: it is what the admin page shows."""

    status = 502


class PeerReader(Protocol):
    """Reads one peer. ``read`` yields every record changed at or after ``since`` (all records
    when None). After it is exhausted, ``watermark`` is the instant the next incremental read
    may start from (the peer's own clock: the responseDate of the first OAI page), or None
    when the peer gives none (DCAT catalogs without modified filtering: full read each time)."""

    watermark: datetime | None

    def read(self, since: datetime | None) -> Iterator[RemoteRecord | RecordProblem]: ...


@dataclass
class IngestCounts:
    """What a run did with what it read; shown by `fairnode federate` and the peers API."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0  # the catalog already held this version or a newer one
    withdrawn: int = 0  # deletions applied
    own: int = 0  # records born on this node, or that already came through it: never imported
    skipped: int = 0  # RecordProblems
    problems: list[RecordProblem] = field(default_factory=list)

    @property
    def read(self) -> int:
        return self.added + self.updated + self.unchanged + self.withdrawn + self.own + self.skipped
