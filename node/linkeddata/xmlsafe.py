"""Hardened lxml parsing for XML that comes from elsewhere (peers' DataCite and Dublin Core).

No DTDs (so no entity tricks: a document that declares one is refused), no entity
substitution, no network access, no huge-tree mode, and a size cap. Every refusal is a
ValueError naming what was parsed and why.
"""

from __future__ import annotations

from lxml import etree

MAX_XML_BYTES = 16 * 1024 * 1024  # one metadata record: far below this


def parse_xml(data: bytes | str, what: str, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """The root element of ``data`` (``what`` names the document in errors)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise ValueError(f"{what}: {len(raw)} bytes, more than the {max_bytes} byte limit")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"{what}: not well-formed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ValueError(f"{what}: refused, it declares a DTD ({docinfo.doctype!r})")
    return root


def text_of(element: etree._Element | None) -> str | None:
    """The stripped text of ``element`` (None when missing or empty)."""
    if element is None:
        return None
    text = "".join(element.itertext()).strip()
    return text or None
