"""The RDF serialisations the node offers, and one function that writes a graph in any of them.

Content negotiation (choosing among these from ``Accept`` or ``?format=``) belongs to the views;
this module only knows the media types, their short names and how to serialise.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from rdflib import Graph

from .namespaces import PREFIXES, new_graph

# media type → rdflib serializer name, in the node's order of preference.
RDF_MEDIA_TYPES: dict[str, str] = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
}

# ?format= values → media type (the short names people type).
FORMAT_NAMES: dict[str, str] = {
    "ttl": "text/turtle",
    "turtle": "text/turtle",
    "jsonld": "application/ld+json",
    "json-ld": "application/ld+json",
    "rdf": "application/rdf+xml",
    "xml": "application/rdf+xml",
    "nt": "application/n-triples",
    "ntriples": "application/n-triples",
}

FILE_EXTENSIONS: dict[str, str] = {
    "text/turtle": "ttl",
    "application/ld+json": "jsonld",
    "application/rdf+xml": "rdf",
    "application/n-triples": "nt",
}


def media_type_of(value: str) -> str:
    """The bare media type of ``value`` (parameters such as ``charset`` dropped, lower case),
    or ValueError naming it when it is not an RDF serialisation the node writes."""
    bare = value.split(";", 1)[0].strip().lower()
    if bare not in RDF_MEDIA_TYPES:
        supported = ", ".join(RDF_MEDIA_TYPES)
        raise ValueError(f"{value!r} is not an RDF media type this node writes ({supported})")
    return bare


def serialise(graph: Graph, media_type: str) -> bytes:
    """``graph`` as UTF-8 bytes in ``media_type`` (see RDF_MEDIA_TYPES)."""
    bare = media_type_of(media_type)
    fmt = RDF_MEDIA_TYPES[bare]
    if fmt == "json-ld":
        # Compact JSON-LD with the node's prefixes, so that it reads like the Turtle.
        context = {prefix: str(ns) for prefix, ns in PREFIXES.items()}
        data = graph.serialize(format=fmt, context=context, auto_compact=True)
    else:
        data = graph.serialize(format=fmt)
    return data.encode("utf-8")


def parse(
    data: bytes | str,
    media_type: str,
    *,
    contexts: dict[str, Any] | None = None,
    base: str | None = None,
) -> Graph:
    """A graph from ``data`` in ``media_type``. JSON-LD ``@context`` URLs must be in
    ``contexts`` (URL → local context): a parser would otherwise fetch them, from a URL the
    document chose. ``base`` is the URL the document came from: relative IRIs resolve against
    it (without it rdflib resolves them against the working directory, as file: IRIs).
    Parse errors are ValueError naming the media type."""
    fmt = RDF_MEDIA_TYPES[media_type_of(media_type)]
    if fmt == "json-ld":
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise ValueError(f"{media_type}: not JSON: {exc}") from None
        data = json.dumps(localise_contexts(doc, contexts or {}))
    g = new_graph()
    try:
        with warnings.catch_warnings():
            # rdflib 7's own JSON-LD parser builds a ConjunctiveGraph and warns about it.
            warnings.filterwarnings(
                "ignore", "ConjunctiveGraph is deprecated", category=DeprecationWarning
            )
            g.parse(data=data, format=fmt, publicID=base)
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"{media_type}: could not be parsed: {exc}") from None
    return g


def localise_contexts(doc: Any, contexts: dict[str, Any]) -> Any:
    """A copy of ``doc`` whose ``@context`` URLs are replaced by the local context objects in
    ``contexts`` (URL → the value of the context file's ``@context``); any other remote
    context is refused with ValueError naming it."""
    if isinstance(doc, list):
        return [localise_contexts(d, contexts) for d in doc]
    if not isinstance(doc, dict):
        return doc
    return {
        key: _local_context(value, contexts)
        if key == "@context"
        else localise_contexts(value, contexts)
        for key, value in doc.items()
    }


def _local_context(value: Any, contexts: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_local_context(v, contexts) for v in value]
    if isinstance(value, str):
        if value in contexts:
            return contexts[value]
        raise ValueError(f"remote JSON-LD context {value!r} has no local copy; not fetched")
    return value
