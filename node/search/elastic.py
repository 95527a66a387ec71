"""The Elasticsearch search backend (DESIGN §5): the official client, an index template, bulk
indexing with retries, and an alias for zero-downtime reindexing.

Layout on the cluster, for the alias ``A`` (``Config.search_index``):

* the index template ``A-template`` (pattern ``A-*``) holds the settings and mappings, so every
  concrete index gets exactly the same analysis and fields;
* concrete indices ``A-<UTC timestamp with microseconds>``; the alias ``A`` points at exactly one.
  Readers and ``index``/``delete`` always go through the alias; ``reindex`` loads a fresh index
  beside the live one and moves the alias in one ``update_aliases`` call, so searches answer from
  the old index until the new one is complete.

Queries are built from the parsed ``SearchQuery`` as term, fuzzy, prefix, match_phrase, terms and
range queries: user text never reaches a query language (no query_string). The semantics are the
ones in ``node.search.backend``; the tantivy backend implements the same ones, and one test suite
runs against both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from elasticsearch import ApiError, ConnectionTimeout, Elasticsearch, NotFoundError, helpers
from elasticsearch import ConnectionError as EsConnectionError  # not the builtin

from node.config import ConfigError, Problem
from node.errors import BadRequestError
from node.search.backend import (
    ALL_TEXT,
    FACET_FIELDS,
    FILTER_FIELDS,
    KEYWORD_FIELDS,
    TEXT_FIELDS,
    Clause,
    ClauseKind,
    FacetValue,
    Health,
    Hit,
    ProgressFn,
    RecordJSON,
    SearchQuery,
    SearchResult,
    Sort,
    fuzziness,
    policy_values,
)
from node.search.documents import DOCUMENT_VERSION, facet_label, search_document
from node.search.errors import SearchIndexError, SearchUnavailableError
from node.search.lineage import LINEAGE_FIELDS, lineage_matches

if TYPE_CHECKING:
    from node.config import Config

log = logging.getLogger(__name__)

T = TypeVar("T")

ANALYZER = "fairnode_words"
# How deep relevance paging (from + size) may go: the same depth as the tantivy backend's offset
# cursors. The other sorts page with search_after, which needs no window.
MAX_RESULT_WINDOW = 100_000
FACET_FETCH = 1000  # buckets fetched per facet before they are sorted our way and cut
MAX_FUZZY_EXPANSIONS = 1000
HIGHLIGHT_FIELDS = ("title", "description")
SNIPPET_CHARS = 200  # description fragment size (tantivy's snippets are as long)
RETRY_STATUSES = (429, 502, 503, 504)
UNAVAILABLE_STATUSES = frozenset(RETRY_STATUSES)
BULK_INITIAL_BACKOFF = 0.5  # seconds before the first retry of rejected bulk items; doubles
BULK_MAX_BACKOFF = 30.0
CURSOR_VERSION = 1
# Concrete index names: the alias, '-', then %Y%m%d%H%M%S%f (20 digits).
_STAMP_DIGITS = 20

_TEXT_DOC_FIELDS = tuple(dict.fromkeys(f for f, _ in TEXT_FIELDS.values()))

# Sort name → Elasticsearch sort, and the JSON types of its sort values (for cursor checks).
_SORTS: dict[Sort, list[dict[str, str]]] = {
    Sort.relevance: [{"_score": "desc"}, {"id": "asc"}],
    Sort.newest: [{"date_key": "desc"}, {"id": "asc"}],
    Sort.oldest: [{"date_key": "asc"}, {"id": "asc"}],
    # title_key ends with the id, so it is unique: no tie-breaker needed.
    Sort.title: [{"title_key": "asc"}],
}
_SORT_VALUE_TYPES: dict[Sort, tuple[type, ...]] = {
    Sort.newest: (int, str),
    Sort.oldest: (int, str),
    Sort.title: (str,),
}
# Relevance pages by offset, not search_after: a score is no stable key (any write between two
# pages changes the BM25 statistics and so every score), so search_after on _score promises no
# more than an offset does. And the noida-db emulator mishandles search_after on _score: given
# the exact [score, id] it returned, it skips every later hit with the same score (pages come
# back short or empty; likely a float32/float64 mismatch). Offsets are exact on both, up to
# max_result_window.
_OFFSET_SORTS = frozenset({Sort.relevance})


# --------------------------------------------------------------------------- index definition


def index_settings() -> dict[str, Any]:
    """Settings of every concrete index (through the template)."""
    return {
        # One shard: a catalog of a million small records fits easily, and one shard makes
        # terms aggregations (facet counts) exact and BM25 statistics global, which the
        # same-results-as-tantivy contract needs.
        "number_of_shards": 1,
        # A replica where there is a second node, none on a single-node (dev) cluster: green.
        "auto_expand_replicas": "0-1",
        "max_result_window": MAX_RESULT_WINDOW,
        "analysis": {
            # The words of backend.analyse(): runs of letters and digits, lowercased. Long
            # words are dropped as tantivy's default tokenizer drops them: it keeps words of
            # fewer than 40 *bytes* (RemoveLongFilter(40)); Elasticsearch's length filter counts
            # characters, so the two still differ for non-ASCII words of 20-39 characters that
            # take 40 bytes or more in UTF-8.
            "tokenizer": {"fairnode_words": {"type": "pattern", "pattern": r"[^\p{L}\p{N}]+"}},
            "filter": {"fairnode_max39": {"type": "length", "min": 1, "max": 39}},
            "analyzer": {
                ANALYZER: {
                    "type": "custom",
                    "tokenizer": "fairnode_words",
                    "filter": ["lowercase", "fairnode_max39"],
                }
            },
        },
    }


def index_mappings() -> dict[str, Any]:
    """Mappings of every concrete index (without ``_meta``, which carries their fingerprint)."""
    properties: dict[str, Any] = {}
    for name in KEYWORD_FIELDS:
        properties[name] = {"type": "keyword"}
    for name in _TEXT_DOC_FIELDS:
        spec: dict[str, Any] = {"type": "text", "analyzer": ANALYZER}
        if name in HIGHLIGHT_FIELDS:
            # Offsets in the postings let the unified highlighter work without re-analysing.
            spec["index_options"] = "offsets"
        properties[name] = spec
    # found by unrestricted clauses, never scored: doc ids only (as tantivy's "basic")
    properties[ALL_TEXT] = {
        "type": "text",
        "analyzer": ANALYZER,
        "index_options": "docs",
        "norms": False,
    }
    for name in ("acquired_from", "acquired_to", "modified"):
        properties[name] = {"type": "date"}
    properties["has_z"] = {"type": "boolean"}
    properties["has_t"] = {"type": "boolean"}
    properties["channel_count"] = {"type": "integer"}
    properties["date_key"] = {"type": "long"}
    properties["title_key"] = {"type": "keyword"}
    return {
        # A field search_document() does not know is a bug: refuse it instead of guessing a type.
        "dynamic": "strict",
        # Hits only need their id (it is the _id too); the highlighter needs the two texts it
        # marks up. Everything else is indexed but not kept: the catalog is the source of truth
        # and reindexing reads it, never _source.
        "_source": {"includes": ["id", *HIGHLIGHT_FIELDS]},
        "properties": properties,
    }


def fingerprint() -> str:
    """Changes whenever what is indexed changes (document mapping, settings, mappings): an
    index with another fingerprint makes health() ask for `fairnode reindex`."""
    raw = json.dumps(
        {"document": DOCUMENT_VERSION, "settings": index_settings(), "mappings": index_mappings()},
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def template_body(alias: str) -> dict[str, Any]:
    """The index template of ``alias`` (arguments of put_index_template)."""
    mappings = index_mappings()
    mappings["_meta"] = {"fairnode": {"alias": alias, "fingerprint": fingerprint()}}
    return {
        "index_patterns": [f"{alias}-*"],
        # Composable templates with overlapping patterns must differ in priority: 'a-*' also
        # matches the indices of the alias 'a-b'. The longer (more specific) alias wins, and
        # 200+ stays above the built-in templates (priority 100).
        "priority": 200 + len(alias),
        "template": {"settings": index_settings(), "mappings": mappings},
        "_meta": {"description": "fairnode search index (node.search.elastic)"},
    }


# --------------------------------------------------------------------------- cursors


@dataclass(frozen=True)
class _Cursor:
    """Where the next page starts: search_after values, or an offset (relevance)."""

    after: list[Any] | None = None
    offset: int = 0


def _encode_cursor(sort: Sort, *, after: list[Any] | None = None, offset: int = 0) -> str:
    payload: dict[str, Any] = {"v": CURSOR_VERSION, "s": sort.value}
    if sort in _OFFSET_SORTS:
        payload["o"] = offset
    else:
        payload["a"] = after
    raw = json.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a sort value")


def _decode_cursor(cursor: str, sort: Sort) -> _Cursor:
    """Where ``cursor`` resumes; BadRequestError when it is not one of ours for this sort
    (garbage, another sort, wrong types): nothing of it reaches Elasticsearch unchecked."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw, parse_constant=_reject_constant)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        payload = None
    ok = (
        isinstance(payload, dict)
        and payload.get("v") == CURSOR_VERSION
        and payload.get("s") == sort.value
    )
    result: _Cursor | None = None
    if ok and sort in _OFFSET_SORTS:
        offset = payload.get("o")
        if _is_sort_value(offset, int) and 0 < offset <= MAX_RESULT_WINDOW:
            result = _Cursor(offset=offset)
    elif ok:
        types = _SORT_VALUE_TYPES[sort]
        values = payload.get("a")
        if (
            isinstance(values, list)
            and len(values) == len(types)
            and all(_is_sort_value(v, t) for v, t in zip(values, types, strict=True))
        ):
            result = _Cursor(after=values)
    if result is None:
        raise BadRequestError(
            f"cursor {cursor[:60]!r} is not valid for sort={sort.value}; use the 'next' value "
            "of a previous page with the same query"
        )
    return result


def _is_sort_value(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # a JSON true is not a number here
        return False
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, kind)


# --------------------------------------------------------------------------- queries


def _exact(field: str, word: str, boost: float) -> dict[str, Any]:
    """The word itself in ``field``: it scores above its typo neighbours (twice the boost)."""
    return {"term": {field: {"value": word, "boost": boost * 2}}}


def _fuzzy(field: str, word: str, distance: int, boost: float) -> dict[str, Any]:
    return {
        "fuzzy": {
            field: {
                "value": word,
                "fuzziness": distance,
                "transpositions": True,
                "prefix_length": 0,
                "max_expansions": MAX_FUZZY_EXPANSIONS,
                "boost": boost,
            }
        }
    }


def _lineage(clause: Clause, boost: float, base: float = 0.0) -> list[dict[str, Any]]:
    """The records the clause matches through their terms' lineage (node/search/lineage.py),
    each field's set scoring a constant, ``base`` plus ``boost`` times the field's boost, as in
    tantivy."""
    return [
        {
            "constant_score": {
                "filter": {"terms": {LINEAGE_FIELDS[name]: sorted(iris)}},
                "boost": base + boost * TEXT_FIELDS[name][1],
            }
        }
        for name, iris in lineage_matches(clause).items()
    ]


def _any(queries: list[dict[str, Any]]) -> dict[str, Any]:
    return queries[0] if len(queries) == 1 else {"bool": {"should": queries}}


def _all_text_clause(clause: Clause) -> dict[str, Any]:
    """An unrestricted word or prefix, as the tantivy backend runs it (node/search/backend.py):
    found on ALL_TEXT or through the lineage. A prefix scores 1; a word 1 when found in
    ALL_TEXT, 1 plus twice the field's boost for a lineage match, plus its exact occurrences in
    each field with their boosts."""
    word = clause.words[0]
    if clause.kind is ClauseKind.prefix:
        found: dict[str, Any] = {"prefix": {ALL_TEXT: {"value": word}}}
        found = _any([found, *_lineage(clause, 1.0)])
        return {"constant_score": {"filter": found, "boost": 1.0}}
    distance = fuzziness(word)
    text = _fuzzy(ALL_TEXT, word, distance, 1.0) if distance else {"term": {ALL_TEXT: word}}
    found = {"constant_score": {"filter": text, "boost": 1.0}}
    lineage = _lineage(clause, 2.0, base=1.0)
    return {
        "bool": {
            "must": [_any([found, *lineage])],
            "should": [_exact(field, word, boost) for field, boost in TEXT_FIELDS.values()],
        }
    }


def _clause_query(clause: Clause) -> dict[str, Any]:
    """One text clause over its field(s): matches when any field matches."""
    if clause.field is None and clause.kind is not ClauseKind.phrase:
        return _all_text_clause(clause)
    fields = [TEXT_FIELDS[clause.field]] if clause.field else list(TEXT_FIELDS.values())
    should: list[dict[str, Any]] = []
    for field, boost in fields:
        if clause.kind is ClauseKind.word:
            word = clause.words[0]
            should.append(_exact(field, word, boost))
            distance = fuzziness(word)
            if distance:
                should.append(_fuzzy(field, word, distance, boost))
        elif clause.kind is ClauseKind.phrase:
            # The words are analysed already; the field's analyser splits them the same way.
            query = " ".join(clause.words)
            should.append(
                {"match_phrase": {field: {"query": query, "slop": 0, "boost": boost * 2}}}
            )
        else:
            should.append({"prefix": {field: {"value": clause.words[0], "boost": boost}}})
    # a lineage match scores like the clause's exact match in the field (a prefix: like any)
    should.extend(_lineage(clause, 1.0 if clause.kind is ClauseKind.prefix else 2.0))
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _filters(query: SearchQuery) -> list[dict[str, Any]]:
    """Filter context: never scored, so relevance comes from the text alone."""
    out: list[dict[str, Any]] = [{"terms": {"policy": policy_values(query)}}]
    if query.origins is not None:
        out.append({"terms": {"f_origin": sorted(query.origins)}})  # empty scope: no hits
    for name, values in query.filters.items():
        field = FILTER_FIELDS.get(name)
        if field is None:
            known = ", ".join(FILTER_FIELDS)
            raise BadRequestError(f"unknown filter {name!r}: use one of {known}")
        out.append({"terms": {field: list(values)}})
    # Overlap of the document's [acquired_from, acquired_to] with the asked range; a document
    # without the date a bound needs has no value there, so the range never matches it.
    if query.acquired_to is not None:
        out.append({"range": {"acquired_from": {"lte": _iso(query.acquired_to)}}})
    if query.acquired_from is not None:
        out.append({"range": {"acquired_to": {"gte": _iso(query.acquired_from)}}})
    if query.has_z is not None:
        out.append({"term": {"has_z": query.has_z}})
    if query.has_t is not None:
        out.append({"term": {"has_t": query.has_t}})
    if query.min_channels is not None:
        out.append({"range": {"channel_count": {"gte": query.min_channels}}})
    return out


def _iso(when: datetime) -> str:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def build_query(query: SearchQuery) -> dict[str, Any]:
    """The bool query of ``query`` (hits and facet counts share it)."""
    must = [_clause_query(c) for c in query.clauses if not c.negated]
    must_not = [_clause_query(c) for c in query.clauses if c.negated]
    body: dict[str, Any] = {"filter": _filters(query)}
    # No positive clause: the filters alone select, and every hit scores the same.
    if must:
        body["must"] = must
    if must_not:
        body["must_not"] = must_not
    return {"bool": body}


def _facet_aggs(query: SearchQuery) -> dict[str, Any]:
    size = max(query.facet_size, FACET_FETCH)
    return {
        name: {
            "terms": {
                "field": field,
                "size": size,
                # Exact on one shard; the buckets are sorted again below all the same.
                "order": [{"_count": "desc"}, {"_key": "asc"}],
            }
        }
        for name, field in FACET_FIELDS.items()
    }


def _highlight() -> dict[str, Any]:
    return {
        "pre_tags": ["<mark>"],
        "post_tags": ["</mark>"],
        "encoder": "html",  # the text around the marks is escaped: safe to put in a page
        "require_field_match": True,
        "fields": {
            "title": {"number_of_fragments": 0},  # the whole title
            "description": {
                "fragment_size": SNIPPET_CHARS,
                "number_of_fragments": 1,
                "no_match_size": 0,
            },
        },
    }


def _public_url(url: str) -> str:
    """``url`` without any user info, for messages (config refuses passwords there anyway)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _cause(e: BaseException) -> str:
    """A one-line reason from a client exception."""
    if isinstance(e, ApiError):
        return f"HTTP {e.status_code}: {e.message}"
    message = getattr(e, "message", None) or str(e) or type(e).__name__
    return str(message)


# --------------------------------------------------------------------------- the backend


class ElasticsearchBackend:
    """SearchBackend over an Elasticsearch cluster (see the module docstring for the layout)."""

    name = "elasticsearch"

    def __init__(self, config: Config):
        settings = config.search
        self.alias: str = config.search_index
        self.url: str = _public_url(settings.url)
        self.batch_size: int = settings.batch_size
        self.max_retries: int = settings.max_retries
        self.node_names = {config.node.id: config.node.name}
        options: dict[str, Any] = {
            "request_timeout": settings.timeout_seconds,
            "max_retries": settings.max_retries,
            "retry_on_timeout": True,
            "retry_on_status": RETRY_STATUSES,
        }
        if settings.ca_certs:
            options["ca_certs"] = str(config.resolve(settings.ca_certs))
        options.update(_credentials())
        self.client = Elasticsearch(settings.url, **options)
        self._ready = False  # the alias is known to exist (checked once per backend object)

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Connection trouble (after the client's retries) → SearchUnavailableError naming
        the URL and the cause; other API errors are bugs and propagate as they are."""
        try:
            yield
        except (EsConnectionError, ConnectionTimeout) as e:
            raise SearchUnavailableError(
                f"Elasticsearch at {self.url} is unreachable while {doing}: {_cause(e)}"
            ) from e
        except ApiError as e:
            if e.status_code in UNAVAILABLE_STATUSES:
                raise SearchUnavailableError(
                    f"Elasticsearch at {self.url} is unavailable while {doing}: {_cause(e)}"
                ) from e
            raise

    def _new_index_name(self) -> str:
        return f"{self.alias}-{datetime.now(UTC):%Y%m%d%H%M%S%f}"

    def _is_ours(self, index: str) -> bool:
        rest = index[len(self.alias) + 1 :]
        return index.startswith(f"{self.alias}-") and len(rest) == _STAMP_DIGITS and rest.isdigit()

    def _put_template(self) -> None:
        self.client.indices.put_index_template(
            name=f"{self.alias}-template", **template_body(self.alias)
        )

    def _create_index(self, *, with_alias: bool, loading: bool = False) -> str:
        """A new concrete index from the (freshly written) template; checks that the template
        really applied, which another template of higher priority could prevent."""
        self._put_template()
        name = self._new_index_name()
        extra: dict[str, Any] = {}
        if with_alias:
            extra["aliases"] = {self.alias: {}}
        if loading:
            # No periodic refreshes while bulk loading: one refresh at the end is much cheaper.
            extra["settings"] = {"index": {"refresh_interval": "-1"}}
        self.client.indices.create(index=name, **extra)
        mapping = self.client.indices.get_mapping(index=name)[name]["mappings"]
        got = mapping.get("_meta", {}).get("fairnode", {}).get("fingerprint")
        if got != fingerprint():
            self.client.indices.delete(index=name)
            raise SearchIndexError(
                f"Elasticsearch at {self.url} created {name!r} without the mappings of the "
                f"template {self.alias}-template: another index template with a higher priority "
                f"matches {self.alias}-*; remove it or choose another search.index"
            )
        return name

    def _alias_indices(self) -> list[str]:
        """The concrete indices behind the alias (empty when the alias does not exist)."""
        try:
            return sorted(self.client.indices.get_alias(name=self.alias).body)
        except NotFoundError:
            return []

    def _ensure(self) -> None:
        """First use: create a concrete index and the alias when the alias does not exist."""
        if self._ready:
            return
        with self._errors(f"checking the alias {self.alias!r}"):
            if not self.client.indices.exists_alias(name=self.alias):
                if self.client.indices.exists(index=self.alias):
                    raise SearchIndexError(
                        f"{self.alias!r} on Elasticsearch at {self.url} is an index, not an "
                        "alias (written by something else?): delete it or choose another "
                        "search.index, then run fairnode reindex"
                    )
                self._create_index(with_alias=True)
                self._settle_first_index()
        self._ready = True

    def _settle_first_index(self) -> None:
        """Two processes using an empty cluster at once each create an index with the alias:
        all agree to keep the oldest and drop the others, so the alias ends on exactly one."""
        indices = self._alias_indices()
        if len(indices) <= 1:
            return
        keep, drop = indices[0], indices[1:]
        try:
            actions = [{"remove": {"index": i, "alias": self.alias}} for i in drop]
            self.client.indices.update_aliases(actions=actions)
            self.client.indices.delete(index=",".join(drop))
        except NotFoundError:
            pass  # the other process dropped them first
        log.info("alias %s: kept %s, dropped %s created concurrently", self.alias, keep, drop)

    def _retry_missing_alias(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; on 'index not found' run it once more. That happens when a search
        resolved the alias just before a reindex swapped it and deleted the old index (the
        rerun reaches the new one), or when someone deleted the alias (it is recreated)."""
        self._ensure()
        try:
            return fn()
        except NotFoundError:
            self._ready = False
            self._ensure()
            return fn()

    def _bulk(self, actions: Iterable[dict[str, Any]], target: str, **kwargs: Any) -> Iterator[int]:
        """Send ``actions`` in chunks of batch_size; yields after each chunk the number of items
        it finished. Items rejected with 429 are retried with exponential backoff (and whole
        requests answered 429/502/503/504 by the client); what still fails, and every other
        rejection, ends in one SearchIndexError naming the documents."""
        failures: list[str] = []
        failed_ids: list[str] = []
        done = 0
        with self._errors(f"bulk indexing into {target!r}"):
            for ok, item in helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=self.batch_size,
                max_retries=self.max_retries,
                initial_backoff=BULK_INITIAL_BACKOFF,
                max_backoff=BULK_MAX_BACKOFF,
                raise_on_error=False,
                **kwargs,
            ):
                ((op, info),) = item.items()
                if not ok and not (op == "delete" and info.get("status") == 404):
                    error = info.get("error") or {}
                    if isinstance(error, dict):
                        why = f"{error.get('type', 'error')}: {error.get('reason', '')}"
                    else:
                        why = str(error)
                    failed_ids.append(str(info.get("_id")))
                    failures.append(f"{info.get('_id')}: {op} → HTTP {info.get('status')} {why}")
                done += 1
                if done % self.batch_size == 0:
                    yield self.batch_size
        if done % self.batch_size:
            yield done % self.batch_size
        if failures:
            shown = ", ".join(failed_ids[:20]) + (" …" if len(failed_ids) > 20 else "")
            raise SearchIndexError(
                f"Elasticsearch at {self.url} rejected {len(failures)} document(s) in "
                f"{target!r}: {shown}. First error: {failures[0]}",
                errors=failures,
            )

    # ------------------------------------------------------------------ writes

    def index(self, records: Iterable[RecordJSON]) -> int:
        docs = [search_document(ds) for ds in records]
        if not docs:
            return 0
        self._ensure()
        actions = (
            {"_op_type": "index", "_index": self.alias, "_id": d["id"], "_source": d} for d in docs
        )
        self._write(actions)
        return len(docs)

    def delete(self, ids: Iterable[str]) -> int:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return 0
        self._ensure()
        self._write({"_op_type": "delete", "_index": self.alias, "_id": i} for i in unique)
        return len(unique)

    def _write(self, actions: Iterable[dict[str, Any]]) -> None:
        """Bulk ``actions`` through the alias, then refresh so readers see them on return;
        when some documents were rejected, the others are still made visible before the
        SearchIndexError naming the rejected ones propagates."""
        try:
            # require_alias: a write never auto-creates a mapping-less index named like the alias.
            for _ in self._bulk(actions, self.alias, require_alias=True):
                pass
        except SearchIndexError:
            self._refresh(self.alias)
            raise
        self._refresh(self.alias)

    def _refresh(self, index: str) -> None:
        with self._errors(f"refreshing {index!r}"):
            self.client.indices.refresh(index=index)

    def reindex(self, records: Iterable[RecordJSON], progress: ProgressFn | None = None) -> int:
        with self._errors("creating a new index"):
            new = self._create_index(with_alias=False, loading=True)
        n = 0
        try:
            actions = (
                {"_op_type": "index", "_index": new, "_id": doc["id"], "_source": doc}
                for doc in map(search_document, records)
            )
            for finished in self._bulk(actions, new):
                n += finished
                if progress is not None:
                    progress(finished)
            with self._errors(f"restoring the refresh interval of {new!r}"):
                self.client.indices.put_settings(
                    index=new, settings={"index": {"refresh_interval": None}}
                )
            self._refresh(new)
            with self._errors(f"moving the alias {self.alias!r} to {new!r}"):
                if self.client.indices.exists(index=self.alias) and not (
                    self.client.indices.exists_alias(name=self.alias)
                ):
                    raise SearchIndexError(
                        f"{self.alias!r} on Elasticsearch at {self.url} is an index, not an "
                        "alias: delete it or choose another search.index"
                    )
                old = self._alias_indices()
                # One call: readers see the old index or the new one, never none or both.
                actions_ = [{"remove": {"index": i, "alias": self.alias}} for i in old]
                actions_.append({"add": {"index": new, "alias": self.alias}})
                self.client.indices.update_aliases(actions=actions_)
        except BaseException:
            self._drop_quietly([new])
            raise
        self._ready = True
        self._drop_quietly(self._stale_indices(keep=new))
        return n

    def _stale_indices(self, *, keep: str) -> list[str]:
        """Our concrete indices other than ``keep``: the one just swapped out, and any left by
        a reindex that died half-way (writers are serialised, so none is being built now)."""
        try:
            found = self.client.indices.get(index=f"{self.alias}-*", expand_wildcards="open,closed")
        except (ApiError, EsConnectionError, ConnectionTimeout) as e:
            log.warning("cannot list old indices of %s: %s", self.alias, _cause(e))
            return []
        return sorted(i for i in found if i != keep and self._is_ours(i))

    def _drop_quietly(self, indices: list[str]) -> None:
        """Delete ``indices``; a failure only leaves garbage behind, so it is logged, not raised."""
        for index in indices:
            try:
                self.client.indices.delete(index=index)
            except NotFoundError:
                pass
            except (ApiError, EsConnectionError, ConnectionTimeout) as e:
                log.warning("cannot delete the old search index %s: %s", index, _cause(e))

    # ------------------------------------------------------------------ reads

    def search(self, query: SearchQuery) -> SearchResult:
        cursor = _decode_cursor(query.cursor, query.sort) if query.cursor else _Cursor()
        # Offset paging stops at max_result_window (deeper from+size is refused by the cluster).
        limit = min(query.limit, MAX_RESULT_WINDOW - cursor.offset)
        # One more than asked tells whether a next page exists, without an empty last page.
        size = min(limit + 1, MAX_RESULT_WINDOW - cursor.offset)
        body: dict[str, Any] = {
            "query": build_query(query),
            "sort": _SORTS[query.sort],
            "size": size,
            "track_total_hits": True,  # exact totals, not 'at least 10000'
            "_source": False,  # the _id is the dataset id: nothing else is needed
        }
        if cursor.after is not None:
            body["search_after"] = cursor.after
        if cursor.offset:
            body["from"] = cursor.offset
        if query.facets:
            body["aggs"] = _facet_aggs(query)
        if query.highlight and any(not c.negated for c in query.clauses):
            body["highlight"] = _highlight()

        def run() -> dict[str, Any]:
            with self._errors("searching"):
                return self.client.search(index=self.alias, **body).body

        resp = self._retry_missing_alias(run)
        raw = resp["hits"]["hits"]
        page = raw[:limit]
        relevance = query.sort is Sort.relevance
        hits = [
            Hit(
                id=h["_id"],
                score=float(h["_score"]) if relevance and h.get("_score") is not None else None,
                highlights={k: list(v) for k, v in (h.get("highlight") or {}).items()},
            )
            for h in page
        ]
        nxt = None
        if len(raw) > limit and page:
            nxt = _encode_cursor(query.sort, after=page[-1]["sort"], offset=cursor.offset + limit)
        facets = self._facets(resp.get("aggregations") or {}, query) if query.facets else {}
        total = int(resp["hits"]["total"]["value"])
        return SearchResult(hits=hits, total=total, facets=facets, next=nxt)

    def _facets(self, aggs: dict[str, Any], query: SearchQuery) -> dict[str, list[FacetValue]]:
        facets: dict[str, list[FacetValue]] = {}
        for name in FACET_FIELDS:
            buckets = aggs.get(name, {}).get("buckets", [])
            ordered = sorted(buckets, key=lambda b: (-int(b["doc_count"]), str(b["key"])))
            facets[name] = [
                FacetValue(
                    str(b["key"]),
                    facet_label(name, str(b["key"]), node_names=self.node_names),
                    int(b["doc_count"]),
                )
                for b in ordered[: query.facet_size]
            ]
        return facets

    def health(self) -> Health:
        # Health answers fast and never raises: one retry, not the configured five.
        client = self.client.options(max_retries=1)
        try:
            if not client.indices.exists_alias(name=self.alias):
                return Health(
                    False,
                    self.name,
                    0,
                    f"no alias {self.alias!r} on Elasticsearch at {self.url} yet: "
                    "run fairnode reindex",
                )
            indices = sorted(client.indices.get_alias(name=self.alias).body)
            count = int(client.count(index=self.alias)["count"])
            mappings = client.indices.get_mapping(index=self.alias).body
        except Exception as e:  # health reports every failure and raises none
            return Health(False, self.name, None, f"Elasticsearch at {self.url}: {_cause(e)}")
        if len(indices) != 1:
            return Health(
                False,
                self.name,
                count,
                f"alias {self.alias!r} at {self.url} points at {len(indices)} indices "
                f"({', '.join(indices)}): run fairnode reindex",
            )
        index = indices[0]
        meta = mappings.get(index, {}).get("mappings", {}).get("_meta", {}).get("fairnode", {})
        if meta.get("fingerprint") != fingerprint():
            return Health(
                False,
                self.name,
                count,
                f"the index {index} at {self.url} was built by another version: "
                "run fairnode reindex",
            )
        return Health(True, self.name, count, f"{count} documents in {index} at {self.url}")

    def close(self) -> None:
        self.client.close()


def _credentials() -> dict[str, Any]:
    """Client auth options from the environment (never from the config file): an API key, or
    a user name and password (basic auth). Both given: the API key wins."""
    api_key = os.environ.get("FAIRNODE_SEARCH_API_KEY", "")
    username = os.environ.get("FAIRNODE_SEARCH_USERNAME", "")
    password = os.environ.get("FAIRNODE_SEARCH_PASSWORD", "")
    if api_key:
        return {"api_key": api_key}
    if username or password:
        missing = "FAIRNODE_SEARCH_PASSWORD" if username else "FAIRNODE_SEARCH_USERNAME"
        if not (username and password):
            raise ConfigError(
                [
                    Problem(
                        "<environment>",
                        missing,
                        "is not set, but basic authentication to Elasticsearch needs both "
                        "FAIRNODE_SEARCH_USERNAME and FAIRNODE_SEARCH_PASSWORD",
                    )
                ]
            )
        # Encoded here as UTF-8 (what Elasticsearch decodes): the client would encode a
        # (user, password) tuple as ASCII and fail on any other character.
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return {"basic_auth": token}
    return {}
