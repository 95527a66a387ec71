"""The OAI-PMH 2.0 endpoint at /oai: the six verbs, over GET and POST (docs/oai-pmh.md).

Every answer is HTTP 200 with ``text/xml``; protocol errors are ``error`` elements (section
3.6), never HTTP errors. Lists are split into pages of ``PAGE_SIZE`` records (the Flask setting
``OAI_PAGE_SIZE`` overrides it, e.g. in tests) and resumed with stateless, signed tokens.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import orjson
from flask import Blueprint, Response, current_app, request
from lxml import etree

from node.app import current_identity, node_context
from node.linkeddata.context import NodeInfo
from node.linkeddata.dublincore import DC, OAI_DC
from node.linkeddata.dublincore import SCHEMA_LOCATION as OAI_DC_SCHEMA_LOCATION
from node.records import Visibility

from . import tokens
from .formats import FAIRNODE_SCHEMA_FILE, FAIRNODE_SCHEMA_PATH, FORMATS, MetadataFormat
from .identifiers import (
    DELIMITER,
    SCHEME,
    dataset_id_of,
    describes_itself,
    oai_identifier,
    repository_identifier,
)
from .protocol import (
    BAD_RESUMPTION_TOKEN,
    CANNOT_DISSEMINATE_FORMAT,
    DELETED_RECORD,
    GRANULARITY,
    ID_DOES_NOT_EXIST,
    NO_METADATA_FORMATS,
    NO_RECORDS_MATCH,
    OAI_IDENTIFIER_NS,
    OAI_IDENTIFIER_SCHEMA_LOCATION,
    PROTOCOL_VERSION,
    XSI_NS,
    OAIError,
    OAIErrors,
    OAIRequest,
    datestamp,
    parse_request,
    xml_text,
)
from .store import ACCESS, ORIGIN, VISIBILITY, Item, OAIStore, Query
from .xml import envelope, errors, header, resumption_token, serialise, sub

oai = Blueprint("oai", __name__)

PAGE_SIZE = 100  # records (or headers) per response of ListRecords / ListIdentifiers
PAGE_SIZE_SETTING = "OAI_PAGE_SIZE"
# Nodes harvesting nodes read the native format in pages of 500: a fifth of the round trips
# (each request costs both sides a few ms beyond its records).
FORMAT_PAGE_SIZES = {"fairnode": 500}
CONTENT_TYPE = "text/xml; charset=utf-8"
_EMAIL_RE = re.compile(r"^\S+@(\S+\.)+\S+$")  # the OAI-PMH XSD's emailType
ACCESS_NAMES = {
    "open": "Data openly accessible",
    "embargoed": "Data under embargo",
    "restricted": "Data available on request",
    "closed": "Data not accessible",
}


@oai.route("/oai", methods=["GET", "POST"])
def endpoint() -> Response:
    ctx = node_context()
    node = NodeInfo.from_config(ctx.config)
    # A peer presenting the federation's token is also served `federation` records; a wrong
    # token is an HTTP 401 before any OAI answer (node.auth.peers).
    identity = current_identity()
    provider = Provider(node, OAIStore(ctx.records.engine, identity), datetime.now(UTC))
    # POST carries the arguments as application/x-www-form-urlencoded (section 3.1.1.2).
    args = request.form if request.method == "POST" else request.args
    req: OAIRequest | None = None
    try:
        req = parse_request(args)
        root = provider.answer(req)
    except OAIErrors as e:
        root = errors(envelope(provider.base, provider.now, req if e.echo else None), e.errors)
    return Response(serialise(root), status=200, content_type=CONTENT_TYPE)


@oai.route(FAIRNODE_SCHEMA_PATH)
def fairnode_schema() -> Response:
    """The XML Schema of the ``fairnode`` metadata format (ListMetadataFormats links here)."""
    return Response(
        FAIRNODE_SCHEMA_FILE.read_bytes(), content_type="application/xml; charset=utf-8"
    )


class Provider:
    """Answers one checked request (``now`` is its responseDate)."""

    def __init__(self, node: NodeInfo, store: OAIStore, now: datetime):
        self.node = node
        self.store = store
        self.now = now
        self.base = f"{node.base_url}/oai"

    def answer(self, req: OAIRequest) -> etree._Element:
        root = envelope(self.base, self.now, req)
        verbs = {
            "Identify": self.identify,
            "ListMetadataFormats": self.list_metadata_formats,
            "ListSets": self.list_sets,
            "GetRecord": self.get_record,
            "ListIdentifiers": self.list_identifiers,
            "ListRecords": self.list_records,
        }
        verbs[req.verb](req, root)
        return root

    # ------------------------------------------------------------------ helpers

    def identifier(self, item: Item) -> str:
        return oai_identifier(self.node.base_url, item.id)

    def _format(self, prefix: str) -> MetadataFormat:
        fmt = FORMATS.get(prefix)
        if fmt is None:
            raise OAIErrors(self._no_format(prefix))
        return fmt

    @staticmethod
    def _no_format(prefix: str) -> OAIError:
        return OAIError(
            CANNOT_DISSEMINATE_FORMAT,
            f"metadataPrefix '{xml_text(prefix)}' is not disseminated here ({', '.join(FORMATS)})",
        )

    def _item(self, identifier: str, *, with_doc: bool) -> Item:
        dataset_id = dataset_id_of(self.node.base_url, identifier)
        item = self.store.get(dataset_id, with_doc=with_doc) if dataset_id else None
        if item is None:
            raise OAIErrors(self._unknown(identifier))
        return item

    @staticmethod
    def _unknown(identifier: str) -> OAIError:
        return OAIError(
            ID_DOES_NOT_EXIST, f"identifier '{xml_text(identifier)}' is unknown in this repository"
        )

    def _record(self, parent: etree._Element, item: Item, fmt: MetadataFormat) -> None:
        record = sub(parent, "record")
        header(record, self.identifier(item), item.modified, item.set_specs, item.deleted)
        if not item.deleted:
            metadata = sub(record, "metadata")
            el = None
            if fmt.from_text is not None and item.text is not None:
                el = fmt.from_text(item.text, self.node)
                if el is None:  # a character XML cannot hold: parse, and let JSON escape it
                    el = fmt.from_doc(orjson.loads(item.text), self.node)
            elif fmt.from_doc is not None and item.doc is not None:
                el = fmt.from_doc(item.doc, self.node)
            else:
                el = fmt.element(item.dataset(), self.node)
            metadata.append(el)

    def admin_email(self) -> str:
        email = self.node.contact_email.strip()
        if _EMAIL_RE.match(email):
            return email
        # The protocol requires one; RFC 2142's mailbox at the node's host stands in.
        host = repository_identifier(self.node.base_url)
        return f"webmaster@{host}" if "." in host else f"webmaster@{host}.localdomain"

    # ------------------------------------------------------------------ verbs

    def identify(self, req: OAIRequest, root: etree._Element) -> None:
        el = sub(root, "Identify")
        sub(el, "repositoryName", self.node.name)
        sub(el, "baseURL", self.base)
        sub(el, "protocolVersion", PROTOCOL_VERSION)
        sub(el, "adminEmail", self.admin_email())
        sub(el, "earliestDatestamp", datestamp(self.store.earliest() or self.now))
        sub(el, "deletedRecord", DELETED_RECORD)
        sub(el, "granularity", GRANULARITY)
        if describes_itself(self.node.base_url):
            ident = etree.SubElement(
                sub(el, "description"),
                f"{{{OAI_IDENTIFIER_NS}}}oai-identifier",
                nsmap={None: OAI_IDENTIFIER_NS},
            )
            ident.set(f"{{{XSI_NS}}}schemaLocation", OAI_IDENTIFIER_SCHEMA_LOCATION)
            for tag, text in (
                ("scheme", SCHEME),
                ("repositoryIdentifier", repository_identifier(self.node.base_url)),
                ("delimiter", DELIMITER),
                ("sampleIdentifier", oai_identifier(self.node.base_url, "ds-example")),
            ):
                etree.SubElement(ident, f"{{{OAI_IDENTIFIER_NS}}}{tag}").text = text

    def list_metadata_formats(self, req: OAIRequest, root: etree._Element) -> None:
        identifier = req.args.get("identifier")
        if identifier is not None and self._item(identifier, with_doc=False).deleted:
            raise OAIErrors(
                OAIError(
                    NO_METADATA_FORMATS,
                    f"{xml_text(identifier)} was withdrawn: it has no metadata in any format",
                )
            )
        el = sub(root, "ListMetadataFormats")
        for fmt in FORMATS.values():
            mf = sub(el, "metadataFormat")
            sub(mf, "metadataPrefix", fmt.prefix)
            sub(mf, "schema", fmt.schema_url(self.node.base_url))
            sub(mf, "metadataNamespace", fmt.namespace)

    def list_sets(self, req: OAIRequest, root: etree._Element) -> None:
        if req.token is not None:
            raise OAIErrors(
                OAIError(
                    BAD_RESUMPTION_TOKEN,
                    "this repository sends its set list whole: there is nothing to resume",
                )
            )
        values = self.store.set_values()
        el = sub(root, "ListSets")
        self._set(el, ORIGIN, "Records by origin node", "The node where each record was born.")
        for origin in values[ORIGIN]:
            mine = " (this node)" if origin == self.node.id else ""
            self._set(el, f"{ORIGIN}:{origin}", f"Records born at node {origin}{mine}")
        self._set(
            el,
            VISIBILITY,
            "Records by metadata visibility",
            "Public records are served to every harvester, federation records only to "
            "authenticated peers of the federation; no other record leaves the node.",
        )
        for visibility in sorted(self.store.audience):
            self._set(el, f"{VISIBILITY}:{visibility}", f"{visibility.capitalize()} records")
        self._set(el, ACCESS, "Records by data access", "Who may get the data a record describes.")
        for access in values[ACCESS]:
            name = ACCESS_NAMES.get(access, access)
            self._set(el, f"{ACCESS}:{access}", f"{name} ({access})")

    @staticmethod
    def _set(parent: etree._Element, spec: str, name: str, description: str | None = None) -> None:
        s = sub(parent, "set")
        sub(s, "setSpec", spec)
        sub(s, "setName", name)
        if description:
            dc = etree.SubElement(
                sub(s, "setDescription"),
                f"{{{OAI_DC}}}dc",
                nsmap={"oai_dc": OAI_DC, "dc": DC, "xsi": XSI_NS},
            )
            dc.set(f"{{{XSI_NS}}}schemaLocation", OAI_DC_SCHEMA_LOCATION)
            etree.SubElement(dc, f"{{{DC}}}description").text = description

    def get_record(self, req: OAIRequest, root: etree._Element) -> None:
        prefix, identifier = req.args["metadataPrefix"], req.args["identifier"]
        fmt = FORMATS.get(prefix)
        dataset_id = dataset_id_of(self.node.base_url, identifier)
        item = self.store.get(dataset_id) if dataset_id else None
        problems = ([] if item else [self._unknown(identifier)]) + (
            [] if fmt else [self._no_format(prefix)]
        )
        if problems:
            raise OAIErrors(*problems)
        self._record(sub(root, "GetRecord"), item, fmt)

    def list_identifiers(self, req: OAIRequest, root: etree._Element) -> None:
        self._list(req, root, records=False)

    def list_records(self, req: OAIRequest, root: etree._Element) -> None:
        self._list(req, root, records=True)

    def _token_key(self, audience: frozenset[str]) -> bytes:
        """The key signing the resumption tokens of lists served to ``audience`` (the
        visibilities the caller may harvest): a token only resumes for a caller who may
        harvest the same records, so an anonymous harvester cannot continue a peer's list.
        Anonymous lists keep the plain key (tokens issued before peers existed stay valid)."""
        key = tokens.signing_key(self.node.id, self.node.base_url)
        if audience == {Visibility.public.value}:
            return key
        return hashlib.sha256(key + b"\x00" + "+".join(sorted(audience)).encode()).digest()

    def _decode(self, token: str) -> tokens.ListState:
        audience = self.store.audience
        try:
            return tokens.decode(token, self._token_key(audience), now=self.now)
        except tokens.TokenError as e:
            # Say why when the token is good but was issued to another kind of caller.
            peer = frozenset({Visibility.public.value, Visibility.federation.value})
            for other in (frozenset({Visibility.public.value}), peer):
                if other == audience:
                    continue
                try:
                    tokens.decode(token, self._token_key(other), now=self.now)
                except tokens.TokenError:
                    continue
                who = "an authenticated peer" if other == peer else "an anonymous harvester"
                raise OAIErrors(
                    OAIError(
                        BAD_RESUMPTION_TOKEN,
                        f"this token resumes a list served to {who}: resume it with the "
                        "credentials the list was started with",
                    )
                ) from None
            raise OAIErrors(OAIError(BAD_RESUMPTION_TOKEN, str(e))) from None

    def _list(self, req: OAIRequest, root: etree._Element, *, records: bool) -> None:
        key = self._token_key(self.store.audience)
        after: tuple[datetime, str] | None = None
        if req.token is not None:
            state = self._decode(req.token)
            if state.verb != req.verb:
                raise OAIErrors(
                    OAIError(BAD_RESUMPTION_TOKEN, f"this token resumes a {state.verb} list")
                )
            if state.prefix not in FORMATS:
                raise OAIErrors(
                    OAIError(BAD_RESUMPTION_TOKEN, "this token's metadata format is gone")
                )
            fmt = FORMATS[state.prefix]
            query = Query(state.set_spec, state.from_, state.upper)
            after = (state.after_modified, state.after_id)
            complete, cursor = state.complete_size, state.cursor
        else:
            fmt = self._format(req.args["metadataPrefix"])
            # Freeze the list at its start: what changes from now on has a later datestamp
            # and is left to the next incremental harvest (docs/oai-pmh.md).
            upper = self.now + timedelta(microseconds=1)
            if req.until is not None:
                upper = min(upper, req.until.end)
            from_ = req.from_.start if req.from_ is not None else None
            query = Query(req.args.get("set"), from_, upper)
            complete, cursor = self.store.count(query), 0
        default = FORMAT_PAGE_SIZES.get(fmt.prefix, PAGE_SIZE)
        size = max(1, int(current_app.config.get(PAGE_SIZE_SETTING, default)))
        raw = records and fmt.from_text is not None
        items = self.store.page(query, after=after, limit=size + 1, with_doc=records, raw=raw)
        if not items:
            raise OAIErrors(
                OAIError(NO_RECORDS_MATCH, "no record matches these arguments")
                if req.token is None
                else OAIError(NO_RECORDS_MATCH, "the rest of this list changed: none is left")
            )
        more = len(items) > size
        items = items[:size]
        el = sub(root, req.verb)
        for item in items:
            if records:
                self._record(el, item, fmt)
            else:
                header(el, self.identifier(item), item.modified, item.set_specs, item.deleted)
        served = cursor + len(items)
        complete = max(complete, served + (1 if more else 0))
        if more:
            last = items[-1]
            expires = self.now + tokens.TTL
            state = tokens.ListState(
                verb=req.verb,
                prefix=fmt.prefix,
                set_spec=query.set_spec,
                from_=query.from_,
                upper=query.upper,
                after_modified=last.modified,
                after_id=last.id,
                complete_size=complete,
                cursor=served,
                expires=expires,
            )
            resumption_token(
                el,
                tokens.encode(state, key),
                complete_size=complete,
                cursor=cursor,
                expires=expires,
            )
        elif req.token is not None:
            resumption_token(el, None, complete_size=complete, cursor=cursor, expires=None)
