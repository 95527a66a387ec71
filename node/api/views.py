"""The REST API blueprint (/api/v1/): datasets, images and harvest runs as JSON.

Every read passes the caller's read scope to the record service (the access policy decides,
never a view), and every query parameter is validated here before it reaches a service.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from node.api.openapi import openapi_document
from node.api.params import (
    check_record_id,
    page_args,
    parse_run_id,
    parse_source,
    reject_unknown,
)
from node.api.serialise import dataset_to_json, image_to_json
from node.app import current_identity, current_scope, node_context

api = Blueprint("api", __name__, url_prefix="/api/v1")


def _base_url() -> str:
    return node_context().config.node.base_url


def _no_params() -> None:
    reject_unknown(request.args, ())


@api.get("/")
def index() -> Response:
    """Links to every endpoint, so that a client can start from one URL."""
    _no_params()
    base = f"{_base_url()}/api/v1"
    return jsonify(
        {
            "node": node_context().config.node.id,
            "links": {
                "self": f"{base}/",
                "openapi": f"{base}/openapi.json",
                "datasets": f"{base}/datasets",
                "search": f"{base}/search",
                "dataset": f"{base}/datasets/{{id}}",
                "image": f"{base}/images/{{id}}",
                "harvest_runs": f"{base}/harvest/runs",
                "harvest_run": f"{base}/harvest/runs/{{id}}",
                "peers": f"{base}/peers",
                "thumbnail": f"{_base_url()}/thumbnails/{{image_id}}.png",
            },
        }
    )


@api.get("/openapi.json")
def openapi() -> Response:
    _no_params()
    return jsonify(openapi_document(_base_url()))


@api.get("/datasets")
def list_datasets() -> Response:
    """One page of the datasets the caller may read, newest first."""
    ctx = node_context()
    paging = page_args(request.args, ctx.config.web)
    page = ctx.records.list_datasets(current_scope(), limit=paging.limit, cursor=paging.cursor)
    base = _base_url()
    return jsonify(_page_body([dataset_to_json(d, base_url=base) for d in page.items], page))


@api.get("/search")
def search() -> Response:
    """Datasets matching a text query and filters, with facets; only what the caller may read
    (also in the counts). Parameters and syntax: docs/search.md."""
    ctx = node_context()
    page = ctx.search.search(request.args.to_dict(flat=False), current_identity())
    base = _base_url()
    return jsonify(
        {
            "total": page.total,
            "items": [
                {
                    **dataset_to_json(item.dataset, base_url=base),
                    "score": item.hit.score,
                    "highlights": item.hit.highlights,
                }
                for item in page.items
            ],
            "facets": {
                name: [{"value": f.value, "label": f.label, "count": f.count} for f in values]
                for name, values in page.facets.items()
            },
            "scope": page.scope.value,
            "next": page.next,
        }
    )


@api.get("/datasets/<dataset_id>")
def get_dataset(dataset_id: str) -> Response:
    """One dataset with its images."""
    _no_params()
    ctx = node_context()
    ds = ctx.records.get_dataset(check_record_id("dataset", dataset_id), current_scope())
    images = ctx.records.images_of(ds.id)
    return jsonify(dataset_to_json(ds, images=images, base_url=_base_url()))


@api.get("/images/<image_id>")
def get_image(image_id: str) -> Response:
    """One image, when its dataset is readable by the caller."""
    _no_params()
    image, _ds = node_context().records.get_image(
        check_record_id("image", image_id), current_scope()
    )
    return jsonify(image_to_json(image, base_url=_base_url()))


# Harvest runs are an admin's view; until sign-in arrives (DESIGN §8) they are readable by
# everyone. They name folders and files of the storage but no record content, so nothing
# outside the read scope leaks through them. Restrict to admins when roles exist.
@api.get("/harvest/runs")
def list_runs() -> Response:
    """One page of harvest runs, newest first, each with its errors (path and reason)."""
    ctx = node_context()
    paging = page_args(request.args, ctx.config.web, extra=("source",))
    source = parse_source(request.args.get("source"))
    page = ctx.runs.list_runs(limit=paging.limit, cursor=paging.cursor, source=source)
    return jsonify(_page_body([r.to_json() for r in page.items], page))


@api.get("/harvest/runs/<run_id>")
def get_run(run_id: str) -> Response:
    _no_params()
    return jsonify(node_context().runs.get_run(parse_run_id(run_id)).to_json())


# Peers and their harvest state: readable by everyone until sign-in arrives (DESIGN §8). Ids, URLs
# and states are what the federation publishes anyway; token variable names are never shown, and
# each peer's record count is of the records the caller may read.
@api.get("/peers")
def list_peers() -> Response:
    """Every peer this node harvests, with its state, next scheduled run and record count."""
    from node.federation.peers import describe_peers

    _no_params()
    ctx = node_context()
    return jsonify({"items": describe_peers(ctx.config, ctx.records.engine, current_scope())})


def _page_body(items: list[dict[str, Any]], page: Any) -> dict[str, Any]:
    return {"items": items, "next": page.next, "total": page.total}
