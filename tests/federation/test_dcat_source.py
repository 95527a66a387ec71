"""The DCAT catalog reader (node/federation/sources/dcat.py) against real HTTP servers on
loopback: catalogs it serves page by page (Hydra), FAIR Data Point-style listings, a page loop,
HTML instead of RDF, deletions and date filtering; and a real fairnode node's /catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Thread
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import Engine
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from node.catalog.db import open_catalog
from node.catalog.service import RecordService
from node.config import FederationSettings, parse_config
from node.federation.fetch import Fetcher
from node.federation.model import PeerError, RecordProblem, RemoteRecord
from node.federation.sources.dcat import ACCEPT, DCATReader
from node.records import DataAccess, Dataset, Lifecycle, Person, Provenance, Visibility

PEER = "cat-a"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
TTL_PREFIXES = """@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix hydra: <http://www.w3.org/ns/hydra/core#> .
@prefix ldp: <http://www.w3.org/ns/ldp#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""


# ----------------------------------------------------------------------------- the server


@dataclass
class StaticSite:
    """What a loopback server answers: path (with query) → (status, Content-Type, body); and
    every request it got (path with query, Accept)."""

    pages: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def add(self, path: str, body: str | bytes, content_type: str = "text/turtle") -> str:
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = (200, content_type, data.replace(b"{base}", self.url.encode()))
        return self.url + path

    @property
    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        query = unquote(req.query_string.decode())
        path = f"{req.path}?{query}" if query else req.path
        self.requests.append((path, req.headers.get("Accept", "")))
        status, ctype, body = self.pages.get(path, (404, "text/plain", b"not found"))
        return Response(body, status=status, content_type=ctype)(environ, start_response)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a free loopback port (werkzeug's threaded server); yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def site() -> Iterator[StaticSite]:
    s = StaticSite()
    with serving(s) as url:
        s.url = url
        yield s


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = Fetcher(FederationSettings(timeout_seconds=5, max_retries=0), peer_id=PEER)
    yield f
    f.close()


def read_all(reader: DCATReader, since: datetime | None = None) -> list[Any]:
    return list(reader.read(since))


def records(items: list[Any]) -> list[RemoteRecord]:
    return [i for i in items if isinstance(i, RemoteRecord) and not i.deleted]


def problems(items: list[Any]) -> list[RecordProblem]:
    return [i for i in items if isinstance(i, RecordProblem)]


def dataset_ttl(name: str, modified: datetime | None = T0, *, title: bool = True) -> str:
    """A dcat:Dataset at {base}/ds/<name>, as another catalog writes one."""
    lines = [f"<{{base}}/ds/{name}> a dcat:Dataset", f'dct:identifier "{name}"']
    if title:
        lines.append(f'dct:title "Dataset {name}"@en')
    if modified is not None:
        lines.append(f'dct:modified "{modified.isoformat()}"^^xsd:dateTime')
    lines.append(f"dcat:landingPage <https://landing.example/{name}>")
    return " ;\n  ".join(lines) + " .\n"


def hydra_page(path: str, names: list[str], next_path: str | None) -> str:
    """A catalog page at ``path`` with a hydra:PartialCollectionView."""
    body = TTL_PREFIXES + "<{base}/catalog> a dcat:Catalog, hydra:Collection ;\n"
    body += '  dct:title "A catalog" ;\n  hydra:view <{base}' + path + "> .\n"
    body += "<{base}" + path + "> a hydra:PartialCollectionView"
    if next_path:
        body += " ;\n  hydra:next <{base}" + next_path + ">"
    body += " .\n"
    for n in names:
        body += "<{base}/catalog> dcat:dataset <{base}/ds/" + n + "> .\n" + dataset_ttl(n)
    return body


def reader(fetcher: Fetcher, url: str, **kw: Any) -> DCATReader:
    kw.setdefault("max_pages", 50)
    return DCATReader(fetcher, url, peer_id=PEER, **kw)


# ----------------------------------------------------------------------------- paging


def test_hydra_paging_reads_every_page_once(site: StaticSite, fetcher: Fetcher) -> None:
    first = site.add("/catalog", hydra_page("/catalog", ["a1", "a2"], "/catalog?page=2"))
    site.add("/catalog?page=2", hydra_page("/catalog?page=2", ["b1", "b2"], "/catalog?page=3"))
    site.add("/catalog?page=3", hydra_page("/catalog?page=3", ["c1"], None))

    r = reader(fetcher, first)
    items = read_all(r)

    got = records(items)
    assert [x.remote_id for x in got] == [
        f"{site.url}/ds/{n}" for n in ["a1", "a2", "b1", "b2", "c1"]
    ]
    assert not problems(items)
    assert site.paths == ["/catalog", "/catalog?page=2", "/catalog?page=3"]
    assert {accept for _, accept in site.requests} == {ACCEPT}
    rec = got[0]
    assert rec.dataset is not None
    assert rec.dataset.title == "Dataset a1"
    assert rec.dataset.id == "a1"
    assert rec.dataset.provenance.origin_node == PEER
    assert rec.datestamp == T0 == rec.dataset.modified
    assert rec.source_record_url == "https://landing.example/a1"
    assert r.watermark is None  # a foreign catalog: no incremental reads


def test_legacy_hydra_paged_collection_in_rdf_xml(site: StaticSite, fetcher: Fetcher) -> None:
    """ckanext-dcat's paging: a hydra:PagedCollection whose hydra:nextPage is a literal."""

    def page(n: int, last: bool) -> str:
        nxt = "" if last else f"<hydra:nextPage>{{base}}/catalog.rdf?page={n + 1}</hydra:nextPage>"
        return f"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
  xmlns:dcat="http://www.w3.org/ns/dcat#" xmlns:dct="http://purl.org/dc/terms/"
  xmlns:hydra="http://www.w3.org/ns/hydra/core#">
  <hydra:PagedCollection rdf:about="{{base}}/catalog.rdf?page={n}">
    <hydra:itemsPerPage>1</hydra:itemsPerPage>{nxt}
  </hydra:PagedCollection>
  <dcat:Catalog rdf:about="{{base}}/catalog">
    <dcat:dataset>
      <dcat:Dataset rdf:about="{{base}}/dataset/p{n}">
        <dct:title>Page {n} dataset</dct:title>
        <dct:issued rdf:datatype="http://www.w3.org/2001/XMLSchema#date">2020-0{n}-01</dct:issued>
      </dcat:Dataset>
    </dcat:dataset>
  </dcat:Catalog>
</rdf:RDF>"""

    first = site.add("/catalog.rdf?page=1", page(1, False), "application/rdf+xml")
    site.add("/catalog.rdf?page=2", page(2, True), "application/rdf+xml")

    got = records(read_all(reader(fetcher, first)))

    assert [x.remote_id for x in got] == [f"{site.url}/dataset/p1", f"{site.url}/dataset/p2"]
    # No dct:modified: the issued date stands for it (stable from one read to the next).
    assert got[1].datestamp == datetime(2020, 2, 1, tzinfo=UTC) == got[1].dataset.modified


def test_json_ld_pages_with_relative_next(site: StaticSite, fetcher: Fetcher) -> None:
    def page(n: int, nxt: str | None) -> str:
        view = {"@id": f"?page={n}", "@type": "hydra:PartialCollectionView"}
        if nxt:
            view["hydra:next"] = {"@id": nxt}
        return json_doc(
            {
                "@context": {
                    "dcat": "http://www.w3.org/ns/dcat#",
                    "dct": "http://purl.org/dc/terms/",
                    "hydra": "http://www.w3.org/ns/hydra/core#",
                },
                "@graph": [
                    view,
                    {
                        "@id": f"/ds/j{n}",
                        "@type": "dcat:Dataset",
                        "dct:title": f"JSON dataset {n}",
                        "dct:modified": {"@value": f"2024-01-0{n}T00:00:00Z"},
                    },
                ],
            }
        )

    first = site.add("/jsonld?page=1", page(1, "?page=2"), "application/ld+json")
    site.add("/jsonld?page=2", page(2, None), "application/ld+json")

    got = records(read_all(reader(fetcher, first)))

    # Relative IRIs resolve against the page URL; a plain-literal date still dates the record.
    assert [x.remote_id for x in got] == [f"{site.url}/ds/j1", f"{site.url}/ds/j2"]
    assert got[1].datestamp == datetime(2024, 1, 2, tzinfo=UTC)


def json_doc(doc: Any) -> str:
    import json

    return json.dumps(doc)


def test_page_loop_is_a_peer_error(site: StaticSite, fetcher: Fetcher) -> None:
    first = site.add("/catalog", hydra_page("/catalog", ["a1"], "/catalog?page=2"))
    site.add("/catalog?page=2", hydra_page("/catalog?page=2", ["b1"], "/catalog"))

    with pytest.raises(PeerError, match=r"came round again after 2 pages: the Hydra paging loops"):
        read_all(reader(fetcher, first, known_remote_ids=["gone"]))
    assert site.paths == ["/catalog", "/catalog?page=2"]


def test_too_many_pages_is_a_peer_error(site: StaticSite, fetcher: Fetcher) -> None:
    first = site.add("/catalog", hydra_page("/catalog", ["a"], "/catalog?page=2"))
    for n in range(2, 6):
        site.add(
            f"/catalog?page={n}", hydra_page(f"/catalog?page={n}", [], f"/catalog?page={n + 1}")
        )

    with pytest.raises(PeerError, match=r"more than 3 pages \(at .*page=4\).*max_pages"):
        read_all(reader(fetcher, first, max_pages=3))


def test_next_page_on_another_host_is_not_followed(site: StaticSite, fetcher: Fetcher) -> None:
    body = hydra_page("/catalog", ["a1"], None).replace(
        "a hydra:PartialCollectionView",
        "a hydra:PartialCollectionView ; hydra:next <http://10.9.9.9/p2>",
    )
    url = site.add("/catalog", body)

    with pytest.raises(PeerError, match=r"next page on another host \(http://10.9.9.9/p2\)"):
        read_all(reader(fetcher, url))


def test_html_instead_of_rdf_names_the_content_type(site: StaticSite, fetcher: Fetcher) -> None:
    url = site.add("/catalog", "<!doctype html><title>Our catalog</title>", "text/html")

    with pytest.raises(PeerError, match=r"/catalog answered text/html, not RDF"):
        read_all(reader(fetcher, url))


def test_malformed_turtle_names_url_and_parser_error(site: StaticSite, fetcher: Fetcher) -> None:
    url = site.add("/catalog", "<{base}/x> a dcat:Dataset .")  # unbound prefix

    with pytest.raises(
        PeerError, match=r"/catalog: the text/turtle body could not be parsed: .*dcat"
    ):
        read_all(reader(fetcher, url))


def test_unmappable_dataset_is_a_problem_and_the_run_goes_on(
    site: StaticSite, fetcher: Fetcher
) -> None:
    body = TTL_PREFIXES + dataset_ttl("good") + dataset_ttl("untitled", title=False)
    url = site.add("/catalog", body)

    items = read_all(reader(fetcher, url, known_remote_ids=[f"{site.url}/ds/untitled"]))

    assert [x.remote_id for x in records(items)] == [f"{site.url}/ds/good"]
    [problem] = problems(items)
    assert problem.remote_id == f"{site.url}/ds/untitled"
    assert "has no dct:title" in problem.reason
    # Still in the catalog, only unreadable: not a deletion.
    assert not [i for i in items if isinstance(i, RemoteRecord) and i.deleted]


# ----------------------------------------------------------------------------- deletions, since


def test_deletions_come_at_the_end_of_a_full_read(site: StaticSite, fetcher: Fetcher) -> None:
    first = site.add("/catalog", hydra_page("/catalog", ["a1"], "/catalog?page=2"))
    site.add("/catalog?page=2", hydra_page("/catalog?page=2", ["b1"], None))
    known = [f"{site.url}/ds/a1", f"{site.url}/ds/gone-2", f"{site.url}/ds/gone-1"]

    before = datetime.now(UTC)
    items = read_all(reader(fetcher, first, known_remote_ids=known))

    assert [(i.remote_id, i.deleted) for i in items] == [
        (f"{site.url}/ds/a1", False),
        (f"{site.url}/ds/b1", False),
        (f"{site.url}/ds/gone-1", True),
        (f"{site.url}/ds/gone-2", True),
    ]
    assert items[-1].datestamp >= before  # the read time


def test_no_deletions_when_the_read_fails(site: StaticSite, fetcher: Fetcher) -> None:
    first = site.add("/catalog", hydra_page("/catalog", ["a1"], "/catalog?page=2"))  # 2: 404

    items = reader(fetcher, first, known_remote_ids=["http://x.test/gone"]).read(None)
    assert next(items).remote_id == f"{site.url}/ds/a1"
    with pytest.raises(PeerError, match=r"HTTP 404"):
        next(items)  # the second page: no deletions were yielded before it


def test_since_filters_on_our_side_and_still_finds_deletions(
    site: StaticSite, fetcher: Fetcher
) -> None:
    body = (
        TTL_PREFIXES
        + "".join(dataset_ttl(f"d{n}", T0 + timedelta(days=n)) for n in range(4))
        + dataset_ttl("undated", None)
    )
    url = site.add("/catalog", body)
    known = [f"{site.url}/ds/d0", f"{site.url}/ds/gone"]

    items = read_all(reader(fetcher, url, known_remote_ids=known), since=T0 + timedelta(days=2))

    assert [x.remote_id for x in records(items)] == [
        f"{site.url}/ds/d2",
        f"{site.url}/ds/d3",
        f"{site.url}/ds/undated",  # no date: dated by the read, so never missed
    ]
    assert [i.remote_id for i in items if i.deleted] == [f"{site.url}/ds/gone"]
    assert site.paths == ["/catalog"]  # a foreign catalog is not asked to filter


# ----------------------------------------------------------------------------- FDP listings


def test_listed_datasets_are_fetched_one_by_one(site: StaticSite, fetcher: Fetcher) -> None:
    """A FAIR Data Point: the root lists catalogs, each catalog lists dataset IRIs; every
    listed resource is fetched once; one on another host is reported, not fetched."""
    site.add(
        "/fdp",
        TTL_PREFIXES + '<{base}/fdp> a ldp:Container ; dct:title "FDP" ;\n'
        "  ldp:contains <{base}/catalog/one>, <{base}/catalog/two> .\n",
    )
    site.add(
        "/catalog/one",
        TTL_PREFIXES + '<{base}/catalog/one> a dcat:Catalog ; dct:title "One" ;\n'
        "  dcat:dataset <{base}/ds/x>, <{base}/ds/y>, <https://elsewhere.example/ds/z> .\n",
    )
    site.add(
        "/catalog/two",
        TTL_PREFIXES + '<{base}/catalog/two> a dcat:Catalog ; dct:title "Two" ;\n'
        "  dcat:dataset <{base}/ds/y>, <{base}/ds/missing> .\n",
    )
    site.add("/ds/x", TTL_PREFIXES + dataset_ttl("x"))
    site.add("/ds/y", TTL_PREFIXES + dataset_ttl("y"))

    items = read_all(reader(fetcher, f"{site.url}/fdp", known_remote_ids=["http://x/gone"]))

    assert sorted(x.remote_id for x in records(items)) == [f"{site.url}/ds/x", f"{site.url}/ds/y"]
    reasons = {p.remote_id: p.reason for p in problems(items)}
    assert set(reasons) == {"https://elsewhere.example/ds/z", f"{site.url}/ds/missing"}
    assert "another host than the catalog" in reasons["https://elsewhere.example/ds/z"]
    assert "HTTP 404" in reasons[f"{site.url}/ds/missing"]
    assert sorted(site.paths) == sorted(
        ["/fdp", "/catalog/one", "/catalog/two", "/ds/x", "/ds/y", "/ds/missing"]
    )
    # Part of the catalog could not be read: nothing may be inferred deleted.
    assert not [i for i in items if isinstance(i, RemoteRecord) and i.deleted]


# ----------------------------------------------------------------------------- a fairnode node


class _Later:
    """A WSGI app set after the server is up (the node's base_url needs the port)."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


def _record(n: int, **kw: Any) -> Dataset:
    values: dict[str, Any] = {
        "id": f"ds-{n:02d}",
        "identifier": f"ark:/99999/fk4dcat{n:02d}",
        "title": f"Spindle images {n}",
        "creators": [
            Person(name="Doe, Jane", orcid="0000-0002-1825-0097"),
            Person(name="Roe, Richard"),
        ],
        "license": "CC-BY-4.0",
        "modified": T0 + timedelta(hours=n),
        "issued": T0,
        "lifecycle": Lifecycle.published,
        "visibility": Visibility.public,
        "data_access": DataAccess.open,
        "provenance": Provenance(origin_node="node-src", source="microscopy"),
    }
    values.update(kw)
    return Dataset(**values)


@pytest.fixture
def fairnode(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, Dataset], Engine]]:
    """A real node on loopback: its /catalog serves 7 public records (and hides the rest)."""
    from node.app import create_app

    later = _Later()
    with serving(later) as base:
        config = parse_config(
            {
                "node": {
                    "id": "node-src",
                    "name": "Source node",
                    "base_url": base,
                    "data_dir": str(tmp_path / "data"),
                },
                "database": {"url": db_url},
            },
            env=False,
        )
        engine = open_catalog(config.database.url)
        try:
            service = RecordService(engine)
            public = {d.id: d for d in (_record(n) for n in range(1, 8))}
            hidden = [
                _record(20, lifecycle=Lifecycle.draft),
                _record(21, visibility=Visibility.private),
                _record(22, visibility=Visibility.institution),
            ]
            with service.sessions() as s, s.begin():
                for ds in [*public.values(), *hidden]:
                    service.save_dataset(s, ds, source="microscopy", folder=ds.id)
            later.app = create_app(config, engine=engine)
            yield base, public, engine
        finally:
            engine.dispose()


def test_reads_a_fairnode_catalog_in_small_pages(
    fairnode: tuple[str, dict[str, Dataset], Engine], fetcher: Fetcher
) -> None:
    base, public, _ = fairnode
    r = reader(
        fetcher,
        f"{base}/catalog?limit=2",
        supports_modified_since=True,
        known_remote_ids=[f"{base}/datasets/ds-withdrawn"],
    )

    items = read_all(r)

    assert not problems(items)
    got = records(items)
    assert sorted(x.remote_id for x in got) == sorted(f"{base}/datasets/{i}" for i in public)
    assert len(got) == len(public)  # each once, over 4 pages of 2
    for x in got:
        want = public[x.dataset.id]
        assert x.dataset.title == want.title
        assert x.dataset.identifier == want.identifier
        assert [p.name for p in x.dataset.creators] == ["Doe, Jane", "Roe, Richard"]
        assert x.dataset.creators[0].orcid == want.creators[0].orcid
        assert x.dataset.provenance.origin_node == "node-src"  # the publisher names it
        assert x.datestamp == want.modified
        assert x.source_record_url == x.remote_id  # the node's landing page is the IRI
    # A full read: the record that left the catalog is a deletion, at the end.
    assert items[-1].remote_id == f"{base}/datasets/ds-withdrawn"
    assert items[-1].deleted
    # The peer's clock (its Date header) at the first page.
    assert r.watermark is not None
    assert abs(r.watermark - datetime.now(UTC)) < timedelta(hours=1)


def test_fairnode_catalog_is_asked_for_changes_only(
    fairnode: tuple[str, dict[str, Dataset], Engine], fetcher: Fetcher
) -> None:
    base, public, _ = fairnode
    since = T0 + timedelta(hours=5)
    r = reader(
        fetcher,
        f"{base}/catalog?limit=2",
        supports_modified_since=True,
        known_remote_ids=[f"{base}/datasets/ds-01"],
    )

    items = read_all(r, since=since)

    assert sorted(x.dataset.id for x in records(items)) == ["ds-05", "ds-06", "ds-07"]
    # The peer filtered: absent records are unchanged, not deleted.
    assert not [i for i in items if i.deleted]
    assert r.watermark is not None


def test_modified_since_is_sent_only_to_a_fairnode_catalog(
    site: StaticSite, fetcher: Fetcher
) -> None:
    site.add("/catalog?modified_since=2024-05-01T08:00:00+00:00", TTL_PREFIXES + dataset_ttl("a"))
    r = reader(fetcher, f"{site.url}/catalog", supports_modified_since=True)

    got = records(read_all(r, since=T0))

    assert [x.remote_id for x in got] == [f"{site.url}/ds/a"]
    assert site.paths == ["/catalog?modified_since=2024-05-01T08:00:00+00:00"]
