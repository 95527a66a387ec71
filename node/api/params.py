"""Validation of query parameters, done before any value reaches a service."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from node.config import SOURCE_NAME_RE, WebSettings
from node.errors import BadRequestError, NotFoundError

# Cursors are our own URL-safe base64; anything longer than this was not made by us.
MAX_CURSOR_LENGTH = 512
_CURSOR_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Record ids are slugs such as "ds-…"/"im-…" (harvested) or ids carried over from peers. Refusing
# control characters and absurd lengths here keeps e.g. NUL bytes away from PostgreSQL.
MAX_ID_LENGTH = 255
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Run ids are PostgreSQL INTEGERs: a bigger number would be a database error, not a 404.
MAX_RUN_ID = 2**31 - 1


@dataclass(frozen=True)
class PageArgs:
    """A validated ``limit`` and ``cursor``."""

    limit: int
    cursor: str | None


def reject_unknown(args: MultiDict[str, str], allowed: Iterable[str]) -> None:
    """BadRequestError naming every query parameter not in ``allowed``, or given twice."""
    allowed = sorted(allowed)
    unknown = sorted(k for k in args if k not in allowed)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        accepted = ", ".join(allowed) or "none"
        raise BadRequestError(
            f"unknown query parameter(s) {names}; this endpoint accepts: {accepted}",
            errors=[f"unknown query parameter {k!r}" for k in unknown],
        )
    repeated = sorted(k for k in args if len(args.getlist(k)) > 1)
    if repeated:
        raise BadRequestError(
            f"query parameter(s) {', '.join(repr(k) for k in repeated)} given more than once",
            errors=[f"query parameter {k!r} given more than once" for k in repeated],
        )


def parse_limit(raw: str | None, web: WebSettings) -> int:
    """The page size from ``raw``: an int between 1 and ``web.max_page_size``."""
    if raw is None or raw == "":
        return web.page_size
    allowed = f"an integer from 1 to {web.max_page_size}"
    text = raw.strip()
    # A bounded digit count keeps int() cheap on hostile input ("9" * 100000).
    if not re.fullmatch(r"[+-]?\d{1,18}", text):
        raise BadRequestError(
            f"limit {raw[:40]!r} is not an integer; use {allowed}",
            errors=[f"limit: {raw[:40]!r} is not {allowed}"],
        )
    limit = int(text)
    if not 1 <= limit <= web.max_page_size:
        raise BadRequestError(
            f"limit {limit} is out of range; use {allowed}",
            errors=[f"limit: {limit} is not {allowed}"],
        )
    return limit


def parse_cursor(raw: str | None) -> str | None:
    """The cursor from ``raw`` when it looks like one of ours (the service checks its content)."""
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_CURSOR_LENGTH or not _CURSOR_RE.match(raw):
        raise BadRequestError(
            f"cursor {raw[:60]!r} is not valid; use the 'next' value of a previous page",
            errors=[f"cursor: {raw[:60]!r} is not a cursor made by this node"],
        )
    return raw


def page_args(
    args: MultiDict[str, str], web: WebSettings, *, extra: Iterable[str] = ()
) -> PageArgs:
    """Validated paging arguments; unknown parameters are refused, not ignored."""
    reject_unknown(args, {"limit", "cursor", *extra})
    return PageArgs(
        limit=parse_limit(args.get("limit"), web), cursor=parse_cursor(args.get("cursor"))
    )


def check_record_id(kind: str, record_id: str) -> str:
    """``record_id`` when it could be an id; NotFoundError otherwise (it cannot exist)."""
    if len(record_id) > MAX_ID_LENGTH or _CONTROL_RE.search(record_id):
        raise NotFoundError(f"no {kind} {record_id[:80]!r}")
    return record_id


def parse_run_id(raw: str) -> int:
    """A harvest run id from the URL; NotFoundError when it is not one."""
    if not re.fullmatch(r"\d{1,10}", raw) or not 1 <= int(raw) <= MAX_RUN_ID:
        raise NotFoundError(f"no harvest run {raw[:40]!r}")
    return int(raw)


def parse_source(raw: str | None) -> str | None:
    """A harvest source name filter: a slug, as sources are named in the configuration."""
    if raw is None or raw == "":
        return None
    if not SOURCE_NAME_RE.fullmatch(raw):  # fullmatch: "$" would accept a trailing "\n"
        raise BadRequestError(
            f"source {raw[:60]!r} is not a source name (a-z, 0-9 and '-', at most 63)",
            errors=[f"source: {raw[:60]!r} is not a source name"],
        )
    return raw
