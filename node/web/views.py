"""Portal pages: home, dataset list and landing page, image detail, harvest runs, thumbnails.

Like the API, every read passes the caller's read scope to the record service; a record the
caller may not read gets the same 404 as one that does not exist.
"""

from __future__ import annotations

import re

from flask import Blueprint, redirect, render_template, request, send_from_directory, url_for
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from node.api.params import check_record_id, parse_cursor, parse_source
from node.app import current_scope, node_context
from node.config import NodeSettings
from node.errors import NotFoundError
from node.web.filters import FILTERS
from node.web.landing import landing_page
from node.web.peers_page import peers_page
from node.web.search_page import search_page

web = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

LATEST_ON_HOME = 6
# Thumbnail file names are written by the harvester as "<image id>.png". The name stored in the
# record is checked again here: a record (e.g. one from a peer) must never make us serve a path.
_THUMBNAIL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,250}\.png$")


@web.app_template_global()
def node_settings() -> NodeSettings:
    """The [node] settings, for the page header and footer."""
    return node_context().config.node


@web.record_once
def _register_filters(state: BlueprintSetupState) -> None:
    state.app.jinja_env.filters.update(FILTERS)


@web.get("/")
def home() -> str:
    ctx = node_context()
    scope = current_scope()
    latest = ctx.records.list_datasets(scope, limit=LATEST_ON_HOME)
    return render_template("home.html", counts=ctx.records.counts(scope), latest=latest.items)


@web.get("/datasets")
def datasets() -> str | Response:
    if "q" in request.args:  # old links and bookmarks of the list's search box
        return redirect(url_for("web.search", **request.args.to_dict(flat=False)), 301)
    ctx = node_context()
    cursor = parse_cursor(request.args.get("cursor"))
    page = ctx.records.list_datasets(current_scope(), limit=ctx.config.web.page_size, cursor=cursor)
    return render_template("datasets.html", page=page, cursor=cursor)


@web.get("/search")
def search() -> tuple[str, int]:
    """Search with facets, active filters and scope tabs (node/web/search_page.py)."""
    return search_page()


@web.get("/datasets/<dataset_id>")
def dataset(dataset_id: str) -> Response:
    """The landing page, negotiated: HTML with embedded JSON-LD, schema.org JSON-LD, or the
    DCAT-AP graph in Turtle, RDF/XML, N-Triples (or JSON-LD with the DCAT profile); FAIR
    Signposting links in the header (node/linkeddata/landing.py)."""
    return landing_page(check_record_id("dataset", dataset_id))


@web.get("/images/<image_id>")
def image(image_id: str) -> str:
    img, ds = node_context().records.get_image(check_record_id("image", image_id), current_scope())
    return render_template("image.html", image=img, ds=ds)


# An admin's page; readable by everyone until sign-in arrives (DESIGN §8): runs name folders and
# files of the storage but no record content. Restrict it to admins when roles exist.
@web.get("/harvest/runs")
def runs() -> str:
    ctx = node_context()
    cursor = parse_cursor(request.args.get("cursor"))
    source = parse_source(request.args.get("source"))
    page = ctx.runs.list_runs(limit=ctx.config.web.page_size, cursor=cursor, source=source)
    return render_template("runs.html", page=page, cursor=cursor, source=source)


@web.get("/admin/peers")
def peers() -> str:
    """The federation's peers and their harvest state (node/web/peers_page.py)."""
    return peers_page()


@web.get("/thumbnails/<image_id>.png")
def thumbnail(image_id: str) -> Response:
    """The PNG thumbnail of an image the caller may read; 404 otherwise."""
    ctx = node_context()
    img, _ds = ctx.records.get_image(check_record_id("image", image_id), current_scope())
    name = img.thumbnail
    folder = ctx.config.thumbnail_dir
    if not name or not _THUMBNAIL_NAME.fullmatch(name) or not (folder / name).is_file():
        raise NotFoundError(f"image {image_id!r} has no thumbnail")
    # send_from_directory joins safely as well; the pattern above is the first line of defence.
    response = send_from_directory(folder, name, mimetype="image/png", max_age=300)
    # Access can change (a record made private): keep shared caches out of it.
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
