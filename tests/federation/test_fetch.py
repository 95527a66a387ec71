"""The federation's HTTP layer against a real misbehaving server on loopback: timeouts, a body
that trickles forever, retries that honour Retry-After, a 2 GB body stopped at the cap, a peer
that is down; every failure a PeerError naming the peer, the URL and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from misbehaving import (
    GB,
    MisbehavingServer,
    Reply,
    closed_port,
    huge,
    slow,
    trickling,
)

from node.config import FederationSettings
from node.federation.fetch import Fetcher, default_user_agent, parse_content_type
from node.federation.model import PeerError

PEER = "inst-a"
CAP_MB = 1
# Far more than the cap plus every socket buffer between the two ends, far less than 2 GB.
STOPPED_EARLY = 64 * 1024 * 1024


def settings(**kw: object) -> FederationSettings:
    values: dict[str, object] = {
        "timeout_seconds": 0.5,
        "max_response_mb": CAP_MB,
        "max_retries": 0,
        "max_retry_after_seconds": 5,
    }
    values.update(kw)
    return FederationSettings(**values)


@pytest.fixture
def srv():
    with MisbehavingServer() as server:
        yield server


def fetcher(**kw: object) -> Fetcher:
    token = kw.pop("token", None)
    return Fetcher(settings(**kw), peer_id=PEER, token=token)  # type: ignore[arg-type]


def test_get_returns_the_body_type_and_final_url(srv: MisbehavingServer) -> None:
    srv.on("/old", Reply(302, headers={"Location": "/oai?verb=Identify"}, length=0))
    srv.on("/oai", Reply(body=b"<x/>", content_type="Text/XML; Charset=ISO-8859-1"))
    ua = default_user_agent("http://node.test")
    with Fetcher(settings(), peer_id=PEER, token="s3cret", user_agent=ua) as f:
        got = f.get(srv.url("/old"), params={"verb": "Identify"}, accept="text/xml")
    assert got.url == srv.url("/oai?verb=Identify")
    assert (got.status, got.content_type, got.charset, got.body) == (
        200,
        "text/xml",
        "iso-8859-1",
        b"<x/>",
    )
    assert got.headers["Content-Length"] == "4"
    req = srv.seen("/oai")[0]
    assert req.params == {"verb": "Identify"}
    assert req.headers["Authorization"] == "Bearer s3cret"
    assert req.headers["Accept"] == "text/xml"
    assert req.headers["User-Agent"] == ua
    assert ua.startswith("fairnode/0.1.0 (+http://node.test)")


def test_no_token_sends_no_authorization(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(body=b"<x/>"))
    with fetcher() as f:
        f.get(srv.url("/oai"))
    assert "Authorization" not in srv.seen("/oai")[0].headers
    assert srv.seen("/oai")[0].headers["User-Agent"].startswith("fairnode/")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("text/xml; charset=utf-8", ("text/xml", "utf-8")),
        ('application/xml;charset="UTF-8"', ("application/xml", "utf-8")),
        ("TEXT/HTML", ("text/html", None)),
        (None, ("", None)),
    ],
)
def test_content_type_is_parsed(header: str | None, expected: tuple[str, str | None]) -> None:
    assert parse_content_type(header) == expected


def test_slow_peer_times_out(srv: MisbehavingServer) -> None:
    srv.on("/oai", slow(30))
    with fetcher() as f, pytest.raises(PeerError) as err:
        f.get(srv.url("/oai"))
    msg = str(err.value)
    assert f"peer '{PEER}'" in msg
    assert srv.url("/oai") in msg
    assert "no answer within 0.5 s" in msg


def test_slow_peer_is_retried_then_given_up(srv: MisbehavingServer) -> None:
    srv.on("/oai", slow(30))
    with fetcher(max_retries=1) as f, pytest.raises(PeerError, match="gave up after 2 attempts"):
        f.get(srv.url("/oai"))
    assert len(srv.seen("/oai")) == 2


def test_trickling_body_is_cut_by_the_whole_response_deadline(srv: MisbehavingServer) -> None:
    # One byte every 50 ms beats a 0.5 s read timeout forever; the 2 s total does not.
    srv.on("/oai", trickling(0.05))
    with fetcher() as f, pytest.raises(PeerError) as err:
        f.get(srv.url("/oai"))
    msg = str(err.value)
    assert "still arriving after 2 s" in msg
    assert "trickling" in msg
    assert srv.url("/oai") in msg


def test_503_with_retry_after_is_waited_for_then_succeeds(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(503, b"busy", headers={"Retry-After": "1"}), Reply(body=b"<ok/>"))
    with fetcher(max_retries=2) as f:
        assert f.get(srv.url("/oai")).body == b"<ok/>"
    first, second = srv.seen("/oai")
    assert second.at - first.at >= 1.0  # the peer asked for one second


def test_429_with_an_http_date_retry_after(srv: MisbehavingServer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    srv.on("/oai", Reply(429, headers={"Retry-After": when}), Reply(body=b"<ok/>"))
    with fetcher(max_retries=1) as f:
        assert f.get(srv.url("/oai")).body == b"<ok/>"
    first, second = srv.seen("/oai")
    # The date has whole seconds: at least one of the two asked for was waited.
    assert second.at - first.at >= 1.0


def test_429_without_retry_after_backs_off_and_succeeds(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(429), Reply(502), Reply(body=b"<ok/>"))
    with fetcher(max_retries=2) as f:
        assert f.get(srv.url("/oai")).body == b"<ok/>"
    a, b, c = srv.seen("/oai")
    assert b.at - a.at >= 0.5  # exponential backoff: 0.5 s, then 1 s
    assert c.at - b.at >= 1.0


def test_retry_after_beyond_the_limit_fails_at_once(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(503, headers={"Retry-After": "3600"}))
    with fetcher(max_retries=3) as f, pytest.raises(PeerError) as err:
        f.get(srv.url("/oai"))
    msg = str(err.value)
    assert "the peer asked to wait 3600 s" in msg
    assert "max_retry_after_seconds" in msg
    assert len(srv.seen("/oai")) == 1


def test_5xx_after_every_retry_quotes_status_and_body(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(500, b"Internal error: database is locked" + b" x" * 500, "text/plain"))
    with fetcher(max_retries=2) as f, pytest.raises(PeerError) as err:
        f.get(srv.url("/oai"))
    msg = str(err.value)
    assert "HTTP 500" in msg
    assert "database is locked" in msg
    assert "gave up after 3 attempts" in msg
    assert len(msg) < 600  # the body is quoted, not dumped
    assert len(srv.seen("/oai")) == 3


def test_404_is_not_retried(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(404, b"No such page", "text/plain"))
    with fetcher(max_retries=3) as f, pytest.raises(PeerError) as err:
        f.get(srv.url("/oai"))
    assert "HTTP 404: 'No such page'" in str(err.value)
    assert len(srv.seen("/oai")) == 1


def test_ok_statuses_are_returned_not_raised(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(422, b"<error/>"))
    with fetcher() as f:
        got = f.get(srv.url("/oai"), ok_statuses=(422,))
    assert (got.status, got.body) == (422, b"<error/>")


def test_2gb_advertised_body_is_refused_without_reading_it(srv: MisbehavingServer) -> None:
    srv.on("/oai", huge(2 * GB))
    with fetcher() as f, pytest.raises(PeerError) as err:
        f.get(srv.url("/oai"))
    msg = str(err.value)
    assert "2,147,483,648 bytes (Content-Length)" in msg
    assert "1 MB limit" in msg
    assert srv.sent("/oai") < STOPPED_EARLY


@pytest.mark.parametrize("chunked", [False, True], ids=["close-delimited", "chunked"])
def test_2gb_streamed_body_stops_at_the_cap(srv: MisbehavingServer, chunked: bool) -> None:
    srv.on("/oai", huge(2 * GB, advertise=False, chunked=chunked))
    with fetcher(timeout_seconds=30) as f, pytest.raises(PeerError) as err:
        f.get(srv.url("/oai"))
    assert "passed the 1 MB limit" in str(err.value)
    assert "stopped reading" in str(err.value)
    assert srv.sent("/oai") < STOPPED_EARLY


def test_a_lying_small_content_length_cannot_pass_the_cap(srv: MisbehavingServer) -> None:
    # Content-Length says 10 bytes: the client reads 10 and stops, whatever follows.
    srv.on("/oai", Reply(body=b"<x/>" + b" " * (4 * 1024 * 1024), length=10))
    with fetcher() as f:
        assert len(f.get(srv.url("/oai")).body) == 10


def test_down_peer(srv: MisbehavingServer) -> None:
    url = f"http://127.0.0.1:{closed_port()}/oai"
    with fetcher(max_retries=1) as f, pytest.raises(PeerError) as err:
        f.get(url, params={"verb": "Identify"})
    msg = str(err.value)
    assert f"peer '{PEER}': GET {url}?verb=Identify" in msg
    assert "nothing listens there, the peer is down" in msg
    assert "gave up after 2 attempts" in msg
