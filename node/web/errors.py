"""The one error handler: JSON for /api/ paths, an HTML page everywhere else.

NodeError carries its status and a message written for users; werkzeug's HTTPException keeps its
own status and description; anything else is a bug and becomes a 500 that names nothing internal
(the traceback goes to the log only).
"""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from node.api.errors import error_body
from node.errors import NodeError

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal server error; the node's log has the details"


def wants_json() -> bool:
    """Whether the failing request was an API call."""
    return request.path == "/api" or request.path.startswith("/api/")


def handle_error(e: Exception) -> Response | tuple[Response | str, int, list[tuple[str, str]]]:
    """Render ``e`` as the API's JSON error shape or as the portal's error page."""
    headers: list[tuple[str, str]] = []
    errors: list[str] = []
    if isinstance(e, NodeError):
        status, message, errors = e.status, e.message, list(e.errors)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, message)
    elif isinstance(e, HTTPException):
        if e.response is not None:  # abort(response): the view already built the answer
            return e.response
        status = e.code or 500
        message = e.description or e.name
        # Keep headers such as Allow (405) but not the HTML content type of werkzeug's page.
        headers = [(k, v) for k, v in e.get_headers() if k.lower() != "content-type"]
    else:
        # Called by Flask with the exception, not inside an except block: pass it explicitly.
        log.error("%s %s failed", request.method, request.path, exc_info=e)
        status, message = 500, INTERNAL_ERROR
    if wants_json():
        return jsonify(error_body(status, message, errors)), status, headers
    page = render_template("error.html", status=status, message=message, errors=errors)
    return page, status, headers
