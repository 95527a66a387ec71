"""The DCAT catalog reader: a FAIR Data Point, a CKAN (ckanext-dcat), any DCAT-AP catalog, or
a fairnode node's own ``/catalog``, in Turtle, JSON-LD, RDF/XML or N-Triples.

A catalog is read page by page: Hydra paging (``hydra:next`` on a ``hydra:PartialCollectionView``,
or the older ``hydra:nextPage`` of a ``hydra:PagedCollection``, which ckanext-dcat writes as a
literal). A FAIR Data Point does not describe its datasets in the catalog: it lists them
(``ldp:contains``, ``dcat:dataset``, ``fdp-o:metadataCatalog``) and serves each at its own IRI, so
a listed resource the page does not describe is fetched, once (catalogs found that way are
followed to their datasets too).

DCAT has no deletions: a dataset that was in the previous full read (``known_remote_ids``) and is
not in this one has gone, and is yielded as a deletion at the end, but only when the whole
catalog was read (no page or listed resource failed) and the catalog was not filtered by date on
the peer's side.

What one page's graph says (paging, datasets, listed members) is read by
``node.linkeddata.dcat_catalog.CatalogPage``, which keeps rdflib inside ``node/linkeddata``; this
module turns it into the harvest's terms (``parse_page``, ``next_page`` and ``map_dataset`` raise
or return PeerError, RemoteRecord and RecordProblem), and ``DCATReader`` wires it to a
``Fetcher``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from node.linkeddata.dcat_catalog import CatalogDataset, CatalogPage, CatalogPageError
from node.linkeddata.mediatypes import RDF_MEDIA_TYPES
from node.records import Dataset

from ..model import PeerError, RecordProblem, RemoteRecord

if TYPE_CHECKING:
    from ..fetch import Fetched, Fetcher

# What we ask for, best first. N-Triples is Turtle's subset, accepted when it is what we get.
ACCEPT = (
    "text/turtle, application/ld+json;q=0.9, application/rdf+xml;q=0.8, application/n-triples;q=0.5"
)
# Media types servers use for the same serialisations (Content-Type as they send it).
MEDIA_ALIASES = {
    "application/x-turtle": "text/turtle",
    "application/turtle": "text/turtle",
    "application/json": "application/ld+json",  # JSON-LD served as plain JSON (CKAN, udata)
    "application/xml": "application/rdf+xml",
    "text/xml": "application/rdf+xml",
    "text/plain": "application/n-triples",  # N-Triples' registered type before 2014
}

MAX_LINK_DEPTH = 3  # FDP → catalog → dataset, and one more for a catalog of catalogs


# --------------------------------------------------------------------------- parsing


def rdf_media_type(content_type: str, url: str) -> str:
    """The RDF media type of a response, or PeerError naming what came instead (an HTML page:
    the URL is the catalog's web page, not its RDF)."""
    media = MEDIA_ALIASES.get(content_type, content_type)
    if media not in RDF_MEDIA_TYPES:
        got = content_type or "no Content-Type"
        raise PeerError(
            f"{url} answered {got}, not RDF: a DCAT catalog must be served as text/turtle, "
            "application/ld+json or application/rdf+xml (is the URL the catalog's web page?)"
        )
    return media


def parse_page(
    body: bytes, content_type: str, *, url: str, contexts: Mapping[str, Any] | None = None
) -> CatalogPage:
    """One response, parsed; relative IRIs resolve against ``url``. PeerError when it is not
    RDF or does not parse, naming the URL, the media type and the parser's complaint."""
    media = rdf_media_type(content_type, url)
    try:
        return CatalogPage.parse(body, media, url=url, contexts=contexts)
    except CatalogPageError as exc:
        raise PeerError(f"{url}: the {media} body could not be parsed: {exc}") from None


def next_page(page: CatalogPage, url: str) -> str | None:
    """The next page's URL (``CatalogPage.next_page``); PeerError when the page names several."""
    try:
        return page.next_page(url)
    except CatalogPageError as exc:
        raise PeerError(str(exc)) from None


@dataclass(frozen=True)
class Mapped:
    """One dcat:Dataset of a graph: its remote id, and the record or why there is none."""

    remote_id: str
    item: RemoteRecord | RecordProblem


def map_dataset(
    page: CatalogPage,
    item: CatalogDataset,
    *,
    peer_id: str,
    read_time: datetime,
    trust_publisher: bool = False,
) -> Mapped | RecordProblem:
    """The RemoteRecord of dataset ``item`` of ``page``, or a RecordProblem saying why not.

    ``trust_publisher``: the catalog is a fairnode node, whose publisher ``dct:identifier`` is
    the node the record was born on; another catalog's publisher identifier is not a node id,
    so its records' origin is the peer itself."""
    remote_id = item.remote_id
    if remote_id is None:
        return RecordProblem(
            None,
            "a blank-node dcat:Dataset without dcat:landingPage or dct:identifier: "
            "it has no name that survives the next read",
        )
    try:
        read = page.read_dataset(item, origin_node=peer_id)
        datestamp = read.modified or read.issued or read_time
        ds = _settle(read.dataset, peer_id, trust_publisher, None if read.modified else datestamp)
    except Exception as exc:  # one record that fails to map never stops the run
        return Mapped(remote_id, RecordProblem(remote_id, _reason(exc)))
    url = read.landing_page or (remote_id if item.has_iri else None)
    # A fairnode catalog says which nodes the record came through (fairnode:harvestedVia).
    via = tuple(ds.provenance.harvested_via)
    record = RemoteRecord(remote_id, datestamp, ds, source_record_url=url, harvested_via=via)
    return Mapped(remote_id, record)


def _settle(ds: Dataset, peer_id: str, trust_publisher: bool, modified: datetime | None) -> Dataset:
    update: dict[str, Any] = {}
    if not trust_publisher and ds.provenance.origin_node != peer_id:
        update["provenance"] = ds.provenance.model_copy(update={"origin_node": peer_id})
    if modified is not None:
        # Without dct:modified the record would be "modified" at every read: use the stable
        # issued date (or the read time, the best there is).
        update["modified"] = modified
    return ds.model_copy(update=update) if update else ds


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:500]
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, ValueError) else text


def peer_date(fetched: Fetched) -> datetime | None:
    """The peer's clock: its Date header, aware UTC; None when absent or unreadable."""
    raw = next((v for k, v in fetched.headers.items() if k.lower() == "date"), None)
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _host(url: str) -> str:
    """host[:port]: what must match the catalog's for the node to fetch a URL. The scheme may
    differ (a node behind a proxy names its pages https while it was configured as http)."""
    return urlsplit(url).netloc.lower()


# --------------------------------------------------------------------------- the reader


class DCATReader:
    """Reads one DCAT catalog (see the module docstring); a ``PeerReader``.

    ``url``: the catalog's first page. ``max_pages``: the most Hydra pages in one read (an
    endless catalog fails the run); ``max_links``: the most listed resources fetched one by one.
    ``supports_modified_since``: the catalog is a fairnode ``/catalog``, which filters by
    ``modified_since`` itself (and whose publisher names each record's origin node).
    ``known_remote_ids``: the dataset IRIs the previous full read found, for deletions.
    ``contexts``: local copies of remote JSON-LD contexts (URL → context); nothing is fetched.
    """

    def __init__(
        self,
        fetcher: Fetcher,
        url: str,
        *,
        peer_id: str,
        max_pages: int,
        max_links: int = 100_000,
        supports_modified_since: bool = False,
        known_remote_ids: Iterable[str] = (),
        contexts: Mapping[str, Any] | None = None,
    ):
        self.fetcher = fetcher
        self.url = url
        self.peer_id = peer_id
        self.max_pages = max_pages
        self.max_links = max_links
        self.supports_modified_since = supports_modified_since
        self.known_remote_ids = frozenset(known_remote_ids)
        self.contexts = dict(contexts or {})
        self.watermark: datetime | None = None

    def read(self, since: datetime | None) -> Iterator[RemoteRecord | RecordProblem]:
        read_time = datetime.now(UTC)
        self.watermark = None
        run = _Run(self, read_time, since)
        params = None
        if since is not None and self.supports_modified_since:
            params = {"modified_since": since.astimezone(UTC).isoformat()}
        page_url: str | None = self.url
        pages: list[str] = []
        while page_url is not None:
            if page_url in pages:
                raise PeerError(
                    f"peer {self.peer_id!r}: the catalog's page {page_url} came round again "
                    f"after {len(pages)} pages: the Hydra paging loops"
                )
            if len(pages) >= self.max_pages:
                raise PeerError(
                    f"peer {self.peer_id!r}: the catalog has more than {self.max_pages} pages "
                    f"(at {page_url}): endless paging? ([federation] max_pages)"
                )
            pages.append(page_url)
            fetched = self._get(page_url, params if len(pages) == 1 else None)
            if len(pages) == 1 and self.supports_modified_since:
                self.watermark = peer_date(fetched) or read_time
            try:
                page = parse_page(
                    fetched.body, fetched.content_type, url=fetched.url, contexts=self.contexts
                )
                following = next_page(page, fetched.url)
            except PeerError as exc:  # the parsing helpers name the URL; the admin needs the peer
                raise PeerError(f"peer {self.peer_id!r}: {exc}") from None
            yield from run.page(page, depth=0)
            yield from run.follow_links()
            page_url = following
            if page_url is not None and _host(page_url) not in run.hosts:
                raise PeerError(
                    f"peer {self.peer_id!r}: the catalog's page {fetched.url} names its next "
                    f"page on another host ({page_url}): not followed"
                )
        yield from run.deletions()

    def _get(self, url: str, params: Mapping[str, str] | None = None) -> Fetched:
        return self.fetcher.get(url, params=params, accept=ACCEPT)


class _Run:
    """The state of one read: what was seen, what is still to fetch."""

    def __init__(self, reader: DCATReader, read_time: datetime, since: datetime | None):
        self.reader = reader
        self.read_time = read_time
        self.since = since
        self.seen: set[str] = set()  # dataset names found (mapped or not): not deleted
        self.fetched: set[str] = set()  # listed resources already fetched (or refused)
        self.queue: deque[tuple[str, int]] = deque()
        self.complete = True  # every listed resource was read: deletions may be inferred
        self.hosts = {_host(reader.url)}

    def page(self, page: CatalogPage, depth: int) -> Iterator[RemoteRecord | RecordProblem]:
        """Every dataset ``page`` describes; its listed, undescribed members queued for a GET."""
        for described in page.datasets():
            name = described.remote_id
            if name is not None and name in self.seen:
                continue  # described on an earlier page or resource: once is enough
            item = map_dataset(
                page,
                described,
                peer_id=self.reader.peer_id,
                read_time=self.read_time,
                trust_publisher=self.reader.supports_modified_since,
            )
            if isinstance(item, RecordProblem):
                yield item
                continue
            self.seen.add(item.remote_id)
            record = item.item
            if isinstance(record, RemoteRecord) and self.since and record.datestamp < self.since:
                continue
            yield record
        if depth < MAX_LINK_DEPTH:
            for link in page.listed_links():
                if link not in self.fetched and link not in self.seen:
                    self.fetched.add(link)
                    self.queue.append((link, depth + 1))

    def follow_links(self) -> Iterator[RemoteRecord | RecordProblem]:
        """GET each queued resource (breadth first); a failure is that resource's problem."""
        while self.queue:
            link, depth = self.queue.popleft()
            if _host(link) not in self.hosts:
                # The node fetches only from the host it was told to harvest: a catalog must
                # not make it GET arbitrary hosts (an internal network, another site).
                self.complete = False
                yield RecordProblem(
                    link,
                    f"listed by the catalog but not described, and not fetched: it is on "
                    f"another host than the catalog {self.reader.url}",
                )
                continue
            if len(self.fetched) > self.reader.max_links:
                raise PeerError(
                    f"peer {self.reader.peer_id!r}: the catalog lists more than "
                    f"{self.reader.max_links} resources to fetch one by one (at {link})"
                )
            try:
                fetched = self.reader._get(link)
                page = parse_page(
                    fetched.body,
                    fetched.content_type,
                    url=fetched.url,
                    contexts=self.reader.contexts,
                )
            except PeerError as exc:
                self.complete = False
                yield RecordProblem(link, f"listed by the catalog, but reading it failed: {exc}")
                continue
            if not page.describes_dataset_or_catalog(link):
                yield RecordProblem(
                    link,
                    f"listed by the catalog, but {fetched.url} describes neither a dcat:Dataset "
                    "nor a catalog",
                )
                continue
            yield from self.page(page, depth)

    def deletions(self) -> Iterator[RemoteRecord]:
        """The known datasets this full read did not find: gone from the catalog."""
        filtered = self.since is not None and self.reader.supports_modified_since
        if not self.complete or filtered:
            return
        for remote_id in sorted(self.reader.known_remote_ids - self.seen):
            yield RemoteRecord(remote_id, self.read_time, None, inferred=True)
