"""The node as ARK resolver: ``/ark:/{naan}/{name}`` and ``/ark:{naan}/{name}``.

- A published record the caller may read: 302 to its landing page ``/datasets/{id}`` (a query
  string other than an inflection travels along, e.g. ``?format=ttl``).
- ``?info`` (and the older ``?`` and ``??``): the ERC metadata record with the node's commitment
  statement, ``text/plain`` (node/pid/erc.py).
- A withdrawn record the caller could read when it was published: the tombstone, HTTP 410, with
  the citation and the reason (node/web/tombstone.py).
- Anything else is 404: an unknown ARK, a record the caller may not read (its existence is not
  revealed), an ARK of another NAAN (this node resolves its own NAAN only), a qualifier.

ARK normalisation (node/pid/ark.py) applies: the label is case-insensitive, hyphens are ignored,
the name is case-sensitive. Access is decided by the policy (node/auth/policy.py) alone.
"""

from __future__ import annotations

from flask import Blueprint, request, url_for
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from node.app import current_identity, current_scope, node_context
from node.auth.policy import tombstone_scope
from node.errors import NotFoundError
from node.linkeddata.context import dataset_iri
from node.linkeddata.identifiers import pid_url
from node.pid.ark import ArkParts, normalise_parts
from node.pid.erc import erc_record
from node.pid.service import PidService
from node.records import Dataset, Lifecycle

pid = Blueprint("pid", __name__)


class ArkLabelConverter(BaseConverter):
    """The ``ark`` label in any letter case (the ARK spec makes the label case-insensitive)."""

    regex = "[Aa][Rr][Kk]"


@pid.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    # Runs before the rules below are added: they need the converter.
    state.app.url_map.converters["arklabel"] = ArkLabelConverter


@pid.get("/<arklabel:label>:/<naan>/<path:rest>")
@pid.get("/<arklabel:label>:<naan>/<path:rest>")
def resolve(label: str, naan: str, rest: str) -> Response:
    ctx = node_context()
    parts = normalise_parts(naan, rest)
    ours = ctx.config.pid.naan
    if parts.naan != ours:
        raise NotFoundError(
            f"this node resolves ARKs of NAAN {ours} only, not ark:/{parts.naan}/…; the global "
            f"resolver https://n2t.net/ark:/{parts.naan}/{parts.name} knows every NAAN"
        )
    if not parts.name:
        raise NotFoundError(f"ark:/{parts.naan}/ needs a name after the NAAN")
    ds = _readable(parts)
    if parts.qualifier:
        raise NotFoundError(
            f"{parts.base} names a whole dataset; this node has no part {parts.qualifier!r} of it"
        )
    if _inflection():
        return _info(ds, parts)
    if ds.lifecycle is Lifecycle.withdrawn:
        from node.web.tombstone import render_tombstone

        return render_tombstone(ds)
    target = url_for("web.dataset", dataset_id=ds.id)
    if request.query_string:
        target += "?" + request.query_string.decode("utf-8", "replace")
    response = redirect(target, 302)
    response.headers["Link"] = f'<{pid_url(parts.base, ctx.config.node.base_url)}>; rel="cite-as"'
    return response


@pid.get("/<arklabel:label>:/<naan>")
@pid.get("/<arklabel:label>:/<naan>/")
@pid.get("/<arklabel:label>:<naan>")
def no_name(label: str, naan: str) -> Response:
    raise NotFoundError(f"ark:/{naan}/ needs a name after the NAAN, e.g. ark:/{naan}/fk4…")


def _readable(parts: ArkParts) -> Dataset:
    """The record ``parts`` names, if the policy lets the caller resolve it; else NotFoundError
    (the same answer for "unknown" and "not yours")."""
    ctx = node_context()
    unknown = f"no record on this node has the ARK {parts.base}"
    if not parts.check_ok:
        unknown += " (its check character does not match: was it mistyped?)"
    dataset_id = PidService(ctx.config, ctx.records.engine).lookup(parts.base)
    if dataset_id is None:
        raise NotFoundError(unknown)
    try:
        return ctx.records.get_dataset(dataset_id, current_scope())
    except NotFoundError:
        pass
    try:  # withdrawn records keep a tombstone for those who could read them when published
        return ctx.records.get_dataset(dataset_id, tombstone_scope(current_identity()))
    except NotFoundError:
        raise NotFoundError(unknown) from None


def _inflection() -> bool:
    """``?info``, ``??`` or a bare ``?`` (seen in the raw URI only: WSGI drops an empty query)."""
    query = request.query_string
    if query in (b"info", b"?", b"info="):
        return True
    if query:
        return False
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    return raw.endswith("?")


def _info(ds: Dataset, parts: ArkParts) -> Response:
    ctx = node_context()
    base_url = ctx.config.node.base_url
    text = erc_record(
        ds,
        pid=parts.base,
        pid_url=pid_url(parts.base, base_url),
        target=dataset_iri(base_url, ds.id),
        naan=ctx.config.pid.naan,
        node_name=ctx.config.node.name,
    )
    response = Response(text, mimetype="text/plain")
    response.headers["Link"] = f'<{pid_url(parts.base, base_url)}>; rel="cite-as"'
    return response
