"""The Flask application factory: wires config, catalog services, blueprints and error handling.

``create_app`` only wires things (flaskr style): every import of a layer happens inside it, so
importing ``node.app`` stays cheap for the CLI and the worker. It never starts a scheduler: each
gunicorn worker would run every job again (DESIGN §2); ``fairnode worker`` owns scheduling.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app, request

from node.auth.policy import Identity, ReadScope, read_scope
from node.config import Config

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from werkzeug.wrappers import Response

    from node.catalog.runs import RunStore
    from node.catalog.service import RecordService
    from node.search.service import SearchService

EXTENSION_KEY = "fairnode"

# No inline script or style anywhere: the portal works without JavaScript, and a hostile record
# that slipped past escaping still could not run code. Thumbnails are same-origin PNGs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
}


@dataclass
class NodeContext:
    """What views need, kept on ``app.extensions["fairnode"]`` and passed down, never imported."""

    config: Config
    records: RecordService
    runs: RunStore
    search: SearchService


def node_context() -> NodeContext:
    """The NodeContext of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]


def current_identity() -> Identity:
    """Who is asking: a federation peer presenting the bearer token (``node.auth.peers``),
    else anonymous until OIDC sign-in arrives (DESIGN §8). A wrong token is a 401."""
    from node.auth.peers import peer_identity

    return peer_identity(request.headers.get("Authorization"))


def current_scope() -> ReadScope:
    """The read scope of the current caller: every read passes it to the record service."""
    return read_scope(current_identity())


def create_app(config: Config, *, engine: Engine | None = None) -> Flask:
    """Build the web application for ``config``; ``engine`` overrides opening config's database."""
    from node.api.views import api
    from node.catalog.db import open_catalog
    from node.catalog.runs import RunStore
    from node.catalog.service import RecordService
    from node.federation.views import federation
    from node.linkeddata.views import linkeddata
    from node.oai.views import oai
    from node.pid.views import pid
    from node.search.factory import open_backend
    from node.search.service import SearchService
    from node.web.errors import handle_error
    from node.web.views import web

    # The web blueprint serves /static and the templates; the package itself has neither.
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config["SECRET_KEY"] = os.environ.get("FAIRNODE_SECRET_KEY") or secrets.token_hex(32)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = config.node.base_url.startswith("https://")
    app.json.sort_keys = False  # keep the documented field order of the JSON bodies

    if engine is None:
        engine = open_catalog(config.database_url, echo=config.database.echo)
    # Web processes only read the index: the worker (or the CLI) is its single writer.
    app.extensions[EXTENSION_KEY] = NodeContext(
        config=config,
        records=RecordService(engine),
        runs=RunStore(engine),
        search=SearchService(config, engine, open_backend(config)),
    )

    app.register_blueprint(api)
    app.register_blueprint(federation)
    app.register_blueprint(linkeddata)
    app.register_blueprint(oai)
    app.register_blueprint(pid)
    app.register_blueprint(web)
    # One handler for everything: NodeError, werkzeug's HTTPException (a subclass of Exception,
    # so Flask finds this handler through the MRO) and any unexpected exception (500).
    app.register_error_handler(Exception, handle_error)
    app.after_request(_add_security_headers)
    return app


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
