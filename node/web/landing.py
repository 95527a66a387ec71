"""The dataset landing page: one URL, every representation (content negotiation), FAIR
Signposting in the ``Link`` header, ``Vary: Accept``; withdrawn records answer with a tombstone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import render_template, request
from markupsafe import Markup
from sqlalchemy import Engine
from werkzeug.wrappers import Response

from node.api.params import reject_unknown
from node.app import current_identity, current_scope, node_context
from node.auth.policy import tombstone_scope
from node.errors import NotFoundError
from node.federation.nodes import KnownNode, nodes_by_id
from node.linkeddata.context import NodeInfo
from node.linkeddata.dcat import dataset_graph
from node.linkeddata.mediatypes import serialise
from node.linkeddata.negotiation import DCAT_JSONLD, HTML, JSONLD, RDF_TYPES, negotiate
from node.linkeddata.schemaorg import dataset_jsonld
from node.linkeddata.signposting import dataset_links, header_links, link_header
from node.records import Dataset
from node.web.tombstone import render_tombstone

LANDING_TYPES = (HTML, JSONLD, *[t for t in RDF_TYPES if t != JSONLD], DCAT_JSONLD)


def json_for_script(doc: object) -> Markup:
    """JSON to embed in <script type="application/ld+json">: '<' escaped so that no value of
    the record can close the element (the JSON stays equal once parsed)."""
    text = json.dumps(doc, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))


@dataclass(frozen=True)
class HarvestedFrom:
    """Where a harvested record comes from, for its landing page: the origin node and the nodes
    it came through as the federation knows them (None for a node no descriptor described)."""

    origin_id: str
    origin: KnownNode | None
    chain: list[tuple[str, KnownNode | None]]


def _harvested_from(ds: Dataset, this_node: str, engine: Engine) -> HarvestedFrom | None:
    origin = ds.provenance.origin_node
    if origin == this_node:
        return None
    via = [n for n in ds.provenance.harvested_via if n not in (this_node, origin)]
    known = nodes_by_id(engine, [origin, *via])
    return HarvestedFrom(origin, known.get(origin), [(n, known.get(n)) for n in via])


def landing_page(dataset_id: str) -> Response:
    ctx = node_context()
    reject_unknown(request.args, ("format",))
    media = negotiate(
        request.accept_mimetypes, request.args.get("format"), LANDING_TYPES, default=HTML
    )
    try:
        ds = ctx.records.get_dataset(dataset_id, current_scope())
    except NotFoundError:
        withdrawn = ctx.records.get_dataset(dataset_id, tombstone_scope(current_identity()))
        response = render_tombstone(withdrawn)
        response.headers["Vary"] = "Accept"
        return response
    images = ctx.records.images_of(ds.id)
    base_url = ctx.config.node.base_url
    node = NodeInfo.from_config(ctx.config)
    if media == HTML:
        jsonld = json_for_script(dataset_jsonld(ds, images, base_url=base_url, node=node))
        body: str | bytes = render_template(
            "dataset.html",
            ds=ds,
            images=images,
            jsonld=jsonld,
            harvested=_harvested_from(ds, ctx.config.node.id, ctx.records.engine),
        )
        mimetype = "text/html"
    elif media == JSONLD:
        body = json.dumps(dataset_jsonld(ds, images, base_url=base_url, node=node))
        mimetype = JSONLD
    else:
        graph = dataset_graph(ds, images, base_url=base_url, node=node)
        mimetype = JSONLD if media == DCAT_JSONLD else media
        body = serialise(graph, mimetype)
    response = Response(body, mimetype=mimetype)
    response.headers["Vary"] = "Accept"
    links = dataset_links(ds, images, base_url=base_url)
    response.headers["Link"] = link_header(header_links(links))
    return response
