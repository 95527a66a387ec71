"""The one JSON error shape of the API: ``{"error": "...", "errors": [...], "status": N}``."""

from __future__ import annotations

from typing import Any


def error_body(status: int, message: str, errors: list[str] | None = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": message, "errors": list(errors or []), "status": status}
