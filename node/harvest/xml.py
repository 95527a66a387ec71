"""Hardened XML parsing for harvested files (OME-XML, companion files, TIFF descriptions).

Files on a harvest source are untrusted. defusedxml refuses DTDs, entity declarations (so no
billion-laughs expansion) and external references (so no ``file:///etc/passwd``), and a size
cap keeps a huge document from exhausting memory. Every failure is one ``XmlError`` whose
message names the file and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DET
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

MAX_XML_BYTES = 64 * 1024 * 1024  # 64 MiB: far above any real OME-XML header, far below RAM


class XmlError(ValueError):
    """An XML document that was refused or could not be parsed; the message names the file."""


def parse_xml(data: str | bytes, name: str, *, max_bytes: int | None = None) -> Element:
    """Parse ``data`` (the content of ``name``) safely and return the root element."""
    max_bytes = MAX_XML_BYTES if max_bytes is None else max_bytes
    if len(data) > max_bytes:
        raise XmlError(
            f"{name}: XML is {len(data)} bytes, more than the {max_bytes} byte limit; not parsed"
        )
    try:
        # forbid_dtd: OME-XML never needs a DTD, and refusing it also stops entity tricks early.
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden as exc:
        raise XmlError(f"{name}: XML refused: it declares a DTD ({exc.name!r})") from None
    except EntitiesForbidden as exc:
        raise XmlError(
            f"{name}: XML refused: it declares entity {exc.name!r} "
            "(entity expansion is not allowed)"
        ) from None
    except ExternalReferenceForbidden as exc:
        raise XmlError(
            f"{name}: XML refused: it references an external resource {exc.sysid!r}"
        ) from None
    except ParseError as exc:
        raise XmlError(f"{name}: not well-formed XML: {exc}") from None
    except (UnicodeError, ValueError) as exc:
        raise XmlError(f"{name}: XML could not be decoded: {exc}") from None


def read_xml_file(
    path: str,
    name: str | None = None,
    *,
    max_bytes: int | None = None,
    prefilter: Callable[[str], str] | None = None,
) -> Element:
    """Read and parse the XML file at ``path``; ``name`` (default: path) is used in messages.

    An oversize file is refused from its size, without reading it (and at most
    ``max_bytes + 1`` bytes are ever read, in case it grows meanwhile). OSError (missing,
    unreadable, a directory) propagates: the caller reports I/O separately. ``prefilter``
    may cut a UTF-8 text down before parsing (the whole text is parsed if the cut one fails).
    """
    label = name or path
    max_bytes = MAX_XML_BYTES if max_bytes is None else max_bytes
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise XmlError(
                f"{label}: XML file is {size} bytes, more than the {max_bytes} byte limit; "
                "not parsed"
            )
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise XmlError(f"{label}: XML file is larger than the {max_bytes} byte limit; not parsed")
    if prefilter is not None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass  # another encoding: let the parser read the declaration
        else:
            cut = prefilter(text)
            if cut is not text:
                try:
                    return parse_xml(cut, label, max_bytes=max_bytes)
                except XmlError:
                    pass  # the cut went wrong: parse everything, and report that
    return parse_xml(data, label, max_bytes=max_bytes)
