"""The federation's HTTP face: the node descriptor at ``/.well-known/fairnode``."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from node.app import node_context

from .descriptor import MEDIA_TYPE, PATH, build_descriptor

federation = Blueprint("federation", __name__)


@federation.route(PATH, methods=["GET", "HEAD"])
def descriptor() -> Response:
    ctx = node_context()
    doc = build_descriptor(ctx.config, ctx.records.engine)
    response = Response(json.dumps(doc, ensure_ascii=False), mimetype=MEDIA_TYPE)
    # Peers and browsers on other origins read it (it only says what is public anyway).
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
