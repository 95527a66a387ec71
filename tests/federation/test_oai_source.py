"""OAIReader against real HTTP servers on loopback: the misbehaving server (every way an
OAI-PMH peer goes wrong) and the node's own Flask app serving a real catalog over werkzeug
(every public record arrives once, mapped, in dcat_ap, oai_datacite and oai_dc)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from threading import Thread

import pytest
from flask import Flask
from misbehaving import (
    MisbehavingServer,
    OAIRepository,
    Reply,
    dc_metadata,
    endless_tokens,
    formats_page,
    html_page,
    huge,
    identify_page,
    oai_error,
    oai_page,
    oai_record,
    repeating_token,
)
from werkzeug.serving import make_server

from node.config import FederationSettings
from node.federation.fetch import Fetcher
from node.federation.model import PeerError, RecordProblem, RemoteRecord
from node.federation.sources.oai import OAIReader, identify
from node.oai.views import PAGE_SIZE_SETTING
from node.records import DataAccess, Lifecycle, Person, Visibility

PEER = "repo-x"
SETTINGS = FederationSettings(
    timeout_seconds=5, max_response_mb=1, max_retries=1, max_retry_after_seconds=5
)
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def srv() -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as server:
        yield server


def reader(
    srv_or_url: MisbehavingServer | str,
    *,
    prefix: str = "oai_dc",
    max_pages: int = 100,
    token: str | None = None,
    set_spec: str | None = None,
    peer_id: str = PEER,
) -> OAIReader:
    url = srv_or_url if isinstance(srv_or_url, str) else srv_or_url.url("/oai")
    fetcher = Fetcher(SETTINGS, peer_id=peer_id, token=token)
    return OAIReader(
        fetcher,
        url,
        peer_id=peer_id,
        metadata_prefix=prefix,
        set_spec=set_spec,
        max_pages=max_pages,
    )


def read_all(r: OAIReader, since: datetime | None = None) -> list[RemoteRecord | RecordProblem]:
    try:
        return list(r.read(since))
    finally:
        r.fetcher.close()


def fails(r: OAIReader, since: datetime | None = None) -> str:
    with pytest.raises(PeerError) as err:
        read_all(r, since)
    msg = str(err.value)
    assert f"peer '{r.peer_id}'" in msg  # every message names the peer
    return msg


def rec(n: int, **kw: object) -> str:
    return oai_record(f"oai:peer.test:ds-{n}", metadata=dc_metadata(f"ds-{n}", f"Title {n}"), **kw)


# --------------------------------------------------------------------------- the protocol


def test_pages_deletions_problems_from_and_watermark(srv: MisbehavingServer) -> None:
    bad = oai_record("oai:peer.test:ds-bad", metadata=dc_metadata("ds-bad", title=None))
    gone = oai_record("oai:peer.test:ds-gone", "2024-04-02T00:00:00Z", deleted=True)
    srv.on(
        "/oai",
        OAIRepository(
            [[rec(1), rec(2)], [bad, rec(3)], [gone]],
            response_dates=["2024-05-01T10:00:00Z", "2024-05-01T10:00:07Z", "2024-05-01T10:00:09Z"],
        ),
    )
    r = reader(srv)
    since = datetime(2024, 4, 1, 14, 30, 15, 999, tzinfo=timezone(timedelta(hours=2)))
    got = read_all(r, since)

    records = [g for g in got if isinstance(g, RemoteRecord)]
    problems = [g for g in got if isinstance(g, RecordProblem)]
    assert [g.remote_id for g in records] == [
        "oai:peer.test:ds-1",
        "oai:peer.test:ds-2",
        "oai:peer.test:ds-3",
        "oai:peer.test:ds-gone",
    ]
    assert [g.dataset.title for g in records[:3]] == ["Title 1", "Title 2", "Title 3"]
    assert {g.dataset.provenance.origin_node for g in records[:3]} == {PEER}
    assert records[0].source_record_url == "https://peer.test/datasets/ds-1"
    assert records[0].visibility is Visibility.public
    assert records[0].datestamp == datetime(2024, 4, 1, tzinfo=UTC)
    assert records[3].deleted
    assert records[3].datestamp == datetime(2024, 4, 2, tzinfo=UTC)
    assert problems == [RecordProblem("oai:peer.test:ds-bad", "oai_dc: oai_dc XML: no dc:title")]

    lists = [s.params for s in srv.seen("/oai") if s.params.get("verb") == "ListRecords"]
    # from: the instant in UTC, seconds granularity; then only tokens.
    assert lists == [
        {"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2024-04-01T12:30:15Z"},
        {"verb": "ListRecords", "resumptionToken": "t1"},
        {"verb": "ListRecords", "resumptionToken": "t2"},
    ]
    assert r.watermark == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)  # the first page's
    assert r.pages == 3


def test_day_granularity_sends_a_date(srv: MisbehavingServer) -> None:
    srv.on("/oai", OAIRepository([[rec(1)]], granularity="YYYY-MM-DD"))
    read_all(reader(srv), datetime(2024, 4, 1, 23, 59, 59, tzinfo=UTC))
    (lst,) = [s.params for s in srv.seen("/oai") if s.params.get("verb") == "ListRecords"]
    assert lst["from"] == "2024-04-01"


def test_full_read_sends_no_from_and_no_identify(srv: MisbehavingServer) -> None:
    srv.on("/oai", OAIRepository([[rec(1)]]))
    got = read_all(reader(srv, set_spec="openaire"))
    assert len(got) == 1
    assert [s.params for s in srv.seen("/oai")] == [
        {"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "openaire"}
    ]


def test_bearer_token_is_sent_on_every_page(srv: MisbehavingServer) -> None:
    srv.on("/oai", OAIRepository([[rec(1)], [rec(2)]]))
    read_all(reader(srv, token="fed-token"))
    assert [s.headers["Authorization"] for s in srv.seen("/oai")] == ["Bearer fed-token"] * 2


def test_visibility_comes_from_the_visibility_set(srv: MisbehavingServer) -> None:
    srv.on(
        "/oai",
        OAIRepository(
            [
                [
                    rec(1, set_specs=["origin:inst-a", "visibility:federation"]),
                    rec(2, set_specs=["visibility:public"]),
                    rec(3, set_specs=["visibility:secret"]),
                ]
            ]
        ),
    )
    a, b, c = read_all(reader(srv))
    assert a.visibility is Visibility.federation
    assert b.visibility is Visibility.public
    assert isinstance(c, RecordProblem)
    assert c.remote_id == "oai:peer.test:ds-3"
    assert "unknown visibility" in c.reason


def test_no_records_match_is_an_empty_list(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(body=oai_error("noRecordsMatch", "nothing changed")))
    r = reader(srv)
    assert read_all(r) == []
    assert r.watermark == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_no_records_match_with_http_422_like_zenodo(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(422, oai_error("noRecordsMatch")))
    assert read_all(reader(srv)) == []


def test_other_oai_errors_fail_with_code_and_text(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(body=oai_error("cannotDisseminateFormat", "no oai_dc here")))
    msg = fails(reader(srv))
    assert "ListRecords with cannotDisseminateFormat: no oai_dc here" in msg


def test_bad_resumption_token_mid_list_fails(srv: MisbehavingServer) -> None:
    srv.on(
        "/oai",
        Reply(body=oai_page([rec(1)], "t1")),
        Reply(422, oai_error("badResumptionToken", "expired")),
    )
    r = reader(srv)
    got: list[object] = []
    with pytest.raises(PeerError, match="badResumptionToken: expired"):
        got.extend(r.read(None))
    assert len(got) == 1  # what came before the failure was yielded


def test_empty_token_with_attributes_ends_the_list(srv: MisbehavingServer) -> None:
    srv.on(
        "/oai",
        Reply(body=oai_page([rec(1)], "t1")),
        Reply(body=oai_page([rec(2)], "", token_attrs=' completeListSize="2" cursor="1"')),
    )
    assert len(read_all(reader(srv))) == 2
    assert len(srv.seen("/oai")) == 2


def test_retry_after_mid_list_is_honoured(srv: MisbehavingServer) -> None:
    srv.on(
        "/oai",
        Reply(body=oai_page([rec(1)], "t1")),
        Reply(503, b"", headers={"Retry-After": "1"}),
        Reply(body=oai_page([rec(2)])),
    )
    assert len(read_all(reader(srv))) == 2
    assert [s.params.get("resumptionToken") for s in srv.seen("/oai")] == [None, "t1", "t1"]


# --------------------------------------------------------------------------- misbehaviours


def test_endless_resumption_tokens_stop_at_max_pages(srv: MisbehavingServer) -> None:
    srv.on("/oai", endless_tokens)
    msg = fails(reader(srv, max_pages=5))
    assert "endless resumption tokens" in msg
    assert "after 5 pages" in msg
    assert len(srv.seen("/oai")) == 5


def test_repeating_resumption_token_fails(srv: MisbehavingServer) -> None:
    srv.on("/oai", repeating_token)
    msg = fails(reader(srv))
    assert "repeating resumption token 'again'" in msg
    assert len(srv.seen("/oai")) == 2


def test_html_instead_of_xml(srv: MisbehavingServer) -> None:
    srv.on("/oai", html_page("Maintenance until 14:00"))
    msg = fails(reader(srv))
    assert srv.url("/oai") in msg
    assert "got an HTML page" in msg
    assert "Content-Type: text/html" in msg
    assert "'Maintenance until 14:00'" in msg


def test_html_404_says_so(srv: MisbehavingServer) -> None:
    srv.on("/oai", html_page("Page not found", status=404))
    msg = fails(reader(srv))
    assert "HTTP 404" in msg
    assert "'Page not found'" in msg


def test_json_instead_of_xml(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(body=b'{"error": "no"}', content_type="application/json"))
    msg = fails(reader(srv))
    assert 'not XML (Content-Type: application/json, starting \'{"error": "no"}\')' in msg


def test_xml_that_is_not_oai_pmh(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(body=b"<rss version='2.0'><channel/></rss>"))
    assert "not an OAI-PMH response: the root element is 'rss'" in fails(reader(srv))


def test_malformed_xml_names_line_and_column(srv: MisbehavingServer) -> None:
    body = oai_page([rec(1)]).replace(b"</record>", b"</recrod>")
    srv.on("/oai", Reply(body=body))
    msg = fails(reader(srv))
    assert "malformed XML" in msg
    assert "Opening and ending tag mismatch: record" in msg
    assert "line 2, column" in msg


def test_truncated_page_is_malformed_not_silently_shorter(srv: MisbehavingServer) -> None:
    body = oai_page([rec(1), rec(2), rec(3)])
    srv.on("/oai", Reply(body=body[: len(body) // 2]))
    assert "malformed XML" in fails(reader(srv))


def test_a_page_declaring_a_dtd_is_refused(srv: MisbehavingServer) -> None:
    body = oai_page([rec(1)]).replace(
        b"\n<OAI-PMH", b'\n<!DOCTYPE OAI-PMH [<!ENTITY x "boom">]>\n<OAI-PMH', 1
    )
    srv.on("/oai", Reply(body=body))
    assert "refused, it declares a DTD" in fails(reader(srv))


def test_bytes_that_do_not_match_the_declared_encoding(srv: MisbehavingServer) -> None:
    # Declared UTF-8, written in Latin-1.
    page = oai_page(
        [rec(1), oai_record("oai:peer.test:ds-2", metadata=dc_metadata("ds-2", "Café"))]
    )
    body = page.decode("utf-8").encode("latin-1")
    srv.on("/oai", Reply(body=body))
    msg = fails(reader(srv))
    assert "the bytes do not match the encoding the document declares (UTF-8)" in msg
    assert "line 2, column" in msg


def test_utf16_declared_over_utf8_bytes(srv: MisbehavingServer) -> None:
    body = oai_page([rec(1)]).replace(b'encoding="UTF-8"', b'encoding="UTF-16"')
    srv.on("/oai", Reply(body=body))
    assert "do not match the encoding the document declares (UTF-16)" in fails(reader(srv))


def test_declared_latin1_is_read_right(srv: MisbehavingServer) -> None:
    page = oai_page([oai_record("oai:peer.test:ds-1", metadata=dc_metadata("ds-1", "Café"))])
    body = page.decode().replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")
    srv.on("/oai", Reply(body=body, content_type="text/xml; charset=utf-8"))  # a stale header
    (got,) = read_all(reader(srv))
    assert got.dataset.title == "Café"


def test_header_charset_is_used_when_the_document_declares_none(srv: MisbehavingServer) -> None:
    page = oai_page([oai_record("oai:peer.test:ds-1", metadata=dc_metadata("ds-1", "Café"))])
    body = page.decode().replace('<?xml version="1.0" encoding="UTF-8"?>\n', "").encode("latin-1")
    srv.on("/oai", Reply(body=body, content_type="text/xml; charset=ISO-8859-1"))
    (got,) = read_all(reader(srv))
    assert got.dataset.title == "Café"


def test_huge_page_stops_at_the_cap(srv: MisbehavingServer) -> None:
    srv.on("/oai", huge(advertise=False))
    assert "passed the 1 MB limit" in fails(reader(srv))


def test_record_without_metadata_is_a_problem(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(body=oai_page([oai_record("oai:peer.test:x"), rec(1)])))
    problem, good = read_all(reader(srv))
    assert problem == RecordProblem(
        "oai:peer.test:x", "oai_dc: the record has no metadata (and is not marked deleted)"
    )
    assert good.dataset.title == "Title 1"


# --------------------------------------------------------------------------- formats, Identify


def test_auto_prefix_prefers_oai_datacite(srv: MisbehavingServer) -> None:
    srv.on("/oai", OAIRepository([[]], formats=("oai_dc", "marc21", "oai_datacite")))
    r = reader(srv, prefix="")
    read_all(r)
    assert r.metadata_prefix == "oai_datacite"
    assert srv.seen("/oai")[0].params == {"verb": "ListMetadataFormats"}
    assert srv.seen("/oai")[1].params["metadataPrefix"] == "oai_datacite"


def test_auto_prefix_falls_back_to_oai_dc(srv: MisbehavingServer) -> None:
    srv.on("/oai", OAIRepository([[rec(1)]], formats=("marc21", "oai_dc")))
    r = reader(srv, prefix="")
    assert len(read_all(r)) == 1
    assert r.metadata_prefix == "oai_dc"


def test_auto_prefix_without_a_usable_format_fails(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(body=formats_page("marc21", "mods")))
    msg = fails(reader(srv, prefix=""))
    assert "offers none of oai_datacite, oai_dc (it offers: marc21, mods)" in msg


def test_unmappable_configured_prefix_fails(srv: MisbehavingServer) -> None:
    assert "metadata format 'marc21' cannot be mapped" in fails(reader(srv, prefix="marc21"))


def test_identify(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(body=identify_page("YYYY-MM-DD", name="Arca")))
    with Fetcher(SETTINGS, peer_id=PEER) as f:
        info = identify(f, srv.url("/oai"))
    assert info["repositoryName"] == "Arca"
    assert info["granularity"] == "YYYY-MM-DD"
    assert info["earliestDatestamp"] == "2001-01-01"


def test_identify_of_an_html_page_fails(srv: MisbehavingServer) -> None:
    srv.on("/oai", html_page("Login"))
    with Fetcher(SETTINGS, peer_id=PEER) as f, pytest.raises(PeerError, match="HTML page"):
        identify(f, srv.url("/oai"))


# --------------------------------------------------------------------------- a real fairnode


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """The app on a free loopback port (werkzeug's threaded server); yields the /oai URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/oai"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


PUBLIC = {
    "ds-1": {"identifier": "10.5281/zenodo.1234567"},
    "ds-2": {"identifier": "ark:/99999/fk4ds2"},
    "ds-3": {},
    "ds-4": {"data_access": DataAccess.restricted},
    "ds-5": {},
}


@pytest.fixture
def fairnode_oai(app: Flask, catalog) -> Iterator[str]:
    """The node's app (OAI pages of 2 records) over a real catalog: five public published
    records, one public withdrawn, and a private, a federation and a draft one."""
    for n, (ds_id, extra) in enumerate(PUBLIC.items()):
        catalog.add(
            catalog.dataset(
                ds_id,
                f"Confocal stacks {ds_id}",
                modified=T0 + timedelta(hours=n),
                creators=[Person(name="Doe, Jane", orcid="0000-0002-1825-0097")],
                license="CC-BY-4.0",
                **extra,
            )
        )
    catalog.add(
        catalog.dataset(
            "ds-gone",
            lifecycle=Lifecycle.withdrawn,
            withdrawn_reason="duplicate",
            modified=T0 + timedelta(days=1),
        )
    )
    catalog.add(catalog.dataset("ds-private", visibility=Visibility.private))
    catalog.add(catalog.dataset("ds-fed", visibility=Visibility.federation))
    catalog.add(catalog.dataset("ds-draft", lifecycle=Lifecycle.draft))
    app.config[PAGE_SIZE_SETTING] = 2
    with live_server(app) as url:
        yield url


@pytest.mark.parametrize("prefix", ["fairnode", "dcat_ap", "oai_datacite", "oai_dc"])
def test_reads_a_real_fairnode(fairnode_oai: str, prefix: str) -> None:
    r = reader(fairnode_oai, prefix=prefix, peer_id="test-node-peer")
    got = read_all(r)
    assert all(isinstance(g, RemoteRecord) for g in got), got
    by_id = {g.remote_id: g for g in got}
    assert len(by_id) == len(got)  # each once
    assert set(by_id) == {f"oai:node.test:{i}" for i in [*PUBLIC, "ds-gone"]}
    assert by_id["oai:node.test:ds-gone"].deleted
    assert r.pages == 3  # 6 records, 2 a page
    for ds_id in PUBLIC:
        g = by_id[f"oai:node.test:{ds_id}"]
        assert g.dataset.id == ds_id
        assert g.dataset.title == f"Confocal stacks {ds_id}"
        assert g.visibility is Visibility.public
        assert [p.name for p in g.dataset.creators] == ["Doe, Jane"]
        assert g.harvested_via == ()
    assert by_id["oai:node.test:ds-1"].dataset.identifier == "10.5281/zenodo.1234567"
    assert by_id["oai:node.test:ds-2"].dataset.identifier == "ark:/99999/fk4ds2"
    origin = {g.dataset.provenance.origin_node for g in got if g.dataset}
    if prefix == "fairnode":
        # The native record: every field, the origin node it names, its landing page there.
        assert origin == {"test-node"}
        base = fairnode_oai.removesuffix("/oai")
        assert by_id["oai:node.test:ds-3"].source_record_url == f"{base}/datasets/ds-3"
        assert by_id["oai:node.test:ds-4"].dataset.data_access is DataAccess.restricted
        assert by_id["oai:node.test:ds-4"].dataset.lifecycle is Lifecycle.published
    elif prefix == "dcat_ap":
        # A fairnode peer names the node each record was born on.
        assert origin == {"test-node"}
        assert by_id["oai:node.test:ds-3"].source_record_url == "http://node.test/datasets/ds-3"
        assert by_id["oai:node.test:ds-4"].dataset.data_access is DataAccess.restricted
    else:
        assert origin == {"test-node-peer"}
        assert by_id["oai:node.test:ds-1"].source_record_url == (
            "https://doi.org/10.5281/zenodo.1234567"
        )
    assert r.watermark is not None
    assert abs(r.watermark - datetime.now(UTC)) < timedelta(hours=1)


@pytest.mark.parametrize("prefix", ["fairnode", "dcat_ap"])
def test_incremental_read_of_a_real_fairnode(fairnode_oai: str, prefix: str) -> None:
    got = read_all(reader(fairnode_oai, prefix=prefix), T0 + timedelta(hours=3))
    assert sorted(g.remote_id for g in got) == [
        "oai:node.test:ds-4",
        "oai:node.test:ds-5",
        "oai:node.test:ds-gone",
    ]


def test_identify_a_real_fairnode(fairnode_oai: str) -> None:
    with Fetcher(SETTINGS, peer_id=PEER) as f:
        info = identify(f, fairnode_oai)
    assert info["granularity"] == "YYYY-MM-DDThh:mm:ssZ"
    assert info["repositoryName"] == "Test Imaging Node"
