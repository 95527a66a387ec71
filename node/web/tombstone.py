"""The tombstone of a withdrawn dataset: HTTP 410 with the citation kept and the reason given.

Shown where the landing page was (``/datasets/{id}``) and where the dataset's PID resolves, so a
citation never ends in a bare error: creators, year, title, publisher and PID stay, with why the
dataset was withdrawn. Only the caller's access policy decides who sees it (a withdrawn record is
shown to those who could read it when it was published: ``node.auth.policy.tombstone_scope``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template
from werkzeug.wrappers import Response

from node.app import node_context
from node.linkeddata.context import dataset_iri
from node.linkeddata.identifiers import pid_url
from node.records import Dataset
from node.web.filters import http_url


@dataclass(frozen=True)
class Citation:
    """The parts of a data citation (DataCite's recommended order: creators, year, title,
    publisher, identifier)."""

    creators: str
    year: str
    title: str
    publisher: str
    identifier: str  # the PID as written, else the landing page
    href: str | None  # where the identifier resolves (an http(s) URL), when it does

    @property
    def text(self) -> str:
        return f"{self.creators} ({self.year}). {self.title}. {self.publisher}. {self.identifier}"


def citation_of(ds: Dataset, *, base_url: str, node_name: str) -> Citation:
    """The citation of ``ds`` as the node publishes it."""
    when = ds.issued or ds.created or ds.modified
    identifier = ds.identifier or dataset_iri(base_url, ds.id)
    href: str | None
    try:
        href = pid_url(ds.identifier, base_url) if ds.identifier else identifier
    except ValueError:  # a record from elsewhere with an identifier that is no PID
        href = None
    return Citation(
        creators="; ".join(p.name for p in ds.creators) or "Unknown creator",
        year=f"{when.year:04d}",
        title=ds.title,
        publisher=ds.publisher or node_name,
        identifier=identifier,
        href=http_url(href),
    )


def render_tombstone(ds: Dataset) -> Response:
    """The tombstone page of the withdrawn ``ds`` (HTTP 410, ``Link: rel=cite-as``)."""
    config = node_context().config
    citation = citation_of(ds, base_url=config.node.base_url, node_name=config.node.name)
    body = render_template("tombstone.html", ds=ds, citation=citation)
    response = Response(body, status=410, mimetype="text/html")
    if citation.href:
        response.headers["Link"] = f'<{citation.href}>; rel="cite-as"'
    return response
