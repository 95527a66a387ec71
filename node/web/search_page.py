"""The portal's search page: plain links and one form, so it works without JavaScript.

Every facet value, active filter and scope tab is a link to the same page with one parameter
added or removed; the view prepares those links so that the template stays simple.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import render_template, request, url_for
from markupsafe import Markup

from node.app import current_identity, node_context
from node.errors import BadRequestError
from node.search.backend import FACET_FIELDS
from node.search.scope import Scope

FACET_TITLES = {
    "organism": "Organism",
    "method": "Imaging method",
    "instrument": "Instrument",
    "magnification": "Objective",
    "fluor": "Fluorophore",
    "format": "Format",
    "origin": "Institute",
    "license": "Licence",
    "access": "Data access",
}
RANGE_TITLES = {
    "acquired_from": "Acquired from",
    "acquired_to": "Acquired until",
    "has_z": "Z-stack",
    "has_t": "Time series",
    "min_channels": "At least channels",
}
SORTS = [("relevance", "Relevance"), ("newest", "Newest"), ("oldest", "Oldest"), ("title", "Title")]
_MARK_RE = re.compile(r"(</?mark>)")


@dataclass
class Link:
    label: str
    href: str
    count: int | None = None
    active: bool = False


def _href(args: list[tuple[str, str]], *, keep_cursor: bool = False) -> str:
    """This page with ``args``; a cursor is dropped unless asked for (a new filter, sort or
    scope starts from the first page)."""
    query = urlencode([(k, v) for k, v in args if keep_cursor or k != "cursor"])
    return url_for("web.search") + (f"?{query}" if query else "")


def safe_highlight(fragment: str) -> Markup:
    """A highlight fragment as markup where only <mark> survives: backends escape the text
    already; unescaping then escaping again keeps it that way even if one did not."""
    parts = _MARK_RE.split(fragment)
    return Markup(
        "".join(p if p in ("<mark>", "</mark>") else html.escape(html.unescape(p)) for p in parts)
    )


def search_page() -> tuple[str, int]:
    ctx = node_context()
    args = [(k, v) for k, v in request.args.items(multi=True)]
    status = 200
    error = None
    page = None
    try:
        page = ctx.search.search(request.args.to_dict(flat=False), current_identity())
    except BadRequestError as e:
        error, status = str(e), 400
    q = request.args.get("q", "")
    scope = request.args.get("scope") or Scope.international.value
    active = [
        Link(
            f"{FACET_TITLES.get(k) or RANGE_TITLES[k]}: {_label(page, k, v)}",
            _href([(a, b) for a, b in args if (a, b) != (k, v)]),
        )
        for k, v in args
        if (k in FACET_TITLES or k in RANGE_TITLES) and v
    ]
    facets = []
    if page is not None:
        for name in FACET_FIELDS:
            values = page.facets.get(name) or []
            links = [
                Link(
                    f.label,
                    _href([(a, b) for a, b in args if (a, b) != (name, f.value)])
                    if (name, f.value) in args
                    else _href([*args, (name, f.value)]),
                    f.count,
                    (name, f.value) in args,
                )
                for f in values
            ]
            if links:
                facets.append((FACET_TITLES[name], links))
    scopes = [
        Link(
            s.value.capitalize(),
            _href([(a, b) for a, b in args if a != "scope"] + [("scope", s.value)]),
            active=s.value == scope,
        )
        for s in Scope
    ]
    sorts = [
        Link(label, _href([(a, b) for a, b in args if a != "sort"] + [("sort", value)]),
             active=(request.args.get("sort") or "relevance") == value)
        for value, label in SORTS
    ]  # fmt: skip
    next_href = None
    if page is not None and page.next:
        kept = [(k, v) for k, v in args if k != "cursor"]
        next_href = _href([*kept, ("cursor", page.next)], keep_cursor=True)
    return (
        render_template(
            "search.html",
            q=q,
            page=page,
            error=error,
            active=active,
            facets=facets,
            scopes=scopes,
            sorts=sorts,
            hidden=[(k, v) for k, v in args if k not in ("q", "cursor")],
            next_href=next_href,
            first_href=_href(args) if request.args.get("cursor") else None,
            highlight=safe_highlight,
        ),
        status,
    )


def _label(page: object, name: str, value: str) -> str:
    """The facet label of an active filter value when the page has it, else the value."""
    facets = getattr(page, "facets", None) or {}
    for f in facets.get(name, []):
        if f.value == value:
            return f.label
    return value
