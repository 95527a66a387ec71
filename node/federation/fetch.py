"""HTTP GET for the federation readers: every request a peer answers is bounded.

One ``Fetcher`` per peer and run. Its limits come from ``[federation]``:

* connect and read timeout: ``timeout_seconds`` (each socket wait);
* the whole response (headers and body) must arrive within ``BODY_TIME_FACTOR`` times
  ``timeout_seconds``: a peer trickling one byte a second would beat the read timeout forever;
* the body is streamed and the request fails as soon as it passes ``max_response_mb`` (a
  Content-Length above the cap fails before any of the body is read);
* 429, 500, 502, 503, 504 and network errors are retried ``max_retries`` times with exponential
  backoff, waiting what the peer's ``Retry-After`` asks (seconds or an HTTP date) up to
  ``max_retry_after_seconds``; a peer asking for longer fails the request at once.

Every failure is a ``PeerError`` whose message names the peer, the URL and why, in words an
admin understands: it is what the peers page shows.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from types import MappingProxyType, TracebackType

import requests

from node.config import FederationSettings

from .model import PeerError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BODY_TIME_FACTOR = 4  # whole response within this many read timeouts
BACKOFF_BASE_SECONDS = 0.5  # first retry waits this long, then doubles (unless Retry-After)
CHUNK_BYTES = 64 * 1024
SNIPPET_CHARS = 200  # of an error body, quoted in the PeerError


def software_version() -> str:
    try:
        return version("fairnode")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"


def default_user_agent(base_url: str | None = None) -> str:
    """``fairnode/<version> (+<base url>)``: tells the peer's admin who harvests them."""
    agent = f"fairnode/{software_version()}"
    return f"{agent} (+{base_url})" if base_url else agent


@dataclass(frozen=True)
class Fetched:
    """One successful (2xx) response, fully read."""

    url: str  # final URL after redirects
    status: int
    content_type: str  # media type without parameters, lower-case; "" when absent
    charset: str | None  # from Content-Type, lower-case
    headers: Mapping[str, str]
    body: bytes


def parse_content_type(value: str | None) -> tuple[str, str | None]:
    """(media type lower-case without parameters, charset lower-case or None)."""
    if not value:
        return "", None
    msg = Message()
    msg["content-type"] = value
    media = value.split(";", 1)[0].strip().lower()
    charset = msg.get_param("charset")
    if isinstance(charset, tuple):  # RFC 2231 form: (charset, language, value)
        charset = charset[2]
    return media, (str(charset).strip().strip('"').lower() or None) if charset else None


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, why: str, wait: float | None = None):
        super().__init__(why)
        self.why = why
        self.wait = wait  # what the peer asked for (Retry-After), None: our backoff


class Fetcher:
    """GETs from one peer with the ``[federation]`` limits (see the module docstring)."""

    def __init__(
        self,
        settings: FederationSettings,
        *,
        peer_id: str,
        token: str | None = None,
        user_agent: str | None = None,
    ):
        self.settings = settings
        self.peer_id = peer_id
        self.max_bytes = int(settings.max_response_mb) * 1024 * 1024
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent or default_user_agent()
        self.session.headers["Accept-Encoding"] = "gzip, deflate"
        self.sends_token = bool(token)  # whether one is sent (the secret stays in the session)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # ------------------------------------------------------------------ public

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        accept: str = "*/*",
        ok_statuses: Collection[int] = (),
    ) -> Fetched:
        """The 2xx response to GET ``url``; raises PeerError (see the module docstring).

        ``ok_statuses``: other statuses returned as a ``Fetched`` rather than raised, for
        protocols that put their own error in the body (Zenodo answers OAI-PMH errors with
        HTTP 422)."""
        shown = requests.Request("GET", url, params=dict(params or {})).prepare().url or url
        attempts = max(0, int(self.settings.max_retries)) + 1
        for attempt in range(attempts):
            try:
                return self._attempt(url, shown, params, accept, ok_statuses)
            except _Retry as retry:
                if attempt + 1 >= attempts:
                    tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
                    raise PeerError(
                        f"{self._where(shown)}: {retry.why} (gave up after {tries})"
                    ) from None
                time.sleep(
                    retry.wait if retry.wait is not None else BACKOFF_BASE_SECONDS * 2**attempt
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ one attempt

    def _where(self, url: str) -> str:
        return f"peer {self.peer_id!r}: GET {url}"

    def _attempt(
        self,
        url: str,
        shown: str,
        params: Mapping[str, str] | None,
        accept: str,
        ok_statuses: Collection[int],
    ) -> Fetched:
        timeout = float(self.settings.timeout_seconds)
        deadline = time.monotonic() + BODY_TIME_FACTOR * timeout
        try:
            resp = self.session.get(
                url,
                params=params,
                headers={"Accept": accept},
                timeout=(timeout, timeout),
                stream=True,
                allow_redirects=True,
            )
        except requests.exceptions.ConnectTimeout:
            raise _Retry(f"could not connect within {timeout:g} s") from None
        except requests.exceptions.ReadTimeout:
            raise _Retry(f"no answer within {timeout:g} s (read timeout)") from None
        except requests.exceptions.TooManyRedirects:
            raise PeerError(f"{self._where(shown)}: too many redirects") from None
        except requests.exceptions.ConnectionError as exc:
            raise _Retry(f"cannot connect ({_reason(exc)})") from None
        except requests.exceptions.RequestException as exc:
            raise PeerError(f"{self._where(shown)}: request failed ({_reason(exc)})") from None
        with resp:
            final = resp.url or shown
            if resp.status_code in RETRY_STATUSES:
                wait = self._retry_after(resp, final)
                snippet = _snippet(self._read_body(resp, final, deadline, quiet=True))
                raise _Retry(f"HTTP {resp.status_code}{snippet}", wait)
            body = self._read_body(resp, final, deadline)
            if resp.status_code in (401, 403) and resp.status_code not in ok_statuses:
                raise PeerError(f"{self._where(final)}: {self._refused(resp)}")
            if not 200 <= resp.status_code < 300 and resp.status_code not in ok_statuses:
                raise PeerError(f"{self._where(final)}: HTTP {resp.status_code}{_snippet(body)}")
            media, charset = parse_content_type(resp.headers.get("Content-Type"))
            return Fetched(
                url=final,
                status=resp.status_code,
                content_type=media,
                charset=charset,
                headers=MappingProxyType(dict(resp.headers)),
                body=body,
            )

    def _refused(self, resp: requests.Response) -> str:
        """Why the peer refused, in words: its challenge, and whether we sent a token."""
        challenge = resp.headers.get("WWW-Authenticate", "").strip()
        said = f" (it says: {challenge[:200]})" if challenge else ""
        if self.sends_token:
            return (
                f"HTTP {resp.status_code}: the peer refused the bearer token this node presented"
                f"{said}; check the token in the peer's token_env against the peer's "
                "FAIRNODE_FEDERATION_TOKEN"
            )
        return (
            f"HTTP {resp.status_code}: the peer asks for credentials{said}; a fairnode peer "
            "serves federation records only with a token (set token_env)"
        )

    def _retry_after(self, resp: requests.Response, url: str) -> float | None:
        value = resp.headers.get("Retry-After")
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            wait = float(value)
        else:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None  # unreadable: fall back on our own backoff
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            wait = max(0.0, (when - datetime.now(UTC)).total_seconds())
        limit = float(self.settings.max_retry_after_seconds)
        if wait > limit:
            raise PeerError(
                f"{self._where(url)}: HTTP {resp.status_code}, the peer asked to wait "
                f"{wait:.0f} s (Retry-After: {value}), more than the {limit:g} s allowed "
                "([federation] max_retry_after_seconds)"
            )
        return wait

    def _read_body(
        self, resp: requests.Response, url: str, deadline: float, *, quiet: bool = False
    ) -> bytes:
        """The body, streamed, within the size cap and the deadline. ``quiet``: an error
        body, only quoted in a message, so stop early rather than fail."""
        cap = SNIPPET_CHARS * 4 if quiet else self.max_bytes
        mb = self.settings.max_response_mb
        length = resp.headers.get("Content-Length", "")
        if not quiet and length.isdigit() and int(length) > cap:
            raise PeerError(
                f"{self._where(url)}: the response is {int(length):,} bytes (Content-Length), "
                f"more than the {mb} MB limit ([federation] max_response_mb); not read"
            )
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise PeerError(
                        f"{self._where(url)}: the response was still arriving after "
                        f"{BODY_TIME_FACTOR * float(self.settings.timeout_seconds):g} s "
                        f"({size:,} bytes so far): the peer is too slow or trickling bytes"
                    )
                # read1: returns after one socket read, so the deadline is checked often
                # even when the peer sends a byte at a time.
                chunk = resp.raw.read1(CHUNK_BYTES, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    if quiet:
                        chunks.append(chunk)
                        break
                    raise PeerError(
                        f"{self._where(url)}: the response passed the {mb} MB limit "
                        "([federation] max_response_mb); stopped reading"
                    )
                chunks.append(chunk)
        except PeerError:
            raise
        except Exception as exc:  # urllib3/socket/decoder errors mid-body
            if quiet:
                return b"".join(chunks)
            if "timed out" in str(exc).lower():
                why = f"the peer stopped sending for {self.settings.timeout_seconds:g} s"
            else:
                why = f"the connection broke while reading the response ({_reason(exc)})"
            raise PeerError(f"{self._where(url)}: {why}") from None
        return b"".join(chunks)


def _reason(exc: BaseException) -> str:
    """The innermost readable cause of a requests/urllib3 error."""
    text = str(exc)
    inner = exc
    while inner.__context__ is not None or inner.__cause__ is not None:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    for candidate in (inner, exc):
        if isinstance(candidate, ConnectionRefusedError) or "Connection refused" in str(candidate):
            return "connection refused: nothing listens there, the peer is down"
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "the host name does not resolve"
    return text[:300]


def _snippet(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    text = " ".join(text.split())[:SNIPPET_CHARS]
    return f": {text!r}" if text else ""
