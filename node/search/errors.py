"""Errors of the search backends; the web layers map them through ``NodeError.status``."""

from __future__ import annotations

from node.errors import NodeError


class SearchUnavailableError(NodeError):
    """The search backend cannot answer now (cluster down, timing out, overloaded): retry later.

    The message names the URL that failed and why, without credentials."""

    status = 503


class SearchIndexError(NodeError):
    """The search backend refused documents or is in a state the node cannot use (e.g. an index
    where the alias should be). The message names the documents or the index; ``errors`` holds
    one line per rejected document."""

    status = 500
