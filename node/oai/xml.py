"""The OAI-PMH response document: envelope, request echo, errors, headers, resumption tokens."""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from .protocol import (
    NOT_XML_RE,
    OAI_NS,
    OAI_SCHEMA_LOCATION,
    PREFIX_RE,
    SET_SPEC_RE,
    XSI_NS,
    OAIError,
    OAIRequest,
    datestamp,
    is_uri,
)

_NSMAP = {None: OAI_NS, "xsi": XSI_NS}


def q(tag: str) -> str:
    """The qualified name of an OAI-PMH element."""
    return f"{{{OAI_NS}}}{tag}"


def sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, q(tag))
    if text is not None:
        el.text = text
    return el


def envelope(base_url: str, now: datetime, req: OAIRequest | None) -> etree._Element:
    """``OAI-PMH`` with ``responseDate`` and ``request``. ``req`` is None when the request may
    not be echoed (badVerb, badArgument): then ``request`` holds the base URL only."""
    root = etree.Element(q("OAI-PMH"), nsmap=_NSMAP)
    root.set(f"{{{XSI_NS}}}schemaLocation", OAI_SCHEMA_LOCATION)
    sub(root, "responseDate", datestamp(now))
    request = sub(root, "request", base_url)
    if req is not None:
        request.set("verb", req.verb)
        for name, value in req.args.items():
            if _echoable(name, value):
                request.set(name, value)
    return root


def _echoable(name: str, value: str) -> bool:
    """Whether the argument fits its attribute type in the OAI-PMH XSD."""
    if name == "identifier":
        return is_uri(value)
    if name == "metadataPrefix":
        return bool(PREFIX_RE.match(value))
    if name == "set":
        return bool(SET_SPEC_RE.match(value))
    if name == "resumptionToken":
        return not NOT_XML_RE.search(value)
    return name in ("from", "until")  # parse_request accepted them


def errors(root: etree._Element, errs: list[OAIError]) -> etree._Element:
    for e in errs:
        sub(root, "error", e.message).set("code", e.code)
    return root


def header(
    parent: etree._Element, identifier: str, modified: datetime, sets: list[str], deleted: bool
) -> etree._Element:
    h = sub(parent, "header")
    if deleted:
        h.set("status", "deleted")
    sub(h, "identifier", identifier)
    sub(h, "datestamp", datestamp(modified))
    for spec in sets:
        sub(h, "setSpec", spec)
    return h


def resumption_token(
    parent: etree._Element,
    token: str | None,
    *,
    complete_size: int,
    cursor: int,
    expires: datetime | None,
) -> etree._Element:
    """A token for the next page, or the empty one that completes a split list."""
    el = sub(parent, "resumptionToken", token or None)
    if token and expires is not None:
        el.set("expirationDate", datestamp(expires))
    el.set("completeListSize", str(complete_size))
    el.set("cursor", str(cursor))
    return el


def serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
