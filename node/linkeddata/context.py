"""Who publishes: the node facts every profile needs, and the URLs built from ``base_url``.

``NodeInfo`` is a small frozen value so that the profiles stay pure functions of (record, node)
and never reach into ``node.config`` themselves; callers build it once with
``NodeInfo.from_config(config)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from node.records import Dataset, normalise_ror

if TYPE_CHECKING:
    from node.config import Config

_ALPHA3_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class NodeInfo:
    """The publishing node.

    ``country`` is an ISO 3166-1 code; only an alpha-3 code (``DEU``, ``NLD``: what the EU
    Country table uses) can be published as ``dct:spatial``. ``ror`` is normalised to the
    ``https://ror.org/...`` IRI.
    """

    id: str
    name: str
    base_url: str
    contact_email: str = ""
    description: str = ""
    country: str | None = None
    ror: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url {self.base_url!r} is not an http(s) URL")
        if self.base_url.endswith("/"):
            raise ValueError(f"base_url {self.base_url!r} must not end with '/'")
        if not self.id or not self.name:
            raise ValueError(f"a node needs an id and a name (got id={self.id!r}, {self.name!r})")
        # Frozen dataclass: normalised values are set through object.__setattr__.
        if self.ror:
            object.__setattr__(self, "ror", normalise_ror(self.ror))
        if self.country:
            object.__setattr__(self, "country", self.country.strip().upper() or None)

    @classmethod
    def from_config(cls, config: Config) -> NodeInfo:
        """The NodeInfo of a node configuration (``country``/``ror`` when the config has them)."""
        node = config.node
        return cls(
            id=node.id,
            name=node.name,
            base_url=node.base_url,
            contact_email=node.contact_email or "",
            description=node.description or "",
            country=getattr(node, "country", None) or None,
            ror=getattr(node, "ror", None) or None,
        )

    @property
    def iri(self) -> str:
        return node_iri(self.base_url)

    @property
    def catalog_iri(self) -> str:
        return catalog_iri(self.base_url)

    @property
    def eu_country(self) -> str | None:
        """The EU Country table code (alpha-3), or None when ``country`` is not alpha-3."""
        return self.country if self.country and _ALPHA3_RE.match(self.country) else None


@dataclass(frozen=True)
class CatalogPage:
    """One page of the paged catalog (Hydra ``PartialCollectionView``); URLs are absolute."""

    url: str
    first: str | None = None
    previous: str | None = None
    next: str | None = None
    last: str | None = None
    total_items: int | None = None


def quote_id(record_id: str) -> str:
    """A record id as one URL path segment (the same quoting as the REST API and the portal)."""
    return quote(record_id, safe="")


def dataset_iri(base_url: str, dataset_id: str) -> str:
    """The record URI of a dataset: ``{base_url}/datasets/{id}`` (also its landing page)."""
    return f"{base_url}/datasets/{quote_id(dataset_id)}"


def dataset_id_from_iri(iri: str) -> str | None:
    """The id in a ``.../datasets/{id}`` IRI (any node's), or None for another shape of IRI."""
    path = urlsplit(iri).path
    head, sep, tail = path.rpartition("/datasets/")
    if not sep or not tail or "/" in tail:
        return None
    return unquote(tail)


def node_iri(base_url: str) -> str:
    """The node as an agent (publisher): a fragment of its home page, not the page itself."""
    return f"{base_url}/#node"


def catalog_iri(base_url: str) -> str:
    return f"{base_url}/catalog"


def thumbnail_url(base_url: str, thumbnail: str | None) -> str | None:
    """URL of a dataset thumbnail: the harvester names it ``<image id>.png`` and the node serves
    it at ``/thumbnails/<image id>.png`` (see node/api/serialise.py)."""
    if not thumbnail or not thumbnail.endswith(".png"):
        return None
    return f"{base_url}/thumbnails/{quote_id(thumbnail[: -len('.png')])}.png"


def summary(ds: Dataset) -> str:
    """A factual description for a record that has none (DCAT-AP and Bioschemas require one)."""
    formats = ", ".join(ds.formats) or "no known format yet"
    return f"Microscopy dataset of {ds.image_count} image(s) ({formats})."
