"""Jinja filters that turn record values into display text and safe links.

Jinja's autoescape protects element text and attribute values, but not a link's *scheme*: a
hostile ``javascript:`` IRI in a record would still run when clicked. Every link built from
record data therefore goes through :func:`http_url`, which returns None for anything that is not
a plain http(s) URL, and the templates show such values as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from node.api.serialise import dataset_thumbnail_image_id
from node.records import Size5D

_DOI_RE = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)


def http_url(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL, else None."""
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return value


def publication_url(value: str | None) -> str | None:
    """A link for a related publication given as a DOI or a URL."""
    if not value:
        return None
    m = _DOI_RE.match(value.strip())
    if m:
        return "https://doi.org/" + quote(m.group(1), safe="/:;()._-")
    return http_url(value)


def paragraphs(text: str | None) -> list[str]:
    """``text`` split at blank lines (any line ending), without empty paragraphs."""
    if not text:
        return []
    return [p.strip() for p in re.split(r"\r?\n[ \t]*\r?\n", text) if p.strip()]


def format_datetime(value: datetime | None) -> str:
    """A UTC timestamp such as ``2024-05-01 13:45 UTC``; empty for None."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def format_date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def format_size5d(size: Size5D | None) -> str:
    """Dimensions as ``X×Y×Z×C×T``; empty when unknown."""
    if size is None:
        return ""
    return "×".join(str(v) for v in (size.x, size.y, size.z, size.c, size.t))


def format_number(value: float | int | None, digits: int = 4) -> str:
    """A number with at most ``digits`` significant digits, without a trailing ``.0``."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def format_bytes(value: int | None) -> str:
    """A byte count in binary units (``1.5 GiB``)."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"  # pragma: no cover - the loop always returns


FILTERS: dict[str, Callable[..., Any]] = {
    "http_url": http_url,
    "paragraphs": paragraphs,
    "publication_url": publication_url,
    "datetime": format_datetime,
    "date": format_date,
    "size5d": format_size5d,
    "number": format_number,
    "bytes": format_bytes,
    "thumbnail_id": dataset_thumbnail_image_id,
}
