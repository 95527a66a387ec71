"""A real HTTP server on loopback that misbehaves on purpose, for the "peers misbehave" tests.

Usage::

    from misbehaving import MisbehavingServer, Reply, huge, oai_page, oai_record

    with MisbehavingServer() as srv:
        srv.on("/oai", Reply(503, headers={"Retry-After": "1"}), Reply(body=oai_page([])))
        fetcher.get(srv.url("/oai"))           # 503, waits 1 s, then the 200
        srv.requests                           # what arrived: path, params, headers, time
        srv.sent("/oai")                       # body bytes written on that path so far

``on(path, *answers)`` scripts a path (the query string is not part of it): each request takes
the next answer, the last one repeats. An answer is a ``Reply`` or a function of the ``Seen``
request returning one (to answer by query parameters, e.g. ``OAIRepository``). Unscripted
paths answer 404.

What a ``Reply`` can do: any status, headers and Content-Type (or none); wait ``delay``
seconds before the status line (slower than the client's timeout); send the body one byte
every ``trickle`` seconds; send a body produced lazily by a generator (``huge``: 2 GB are
never held in memory), with a true, false or no Content-Length, or chunked. A body the client
stops reading ends quietly (the client hung up: that is the point).

Factories for the usual misbehaviours: ``slow``, ``trickling``, ``huge``, ``html_page``,
``closed_port`` (a port nothing listens on: the peer is down). OAI-PMH page builders:
``oai_record``, ``oai_page``, ``oai_error``, ``identify_page``, ``formats_page``, ``dc_metadata``;
``OAIRepository`` serves pages by resumption token, ``endless_tokens``/``repeating_token`` never
end.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Union
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

GB = 1024**3
XML = "text/xml; charset=utf-8"


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    path: str
    params: dict[str, str]  # the query, one value per name (the last)
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival


@dataclass
class Reply:
    """One scripted answer (see the module docstring)."""

    status: int = 200
    body: bytes | Callable[[], Iterable[bytes]] = b""
    content_type: str | None = XML
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    trickle: float | None = None  # seconds between single body bytes
    # Content-Length: "auto" = the true length of a bytes body, an int = that value (may lie),
    # None = none (the body ends when the connection closes).
    length: int | str | None = "auto"
    chunked: bool = False  # Transfer-Encoding: chunked (length is then ignored)


Answer = Union[Reply, Callable[[Seen], Reply]]  # noqa: UP007 (a runtime alias)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: the tests assert on srv.requests instead

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        seen = Seen(parts.path, params, dict(self.headers.items()), time.monotonic())
        srv = self.server.owner
        with srv.lock:
            srv.requests.append(seen)
            answer = srv.next_answer(parts.path)
        reply = answer(seen) if callable(answer) else answer
        # The client giving up (timeout, size cap) is the expected end of many replies.
        with contextlib.suppress(OSError):
            self._send(reply, parts.path)
        self.close_connection = True

    def _send(self, reply: Reply, path: str) -> None:
        stop = self.server.owner.stopping
        if reply.delay and stop.wait(reply.delay):
            return
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        body = reply.body
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif reply.length == "auto" and isinstance(body, bytes):
            self.send_header("Content-Length", str(len(body)))
        elif isinstance(reply.length, int):
            self.send_header("Content-Length", str(reply.length))
        self.send_header("Connection", "close")
        self.end_headers()
        chunks: Iterable[bytes] = [body] if isinstance(body, bytes) else body()
        if reply.trickle is not None:
            chunks = (bytes([b]) for chunk in chunks for b in chunk)
        for chunk in chunks:
            if stop.is_set():
                return
            if not chunk:
                continue
            if reply.chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
            self.wfile.flush()
            self.server.owner.count(path, len(chunk))
            if reply.trickle is not None and stop.wait(reply.trickle):
                return
        if reply.chunked:
            self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: MisbehavingServer


class MisbehavingServer:
    """The server (see the module docstring). A context manager: started on enter, stopped
    (every handler thread told to stop) on exit."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.requests: list[Seen] = []
        self._scripts: dict[str, list[Answer]] = {}
        self._sent: dict[str, int] = {}
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def on(self, path: str, *answers: Answer) -> None:
        """Script ``path``: request n gets ``answers[n]``, the last answer repeats."""
        if not answers:
            raise ValueError("on() needs at least one answer")
        with self.lock:
            self._scripts[path] = list(answers)

    def next_answer(self, path: str) -> Answer:
        script = self._scripts.get(path)
        if not script:
            return Reply(404, b"not scripted", "text/plain")
        return script.pop(0) if len(script) > 1 else script[0]

    def count(self, path: str, n: int) -> None:
        with self.lock:
            self._sent[path] = self._sent.get(path, 0) + n

    def sent(self, path: str) -> int:
        """Body bytes written to clients on ``path`` so far."""
        with self.lock:
            return self._sent.get(path, 0)

    def seen(self, path: str) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> MisbehavingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MisbehavingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- misbehaviours


def slow(seconds: float, body: bytes = b"late") -> Reply:
    """Answers only after ``seconds`` (make it longer than the client's timeout)."""
    return Reply(body=body, delay=seconds)


def trickling(interval: float = 0.05) -> Reply:
    """A 200 whose body never ends: one byte every ``interval`` seconds, each well inside any
    read timeout, so only a cap on the whole response stops it."""
    return Reply(body=lambda: itertools.repeat(b"<"), trickle=interval, length=None)


def huge(size: int = 2 * GB, *, advertise: bool = True, chunked: bool = False) -> Reply:
    """A ``size``-byte XML-looking body made lazily (64 KiB at a time). ``advertise``: send
    the true Content-Length; else no length (close-delimited), or ``chunked``."""
    piece = b"<r>" + b"x" * (64 * 1024 - 7) + b"</r>"

    def body() -> Iterator[bytes]:
        left = size
        while left > 0:
            yield piece[: min(left, len(piece))]
            left -= len(piece)

    return Reply(body=body, length=size if advertise else None, chunked=chunked)


def html_page(title: str = "Service temporarily down", status: int = 200) -> Reply:
    body = (
        f"<!DOCTYPE html>\n<html><head><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1></body></html>"
    ).encode()
    return Reply(status, body, "text/html; charset=utf-8")


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- OAI-PMH pages

OAI_HEAD = (
    '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
)
RESPONSE_DATE = "2024-05-01T10:00:00Z"


def dc_metadata(dataset_id: str, title: str | None = "A title", **more: str) -> str:
    """An ``oai_dc:dc`` payload that ``from_oai_dc`` maps (title None: one that fails)."""
    fields = [f"<dc:identifier>https://peer.test/datasets/{dataset_id}</dc:identifier>"]
    if title is not None:
        fields.append(f"<dc:title>{escape(title)}</dc:title>")
    fields += [f"<dc:{k}>{escape(v)}</dc:{k}>" for k, v in more.items()]
    return (
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">' + "".join(fields) + "</oai_dc:dc>"
    )


def oai_record(
    identifier: str,
    datestamp: str = "2024-04-01T00:00:00Z",
    metadata: str | None = None,
    *,
    deleted: bool = False,
    set_specs: Sequence[str] = (),
) -> str:
    status = ' status="deleted"' if deleted else ""
    sets = "".join(f"<setSpec>{escape(s)}</setSpec>" for s in set_specs)
    header = (
        f"<header{status}><identifier>{escape(identifier)}</identifier>"
        f"<datestamp>{datestamp}</datestamp>{sets}</header>"
    )
    body = "" if deleted or metadata is None else f"<metadata>{metadata}</metadata>"
    return f"<record>{header}{body}</record>"


def oai_page(
    records: Sequence[str],
    token: str | None = None,
    *,
    verb: str = "ListRecords",
    response_date: str = RESPONSE_DATE,
    token_attrs: str = "",
) -> bytes:
    """A ListRecords (or other list verb) page; ``token=""`` writes an empty token element."""
    tok = (
        "" if token is None else f"<resumptionToken{token_attrs}>{escape(token)}</resumptionToken>"
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{OAI_HEAD}<responseDate>{response_date}'
        f'</responseDate><request verb="{verb}">http://peer.test/oai</request>'
        f"<{verb}>{''.join(records)}{tok}</{verb}></OAI-PMH>"
    ).encode()


def oai_error(code: str, text: str = "", *, response_date: str = RESPONSE_DATE) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{OAI_HEAD}<responseDate>{response_date}'
        f"</responseDate><request>http://peer.test/oai</request>"
        f'<error code="{code}">{escape(text)}</error></OAI-PMH>'
    ).encode()


def identify_page(granularity: str = "YYYY-MM-DDThh:mm:ssZ", name: str = "Peer") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{OAI_HEAD}<responseDate>{RESPONSE_DATE}'
        '</responseDate><request verb="Identify">http://peer.test/oai</request><Identify>'
        f"<repositoryName>{escape(name)}</repositoryName><baseURL>http://peer.test/oai</baseURL>"
        "<protocolVersion>2.0</protocolVersion><adminEmail>admin@peer.test</adminEmail>"
        "<earliestDatestamp>2001-01-01</earliestDatestamp><deletedRecord>persistent"
        f"</deletedRecord><granularity>{granularity}</granularity></Identify></OAI-PMH>"
    ).encode()


def formats_page(*prefixes: str) -> bytes:
    items = "".join(
        f"<metadataFormat><metadataPrefix>{p}</metadataPrefix><schema>urn:x:{p}</schema>"
        f"<metadataNamespace>urn:x:{p}</metadataNamespace></metadataFormat>"
        for p in prefixes
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{OAI_HEAD}<responseDate>{RESPONSE_DATE}'
        '</responseDate><request verb="ListMetadataFormats">http://peer.test/oai</request>'
        f"<ListMetadataFormats>{items}</ListMetadataFormats></OAI-PMH>"
    ).encode()


class OAIRepository:
    """An answer function serving ``pages`` of ListRecords by token (``t1``, ``t2``…), plus
    Identify and ListMetadataFormats. ``response_dates[i]`` is page i's responseDate."""

    def __init__(
        self,
        pages: Sequence[Sequence[str]],
        *,
        granularity: str = "YYYY-MM-DDThh:mm:ssZ",
        formats: Sequence[str] = ("oai_dc",),
        response_dates: Sequence[str] | None = None,
    ):
        self.pages = pages
        self.granularity = granularity
        self.formats = formats
        self.response_dates = response_dates or [RESPONSE_DATE] * len(pages)

    def __call__(self, seen: Seen) -> Reply:
        verb = seen.params.get("verb")
        if verb == "Identify":
            return Reply(body=identify_page(self.granularity))
        if verb == "ListMetadataFormats":
            return Reply(body=formats_page(*self.formats))
        if verb != "ListRecords":
            return Reply(body=oai_error("badVerb", f"{verb!r} is not scripted"))
        token = seen.params.get("resumptionToken")
        n = int(token.removeprefix("t")) if token else 0
        if n >= len(self.pages):
            return Reply(body=oai_error("badResumptionToken", token or ""))
        more = f"t{n + 1}" if n + 1 < len(self.pages) else None
        return Reply(body=oai_page(self.pages[n], more, response_date=self.response_dates[n]))


def endless_tokens(seen: Seen) -> Reply:
    """Every page holds one record and a token never seen before: the list never ends."""
    n = int(seen.params.get("resumptionToken", "t0").removeprefix("t"))
    rec = oai_record(f"oai:peer.test:ds-{n}", metadata=dc_metadata(f"ds-{n}"))
    return Reply(body=oai_page([rec], f"t{n + 1}"))


def repeating_token(seen: Seen) -> Reply:
    """Every page holds the same record and the same token."""
    rec = oai_record("oai:peer.test:ds-0", metadata=dc_metadata("ds-0"))
    return Reply(body=oai_page([rec], "again"))
