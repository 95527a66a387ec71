"""OAI-PMH 2.0 reader: ListRecords with ``from``, resumption tokens and deletions.

Why not sickle or oaipmh-scythe (both kept, both used by the tests as real harvesters): both
parse every page with ``etree.XMLParser(recover=True)``, which silently *repairs* a malformed or
truncated page (records vanish, no error), re-parse the page on every access, and neither
notices a repeating or endless resumption token. Sickle fetches with module-level
``requests.get`` and scythe with its own httpx client, so neither takes our ``Fetcher``
(size cap, whole-response deadline, Retry-After ceiling) without replacing its request *and*
response classes, which leaves nothing of the library but the loop below. So the loop is ours
(about 40 lines), every page goes through ``Fetcher`` and is parsed only by the hardened
``node.linkeddata.xmlsafe.parse_xml``.

Encodings: a page is decoded as XML says (BOM, then the ``encoding`` of the XML declaration,
else UTF-8); the HTTP charset is used only when the document declares nothing, because servers
often send a stale header charset while their XML declaration is right. Bytes that do not match
the encoding in force fail the page with a PeerError saying so: decoding leniently would store
garbled names and titles without anyone noticing.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TypeVar

from lxml import etree

from node.federation.fetch import Fetched, Fetcher
from node.federation.model import PeerError, RecordProblem, RemoteRecord
from node.linkeddata import datacite, dublincore
from node.linkeddata.context import dataset_iri
from node.linkeddata.dcat_read import dataset_from_rdfxml
from node.linkeddata.identifiers import DOI_RESOLVER, bare_doi
from node.linkeddata.xmlsafe import parse_xml, text_of
from node.oai.formats import FAIRNODE_NS, FAIRNODE_VERSION
from node.records import Dataset, Visibility

OAI = "http://www.openarchives.org/OAI/2.0/"
_NS = {"oai": OAI}
SECONDS = "YYYY-MM-DDThh:mm:ssZ"
DAY = "YYYY-MM-DD"
VISIBILITY_SET = "visibility:"  # a fairnode peer's set family naming a record's visibility
FOREIGN_PREFERENCE = ("oai_datacite", "oai_dc")  # what `metadata_prefix = ""` picks, in order
# What a fairnode peer is read in: its native record when it serves one (every field, ~20x
# cheaper than DCAT through rdflib: node/oai/formats.py), else its DCAT-AP.
NODE_PREFERENCE = ("fairnode", "dcat_ap")
# Statuses whose body may still be an OAI-PMH error document (Zenodo answers errors with 422).
OAI_ERROR_STATUSES = (400, 404, 422)
ACCEPT = "text/xml, application/xml;q=0.9, */*;q=0.1"
HTML_TYPES = ("text/html", "application/xhtml+xml")
REASON_CHARS = 1000
PAGES_AHEAD = 2  # pages fetched and parsed ahead of the one being read (memory: a page each)

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_DECLARED = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)


def oai_datestamp(value: datetime, granularity: str = SECONDS) -> str:
    """``value`` in UTC at the repository's granularity (a day when it only knows days)."""
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%d" if granularity == DAY else "%Y-%m-%dT%H:%M:%SZ")


def parse_datestamp(text: str | None) -> datetime:
    """An OAI datestamp (day or seconds; fractions tolerated) as an aware UTC datetime."""
    if not text:
        raise ValueError("no datestamp")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"datestamp {text!r} is not {SECONDS} or {DAY}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --------------------------------------------------------------------------- one page


def _where(peer_id: str, fetched: Fetched) -> str:
    return f"peer {peer_id!r}: GET {fetched.url}"


def _is_html(fetched: Fetched) -> bool:
    head = fetched.body[:512].lstrip().lower()
    return fetched.content_type in HTML_TYPES or head.startswith((b"<!doctype html", b"<html"))


def _html_title(body: bytes) -> str | None:
    match = _TITLE.search(body[:65536])
    if not match:
        return None
    title = " ".join(match.group(1).decode("utf-8", errors="replace").split())
    return title[:150] or None


def _decoded(fetched: Fetched, where: str) -> bytes | str:
    """The body to hand to the XML parser: the bytes themselves when XML says its encoding
    (or means UTF-8), the text decoded by the HTTP charset when only the header names one."""
    body = fetched.body
    charset = fetched.charset
    if body.startswith(_BOMS) or _DECLARED.match(body[:300]) or not charset:
        return body
    if charset.replace("-", "").replace("_", "") in ("utf8", "usascii", "ascii"):
        return body
    try:
        return body.decode(charset)
    except LookupError:
        raise PeerError(f"{where}: the Content-Type names an unknown charset {charset!r}") from None
    except UnicodeDecodeError as exc:
        raise PeerError(
            f"{where}: the bytes do not match the charset the Content-Type declares "
            f"({charset}): {exc.reason} at byte {exc.start}"
        ) from None


def _encoding_error(message: str) -> bool:
    low = message.lower()
    return "encoding" in low or "bytes: 0x" in low or "has utf-8 content" in low


def _mismatch(body: bytes, encoding: str) -> bool:
    """True when ``body`` cannot be the text the declared ``encoding`` says (a UTF-16
    declaration over UTF-8 bytes decodes, but not to a document starting with '<')."""
    try:
        text = body.decode(encoding)
    except LookupError:
        return False
    except UnicodeDecodeError:
        return True
    return not text.lstrip("\ufeff \t\r\n").startswith("<")


def parse_page(fetched: Fetched, peer_id: str, max_bytes: int) -> etree._Element:
    """The ``OAI-PMH`` root element of one response, or PeerError saying what came back."""
    where = _where(peer_id, fetched)
    ctype = fetched.content_type or "none"
    if _is_html(fetched):
        title = _html_title(fetched.body)
        titled = f", titled {title!r}" if title else ""
        raise PeerError(
            f"{where}: expected OAI-PMH XML, got an HTML page (HTTP {fetched.status}, "
            f"Content-Type: {ctype}{titled}); is the URL the OAI-PMH endpoint?"
        )
    if not fetched.body.startswith(_BOMS) and not fetched.body.lstrip().startswith(b"<"):
        status = "" if fetched.status == 200 else f"HTTP {fetched.status}, "
        if not fetched.body.strip():
            raise PeerError(
                f"{where}: expected OAI-PMH XML, got an empty response ({status}"
                f"Content-Type: {ctype})"
            )
        shown = " ".join(fetched.body[:80].decode("utf-8", errors="replace").split())
        raise PeerError(
            f"{where}: expected OAI-PMH XML, got something that is not XML ({status}"
            f"Content-Type: {ctype}, starting {shown!r})"
        )
    try:
        root = parse_xml(_decoded(fetched, where), "OAI-PMH response", max_bytes=max_bytes)
    except ValueError as exc:
        detail = str(exc).removeprefix("OAI-PMH response: ")
        declared = _DECLARED.match(fetched.body[:300])
        name = declared.group(1).decode() if declared else None
        if "unsupported encoding" in detail.lower():
            raise PeerError(
                f"{where}: the document declares an encoding no XML parser here knows "
                f"({name}): {detail}"
            ) from None
        if _encoding_error(detail) or (name and _mismatch(fetched.body, name)):
            raise PeerError(
                f"{where}: the bytes do not match the encoding the document declares "
                f"({name or 'none, so UTF-8'}): {detail}"
            ) from None
        if detail.startswith("refused"):  # a DTD: entity tricks are never parsed
            raise PeerError(f"{where}: {detail}") from None
        raise PeerError(f"{where}: malformed XML ({detail})") from None
    if root.tag != f"{{{OAI}}}OAI-PMH":
        raise PeerError(
            f"{where}: not an OAI-PMH response: the root element is {root.tag!r}, expected "
            f"{{{OAI}}}OAI-PMH"
        )
    if fetched.status != 200 and root.find("oai:error", _NS) is None:
        raise PeerError(f"{where}: HTTP {fetched.status} without an OAI-PMH error")
    return root


def _oai_errors(root: etree._Element) -> list[tuple[str, str]]:
    return [
        (e.get("code") or "?", " ".join((e.text or "").split()))
        for e in root.findall("oai:error", _NS)
    ]


def _request(
    fetcher: Fetcher, base_url: str, params: dict[str, str]
) -> tuple[etree._Element, Fetched]:
    fetched = fetcher.get(base_url, params=params, accept=ACCEPT, ok_statuses=OAI_ERROR_STATUSES)
    return parse_page(fetched, fetcher.peer_id, fetcher.max_bytes), fetched


def _raise_errors(root: etree._Element, fetched: Fetched, peer_id: str, verb: str) -> None:
    errors = _oai_errors(root)
    if errors:
        said = "; ".join(f"{code}: {text}" if text else code for code, text in errors)
        raise PeerError(f"{_where(peer_id, fetched)}: the repository answered {verb} with {said}")


def identify(fetcher: Fetcher, base_url: str) -> dict[str, str]:
    """What the repository says about itself (``Identify``): repositoryName, baseURL,
    protocolVersion, granularity, earliestDatestamp, deletedRecord, adminEmail (first)."""
    root, fetched = _request(fetcher, base_url, {"verb": "Identify"})
    _raise_errors(root, fetched, fetcher.peer_id, "Identify")
    el = root.find("oai:Identify", _NS)
    if el is None:
        raise PeerError(f"{_where(fetcher.peer_id, fetched)}: Identify answer has no Identify")
    out = {}
    for name in (
        "repositoryName",
        "baseURL",
        "protocolVersion",
        "granularity",
        "earliestDatestamp",
        "deletedRecord",
        "adminEmail",
    ):
        value = text_of(el.find(f"oai:{name}", _NS))
        if value is not None:
            out[name] = value
    return out


def list_metadata_formats(fetcher: Fetcher, base_url: str) -> list[str]:
    """The metadataPrefixes the repository offers, in its order."""
    root, fetched = _request(fetcher, base_url, {"verb": "ListMetadataFormats"})
    _raise_errors(root, fetched, fetcher.peer_id, "ListMetadataFormats")
    return [
        p
        for e in root.findall("oai:ListMetadataFormats/oai:metadataFormat", _NS)
        if (p := text_of(e.find("oai:metadataPrefix", _NS)))
    ]


# --------------------------------------------------------------------------- mapping


def local_id(remote_id: str) -> str:
    """A dataset id made of a foreign record's OAI identifier, for a record that names no id
    of its own (ingest stores harvested records under an id of its own making anyway)."""
    return _UNSAFE.sub("-", remote_id).strip("-") or "record"


def _dcat_ap(
    payload: etree._Element, origin_node: str, remote_id: str
) -> tuple[Dataset, str | None]:
    # The element was parsed without DTDs or entities; its bytes are re-read as RDF/XML.
    return dataset_from_rdfxml(etree.tostring(payload), origin_node=origin_node)


def _doi_url(value: str) -> str | None:
    doi = bare_doi(value)
    return DOI_RESOLVER + doi if doi else None


def _datacite(
    payload: etree._Element, origin_node: str, remote_id: str
) -> tuple[Dataset, str | None]:
    # oai_datacite wraps the resource (oai_datacite/payload/resource); Zenodo's `datacite`
    # prefix serves the bare resource.
    resource = payload if etree.QName(payload).localname == "resource" else None
    if resource is None:
        resource = payload.find("{*}payload/{*}resource")
    if resource is None:
        raise ValueError(
            f"no DataCite resource in the metadata (found {payload.tag!r}; expected "
            "oai_datacite/payload/resource or resource)"
        )
    ds = datacite.from_datacite_xml(
        etree.tostring(resource), origin_node=origin_node, dataset_id=local_id(remote_id)
    )
    url = None
    ident = resource.find("{*}identifier")
    if ident is not None and (value := text_of(ident)):
        kind = (ident.get("identifierType") or "").upper()
        if kind == "DOI":
            url = _doi_url(value)
        elif kind == "URL" and value.startswith(("http://", "https://")):
            url = value
    if url is None:
        url = next(
            (
                text_of(a)
                for a in resource.findall("{*}alternateIdentifiers/{*}alternateIdentifier")
                if (a.get("alternateIdentifierType") or "").upper() == "URL"
                and (text_of(a) or "").startswith(("http://", "https://"))
            ),
            None,
        )
    return ds, url


def _oai_dc(
    payload: etree._Element, origin_node: str, remote_id: str
) -> tuple[Dataset, str | None]:
    ds = dublincore.from_oai_dc(payload, origin_node=origin_node, dataset_id=local_id(remote_id))
    idents = [t for e in payload.findall(f"{{{dublincore.DC}}}identifier") if (t := text_of(e))]
    url = next((u for i in idents if (u := _doi_url(i))), None)
    url = url or next((i for i in idents if i.startswith(("http://", "https://"))), None)
    return ds, url


def _fairnode(
    payload: etree._Element, origin_node: str, remote_id: str
) -> tuple[Dataset, str | None]:
    if payload.tag != f"{{{FAIRNODE_NS}}}record":
        raise ValueError(f"expected a {{{FAIRNODE_NS}}}record element, found {payload.tag!r}")
    version = payload.get("version")
    if version != FAIRNODE_VERSION:
        raise ValueError(
            f"fairnode record version {version!r}: this node reads version {FAIRNODE_VERSION}"
        )
    # Untrusted JSON: pydantic checks every field as it would a record written here.
    return Dataset.model_validate_json(payload.text or ""), None


MAPPERS = {
    "fairnode": _fairnode,
    "dcat_ap": _dcat_ap,
    "oai_datacite": _datacite,
    "datacite": _datacite,
    "oai_dc": _oai_dc,
}


def _visibility(header: etree._Element) -> Visibility:
    for spec in header.findall("oai:setSpec", _NS):
        value = (spec.text or "").strip()
        if value.startswith(VISIBILITY_SET):
            name = value.removeprefix(VISIBILITY_SET)
            try:
                return Visibility(name)
            except ValueError:
                raise ValueError(
                    f"setSpec {value!r} names an unknown visibility (expected one of "
                    f"{', '.join(v.value for v in Visibility)})"
                ) from None
    return Visibility.public


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:REASON_CHARS]


# --------------------------------------------------------------------------- the reader

T = TypeVar("T")


def run_ahead(items: Iterator[T], depth: int, name: str) -> Iterator[T]:
    """``items``, produced in a background thread up to ``depth`` ahead of the consumer.

    What ``items`` raises is raised here, after the items it produced before. When the consumer
    stops early (a break, an exception, the generator closed), the producer stops at its next
    item and is waited for, so nothing (the Fetcher's session) is used after the caller is
    done with it; an in-flight request ends within the Fetcher's own deadline."""
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised in its thread
            put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "end":
                return
            else:
                raise value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


class OAIReader:
    """Reads one OAI-PMH repository (a ``PeerReader``, see ``node.federation.model``)."""

    def __init__(
        self,
        fetcher: Fetcher,
        base_url: str,
        *,
        peer_id: str,
        metadata_prefix: str,
        set_spec: str | None = None,
        origin_node: str | None = None,
        max_pages: int,
        prefer: tuple[str, ...] = FOREIGN_PREFERENCE,
    ):
        self.fetcher = fetcher
        self.prefer = prefer
        self.base_url = base_url
        self.peer_id = peer_id
        self.metadata_prefix = metadata_prefix
        self.set_spec = set_spec or None
        # dcat_ap names the origin node in dct:publisher; this is used when it does not. The
        # foreign formats never name one: their records are born at the peer.
        self.origin_node = origin_node or peer_id
        self.max_pages = max_pages
        self.watermark: datetime | None = None
        self.pages = 0  # pages read by the last run (shown in logs and tests)

    def _fail(self, why: str) -> PeerError:
        return PeerError(f"peer {self.peer_id!r}: {self.base_url}: {why}")

    def chosen_prefix(self) -> str:
        """The configured prefix, or (auto) the first of ``prefer`` the repository offers:
        oai_datacite, else oai_dc for a foreign one; fairnode, else dcat_ap for a node."""
        if self.metadata_prefix:
            if self.metadata_prefix not in MAPPERS:
                raise self._fail(
                    f"metadata format {self.metadata_prefix!r} cannot be mapped to records "
                    f"(use one of {', '.join(sorted(MAPPERS))})"
                )
            return self.metadata_prefix
        offered = list_metadata_formats(self.fetcher, self.base_url)
        for prefix in self.prefer:
            if prefix in offered:
                self.metadata_prefix = prefix
                return prefix
        raise self._fail(
            f"the repository offers none of {', '.join(self.prefer)} (it offers: "
            f"{', '.join(offered) or 'nothing'}); set metadata_prefix to a format it offers"
        )

    def read(self, since: datetime | None) -> Iterator[RemoteRecord | RecordProblem]:
        self.watermark = None
        self.pages = 0
        prefix = self.chosen_prefix()
        params = {"verb": "ListRecords", "metadataPrefix": prefix}
        if self.set_spec:
            params["set"] = self.set_spec
        if since is not None:
            granularity = identify(self.fetcher, self.base_url).get("granularity", SECONDS)
            params["from"] = oai_datestamp(since, granularity)
        # Two threads ahead of the caller: one fetches and parses the pages (asking for the next
        # as soon as it has the token: the peer builds it meanwhile), one maps their records
        # (while the caller waits on its database, which lets go of the GIL).
        name = f"oai-{self.peer_id}"
        pages = run_ahead(self._pages(params), PAGES_AHEAD, f"{name}-fetch")
        mapped = (
            (stamp, [self._record(r, prefix) for r in body.findall("oai:record", _NS)])
            for stamp, body in pages
        )
        for stamp, items in run_ahead(mapped, PAGES_AHEAD, f"{name}-map"):
            self.pages += 1
            if self.pages == 1:
                self.watermark = stamp
            yield from items

    def _pages(self, params: dict[str, str]) -> Iterator[tuple[datetime | None, etree._Element]]:
        """(responseDate, ListRecords element; an empty one for noRecordsMatch) of each page, in
        order; a PeerError after the last good page when the list goes wrong (an OAI error, a
        repeating token, more than max_pages pages)."""
        seen: set[str] = set()
        pages = 0
        while True:
            root, fetched = _request(self.fetcher, self.base_url, params)
            pages += 1
            stamp = self._response_date(root)
            codes = [code for code, _ in _oai_errors(root)]
            if codes == ["noRecordsMatch"]:
                yield stamp, etree.Element(f"{{{OAI}}}ListRecords")
                return
            _raise_errors(root, fetched, self.peer_id, "ListRecords")
            body = root.find("oai:ListRecords", _NS)
            if body is None:
                raise PeerError(f"{_where(self.peer_id, fetched)}: no ListRecords in the answer")
            yield stamp, body
            token = (body.findtext("oai:resumptionToken", default="", namespaces=_NS)).strip()
            if not token:  # absent or empty: the list is complete
                return
            if token in seen:
                raise PeerError(
                    f"{_where(self.peer_id, fetched)}: repeating resumption token "
                    f"{token[:80]!r} (already followed in this run): the list would never end"
                )
            if pages >= self.max_pages:
                raise PeerError(
                    f"{_where(self.peer_id, fetched)}: endless resumption tokens: the list still "
                    f"goes on after {self.max_pages} pages ([federation] max_pages)"
                )
            seen.add(token)
            params = {"verb": "ListRecords", "resumptionToken": token}

    @staticmethod
    def _response_date(root: etree._Element) -> datetime | None:
        try:
            return parse_datestamp(root.findtext("oai:responseDate", namespaces=_NS))
        except ValueError:
            return None  # no usable clock: the next run reads everything again

    def _record(self, record: etree._Element, prefix: str) -> RemoteRecord | RecordProblem:
        header = record.find("oai:header", _NS)
        remote_id = text_of(header.find("oai:identifier", _NS)) if header is not None else None
        if header is None or not remote_id:
            return RecordProblem(None, "a record without a header identifier")
        try:
            datestamp = parse_datestamp(header.findtext("oai:datestamp", namespaces=_NS))
            visibility = _visibility(header)
            if header.get("status") == "deleted":
                return RemoteRecord(remote_id, datestamp, None, visibility)
            payload = next(
                (e for e in record.iterfind("oai:metadata/*", _NS) if isinstance(e.tag, str)),
                None,
            )
            if payload is None:
                raise ValueError("the record has no metadata (and is not marked deleted)")
            native = prefix in NODE_PREFERENCE  # the record names its origin node itself
            origin = self.origin_node if native else self.peer_id
            dataset, url = MAPPERS[prefix](payload, origin, remote_id)
            if prefix == "fairnode":  # its landing page on the peer
                url = dataset_iri(self.base_url.removesuffix("/oai"), dataset.id)
            if "modified" not in dataset.model_fields_set:
                # The metadata names no change date (oai_dc often has none): the header's
                # datestamp is the repository's own, and stays put while the record does; the
                # read time would make every read of an unchanged record an update.
                dataset = dataset.model_copy(update={"modified": datestamp})
        # Broad on purpose: whatever one record's metadata makes a mapper raise (ValueError,
        # pydantic's ValidationError, rdflib's parser errors), that record is reported and
        # skipped, and the run goes on.
        except Exception as exc:
            return RecordProblem(remote_id, f"{prefix}: {_reason(exc)}")
        return RemoteRecord(
            remote_id=remote_id,
            datestamp=datestamp,
            dataset=dataset,
            visibility=visibility,
            source_record_url=url,
            harvested_via=tuple(dataset.provenance.harvested_via),
        )
