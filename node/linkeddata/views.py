"""Machine entry points: /catalog (DCAT-AP, Hydra-paged), /sitemap.xml, /robots.txt,
/.well-known/api-catalog (RFC 9727) and each dataset's Signposting linkset (RFC 9264).

Everything here is public metadata: the anonymous access policy decides what is listed, like
every other read path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from flask import Blueprint, request
from werkzeug.wrappers import Response

from node.api.params import check_record_id, reject_unknown
from node.app import current_scope, node_context
from node.catalog.service import decode_cursor, encode_cursor
from node.errors import BadRequestError
from node.linkeddata.context import CatalogPage, NodeInfo, dataset_iri
from node.linkeddata.dcat import DEFAULT_SERVICES, catalog_graph
from node.linkeddata.mediatypes import serialise
from node.linkeddata.negotiation import RDF_TYPES, NotAcceptableError, negotiate
from node.linkeddata.signposting import (
    LINKSET_JSON,
    LINKSET_TEXT,
    Link,
    dataset_links,
    link_value,
    linkset_context,
    linkset_json,
    linkset_text,
)

linkeddata = Blueprint("linkeddata", __name__)

CATALOG_PAGE_SIZE = 100
CATALOG_MAX_PAGE_SIZE = 500
SITEMAP_MAX_URLS = 50_000  # the sitemaps.org limit per file
API_CATALOG_PROFILE = "https://www.rfc-editor.org/info/rfc9727"
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.1"


def _base() -> str:
    return node_context().config.node.base_url


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"{name}={raw[:40]!r} is not a whole number") from None
    if not low <= value <= high:
        raise BadRequestError(f"{name}={value} is out of range: use {low} to {high}")
    return value


def _since() -> datetime | None:
    raw = request.args.get("modified_since")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(
            f"modified_since={raw[:40]!r} is not an ISO 8601 date or date-time "
            "(e.g. 2024-05-01 or 2024-05-01T12:00:00Z)"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@linkeddata.get("/catalog")
def catalog() -> Response:
    """The DCAT-AP catalog of the public records, one Hydra page at a time."""
    reject_unknown(request.args, ("after", "limit", "modified_since", "format"))
    media = negotiate(
        request.accept_mimetypes, request.args.get("format"), RDF_TYPES, default="text/turtle"
    )
    ctx = node_context()
    limit = _int_arg("limit", CATALOG_PAGE_SIZE, 1, CATALOG_MAX_PAGE_SIZE)
    cursor = request.args.get("after")
    after = None
    if cursor:
        stamp, last_id = decode_cursor(cursor, 2)
        try:
            after = (datetime.fromisoformat(stamp), str(last_id))
        except (TypeError, ValueError):
            raise BadRequestError(
                f"after={cursor[:60]!r} is not valid; use the hydra:next link of a page"
            ) from None
    since = _since()
    # Pages by key (modified, id), as OAI-PMH does: records changed during a walk are served
    # again at its end, unchanged ones never skipped. Hence no page numbers and no hydra:last.
    datasets, total = ctx.records.catalog_page(
        current_scope(), after=after, limit=limit + 1, modified_since=since
    )
    more = len(datasets) > limit  # one more than a page: there is a next one
    datasets = datasets[:limit]

    def url(key: tuple[datetime, str] | None) -> str:
        args: dict[str, str] = {}
        if request.args.get("limit"):
            args["limit"] = str(limit)
        if since is not None:
            args["modified_since"] = request.args["modified_since"]
        if key is not None:
            args["after"] = encode_cursor(key[0], key[1])
        query = urlencode(args)
        return f"{_base()}/catalog" + (f"?{query}" if query else "")

    last = datasets[-1] if more else None
    view = CatalogPage(
        url=url(after),
        first=url(None),
        next=url((last.modified, last.id)) if last is not None else None,
        total_items=total,
    )
    graph = catalog_graph(
        datasets,
        base_url=_base(),
        node=NodeInfo.from_config(ctx.config),
        page=view,
        services=DEFAULT_SERVICES,
    )
    response = Response(serialise(graph, media), mimetype=media)
    response.headers["Vary"] = "Accept"
    return response


@linkeddata.get("/datasets/<dataset_id>/linkset")
def linkset(dataset_id: str) -> Response:
    """Level-2 FAIR Signposting: every link of the landing page, items included."""
    reject_unknown(request.args, ("format",))
    ctx = node_context()
    ds = ctx.records.get_dataset(check_record_id("dataset", dataset_id), current_scope())
    fmt = request.args.get("format")
    if fmt is not None:
        if fmt not in ("json", "linkset"):
            raise BadRequestError(f"format={fmt[:40]!r}: use json or linkset")
        media = LINKSET_JSON if fmt == "json" else LINKSET_TEXT
    elif not request.accept_mimetypes or request.accept_mimetypes.to_header() == "*/*":
        media = LINKSET_JSON
    else:
        best = request.accept_mimetypes.best_match([LINKSET_JSON, LINKSET_TEXT])
        if best is None:
            raise NotAcceptableError(
                f"the linkset is available as {LINKSET_JSON} and {LINKSET_TEXT}"
            )
        media = best
    links = dataset_links(ds, ctx.records.images_of(ds.id), base_url=_base())
    anchor = dataset_iri(_base(), ds.id)
    body = linkset_json(anchor, links) if media == LINKSET_JSON else linkset_text(anchor, links)
    response = Response(body, mimetype=media)
    response.headers["Vary"] = "Accept"
    return response


@linkeddata.get("/sitemap.xml")
def sitemap() -> Response:
    """All public landing pages with lastmod; a sitemap index past 50,000 URLs."""
    reject_unknown(request.args, ())
    ctx = node_context()
    total = ctx.records.counts(current_scope())["datasets"]
    if total > SITEMAP_MAX_URLS:
        parts = -(-total // SITEMAP_MAX_URLS)
        items = "".join(
            f"<sitemap><loc>{escape(_base())}/sitemap-{n}.xml</loc></sitemap>"
            for n in range(1, parts + 1)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{items}</sitemapindex>\n"
        )
        return Response(body, mimetype="application/xml")
    return _urlset(0)


@linkeddata.get("/sitemap-<int:part>.xml")
def sitemap_part(part: int) -> Response:
    reject_unknown(request.args, ())
    if part < 1:
        raise BadRequestError(f"sitemap part {part} does not exist; parts start at 1")
    return _urlset((part - 1) * SITEMAP_MAX_URLS)


def _urlset(offset: int) -> Response:
    ctx = node_context()
    entries = ctx.records.sitemap_entries(current_scope(), offset=offset, limit=SITEMAP_MAX_URLS)
    urls = "".join(
        f"<url><loc>{escape(dataset_iri(_base(), ds_id))}</loc>"
        f"<lastmod>{modified.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}</lastmod></url>"
        for ds_id, modified in entries
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{escape(_base())}/</loc></url>{urls}</urlset>\n"
    )
    return Response(body, mimetype="application/xml")


@linkeddata.get("/robots.txt")
def robots() -> Response:
    """Crawlers: landing pages and the sitemap yes; search result combinations and admin no."""
    body = (
        "User-agent: *\n"
        "Disallow: /search\n"
        "Disallow: /harvest/\n"
        "Disallow: /api/\n"
        "Allow: /\n"
        f"Sitemap: {_base()}/sitemap.xml\n"
    )
    return Response(body, mimetype="text/plain")


def api_catalog_links() -> list[dict[str, object]]:
    """RFC 9727 linkset: the catalog anchors 'item' links to each API, and each API anchors
    its description (service-desc), documentation (service-doc) and metadata."""
    base = _base()
    apis: list[tuple[str, list[Link]]] = [
        (
            f"{base}/api/v1/",
            [
                Link(f"{base}/api/v1/openapi.json", "service-desc", OPENAPI_TYPE),
                Link("https://spec.openapis.org/oas/v3.1.0", "service-doc", "text/html"),
            ],
        ),
        (
            f"{base}/oai",
            [
                Link(f"{base}/oai?verb=Identify", "service-desc", "text/xml"),
                Link(
                    "http://www.openarchives.org/OAI/openarchivesprotocol.html",
                    "service-doc",
                    "text/html",
                ),
            ],
        ),
        (
            f"{base}/catalog",
            [
                Link(f"{base}/catalog", "service-desc", "text/turtle"),
                Link("https://www.w3.org/TR/vocab-dcat-3/", "service-doc", "text/html"),
            ],
        ),
        (
            f"{base}/sitemap.xml",
            [Link("https://www.sitemaps.org/protocol.html", "service-doc", "text/html")],
        ),
        (
            # the node descriptor: who this node is and where it sits in the federation
            f"{base}/.well-known/fairnode",
            [Link(f"{base}/.well-known/fairnode", "describedby", "application/ld+json")],
        ),
    ]
    items = [Link(anchor, "item") for anchor, _ in apis]
    return [
        linkset_context(f"{base}/.well-known/api-catalog", items),
        *(linkset_context(anchor, links) for anchor, links in apis),
    ]


@linkeddata.route("/.well-known/api-catalog", methods=["GET", "HEAD"])
def api_catalog() -> Response:
    """RFC 9727: where this node's APIs are and what describes them."""
    reject_unknown(request.args, ())
    here = f"{_base()}/.well-known/api-catalog"
    link = link_value(Link(here, "api-catalog"))
    if request.method == "HEAD":
        response = Response(status=200)
    else:
        body = json.dumps({"linkset": api_catalog_links()}, indent=1)
        response = Response(body, content_type=f'{LINKSET_JSON}; profile="{API_CATALOG_PROFILE}"')
    response.headers["Link"] = link
    return response
