"""The admin page of the federation's peers (/admin/peers): each peer's state, last success,
last error, record counts and next run, server-rendered without JavaScript.

Readable by everyone until sign-in arrives (DESIGN §8), like the harvest runs page: it shows
what GET /api/v1/peers shows, no token variable names. Everything a peer said (its URL, its
error text) is untrusted and left to Jinja's autoescape; the URL is a link only when it is a
plain http(s) URL (the ``http_url`` filter).
"""

from __future__ import annotations

from datetime import datetime

from flask import render_template

from node.app import current_scope, node_context
from node.federation.peers import describe_peers


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def peers_page() -> str:
    ctx = node_context()
    peers = describe_peers(ctx.config, ctx.records.engine, current_scope())
    for p in peers:
        st = p["state"]
        for key in ("last_started", "last_success", "last_error_at", "next_run"):
            st[key] = _time(st[key])
        # An error older than the last success is history, not the peer's state now.
        st["failing"] = bool(
            st["last_error"]
            and (st["last_success"] is None or st["last_error_at"] > st["last_success"])
        )
    return render_template("peers.html", peers=peers)
