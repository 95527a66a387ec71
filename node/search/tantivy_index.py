"""The default search backend: an embedded tantivy index in ``data_dir/search``.

Layout: ``search/CURRENT`` names the live index folder (``idx-<timestamp>``); ``reindex`` builds a
new folder beside it and swaps ``CURRENT`` with one atomic rename, so readers never see a
half-built index. One process writes at a time (the catalog's ``search:index`` lease, and
tantivy's own writer lock as a backstop); web processes only read: their reader reloads on every
commit (tantivy watches the index's meta file), and they reopen when ``CURRENT`` changes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import html
import json
import os
import pickle
import shutil
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import tantivy
from tantivy import Occur, Order, Query

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
from node.search.documents import DOCUMENT_VERSION, facet_label, search_document, title_key
from node.search.errors import SearchUnavailableError
from node.search.lineage import LINEAGE_FIELDS, lineage_matches

if TYPE_CHECKING:
    from node.config import Config

CURRENT = "CURRENT"
META = "fairnode.json"
# Queue drains index small batches: little writer memory. A reindex gets writer_memory_mb.
DRAIN_HEAP = 32_000_000
# A bulk writer (a federation harvest indexing as it goes) keeps one writer for many commits.
BULK_HEAP = 128_000_000
MAX_OFFSET = 100_000  # deepest offset of relevance/title paging (date sorts page by key)
# title sort: hits fetched beyond a page on each side, to hold the ties of its first and last
# title keys; a longer tie is read with a range query, _TIE_FETCH records at a first go
_TIE_MARGIN = 100
_TIE_FETCH = 512
FACET_FETCH = 1000  # values fetched per facet before sorting them our way
_LINEAGE_UNION_MAX = 4  # lineage values matched as a union of term queries; more: a term set
COUNTS_CACHE_SIZE = 256  # queries whose facet counts and total are kept
SNIPPET_FIELDS = ("title", "description")
SNIPPET_CHARS = 200

_TEXT_DOC_FIELDS = [f for f, _ in TEXT_FIELDS.values()]
_DATE_FIELDS = ("acquired_from", "acquired_to", "modified")


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    for name in KEYWORD_FIELDS:
        # raw: one term per value; fast: facets aggregate on it (not id and policy, which only
        # filter: a fast column of a million unique ids cost 7 % of a reindex's CPU); id is
        # stored for hits.
        sb.add_text_field(
            name,
            stored=name == "id",
            fast=name not in ("id", "policy"),
            tokenizer_name="raw",
            index_option="basic",
        )
    for name in _TEXT_DOC_FIELDS:
        sb.add_text_field(name, stored=name in SNIPPET_FIELDS, tokenizer_name="default")
    # doc ids only: it finds documents, the fields above score them
    sb.add_text_field(ALL_TEXT, tokenizer_name="default", index_option="basic")
    # Dates and the date sort key are columns only: every query on them is a range, which runs
    # on the fast field. Their inverted index (a term per distinct second, a million terms at
    # 1M records) cost a quarter of tantivy's indexing CPU and served no query.
    for name in _DATE_FIELDS:
        sb.add_date_field(name, indexed=False, fast=True)
    sb.add_boolean_field("has_z", indexed=True)
    sb.add_boolean_field("has_t", indexed=True)
    sb.add_integer_field("channel_count", indexed=True, fast=True)  # 0-n: a few terms
    sb.add_integer_field("date_key", indexed=False, fast=True)
    # The title order as an integer column (title_prefix_key): a string column of a million
    # unique title keys, with their inverted index, cost a sixth of tantivy's indexing CPU.
    sb.add_integer_field("title_key", indexed=False, fast=True)
    return sb.build()


# of build_schema() and _json(); 2: dates and date_key not indexed (fast fields only);
# 3: title_key an integer, multi-valued text fields sent as one string
SCHEMA_VERSION = 3


def _fingerprint() -> str:
    """Changes whenever what is indexed changes: a stale index asks for `fairnode reindex`."""
    return (
        f"doc-v{DOCUMENT_VERSION}/tantivy-s{SCHEMA_VERSION}-"
        f"{len(KEYWORD_FIELDS)}-{len(_TEXT_DOC_FIELDS)}"
    )


# A word longer than the "default" tokenizer's 40-byte limit: the tokenizer gives it a
# position and its RemoveLongFilter drops it, so joining a field's values with it leaves
# the one-position gap tantivy puts between the values of a list, and indexes nothing more.
_VALUE_GAP = " " + "x" * 41 + " "
_JOINED_FIELDS = tuple(f for f in _TEXT_DOC_FIELDS if f not in ("title", "description"))


def _json(doc: dict[str, Any]) -> str:
    """The document as tantivy's JSON input (one call into Rust per document: several times
    faster than building a tantivy.Document field by field from Python). search_document
    leaves no null (tantivy refuses one) and its empty lists index nothing.

    Each list of text is sent as one string: tantivy parses and indexes every value of a list
    separately, which cost about a tenth of tantivy's indexing work when documents held ~50
    values (docs/benchmarks.md, table 6; ~20 since the lineage is matched at query time).
    Same terms, positions and field lengths (hence scores and phrase matches) as the list:
    tests/search/test_tantivy_document.py checks it."""
    out = dict(doc)  # the caller's document stays as search_document made it
    out[ALL_TEXT] = " ".join(doc[ALL_TEXT])  # doc ids only: no positions to keep apart
    for name in _JOINED_FIELDS:
        values = doc[name]
        if len(values) > 1:
            out[name] = _VALUE_GAP.join(values)
    out["title_key"] = title_prefix_key(doc["title_key"])
    return orjson.dumps(out).decode()


TITLE_PREFIX_CHARS = 8  # ASCII characters: 8 bytes below 0x80 make an integer below 2**63


def title_prefix_key(key: str) -> int:
    """An integer that orders like ``key`` (documents.title_key) on the first
    TITLE_PREFIX_CHARS characters of its title: a < b implies prefix(a) <= prefix(b). Keys can
    tie (titles that start alike); the title sort puts tied records in exact order
    (_page_by_title). The title part of a title key is ASCII (folded); the id after its NUL is
    left out (ids need not be ASCII, and the exact order breaks ties by id anyway)."""
    title = key[:TITLE_PREFIX_CHARS].partition("\x00")[0]
    return int.from_bytes(title.encode("ascii").ljust(TITLE_PREFIX_CHARS, b"\x00"), "big")


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk load. Building documents allocates
    millions of short-lived dicts and lists without cycles; the collector's repeated passes over
    them cost about half of the Python time of a reindex. Reference counting still frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: Sort) -> dict[str, Any]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        payload = None
    ok = isinstance(payload, dict) and payload.get("v") == 1 and payload.get("s") == sort.value
    if ok and sort in (Sort.newest, Sort.oldest):
        ok = isinstance(payload.get("k"), int) and isinstance(payload.get("seen"), list)
        ok = ok and all(isinstance(i, str) for i in payload["seen"])
    elif ok:
        off = payload.get("o")
        ok = isinstance(off, int) and 0 < off <= MAX_OFFSET
    if not ok:
        raise BadRequestError(
            f"cursor {cursor[:60]!r} is not valid for sort={sort.value}; use the 'next' value "
            "of a previous page with the same query"
        )
    return payload


def _add(writer: tantivy.IndexWriter, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        writer.delete_documents_by_term("id", doc["id"])  # its previous version, if any
        writer.add_json(_json(doc))


class BulkWriter:
    """Adds documents as they come and commits when told, in a child process: one writer (and
    its indexing thread) for a whole harvest instead of one per batch, whose setup, commit and
    merge wait cost more than indexing the batch; and the Python half of indexing (the search
    document, tantivy reading its JSON) runs on another core than the harvest, outside its GIL.

    Nothing added is visible, or durable, before ``commit`` returns. A failure (in the child, or
    the child gone) is raised by the next ``commit``; uncommitted documents are then dropped."""

    def __init__(self, index: tantivy.Index, folder: Path, heap: int):
        self.index = index
        root = str(Path(__file__).resolve().parents[2])  # the child imports this package
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(folder), str(heap)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def add(self, records: list[str]) -> None:
        """Index ``records`` (each a dataset record's JSON text, as the catalog stores it)."""
        self._send(("add", records))

    def commit(self) -> None:
        self._call("commit")
        self.index.reload()

    def rollback(self) -> None:
        self._call("rollback")

    def close(self) -> None:
        """Let the writer's merges finish and end the child (what was not committed is
        dropped)."""
        try:
            if self.proc.poll() is None:
                self._call("close")
        finally:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):  # unsent bytes to a child that died
                        stream.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _send(self, message: tuple) -> None:
        assert self.proc.stdin is not None
        try:
            pickle.dump(message, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise RuntimeError(f"the search indexing process ended ({self._ended()})") from e

    def _call(self, op: str) -> None:
        self._send((op,))
        assert self.proc.stdout is not None
        try:
            status, detail = pickle.load(self.proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as e:
            raise RuntimeError(f"the search indexing process ended ({self._ended()})") from e
        if status != "ok":
            raise RuntimeError(f"search indexing failed: {detail}")

    def _ended(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "not answering"
        return f"exit status {code}"


_CHILD = "from node.search.tantivy_index import _bulk_child; _bulk_child()"


def _bulk_child() -> None:
    """The child of a BulkWriter: reads (op, ...) messages on stdin, answers commit, rollback
    and close on stdout. Its parent holds the ``search:index`` lease for it."""
    folder, heap = sys.argv[1], int(sys.argv[2])
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the answer channel

    def answer(status: str, detail: str = "") -> None:
        pickle.dump((status, detail), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    index = tantivy.Index.open(folder)
    writer = index.writer(heap_size=heap, num_threads=1)
    error: str | None = None  # of an add, told at the next commit
    gc.disable()  # documents have no cycles; see _no_gc_pauses
    while True:
        try:
            message = pickle.load(inp)
        except EOFError:
            return  # the parent is gone: nothing more is committed
        op = message[0]
        try:
            if op == "add":
                if error is None:
                    _add(writer, [search_document(orjson.loads(r)) for r in message[1]])
                continue
            if op == "commit":
                if error is not None:
                    raise RuntimeError(error)
                writer.commit()
            elif op == "rollback":
                writer.rollback()
                error = None
            elif op == "close":
                writer.wait_merging_threads()
                answer("ok")
                return
            answer("ok")
        except Exception as e:
            detail = f"{type(e).__name__}: {e}"
            if op == "add":
                error = detail
            else:
                answer("error", detail)


class TantivyBackend:
    """SearchBackend over an embedded tantivy index (see module docstring for the layout)."""

    name = "tantivy"

    def __init__(self, config: Config):
        self.root: Path = config.search_dir
        self.heap = config.search.writer_memory_mb * 1_000_000
        self.node_names = {config.node.id: config.node.name}
        self.schema = build_schema()
        self._lock = threading.Lock()
        self._index: tantivy.Index | None = None
        self._current: str | None = None
        # Facet counts and total per (index generation, query without paging): page turns and
        # repeated queries (the search page's first view) reuse them until the next commit.
        self._counts_cache: OrderedDict[tuple, tuple[dict[str, list[FacetValue]], int]] = (
            OrderedDict()
        )
        # values of f_organism / f_method per (index generation, field): see _lineage
        self._present_cache: dict[tuple, frozenset[str]] = {}

    # ------------------------------------------------------------------ storage

    def _read_current(self) -> str | None:
        try:
            name = (self.root / CURRENT).read_text().strip()
        except FileNotFoundError:
            return None
        return name if name and (self.root / name).is_dir() else None

    def _open(self) -> tantivy.Index | None:
        """The live index, reopened when CURRENT moved to a new folder (after a reindex)."""
        current = self._read_current()
        with self._lock:
            if current is None:
                self._index, self._current = None, None
                return None
            if current != self._current or self._index is None:
                index = tantivy.Index.open(str(self.root / current))
                index.config_reader(reload_policy="OnCommit")
                self._index, self._current = index, current
            return self._index

    def _create(self) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        folder = self.root / f"idx-{stamp}"
        folder.mkdir(parents=True)
        tantivy.Index(self.schema, path=str(folder), reuse=False)
        (folder / META).write_text(
            json.dumps({"fingerprint": _fingerprint(), "created": stamp}), encoding="utf-8"
        )
        return folder

    def _swap(self, folder: Path) -> None:
        tmp = self.root / f".{CURRENT}.tmp"
        tmp.write_text(folder.name, encoding="utf-8")
        os.replace(tmp, self.root / CURRENT)  # atomic: readers see the old or the new name
        for old in self.root.glob("idx-*"):
            if old.name != folder.name:
                # Readers holding the old index keep their open files (POSIX unlink semantics).
                shutil.rmtree(old, ignore_errors=True)

    def _writable(self) -> tantivy.Index:
        index = self._open()
        if index is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._swap(self._create())
            index = self._open()
            assert index is not None
        return index

    # ------------------------------------------------------------------ writes

    def index(self, records: Iterable[RecordJSON]) -> int:
        docs = [search_document(ds) for ds in records]
        if not docs:
            return 0
        index = self._writable()
        writer = index.writer(heap_size=min(self.heap, DRAIN_HEAP), num_threads=1)
        try:
            _add(writer, docs)
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()
        index.reload()
        return len(docs)

    def bulk_writer(self) -> BulkWriter:
        """One writer for many batches, committed when the caller says (see BulkWriter). The
        caller holds the ``search:index`` lease, as for ``index``."""
        index = self._writable()
        assert self._current is not None
        return BulkWriter(index, self.root / self._current, min(self.heap, BULK_HEAP))

    def delete(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        index = self._open()
        if not ids or index is None:
            return 0
        writer = index.writer(heap_size=min(self.heap, DRAIN_HEAP), num_threads=1)
        try:
            for i in ids:
                writer.delete_documents_by_term("id", i)
            writer.commit()
        finally:
            writer.wait_merging_threads()
        index.reload()
        return len(ids)

    def reindex(self, records: Iterable[RecordJSON], progress: ProgressFn | None = None) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self._create()
        try:
            index = tantivy.Index.open(str(folder))
            writer = index.writer(heap_size=self.heap, num_threads=0)
            n = 0
            with _no_gc_pauses():
                for ds in records:
                    writer.add_json(_json(search_document(ds)))
                    n += 1
                    if progress is not None and n % 1000 == 0:
                        progress(1000)
            writer.commit()
            writer.wait_merging_threads()
            if progress is not None and n % 1000:
                progress(n % 1000)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._swap(folder)
        self._open()
        return n

    # ------------------------------------------------------------------ reads

    def health(self) -> Health:
        try:
            index = self._open()
        except (OSError, ValueError) as e:
            return Health(False, self.name, None, f"cannot open the index in {self.root}: {e}")
        if index is None:
            return Health(False, self.name, 0, f"no index in {self.root} yet: run fairnode reindex")
        meta_path = self.root / (self._current or "") / META
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        docs = index.searcher().num_docs
        if meta.get("fingerprint") != _fingerprint():
            return Health(
                False,
                self.name,
                docs,
                f"the index in {self.root} was built by another version: run fairnode reindex",
            )
        return Health(True, self.name, docs, f"{docs} documents in {self.root / self._current}")

    def _exact(self, field: str, word: str, boost: float) -> Query:
        """The word itself in ``field``: it scores above its typo neighbours (twice the boost)."""
        return Query.boost_query(Query.term_query(self.schema, field, word), boost * 2)

    def _word(self, field: str, word: str, boost: float) -> Query:
        exact = self._exact(field, word, boost)
        distance = fuzziness(word)
        if not distance:
            return exact
        fuzzy = Query.fuzzy_term_query(
            self.schema, field, word, distance=distance, transposition_cost_one=True
        )
        return Query.boolean_query(
            [(Occur.Should, exact), (Occur.Should, Query.boost_query(fuzzy, boost))]
        )

    def _lineage(self, clause: Clause, boost: float, base: float = 0.0) -> list[Query]:
        """The records the clause matches through their terms' lineage (node/search/lineage.py),
        each field's set scoring a constant: ``base`` plus ``boost`` times the field's boost.

        The sets hold every sub-class the vocabulary knows ('low' names ~1,100 taxa); they are
        cut down to the values the index holds (its term dictionary: a few dozen on most
        nodes), and a short set is a union of term queries: a term set query first collects
        every matching document into a bit set, where a union skips along the postings inside
        a conjunction ('low zargel': 7 ms against 3.6 ms at 1M records)."""
        out: list[Query] = []
        for name, iris in lineage_matches(clause).items():
            field = LINEAGE_FIELDS[name]
            values = sorted(iris & self._present(field))
            if not values:
                continue
            if len(values) <= _LINEAGE_UNION_MAX:
                found = _any(
                    [Query.term_query(self.schema, field, v, index_option="basic") for v in values]
                )
            else:
                found = Query.term_set_query(self.schema, field, values)
            out.append(Query.const_score_query(found, base + boost * TEXT_FIELDS[name][1]))
        return out

    def _present(self, field: str) -> frozenset[str]:
        """The values of the keyword ``field`` in the live index (from its term dictionary,
        ~0.1 ms for a few dozen values), kept until the next commit."""
        index = self._index
        if index is None:
            return frozenset()
        key = (self._generation(), field)
        with self._lock:
            found = self._present_cache.get(key)
        if found is None:
            # The reader follows commits a moment late (tantivy watches meta.json): reloaded
            # first, it holds at least the generation of the key, so no value committed by then
            # is left out for as long as the key lasts.
            index.reload()
            found = frozenset(t for t, _ in index.searcher().terms_with_prefix(field, ""))
            with self._lock:
                if len(self._present_cache) >= 2 * len(LINEAGE_FIELDS):
                    self._present_cache.clear()  # an older generation's
                self._present_cache[key] = found
        return found

    def _clause(self, clause: Clause) -> Query:
        if clause.field is None and clause.kind is not ClauseKind.phrase:
            return self._all_text_clause(clause)
        fields = [TEXT_FIELDS[clause.field]] if clause.field else list(TEXT_FIELDS.values())
        parts: list[Query] = []
        for field, boost in fields:
            if clause.kind is ClauseKind.word:
                parts.append(self._word(field, clause.words[0], boost))
            elif clause.kind is ClauseKind.phrase:
                q = Query.phrase_query(self.schema, field, list(clause.words))
                parts.append(Query.boost_query(q, boost * 2))
            else:
                q = Query.fuzzy_term_query(
                    self.schema, field, clause.words[0], distance=0, prefix=True
                )
                parts.append(Query.boost_query(q, boost))
        # a lineage match scores like the clause's exact match in the field (a prefix: like any)
        parts.extend(self._lineage(clause, 1.0 if clause.kind is ClauseKind.prefix else 2.0))
        return Query.boolean_query([(Occur.Should, p) for p in parts])

    def _all_text_clause(self, clause: Clause) -> Query:
        """An unrestricted word or prefix: matched on ALL_TEXT (one automaton, one doc set) or
        through the lineage. A prefix scores 1. A word scores 1 when found in ALL_TEXT, 1 plus
        twice the field's boost for a lineage match, plus its exact occurrences in each field
        with their boosts (a lineage set is evaluated once: it can hold most of the index)."""
        word = clause.words[0]
        if clause.kind is ClauseKind.prefix:
            found = Query.fuzzy_term_query(self.schema, ALL_TEXT, word, distance=0, prefix=True)
            return Query.const_score_query(_any([found, *self._lineage(clause, 1.0)]), 1.0)
        distance = fuzziness(word)
        text = (
            Query.fuzzy_term_query(
                self.schema, ALL_TEXT, word, distance=distance, transposition_cost_one=True
            )
            if distance
            else Query.term_query(self.schema, ALL_TEXT, word)
        )
        found = _any([Query.const_score_query(text, 1.0), *self._lineage(clause, 2.0, base=1.0)])
        subs = [(Occur.Must, found)]
        subs.extend(
            (Occur.Should, self._exact(field, word, boost)) for field, boost in TEXT_FIELDS.values()
        )
        return Query.boolean_query(subs)

    def _filter(self, field: str, values: Iterable[str]) -> Query:
        values = list(values)
        if len(values) == 1:
            # One value: a term query walks (and skips along) its posting list; a term-set query
            # first collects every matching document into a bit set, which for the policy of an
            # anonymous caller (~80 % of the catalog) cost ~5 ms of every query at 1M records.
            return Query.term_query(self.schema, field, values[0], index_option="basic")
        return Query.term_set_query(self.schema, field, values)

    def _query(self, query: SearchQuery, *, text_only: bool = False) -> Query:
        subs: list[tuple[Occur, Query]] = []
        positive = False
        for clause in query.clauses:
            if clause.negated:
                subs.append((Occur.MustNot, self._clause(clause)))
            else:
                subs.append((Occur.Must, self._clause(clause)))
                positive = True
        if text_only:
            return Query.boolean_query(subs) if positive else Query.empty_query()
        # Without a positive text clause the policy filter (always there, and required) is what
        # the documents are drawn from: no all_query() to intersect it with, which cost the
        # match-all query's top 20 as much again as walking the policy's postings (13 against
        # 7 ms at 1M records).
        filters: list[Query] = [self._filter("policy", policy_values(query))]
        if query.origins is not None:
            filters.append(self._filter("f_origin", query.origins))
        for name, values in query.filters.items():
            filters.append(self._filter(FILTER_FIELDS[name], values))
        # Date ranges run on the fast (columnar) fields: on the inverted index a range over a
        # million distinct timestamps costs hundreds of milliseconds. Documents without an
        # acquisition date have no value and never match, as the contract says.
        if query.acquired_to is not None:
            filters.append(
                Query.range_query(
                    self.schema, "acquired_from", tantivy.FieldType.Date, None, query.acquired_to
                )
            )
        if query.acquired_from is not None:
            filters.append(
                Query.range_query(
                    self.schema, "acquired_to", tantivy.FieldType.Date, query.acquired_from, None
                )
            )
        for name in ("has_z", "has_t"):
            value = getattr(query, name)
            if value is not None:
                filters.append(Query.term_query(self.schema, name, value))
        if query.min_channels is not None:
            filters.append(
                Query.range_query(
                    self.schema,
                    "channel_count",
                    tantivy.FieldType.Integer,
                    query.min_channels,
                    None,
                    use_inverted_index=True,
                )
            )
        # Filters never change the score: relevance comes from the text alone.
        subs.extend((Occur.Must, Query.const_score_query(f, 0.0)) for f in filters)
        if len(subs) == 1:  # the policy alone (match-all): a one-clause boolean only costs
            return subs[0][1]
        return Query.boolean_query(subs)

    def search(self, query: SearchQuery) -> SearchResult:
        try:
            return self._search(query)
        except (ValueError, OSError) as e:  # tantivy's errors: a damaged or foreign index
            raise SearchUnavailableError(
                f"the search index in {self.root} cannot be read ({e}); "
                "run `fairnode reindex` to rebuild it from the catalog"
            ) from e

    def _search(self, query: SearchQuery) -> SearchResult:
        index = self._open()
        if index is None:
            if query.cursor:
                _decode_cursor(query.cursor, query.sort)
            return SearchResult(hits=[], total=0, facets={}, next=None)
        searcher = index.searcher()
        base = self._query(query)
        # The total is kept with the facet counts (same query, same index generation): a page
        # turn or a repeated query skips the counting pass, which walks every matching
        # document (~10 ms for the 800,000 a match-all query finds at 1M records).
        key = self._counts_key(query) if query.facets else None
        cached = self._cached_counts(key) if key is not None else None
        known = cached[1] if cached is not None else None
        if query.sort in (Sort.newest, Sort.oldest):
            hits, total, nxt = self._page_by_date(searcher, base, query, known)
        else:
            hits, total, nxt = self._page_by_offset(searcher, base, query, known)
        facets: dict[str, list[FacetValue]] = {}
        if cached is not None:
            facets = cached[0]
        elif key is not None:
            facets = self._facets(searcher, base, query)
            self._remember_counts(key, (facets, total))
        highlights = self._highlight(searcher, query, hits) if query.highlight and hits else {}
        return SearchResult(
            hits=[Hit(r.id, r.score, highlights.get(r.id, {})) for r in hits],
            total=total,
            facets=facets,
            next=nxt,
        )

    def _page_by_offset(
        self, searcher: tantivy.Searcher, base: Query, query: SearchQuery, total: int | None
    ) -> tuple[list, int, str | None]:
        offset = _decode_cursor(query.cursor, query.sort)["o"] if query.cursor else 0
        limit = min(query.limit, MAX_OFFSET - offset) if offset < MAX_OFFSET else 0
        if limit == 0:
            return [], total if total is not None else _count(searcher, base), None
        if query.sort is Sort.title:
            rows, total, more = self._page_by_title(searcher, base, offset, limit, total)
        else:
            count = total is None
            result = searcher.search(base, limit + 1, count=count, offset=offset)
            relevance = query.sort is Sort.relevance
            rows = [
                _Row(searcher.doc(addr), score if relevance else None, None)
                for score, addr in result.hits[:limit]
            ]
            more = len(result.hits) > limit
            total = result.count if count else total
        more = more and offset + limit < MAX_OFFSET
        nxt = _encode_cursor({"v": 1, "s": query.sort.value, "o": offset + limit}) if more else None
        return rows, total, nxt

    def _page_by_title(
        self, searcher: tantivy.Searcher, base: Query, offset: int, limit: int, total: int | None
    ) -> tuple[list[_Row], int, bool]:
        """Records ``offset`` to ``offset + limit`` in exact title order, whether more follow.

        tantivy sorts on the ``title_key`` column, which orders records by the first
        characters of their titles only (title_prefix_key): records whose keys tie come in
        index order. Every position holds a record of the same key in both orders, so the
        page's records are those of the keys from its first to its last, cut from their exact
        order. The hits fetched reach _TIE_MARGIN positions beyond the page on both sides,
        which usually holds every record of those keys; a longer tie is read with a range
        query on the column (after counting the records before it)."""
        start = max(offset - _TIE_MARGIN, 0)
        wanted = offset - start + limit + _TIE_MARGIN
        count = total is None
        result = searcher.search(
            base, wanted, count=count, offset=start, order_by_field="title_key", order=Order.Asc
        )
        if total is None:
            total = result.count
        hits = result.hits
        first = offset - start
        page = hits[first : first + limit]
        if not page:
            return [], total, False
        more = offset + limit < total
        lo, hi = page[0][0], page[-1][0]
        begin = first  # the window's first record of key lo
        while begin > 0 and hits[begin - 1][0] == lo:
            begin -= 1
        end = first + len(page)  # past the window's last record of key hi
        while end < len(hits) and hits[end][0] == hi:
            end += 1
        starts_in_window = begin > 0 or start == 0  # a smaller key (or nothing) before lo
        ends_in_window = end < len(hits) or len(hits) < wanted
        if starts_in_window and ends_in_window:  # the usual case
            members = hits[begin:end]
        else:  # a tie longer than the margin: every record of keys lo to hi
            keys = Query.range_query(self.schema, "title_key", tantivy.FieldType.Integer, lo, hi)
            in_range = Query.boolean_query([(Occur.Must, base), (Occur.Must, keys)])
            found = searcher.search(in_range, _TIE_FETCH, count=True, order_by_field="title_key")
            if found.count > len(found.hits):
                found = searcher.search(in_range, found.count, order_by_field="title_key")
            members = found.hits
        if starts_in_window:
            skipped = start + begin
        else:  # the records before key lo, counted
            before = Query.range_query(
                self.schema, "title_key", tantivy.FieldType.Integer, None, lo, include_upper=False
            )
            skipped = _count(
                searcher, Query.boolean_query([(Occur.Must, base), (Occur.Must, before)])
            )
        rows = _by_title([_Row(searcher.doc(addr), None, key) for key, addr in members])
        cut = offset - skipped
        return rows[cut : cut + limit], total, more

    def _page_by_date(
        self, searcher: tantivy.Searcher, base: Query, query: SearchQuery, total: int | None
    ) -> tuple[list, int, str | None]:
        """Keyset paging on ``date_key``: the cursor holds the last key and the ids already
        served with that key, so records written meanwhile never shift a page."""
        desc = query.sort is Sort.newest
        if total is None:
            total = _count(searcher, base)
        q = base
        seen: list[str] = []
        if query.cursor:
            cur = _decode_cursor(query.cursor, query.sort)
            key, seen = cur["k"], cur["seen"]
            lower, upper = (None, key) if desc else (key, None)
            # on the fast field (date_key has no inverted index: see build_schema)
            rng = Query.range_query(
                self.schema, "date_key", tantivy.FieldType.Integer, lower, upper
            )
            subs = [(Occur.Must, q), (Occur.Must, rng)]
            if seen:
                subs.append((Occur.MustNot, self._filter("id", seen)))
            q = Query.boolean_query(subs)
        result = searcher.search(
            q,
            query.limit + 1,
            count=False,
            order_by_field="date_key",
            order=Order.Desc if desc else Order.Asc,
        )
        rows = [_Row(searcher.doc(addr), None, key) for key, addr in result.hits]
        page, more = rows[: query.limit], len(rows) > query.limit
        nxt = None
        if more and page:
            last_key = page[-1].key
            same = [r.id for r in page if r.key == last_key]
            carried = seen if query.cursor and last_key == cur["k"] else []
            nxt = _encode_cursor(
                {"v": 1, "s": query.sort.value, "k": last_key, "seen": carried + same}
            )
        return page, total, nxt

    def _generation(self) -> tuple[str | None, int, int]:
        """Changes with every commit: tantivy replaces meta.json atomically (a new inode) at each
        commit; its mtime is checked too."""
        try:
            st = (self.root / (self._current or "") / "meta.json").stat()
        except OSError:
            return self._current, -1, -1
        return self._current, st.st_ino, st.st_mtime_ns

    def _counts_key(self, query: SearchQuery) -> tuple:
        """What the total and the facet counts of ``query`` depend on: everything but paging
        and sort, and the index generation."""
        return (
            self._generation(),
            query.clauses,
            tuple(sorted(query.filters.items())),
            query.acquired_from,
            query.acquired_to,
            query.has_z,
            query.has_t,
            query.min_channels,
            query.origins,
            query.lifecycles,
            query.visibilities,
            query.facet_size,
        )

    def _cached_counts(self, key: tuple) -> tuple[dict[str, list[FacetValue]], int] | None:
        with self._lock:
            hit = self._counts_cache.get(key)
            if hit is not None:
                self._counts_cache.move_to_end(key)
            return hit

    def _remember_counts(self, key: tuple, counts: tuple[dict[str, list[FacetValue]], int]) -> None:
        with self._lock:
            self._counts_cache[key] = counts
            while len(self._counts_cache) > COUNTS_CACHE_SIZE:
                self._counts_cache.popitem(last=False)

    def _facets(
        self, searcher: tantivy.Searcher, base: Query, query: SearchQuery
    ) -> dict[str, list[FacetValue]]:
        aggs = {
            name: {"terms": {"field": field, "size": FACET_FETCH}}
            for name, field in FACET_FIELDS.items()
        }
        raw = searcher.aggregate(base, aggs)
        facets: dict[str, list[FacetValue]] = {}
        for name in FACET_FIELDS:
            buckets = raw.get(name, {}).get("buckets", [])
            ordered = sorted(buckets, key=lambda b: (-b["doc_count"], str(b["key"])))
            facets[name] = [
                FacetValue(
                    str(b["key"]),
                    facet_label(name, str(b["key"]), node_names=self.node_names),
                    int(b["doc_count"]),
                )
                for b in ordered[: query.facet_size]
            ]
        return facets

    def _highlight(
        self, searcher: tantivy.Searcher, query: SearchQuery, rows: list[_Row]
    ) -> dict[str, dict[str, list[str]]]:
        text = self._query(query, text_only=True)
        generators = {}
        for field in SNIPPET_FIELDS:
            gen = tantivy.SnippetGenerator.create(searcher, text, self.schema, field)
            gen.set_max_num_chars(SNIPPET_CHARS)
            generators[field] = gen
        out: dict[str, dict[str, list[str]]] = {}
        for row in rows:
            highlights: dict[str, list[str]] = {}
            for field, gen in generators.items():
                snippet = gen.snippet_from_doc(row.doc)
                if snippet.highlighted():
                    text = row.doc[field][0]
                    html_ = _snippet_html(snippet, text, whole=field == "title")
                    highlights[field] = [html_]
            out[row.id] = highlights
        return out

    def close(self) -> None:
        with self._lock:
            self._index = None
            self._current = None


def _count(searcher: tantivy.Searcher, query: Query) -> int:
    return searcher.search(query, 1, count=True).count  # tantivy needs a limit > 0


def _any(queries: list[Query]) -> Query:
    """Any of ``queries`` (the query itself when there is one)."""
    return (
        queries[0]
        if len(queries) == 1
        else Query.boolean_query([(Occur.Should, q) for q in queries])
    )


def _by_title(rows: list[_Row]) -> list[_Row]:
    """``rows`` in exact title order (documents.title_key, from the stored title and id)."""
    return sorted(rows, key=lambda r: title_key(r.doc.get_first("title") or "", r.id))


class _Row:
    """One hit while a page is assembled: its stored document, score and sort key."""

    __slots__ = ("doc", "id", "key", "score")

    def __init__(self, doc: tantivy.Document, score: float | None, key: int | None):
        self.doc = doc
        self.id: str = doc["id"][0]
        self.score = score
        self.key = key


def _snippet_html(snippet: tantivy.Snippet, text: str, *, whole: bool) -> str:
    """HTML of a highlight: text escaped, every highlighted range in <mark>. ``whole`` renders
    all of ``text`` (titles), otherwise the snippet's fragment with ellipses where it was cut.
    Ranges are byte offsets into the fragment, which starts at ``fragment_range().start``."""
    data = text.encode()
    shift = snippet.fragment_range().start
    if whole:
        begin, end = 0, len(data)
    else:
        begin, end = shift, snippet.fragment_range().end
    parts: list[str] = ["…" if begin > 0 else ""]
    pos = begin
    for r in sorted(snippet.highlighted(), key=lambda r: r.start):
        start, stop = r.start + shift, r.end + shift
        parts.append(html.escape(data[pos:start].decode(errors="ignore")))
        parts.append(f"<mark>{html.escape(data[start:stop].decode(errors='ignore'))}</mark>")
        pos = stop
    parts.append(html.escape(data[pos:end].decode(errors="ignore")))
    parts.append("…" if end < len(data) else "")
    return "".join(parts)
