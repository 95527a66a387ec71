"""FAIR Signposting (https://signposting.org/FAIR/): the typed links of a dataset's landing page.

Level 1 goes into the landing page's ``Link`` header; level 2 is the same set (with every item)
as an RFC 9264 linkset at ``/datasets/{id}/linkset``, in JSON (``application/linkset+json``) and
link-format (``application/linkset``). One function builds the links; the formats only render
them, so header and linkset can never disagree. There is no library to *write* linksets in
Python (``signposting`` on PyPI reads them: the tests use it), hence this small module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from node.linkeddata.context import dataset_iri
from node.linkeddata.identifiers import pid_url
from node.linkeddata.mediatypes import FILE_EXTENSIONS, RDF_MEDIA_TYPES
from node.records import Dataset, Image

SCHEMA_DATASET = "https://schema.org/Dataset"
SCHEMA_ABOUT_PAGE = "https://schema.org/AboutPage"
LINKSET_JSON = "application/linkset+json"
LINKSET_TEXT = "application/linkset"
# Items beyond this many go only into the linkset: a header must stay well under proxies'
# 8 KB limits (nginx's default large_client_header_buffers is 8k).
MAX_HEADER_ITEMS = 20


@dataclass(frozen=True)
class Link:
    href: str
    rel: str
    type: str | None = None
    profile: str | None = None


def _quote_href(href: str) -> str:
    # Characters that would break the header syntax are percent-encoded; others stay readable.
    return quote(href, safe=":/?#[]@!$&'()*+,;=%~")


def dataset_links(ds: Dataset, images: Iterable[Image], *, base_url: str) -> list[Link]:
    """Every signposting link of a dataset's landing page, items included."""
    landing = dataset_iri(base_url, ds.id)
    links = [Link(pid_url(ds.identifier, base_url) if ds.identifier else landing, "cite-as")]
    for p in ds.creators:
        if p.orcid:
            links.append(Link(f"https://orcid.org/{p.orcid}", "author"))
    links.append(Link(SCHEMA_DATASET, "type"))
    links.append(Link(SCHEMA_ABOUT_PAGE, "type"))
    for media_type in RDF_MEDIA_TYPES:
        fmt = FILE_EXTENSIONS[media_type]
        links.append(Link(f"{landing}?format={fmt}", "describedby", media_type))
    if ds.license_iri:
        links.append(Link(ds.license_iri, "license"))
    if ds.data_location.url:
        links.append(Link(ds.data_location.url, "item"))
    for im in images:
        links.append(
            Link(f"{base_url}/api/v1/images/{quote(im.id, safe='')}", "item", "application/json")
        )
    links.append(Link(f"{landing}/linkset", "linkset", LINKSET_JSON))
    links.append(Link(f"{landing}/linkset", "linkset", LINKSET_TEXT))
    return links


def header_links(links: list[Link]) -> list[Link]:
    """The links for the HTTP header: all of them but items beyond MAX_HEADER_ITEMS."""
    out: list[Link] = []
    items = 0
    for link in links:
        if link.rel == "item":
            items += 1
            if items > MAX_HEADER_ITEMS:
                continue
        out.append(link)
    return out


def link_value(link: Link, *, anchor: str | None = None) -> str:
    """One link in RFC 8288 syntax: ``<href>; rel="..."; type="..."``."""
    parts = [f"<{_quote_href(link.href)}>"]
    if anchor is not None:
        parts.append(f'anchor="{_quote_href(anchor)}"')
    parts.append(f'rel="{link.rel}"')
    if link.type:
        parts.append(f'type="{link.type}"')
    if link.profile:
        parts.append(f'profile="{link.profile}"')
    return "; ".join(parts)


def link_header(links: list[Link]) -> str:
    return ", ".join(link_value(link) for link in links)


def linkset_context(anchor: str, links: list[Link]) -> dict[str, object]:
    """One RFC 9264 §4.2 context object: the anchor and a list of target objects per relation."""
    context: dict[str, object] = {"anchor": anchor}
    for link in links:
        target: dict[str, str] = {"href": link.href}
        if link.type:
            target["type"] = link.type
        if link.profile:
            target["profile"] = link.profile
        targets = context.setdefault(link.rel, [])
        assert isinstance(targets, list)
        targets.append(target)
    return context


def linkset_json(anchor: str, links: list[Link]) -> str:
    """RFC 9264 §4.2 JSON of one anchor's links."""
    return json.dumps({"linkset": [linkset_context(anchor, links)]}, indent=1)


def linkset_text(anchor: str, links: list[Link]) -> str:
    """RFC 9264 §4.1 link-format: the links with an explicit anchor, one per line."""
    return ",\n".join(link_value(link, anchor=anchor) for link in links) + "\n"
