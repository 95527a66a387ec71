"""The node descriptor: ``GET /.well-known/fairnode``, a JSON-LD document saying who this node is.

It names the node (id, name, level, country, parents, ROR), its endpoints, software version and
record counts, and ``knownNodes``: the place of every node this node has heard of, so that a
national node harvesting a university also learns the institutes under it (the search scopes need
the whole parent chain: ``node.search.scope``).

The ``@context`` is inline (schema.org terms where they fit, the ``fairnode:`` vocabulary for the
rest) so any JSON-LD processor reads it without fetching anything. Peers read the descriptor as
plain JSON with ``parse_descriptor``, which trusts nothing: every value is checked and a bad one is
named by its path (``knownNodes[3].level``).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, case, func, select

from node.auth.policy import ANONYMOUS, read_scope
from node.catalog.db import session_factory
from node.catalog.models import DatasetRow
from node.config import LEVELS, NODE_ID_RE, Config
from node.linkeddata.context import catalog_iri, node_iri
from node.linkeddata.namespaces import FAIRNODE, SCHEMA

from .model import PeerError
from .nodes import FederationNode, known_nodes, upsert_nodes

if TYPE_CHECKING:
    from .fetch import Fetcher

PATH = "/.well-known/fairnode"
MEDIA_TYPE = "application/ld+json"
MAX_KNOWN_NODES = 10_000  # a federation of more nodes than this is not what a peer sends
MAX_TEXT = 500
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")

XSD_INTEGER = "http://www.w3.org/2001/XMLSchema#integer"
_ID = {"@type": "@id"}

# Inline, so that rdflib (or any processor) expands it with no network.
CONTEXT: dict[str, Any] = {
    "schema": str(SCHEMA),
    "fairnode": str(FAIRNODE),
    "Node": "fairnode:Node",
    "Organization": "schema:Organization",
    "identifier": "schema:identifier",
    "name": "schema:name",
    "url": {"@id": "schema:url", **_ID},
    "ror": {"@id": "schema:sameAs", **_ID},
    "softwareVersion": "schema:softwareVersion",
    "level": "fairnode:level",
    "country": "fairnode:country",
    "parents": {"@id": "fairnode:parent", "@container": "@set"},
    "endpoints": "fairnode:endpoints",
    "oai": {"@id": "fairnode:oaiPmh", **_ID},
    "catalog": {"@id": "fairnode:dcatCatalog", **_ID},
    "search": {"@id": "fairnode:searchApi", **_ID},
    "sitemap": {"@id": "fairnode:sitemap", **_ID},
    "apiCatalog": {"@id": "fairnode:apiCatalog", **_ID},
    "recordCounts": "fairnode:recordCounts",
    "public": {"@id": "fairnode:publicRecords", "@type": XSD_INTEGER},
    "own": {"@id": "fairnode:ownRecords", "@type": XSD_INTEGER},
    "harvested": {"@id": "fairnode:harvestedRecords", "@type": XSD_INTEGER},
    "knownNodes": {"@id": "fairnode:knownNode", "@container": "@set"},
}


class DescriptorError(ValueError):
    """A descriptor that is not what it should be; the message names the bad field."""


def software_version() -> str:
    try:
        return importlib.metadata.version("fairnode")
    except importlib.metadata.PackageNotFoundError:  # running from a bare checkout
        return "unknown"


# Counting every public record costs ~0.15 s at 100k; peers fetch the descriptor before each
# harvest, so the counts are kept a minute per process (they are informative, not a contract).
COUNTS_TTL_SECONDS = 60.0
_counts: dict[tuple[int, str], tuple[float, dict[str, int]]] = {}


def record_counts(engine: Engine, node_id: str) -> dict[str, int]:
    """Published public records (what anyone may harvest), split into born here and harvested;
    at most ``COUNTS_TTL_SECONDS`` old."""
    key = (id(engine), node_id)
    hit = _counts.get(key)
    if hit is not None and time.monotonic() - hit[0] < COUNTS_TTL_SECONDS:
        return dict(hit[1])
    counts = _count(engine, node_id)
    _counts[key] = (time.monotonic(), counts)
    return dict(counts)


def _count(engine: Engine, node_id: str) -> dict[str, int]:
    scope = read_scope(ANONYMOUS)
    own = case((DatasetRow.origin_node == node_id, 1), else_=0)
    with session_factory(engine)() as s:
        total, mine = s.execute(
            select(func.count(), func.coalesce(func.sum(own), 0)).where(
                DatasetRow.lifecycle.in_(sorted(lc.value for lc in scope.lifecycles)),
                DatasetRow.visibility.in_(sorted(v.value for v in scope.visibilities)),
            )
        ).one()
    return {"public": int(total), "own": int(mine), "harvested": int(total) - int(mine)}


def _node_entry(node: FederationNode) -> dict[str, Any]:
    entry: dict[str, Any] = {"@type": ["Organization", "Node"]}
    if node.url:
        entry["@id"] = node_iri(node.url)
    entry |= {"identifier": node.id, "name": node.name, "level": node.level}
    if node.country:
        entry["country"] = node.country
    entry["parents"] = list(node.parents)
    if node.ror:
        entry["ror"] = node.ror
    if node.url:
        entry["url"] = node.url
    return entry


def this_node(config: Config) -> FederationNode:
    n = config.node
    return FederationNode(
        id=n.id,
        level=n.level,
        name=n.name,
        country=(n.country or "").strip().upper() or None,
        parents=tuple(n.parents),
        ror=n.ror or None,
        url=n.base_url,
    )


def build_descriptor(config: Config, engine: Engine) -> dict[str, Any]:
    """This node's descriptor (a JSON-LD object)."""
    base = config.node.base_url
    doc: dict[str, Any] = {"@context": CONTEXT, **_node_entry(this_node(config))}
    doc["endpoints"] = {
        "oai": f"{base}/oai",
        "catalog": catalog_iri(base),
        "search": f"{base}/api/v1/search",
        "sitemap": f"{base}/sitemap.xml",
        "apiCatalog": f"{base}/.well-known/api-catalog",
    }
    doc["softwareVersion"] = software_version()
    doc["recordCounts"] = record_counts(engine, config.node.id)
    doc["knownNodes"] = [_node_entry(n) for n in known_nodes(engine) if n.id != config.node.id]
    return doc


# --------------------------------------------------------------------------- reading


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        if required:
            raise DescriptorError(f"{where}.{key} is missing: expected a string")
        return None
    if not isinstance(value, str):
        raise DescriptorError(f"{where}.{key} is {type(value).__name__}: expected a string")
    if len(value) > MAX_TEXT:
        raise DescriptorError(f"{where}.{key} is {len(value)} characters long (at most {MAX_TEXT})")
    return value


def _node_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not NODE_ID_RE.match(value):
        shown = repr(value)[:80]
        raise DescriptorError(
            f"{where} is {shown}: expected a node id (a-z, 0-9, '-', at most 63 characters)"
        )
    return value


def _http_url(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DescriptorError(f"{where} is {value[:80]!r}: expected an http(s) URL")
    return value.rstrip("/")


def _parse_node(entry: Any, where: str) -> FederationNode:
    if not isinstance(entry, Mapping):
        raise DescriptorError(f"{where} is {type(entry).__name__}: expected a JSON object")
    node_id = _node_id(entry.get("identifier"), f"{where}.identifier")
    level = _text(entry, "level", where, required=True)
    if level not in LEVELS:
        raise DescriptorError(
            f"{where}.level is {level[:40]!r}: expected one of {', '.join(LEVELS)}"
        )
    country = _text(entry, "country", where)
    if country is not None and not _COUNTRY_RE.match(country.upper()):
        raise DescriptorError(
            f"{where}.country is {country[:40]!r}: expected an ISO 3166-1 alpha-2 code like FR"
        )
    parents = entry.get("parents", [])
    if isinstance(parents, str):  # JSON-LD compaction writes a one-element set as the value
        parents = [parents]
    if not isinstance(parents, list):
        raise DescriptorError(f"{where}.parents is {type(parents).__name__}: expected a list")
    if len(parents) > 64:
        raise DescriptorError(f"{where}.parents has {len(parents)} entries (at most 64)")
    return FederationNode(
        id=node_id,
        level=level,
        name=_text(entry, "name", where) or "",
        country=country.upper() if country else None,
        parents=tuple(
            dict.fromkeys(_node_id(p, f"{where}.parents[{i}]") for i, p in enumerate(parents))
        ),
        ror=_http_url(_text(entry, "ror", where), f"{where}.ror"),
        url=_http_url(_text(entry, "url", where), f"{where}.url"),
    )


def parse_descriptor(doc: Any) -> list[FederationNode]:
    """The nodes a descriptor names: the node itself first, then its ``knownNodes``.

    ``doc`` is the parsed JSON (or its text/bytes). Raises DescriptorError naming the first bad
    field; an entry repeating the node's own id or another entry's is an error too.
    """
    if isinstance(doc, bytes | str):
        try:
            doc = json.loads(doc)
        except (ValueError, UnicodeDecodeError) as e:
            raise DescriptorError(f"descriptor is not JSON: {e}") from None
    if not isinstance(doc, Mapping):
        raise DescriptorError(f"descriptor is {type(doc).__name__}: expected a JSON object")
    nodes = [_parse_node(doc, "descriptor")]
    known = doc.get("knownNodes", [])
    if not isinstance(known, list):
        raise DescriptorError(f"descriptor.knownNodes is {type(known).__name__}: expected a list")
    if len(known) > MAX_KNOWN_NODES:
        raise DescriptorError(
            f"descriptor.knownNodes has {len(known)} entries (at most {MAX_KNOWN_NODES})"
        )
    seen = {nodes[0].id}
    for i, entry in enumerate(known):
        node = _parse_node(entry, f"descriptor.knownNodes[{i}]")
        if node.id in seen:
            raise DescriptorError(
                f"descriptor.knownNodes[{i}].identifier {node.id!r} is listed twice"
            )
        seen.add(node.id)
        nodes.append(node)
    return nodes


def refresh_descriptor(
    fetcher: Fetcher,
    base_url: str,
    engine: Engine,
    peer_id: str,
    *,
    this_node_id: str | None = None,
) -> list[FederationNode]:
    """Read peer ``peer_id``'s descriptor at ``base_url`` and store the nodes it names.

    ``this_node_id`` (the harvesting node's id) is never stored from a peer's word. Returns the
    nodes the descriptor named; raises PeerError when the peer does not serve a good one.
    """
    url = base_url.rstrip("/") + PATH
    got = fetcher.get(url, accept=f"{MEDIA_TYPE}, application/json;q=0.9")
    if got.status != 200:
        raise PeerError(f"peer {peer_id}: {url} answered HTTP {got.status}, not its descriptor")
    try:
        nodes = parse_descriptor(got.body)
    except DescriptorError as e:
        raise PeerError(f"peer {peer_id}: {url} is not a fairnode descriptor: {e}") from None
    upsert_nodes(engine, nodes, learnt_from=peer_id, speaker=nodes[0].id, this_node_id=this_node_id)
    return nodes
