"""OAIReader over real captured OAI-PMH responses (Zenodo, DSpace, an anonymised institutional
repository, arXiv), replayed by a loopback HTTP server: every record lands as a RemoteRecord
or is reported as a RecordProblem with a reason, counted against the capture.

The replay answers a request with the capture recorded for the same OAI request (verb,
metadataPrefix, set, the day of ``from``, resumptionToken), taken from the folder's
EXCHANGES.json when it has one, else from the ``<request>`` element the response echoes.
A resumption token whose page was never captured is answered ``noRecordsMatch`` (the
capture ends there); any other request without a capture gets a 404.

The local copies (tests/data/federation/oai, see ATTRIBUTION.md) always run; the whole shared
corpus (../shared/fixtures/oai-pmh) runs when it is present and is skipped cleanly otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from lxml import etree
from misbehaving import MisbehavingServer, Reply, Seen, oai_error

from node.config import FederationSettings
from node.federation.fetch import Fetcher
from node.federation.model import PeerError, RecordProblem, RemoteRecord
from node.federation.sources.oai import OAIReader, identify

LOCAL = Path(__file__).resolve().parents[1] / "data" / "federation" / "oai"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "oai-pmh"
needs_shared = pytest.mark.skipif(
    not (SHARED / "README.md").is_file(), reason=f"shared OAI-PMH captures absent ({SHARED})"
)
OAI = "http://www.openarchives.org/OAI/2.0/"
SETTINGS = FederationSettings(
    timeout_seconds=5, max_response_mb=4, max_retries=0, max_retry_after_seconds=5
)
MAPPED_PREFIXES = {"oai_dc", "datacite", "oai_datacite"}
PAYLOAD_PREFIX = {  # a page that does not echo its prefix (resumption pages): by its payload
    "{http://www.openarchives.org/OAI/2.0/oai_dc/}dc": "oai_dc",
    "{http://datacite.org/schema/kernel-4}resource": "datacite",
}


# --------------------------------------------------------------------------- the replay


@dataclass(frozen=True)
class Capture:
    file: Path
    params: dict[str, str]
    status: int = 200
    content_type: str = "text/xml; charset=utf-8"


def _echoed_request(path: Path) -> dict[str, str]:
    root = etree.parse(str(path)).getroot()
    req = root.find(f"{{{OAI}}}request")
    return dict(req.attrib) if req is not None else {}


def captures(folder: Path, *names: str) -> list[Capture]:
    """The captures of ``names`` in ``folder``, keyed by the request that produced them."""
    exchanges = {}
    if (folder / "EXCHANGES.json").is_file():
        exchanges = {e["file"]: e for e in json.loads((folder / "EXCHANGES.json").read_text())}
    out = []
    for name in names:
        path = folder / name
        if name in exchanges:
            e = exchanges[name]
            params = dict(parse_qsl(urlsplit(e["url"]).query))
            out.append(Capture(path, params, e["status"], e["content_type"]))
        else:
            out.append(Capture(path, _echoed_request(path)))
    return out


def _matches(captured: dict[str, str], asked: dict[str, str]) -> bool:
    for key in ("verb", "metadataPrefix", "set"):
        if captured.get(key) != asked.get(key):
            return False
    if (captured.get("from") or "")[:10] != (asked.get("from") or "")[:10]:
        return False
    token = captured.get("resumptionToken")
    if token is None or asked.get("resumptionToken") is None:
        return token == asked.get("resumptionToken")
    # The scythe authors shortened one captured request token: a prefix stands for it.
    return asked["resumptionToken"].startswith(token)


class Replay:
    """An answer function for MisbehavingServer serving ``captures`` (module docstring)."""

    def __init__(self, caps: list[Capture]):
        self.caps = caps
        self.served: list[str] = []

    def __call__(self, seen: Seen) -> Reply:
        for cap in self.caps:
            if _matches(cap.params, seen.params):
                self.served.append(cap.file.name)
                return Reply(cap.status, cap.file.read_bytes(), cap.content_type)
        if "resumptionToken" in seen.params:
            self.served.append("(end of capture)")
            return Reply(body=oai_error("noRecordsMatch", "the capture ends here"))
        return Reply(404, f"no capture for {seen.params}".encode(), "text/plain")


@pytest.fixture
def srv() -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as server:
        yield server


def serve(srv: MisbehavingServer, folder: Path, *names: str) -> Replay:
    replay = Replay(captures(folder, *names))
    srv.on("/oai", replay)
    return replay


def read(
    srv: MisbehavingServer, prefix: str, since: datetime | None = None, **kw: object
) -> tuple[list[RemoteRecord | RecordProblem], OAIReader]:
    with Fetcher(SETTINGS, peer_id="capture") as f:
        r = OAIReader(
            f, srv.url("/oai"), peer_id="capture", metadata_prefix=prefix, max_pages=50, **kw
        )
        return list(r.read(since)), r  # type: ignore[arg-type]


def records_in(path: Path) -> int:
    root = etree.parse(str(path)).getroot()
    return len(root.findall(f"{{{OAI}}}ListRecords/{{{OAI}}}record"))


def assert_accounted(got: list[RemoteRecord | RecordProblem], expected: int) -> None:
    """Every record of the capture came out once: landed, or reported with a reason."""
    assert len(got) == expected
    for g in got:
        if isinstance(g, RecordProblem):
            assert g.reason.strip(), g
        else:
            assert g.deleted or (g.dataset.title and g.dataset.provenance.origin_node), g


# --------------------------------------------------------------------------- local copies


def test_zenodo_resumption_chain(srv: MisbehavingServer) -> None:
    folder = LOCAL / "zenodo"
    pages = [
        "list-records_oai_dc_short-page.xml",
        "list-records_resumption_cursor50.xml",
        "list-records_resumption_last-page.xml",
    ]
    replay = serve(srv, folder, *pages)
    got, r = read(srv, "oai_dc")
    assert replay.served == pages  # each token led to the captured next page
    assert_accounted(got, sum(records_in(folder / p) for p in pages))
    landed = [g for g in got if isinstance(g, RemoteRecord)]
    assert len(landed) == len(got) == 9
    deleted = [g for g in landed if g.deleted]
    assert len(deleted) == 1  # the cursor50 page holds a deleted record
    first = next(g for g in landed if not g.deleted)
    assert first.remote_id.startswith("oai:zenodo.org:")
    assert first.dataset.identifier.startswith("10.5281/zenodo.")
    assert first.source_record_url == f"https://doi.org/{first.dataset.identifier}"
    assert first.dataset.provenance.origin_node == "capture"
    # The first page's responseDate, as Zenodo wrote it.
    page1 = etree.parse(str(folder / pages[0])).getroot()
    assert r.watermark == datetime.fromisoformat(page1.findtext(f"{{{OAI}}}responseDate"))


def test_zenodo_datacite(srv: MisbehavingServer) -> None:
    folder = LOCAL / "zenodo"
    replay = serve(srv, folder, "list-records_datacite.xml")
    got, _ = read(srv, "datacite")
    assert replay.served == ["list-records_datacite.xml", "(end of capture)"]
    assert_accounted(got, records_in(folder / "list-records_datacite.xml"))
    assert all(isinstance(g, RemoteRecord) for g in got), [
        g for g in got if isinstance(g, RecordProblem)
    ]
    with_creators = [g for g in got if g.dataset and g.dataset.creators]
    assert len(with_creators) == len(got)
    assert all(g.source_record_url.startswith("https://doi.org/10.") for g in got)


def test_zenodo_no_records_match_with_http_422(srv: MisbehavingServer) -> None:
    serve(srv, LOCAL / "zenodo", "identify.xml", "error_noRecordsMatch_list-records.xml")
    got, r = read(srv, "oai_dc", datetime(2030, 1, 1, tzinfo=UTC))
    assert got == []
    froms = [s.params.get("from") for s in srv.seen("/oai") if s.params["verb"] == "ListRecords"]
    assert froms == ["2030-01-01T00:00:00Z"]  # Zenodo says seconds granularity
    assert r.watermark is not None


def test_zenodo_auto_prefix_picks_oai_datacite(srv: MisbehavingServer) -> None:
    serve(srv, LOCAL / "zenodo", "list-metadata-formats.xml")
    with Fetcher(SETTINGS, peer_id="capture") as f:
        r = OAIReader(f, srv.url("/oai"), peer_id="capture", metadata_prefix="", max_pages=10)
        assert r.chosen_prefix() == "oai_datacite"


def test_zenodo_identify(srv: MisbehavingServer) -> None:
    serve(srv, LOCAL / "zenodo", "identify.xml")
    with Fetcher(SETTINGS, peer_id="capture") as f:
        info = identify(f, srv.url("/oai"))
    assert info["repositoryName"] == "Zenodo"
    assert info["granularity"] == "YYYY-MM-DDThh:mm:ssZ"


def test_dspace_erasmus_incremental(srv: MisbehavingServer) -> None:
    folder = LOCAL / "dspace-erasmus"
    serve(srv, folder, "identify.xml", "list-records_from-2003-04-10.xml")
    got, _ = read(srv, "oai_dc", datetime(2003, 4, 10, tzinfo=UTC))
    assert_accounted(got, 16)
    assert all(isinstance(g, RemoteRecord) for g in got)
    assert {g.source_record_url for g in got} >= {"http://hdl.handle.net/1765/308"}


def test_sickle_records_and_deletion(srv: MisbehavingServer) -> None:
    folder = LOCAL / "sickle-anonymised"
    serve(srv, folder, "ListRecords.xml")
    got, _ = read(srv, "oai_dc")
    assert_accounted(got, records_in(folder / "ListRecords.xml"))
    assert [g.deleted for g in got if isinstance(g, RemoteRecord)].count(True) == 1


def test_sickle_edited_header_without_identifier_is_reported(srv: MisbehavingServer) -> None:
    folder = LOCAL / "sickle-anonymised"
    serve(srv, folder, "ListRecords4.xml")
    got, _ = read(srv, "oai_dc")
    assert_accounted(got, records_in(folder / "ListRecords4.xml"))
    assert RecordProblem(None, "a record without a header identifier") in got


def test_sickle_broken_page_fails_with_the_parser_position(srv: MisbehavingServer) -> None:
    srv.on("/oai", Reply(body=(LOCAL / "sickle-anonymised" / "ListRecordsBroken.xml").read_bytes()))
    with pytest.raises(PeerError, match="not XML|malformed XML"):
        read(srv, "oai_dc")


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("cannotDisseminateFormat.xml", "ListRecords with cannotDisseminateFormat"),
        ("noRecordsMatch.xml", None),
    ],
)
def test_sickle_error_answers(srv: MisbehavingServer, name: str, outcome: str | None) -> None:
    srv.on("/oai", Reply(body=(LOCAL / "sickle-anonymised" / name).read_bytes()))
    if outcome is None:
        assert read(srv, "oai_dc")[0] == []
    else:
        with pytest.raises(PeerError, match=outcome):
            read(srv, "oai_dc")


@needs_shared
def test_local_copies_are_the_shared_captures() -> None:
    for path in LOCAL.rglob("*.xml"):
        assert path.read_bytes() == (SHARED / path.relative_to(LOCAL)).read_bytes(), path


# --------------------------------------------------------------------------- the shared corpus


def _parse_results() -> dict[str, int]:
    """``records=N`` per file, from the corpus's PARSE_RESULTS.tsv."""
    out = {}
    for line in (SHARED / "PARSE_RESULTS.tsv").read_text().splitlines()[1:]:
        name, _status, _size, result = line.split("\t", 3)
        if m := re.search(r"records=(\d+)", result):
            out[name] = int(m.group(1))
    return out


def _list_records_files() -> list[str]:
    if not SHARED.is_dir():
        return []
    out = []
    for path in sorted(SHARED.rglob("*.xml")):
        try:
            root = etree.parse(str(path)).getroot()
        except etree.XMLSyntaxError:
            continue  # the deliberately broken ones are tested on their own
        if root.find(f"{{{OAI}}}ListRecords") is not None:
            out.append(str(path.relative_to(SHARED)))
    return out


def _prefix_of(path: Path) -> str:
    root = etree.parse(str(path)).getroot()
    prefix = root.find(f"{{{OAI}}}request").get("metadataPrefix")
    if prefix:
        return prefix
    payload = root.find(f"{{{OAI}}}ListRecords/{{{OAI}}}record/{{{OAI}}}metadata/*")
    return PAYLOAD_PREFIX.get(payload.tag, "?") if payload is not None else "?"


@needs_shared
@pytest.mark.parametrize("name", _list_records_files() or ["(absent)"])
def test_every_shared_list_records_capture(srv: MisbehavingServer, name: str) -> None:
    """Each ListRecords capture served alone: every record accounted for (counted by
    PARSE_RESULTS.tsv), or, for a format the node cannot map, the run refused with why."""
    path = SHARED / name
    prefix = _prefix_of(path)
    srv.on(
        "/oai",
        lambda seen: (
            Reply(body=oai_error("noRecordsMatch", "the capture ends here"))
            if "resumptionToken" in seen.params
            else Reply(body=path.read_bytes())
        ),
    )
    if prefix not in MAPPED_PREFIXES:
        with pytest.raises(PeerError, match=f"metadata format '{prefix}' cannot be mapped"):
            read(srv, prefix)
        return
    got, _ = read(srv, prefix)
    assert_accounted(got, _parse_results()[name])


@needs_shared
def test_shared_listing_found_the_corpus() -> None:
    # Guards the parametrisation above against silently finding nothing.
    names = _list_records_files()
    assert "dspace-erasmus/list-records_from-2003-04-10.xml" in names
    assert "zenodo/list-records_oai_dc_from.xml" in names
    assert len(names) >= 10


@needs_shared
def test_zenodo_from_and_set_captures(srv: MisbehavingServer) -> None:
    folder = SHARED / "zenodo"
    serve(
        srv,
        folder,
        "identify.xml",
        "list-records_oai_dc_from.xml",
        "list-records_oai_dc_set-software.xml",
    )
    got, _ = read(srv, "oai_dc", datetime(2026, 4, 1, 8, 30, tzinfo=UTC))
    assert_accounted(got, records_in(folder / "list-records_oai_dc_from.xml"))
    got, _ = read(srv, "oai_dc", set_spec="software")
    assert_accounted(got, records_in(folder / "list-records_oai_dc_set-software.xml"))


@needs_shared
def test_arxiv_503_asking_for_more_than_allowed(srv: MisbehavingServer) -> None:
    exchange = json.loads(
        (SHARED / "arxiv" / "list-records_503-retry-after.exchange.json").read_text()
    )
    headers = {k: v for k, v in exchange["headers"].items() if k == "Retry-After"}
    srv.on(
        "/oai",
        Reply(
            exchange["status"],
            exchange["body"].encode(),
            exchange["headers"]["Content-Type"],
            headers,
        ),
    )
    with pytest.raises(PeerError, match="the peer asked to wait 10 s"):
        read(srv, "oai_dc")


@needs_shared
def test_arxiv_day_granularity_from(srv: MisbehavingServer) -> None:
    folder = SHARED / "arxiv"
    srv.on(
        "/oai",
        lambda seen: Reply(
            body=(
                folder
                / (
                    "identify.xml"
                    if seen.params["verb"] == "Identify"
                    else "error_noRecordsMatch_list-records.xml"
                )
            ).read_bytes()
        ),
    )
    got, _ = read(srv, "oai_dc", datetime(2015, 1, 1, 23, 0, tzinfo=UTC))
    assert got == []  # arXiv's own noRecordsMatch
    lists = [s.params for s in srv.seen("/oai") if s.params["verb"] == "ListRecords"]
    assert lists[0]["from"] == "2015-01-01"  # arXiv's Identify says days


@needs_shared
def test_edited_bogus_identify_is_malformed(srv: MisbehavingServer) -> None:
    body = (SHARED / "dspace-erasmus" / "variant_identify_bogus-wrapper.xml").read_bytes()
    srv.on("/oai", Reply(body=body))
    with (
        Fetcher(SETTINGS, peer_id="capture") as f,
        pytest.raises(PeerError, match=r"malformed XML .*Opening and ending tag mismatch.*column"),
    ):
        identify(f, srv.url("/oai"))
