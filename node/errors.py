"""One exception hierarchy for the node; web layers turn these into one JSON error shape."""

from __future__ import annotations


class NodeError(Exception):
    """Base of the node's errors; ``status`` is the HTTP status it maps to."""

    status = 500

    def __init__(self, message: str, *, errors: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class BadRequestError(NodeError):
    status = 400


class NotFoundError(NodeError):
    status = 404


class ConflictError(NodeError):
    """The thing is busy or in the wrong state (e.g. a source already being harvested)."""

    status = 409
