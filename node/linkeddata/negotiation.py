"""Content negotiation: which representation of a resource a request asks for.

``Accept`` decides (werkzeug parses it, quality values included); ``?format=`` overrides it for
people and tools that cannot set headers. Anything the node cannot produce is a 406 that lists
what it can (``NotAcceptableError``), or a 400 for an unknown ``format`` value.
"""

from __future__ import annotations

from collections.abc import Sequence

from werkzeug.datastructures import MIMEAccept

from node.errors import BadRequestError, NodeError
from node.linkeddata.mediatypes import FORMAT_NAMES, RDF_MEDIA_TYPES

HTML = "text/html"
JSONLD = "application/ld+json"
# application/ld+json with this profile asks for the DCAT-AP graph instead of schema.org.
DCAT_PROFILE = "http://www.w3.org/ns/dcat#"
DCAT_JSONLD = "application/ld+json; profile=dcat"  # internal name of that choice


class NotAcceptableError(NodeError):
    status = 406


def negotiate(
    accept: MIMEAccept,
    fmt: str | None,
    offered: Sequence[str],
    *,
    default: str,
) -> str:
    """The media type to answer with, among ``offered`` (first is preferred on ties).

    ``fmt`` (``?format=``) wins: ``html`` or a name of FORMAT_NAMES. Without an Accept header,
    or with only ``*/*``, the answer is ``default``."""
    if fmt is not None:
        name = fmt.strip().lower()
        chosen = HTML if name == "html" else FORMAT_NAMES.get(name)
        if name == "dcat-jsonld":
            chosen = DCAT_JSONLD
        if chosen is None or chosen not in offered:
            names = sorted(
                ["html"] * (HTML in offered)
                + [k for k, v in FORMAT_NAMES.items() if v in offered]
                + ["dcat-jsonld"] * (DCAT_JSONLD in offered)
            )
            raise BadRequestError(
                f"format={fmt[:40]!r} is not available here; use one of {', '.join(names)}"
            )
        return chosen
    if not accept or accept.to_header() in ("*/*", ""):
        return default
    if DCAT_JSONLD in offered and _asks_dcat_jsonld(accept):
        return DCAT_JSONLD
    plain = [m for m in offered if m != DCAT_JSONLD]
    # Prefer the default among equally acceptable types (a browser's */* after text/html).
    ordered = [default, *[m for m in plain if m != default]] if default in plain else plain
    # Parameters (profile=..., charset=...) would make werkzeug see another type: match on
    # the bare types; a profile the node does not know is simply the plain type.
    bare = MIMEAccept([(value.split(";", 1)[0].strip(), q) for value, q in accept])
    best = bare.best_match(ordered)
    if best is None:
        available = ", ".join(plain)
        raise NotAcceptableError(
            f"none of the types in Accept ({accept.to_header()[:200]}) is available; "
            f"this resource is available as {available}",
            errors=[f"available: {m}" for m in plain],
        )
    return best


def _asks_dcat_jsonld(accept: MIMEAccept) -> bool:
    """Whether Accept names application/ld+json with the DCAT profile as its best choice."""
    for value, quality in accept:
        if quality <= 0:
            continue
        bare, _, params = value.partition(";")
        if bare.strip().lower() == JSONLD and DCAT_PROFILE in params:
            return True
    return False


RDF_TYPES: tuple[str, ...] = tuple(RDF_MEDIA_TYPES)
