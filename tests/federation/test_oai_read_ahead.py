"""The OAI reader fetches and maps pages ahead of its caller, in threads: the caller still sees
the records in order, a failure after the records read before it, and a caller that stops early
leaves no thread (or request) running behind it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import islice

import pytest
from misbehaving import (
    MisbehavingServer,
    Reply,
    Seen,
    dc_metadata,
    endless_tokens,
    oai_page,
    oai_record,
)

from node.config import FederationSettings
from node.federation.fetch import Fetcher
from node.federation.model import PeerError, RemoteRecord
from node.federation.sources.oai import OAIReader, run_ahead

SETTINGS = FederationSettings(timeout_seconds=5, max_response_mb=1, max_retries=0)


def _threads(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def test_items_arrive_in_order_then_the_error() -> None:
    def items() -> Iterator[int]:
        yield from range(5)
        raise PeerError("the list went wrong after five")

    got: list[int] = []

    def consume() -> None:
        for i in run_ahead(items(), 2, "t-order"):
            got.append(i)

    with pytest.raises(PeerError, match="after five"):
        consume()
    assert got == [0, 1, 2, 3, 4]
    assert _threads("t-order") == []


def test_a_consumer_that_stops_early_stops_the_producer() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    ahead = run_ahead(endless(), 2, "t-endless")
    assert list(islice(ahead, 3)) == [0, 1, 2]
    ahead.close()
    assert closed.is_set()  # the producer's generator was closed, in its thread
    assert _threads("t-endless") == []


def test_a_reader_stopped_early_stops_fetching() -> None:
    """An ingest that fails on the first record (a lost lease, a database error) ends the read:
    the fetching thread stops after the pages it had read ahead, and ends."""
    with MisbehavingServer() as srv:
        srv.on("/oai", endless_tokens)
        with Fetcher(SETTINGS, peer_id="repo-x") as fetcher:
            reader = OAIReader(
                fetcher,
                srv.url("/oai"),
                peer_id="repo-x",
                metadata_prefix="oai_dc",
                max_pages=1000,
            )
            records = reader.read(None)
            first = next(records)
            assert isinstance(first, RemoteRecord)
            assert first.remote_id == "oai:peer.test:ds-0"
            records.close()
            assert _threads("oai-repo-x") == []
            fetched = len(srv.seen("/oai"))
        # a page being read, one mapped, one fetched, and one waiting to be handed over
        assert fetched <= 6
        assert reader.watermark is not None


def test_pages_keep_their_order_and_the_watermark_is_the_first_page() -> None:
    def pages(seen: Seen) -> Reply:  # five pages of two records, tokens t1..t4
        n = int(seen.params.get("resumptionToken", "t0").removeprefix("t"))
        recs = [
            oai_record(f"oai:peer.test:ds-{2 * n + i}", metadata=dc_metadata(f"ds-{2 * n + i}"))
            for i in range(2)
        ]
        return Reply(body=oai_page(recs, f"t{n + 1}" if n < 4 else None))

    with MisbehavingServer() as srv:
        srv.on("/oai", pages)
        with Fetcher(SETTINGS, peer_id="repo-y") as fetcher:
            reader = OAIReader(
                fetcher, srv.url("/oai"), peer_id="repo-y", metadata_prefix="oai_dc", max_pages=10
            )
            got = list(reader.read(None))
    assert [r.remote_id for r in got] == [f"oai:peer.test:ds-{i}" for i in range(10)]
    assert reader.pages == 5
    assert reader.watermark is not None
