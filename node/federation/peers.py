"""The node's peers: the ``[[federation.peers]]`` of its config plus those an admin added with
``fairnode peers add`` (rows of the ``peers`` table). The config file is the source of its own
peers, so they are never stored; an id in both is an error, reported with both places."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from node.auth.policy import ReadScope
from node.catalog.db import session_factory
from node.catalog.models import PeerRow
from node.config import Config, PeerSettings, check_peer
from node.errors import BadRequestError, ConflictError, NotFoundError

CONFIG = "config"
CLI = "cli"


@dataclass
class Peer(PeerSettings):
    """One peer's settings, and where they come from: ``config`` (the file) or ``cli``."""

    origin: str = CONFIG


def _settings_fields() -> list[str]:
    return [f.name for f in fields(PeerSettings)]


def _from_row(row: PeerRow) -> Peer:
    return Peer(**{k: getattr(row, k) for k in _settings_fields()}, origin=CLI)


def _from_settings(p: PeerSettings) -> Peer:
    return Peer(**{k: getattr(p, k) for k in _settings_fields()}, origin=CONFIG)


class PeerStore:
    """Lists, adds and removes peers; the one place that merges config and database peers."""

    def __init__(self, config: Config, engine: Engine):
        self.config = config
        self.sessions = session_factory(engine)

    def list(self) -> list[Peer]:
        """Every peer, config ones first, each group in id order; ConflictError when an id is
        both in the config file and added with `fairnode peers add`."""
        configured = [_from_settings(p) for p in self.config.federation.peers]
        with self.sessions() as s:
            added = [_from_row(r) for r in s.scalars(select(PeerRow).order_by(PeerRow.id))]
        both = sorted({p.id for p in configured} & {p.id for p in added})
        if both:
            raise ConflictError(
                f"peer {', '.join(map(repr, both))} is both in {self._where} "
                "[[federation.peers]] and added with `fairnode peers add`; remove one "
                f"(`fairnode peers remove {both[0]}`, or edit the file)"
            )
        return configured + added

    def get(self, peer_id: str) -> Peer:
        for p in self.list():
            if p.id == peer_id:
                return p
        known = ", ".join(p.id for p in self.list()) or "none yet"
        raise NotFoundError(
            f"no peer {peer_id!r} (peers: {known}; add one with `fairnode peers add`)"
        )

    def add(self, settings: PeerSettings) -> Peer:
        """Validate (as the config file's peers are) and store a new peer."""
        problems = check_peer(settings, "peer", "fairnode peers add", self.config.node.id)
        if problems:
            raise BadRequestError(
                f"peer {settings.id!r} is not valid", errors=[f"{p.key}: {p.why}" for p in problems]
            )
        if any(p.id == settings.id for p in self.list()):
            raise ConflictError(
                f"there is already a peer {settings.id!r}; see `fairnode peers list`"
            )
        with self.sessions() as s, s.begin():
            s.add(
                PeerRow(
                    **{k: getattr(settings, k) for k in _settings_fields()},
                    added_at=datetime.now(UTC),
                )
            )
        return Peer(**{k: getattr(settings, k) for k in _settings_fields()}, origin=CLI)

    def remove(self, peer_id: str) -> Peer:
        """Remove a peer added with `fairnode peers add`; its harvested records stay."""
        peer = self.get(peer_id)
        if peer.origin == CONFIG:
            raise ConflictError(
                f"peer {peer_id!r} comes from {self._where}: remove its [[federation.peers]] "
                "table there"
            )
        with self.sessions() as s, s.begin():
            row = s.get(PeerRow, peer_id)
            if row is not None:
                s.delete(row)
        return peer

    @property
    def _where(self) -> str:
        return str(self.config.path) if self.config.path else "the configuration"


def check(config: Config, peer: PeerSettings) -> list[str]:
    """Ask ``peer`` who it is, without storing anything: a fairnode peer's descriptor and
    OAI-PMH Identify, an OAI-PMH repository's Identify and formats, a DCAT catalog's first page.
    Lines saying what was found; PeerError naming the URL and why when the peer fails."""
    import os

    from node.federation.fetch import Fetcher
    from node.federation.model import PeerError

    token = os.environ.get(peer.token_env) if peer.token_env else None
    lines: list[str] = []
    url = peer.url.rstrip("/")
    with Fetcher(config.federation, peer_id=peer.id, token=token or None) as fetcher:
        if peer.protocol == "dcat":
            from node.federation.sources.dcat import ACCEPT, next_page, parse_page

            got = fetcher.get(peer.url, accept=ACCEPT)
            page = parse_page(got.body, got.content_type, url=got.url)
            n = len(page.datasets())
            lines.append(
                f"DCAT catalog at {got.url} ({got.content_type}): {n} dataset(s) on page 1"
            )
            nxt = next_page(page, got.url)
            lines.append(f"next page: {nxt}" if nxt else "no further page")
            return lines
        from node.federation.sources.oai import identify, list_metadata_formats

        if peer.protocol == "fairnode":
            from node.federation.descriptor import (
                MEDIA_TYPE,
                PATH,
                DescriptorError,
                parse_descriptor,
            )

            got = fetcher.get(url + PATH, accept=f"{MEDIA_TYPE}, application/json;q=0.9")
            try:
                nodes = parse_descriptor(got.body)
            except DescriptorError as e:
                raise PeerError(f"peer {peer.id}: {url + PATH} is not a descriptor: {e}") from None
            me = nodes[0]
            lines.append(
                f"descriptor: node {me.id!r} ({me.level}) {me.name!r}"
                + (f", country {me.country}" if me.country else "")
                + (f", parents {', '.join(me.parents)}" if me.parents else "")
                + f"; knows {len(nodes) - 1} other node(s)"
            )
            if me.id != peer.id:
                lines.append(f"warning: the peer calls itself {me.id!r}, configured as {peer.id!r}")
            oai_url = f"{url}/oai"
        else:
            oai_url = peer.url
        info = identify(fetcher, oai_url)
        lines.append(
            f"OAI-PMH at {oai_url}: {info.get('repositoryName', '(no name)')!r}, "
            f"deletedRecord={info.get('deletedRecord', '?')}, "
            f"granularity={info.get('granularity', '?')}"
        )
        formats = list_metadata_formats(fetcher, oai_url)
        lines.append(f"formats: {', '.join(formats) or 'none'}")
    return lines


def next_run(schedule: str, timezone: str, now: datetime | None = None) -> datetime | None:
    """When `fairnode worker` next harvests a peer with ``schedule`` (None: manual only)."""
    if not schedule:
        return None
    from apscheduler.triggers.cron import CronTrigger

    now = now or datetime.now(UTC)
    fire = CronTrigger.from_crontab(schedule, timezone=timezone).get_next_fire_time(None, now)
    return fire.astimezone(UTC) if fire else None


def describe_peers(config: Config, engine: Engine, scope: ReadScope) -> list[dict[str, Any]]:
    """Every peer with its harvest state, as GET /api/v1/peers and the admin page show it.

    Everyone may read it (sign-in comes later, DESIGN §8): ids, URLs and states are what a
    federation publishes anyway; the name of a peer's token variable is never shown, and the
    record counts are of the records ``scope`` may read."""
    from node.federation.state import PeerStateStore

    states = PeerStateStore(engine)
    known = states.all()
    counts = states.record_counts(scope)
    out = []
    for p in PeerStore(config, engine).list():
        st = known.get(p.id)
        state = st.to_json() if st else PeerStateStore.empty_json()
        nxt = next_run(p.schedule, config.worker.timezone)
        state["next_run"] = nxt.isoformat() if nxt else None
        out.append(
            {
                "id": p.id,
                "url": p.url,
                "protocol": p.protocol,
                "schedule": p.schedule,
                "origin": p.origin,
                "state": state,
                "records": counts.get(p.id, 0),
            }
        )
    return out
