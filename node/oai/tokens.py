"""Resumption tokens: the whole state of a list harvest, carried by the harvester, signed.

The node keeps nothing between requests: a token holds the list's query (verb, metadataPrefix,
set, from), the upper bound frozen when the list started, the (modified, id) key of the last
record served, the completeListSize and cursor, and its expiry. The next page is the records
after that key below that bound (keyset paging), so a token works on any web worker, after a
restart, and as often as it is re-issued (idempotent, section 3.5.1).

Tokens are ``base64url(JSON).base64url(HMAC-SHA256)``. The key is derived from
``FAIRNODE_SECRET_KEY`` (when set: then tokens cannot be forged) and the node's id and base URL
(stable across processes, so every gunicorn worker accepts every worker's tokens). Without the
secret an edited token is still refused, but a forger who knows the node's id could sign one;
that gains nothing, since a token only ever selects among the records anonymous harvesters may
read anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

TTL = timedelta(hours=24)  # the lifetime harvesting guidelines ask for (DRIVER, OpenAIRE)
VERSION = 1
_SIG_BYTES = 16


class TokenError(ValueError):
    """The token is not one of ours, was altered, or has expired (badResumptionToken)."""


@dataclass(frozen=True)
class ListState:
    """Where a ListIdentifiers/ListRecords harvest stands."""

    verb: str
    prefix: str
    set_spec: str | None
    from_: datetime | None  # inclusive lower bound of ``modified``
    upper: datetime  # exclusive upper bound of ``modified``, frozen when the list started
    after_modified: datetime  # key of the last record served
    after_id: str
    complete_size: int
    cursor: int  # records served before the next page
    expires: datetime


def signing_key(node_id: str, base_url: str) -> bytes:
    secret = os.environ.get("FAIRNODE_SECRET_KEY", "")
    material = "\x00".join(("fairnode-oai-resumption-token", secret, node_id, base_url))
    return hashlib.sha256(material.encode("utf-8")).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:_SIG_BYTES])


def encode(state: ListState, key: bytes) -> str:
    data = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(state).items()}
    raw = json.dumps({"v": VERSION, **data}, separators=(",", ":"), sort_keys=True)
    body = _b64(raw.encode("utf-8"))
    return f"{body}.{_sign(key, body)}"


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise TokenError(f"token field {name} is not a date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TokenError(f"token field {name} is not a date-time") from None
    if parsed.tzinfo is None:
        raise TokenError(f"token field {name} has no time zone")
    return parsed.astimezone(UTC)


def decode(token: str, key: bytes, *, now: datetime | None = None) -> ListState:
    """The state in ``token``, or TokenError saying why it is refused."""
    body, sep, sig = token.partition(".")
    if not sep or not body or not sig or not body.isascii() or not sig.isascii():
        raise TokenError("not a resumption token of this repository")
    if not hmac.compare_digest(sig, _sign(key, body)):
        raise TokenError("not a resumption token of this repository, or it was altered")
    try:
        data = json.loads(_unb64(body))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenError("not a resumption token of this repository") from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise TokenError("a resumption token of another version of this repository")
    try:
        state = ListState(
            verb=_str(data["verb"]),
            prefix=_str(data["prefix"]),
            set_spec=None if data["set_spec"] is None else _str(data["set_spec"]),
            from_=None if data["from_"] is None else _aware(data["from_"], "from"),
            upper=_aware(data["upper"], "upper"),
            after_modified=_aware(data["after_modified"], "after_modified"),
            after_id=_str(data["after_id"]),
            complete_size=_int(data["complete_size"]),
            cursor=_int(data["cursor"]),
            expires=_aware(data["expires"], "expires"),
        )
    except KeyError as exc:
        raise TokenError(f"token field {exc.args[0]} is missing") from None
    if state.expires <= (now or datetime.now(UTC)):
        raise TokenError(f"the resumption token expired at {state.expires:%Y-%m-%dT%H:%M:%SZ}")
    return state


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TokenError("malformed resumption token")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TokenError("malformed resumption token")
    return value
