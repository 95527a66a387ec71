"""The search interface every backend implements, and the query and result types it speaks.

The contract is strict on purpose: both backends (tantivy, Elasticsearch) must return the same
hits and the same facet counts for the same ``SearchQuery`` (tests/search runs one behavioural
suite against both). The semantics every backend implements:

* **Text clauses** (``SearchQuery.clauses``, AND by default). A clause is a word, a phrase or a
  prefix, optionally restricted to one query field (``TEXT_FIELDS``) and optionally negated.
  - a *word* matches a document when one of the clause's fields holds the word exactly, or
    within the edit distance ``fuzziness(word)`` (typo tolerance, transpositions cost one);
    without a field, the match is found on ``ALL_TEXT`` (the same words as all the fields
    together) and scored by the exact word in each field with its boost, so exact matches rank
    above typo neighbours, which all score the same;
  - a *phrase* matches the words adjacent and in order in one field (no slop, no fuzziness);
  - a *prefix* matches any indexed word of the field(s) that starts with it (without a field:
    of ``ALL_TEXT``, every match scoring the same);
  - every non-negated clause must match; a negated clause must not; a query of only negated
    clauses matches everything else.
  Words are already analysed (``analyse``: split on anything but letters and digits, lowercase),
  so backends never parse user text: nothing reaches a query language (no injection).
* **Filters**: within one filter name the values are alternatives (OR), across names all must
  hold (AND). ``organism`` and ``method`` values arrive already expanded to the term and its
  sub-classes (node/search/query.py). Access policy (``lifecycles``,
  ``visibilities``) and scope (``origins``) are filters too, applied to hits and facet counts.
* **Acquisition range**: a document matches ``[acquired_from, acquired_to]`` when its own
  acquisition interval overlaps it (documents without dates never match a range).
* **Facets**: for each name in ``FACET_FIELDS``, the counts of the values of the ``f_`` field
  among ALL matching documents, sorted by count (desc) then value (asc), at most
  ``facet_size`` per facet.
* **Sort**: ``relevance`` (score desc, id asc to break ties), ``newest``/``oldest``
  (``modified``, id as tie-breaker), ``title`` (case-folded title, then id).
* **Cursor**: opaque to callers, produced by the backend; a cursor the backend cannot read is a
  ``BadRequestError`` naming it, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

# A dataset record in its JSON form (``Dataset.to_json()``), as the catalog stores it: backends
# take records in this form so that a reindex streams the catalog without re-validating it.
RecordJSON = Mapping[str, Any]

# Query field name (as written in ``field:value``) → document text field and its boost.
TEXT_FIELDS: dict[str, tuple[str, float]] = {
    "title": ("title", 4.0),
    "keyword": ("keywords", 2.0),
    "description": ("description", 1.0),
    "creator": ("creators", 1.5),
    "channel": ("channels", 1.5),  # channel names and fluorophores
    "organism": ("organism", 2.0),  # organisms' names and synonyms (+ lineage: lineage.py)
    "method": ("method", 2.0),  # methods' labels and synonyms (+ super-classes: lineage.py)
    "instrument": ("instrument", 1.0),
    "format": ("format", 1.0),
}
# Aliases accepted in ``field:value`` for the names people type.
FIELD_ALIASES: dict[str, str] = {
    "keywords": "keyword",
    "author": "creator",
    "creators": "creator",
    "fluor": "channel",
    "channels": "channel",
    "species": "organism",
    "taxon": "organism",
    "technique": "method",
    "microscope": "instrument",
}

# Filter name (API parameter) → keyword document field it filters on.
FILTER_FIELDS: dict[str, str] = {
    "organism": "f_organism",
    "method": "f_method",
    "instrument": "f_instrument",
    "magnification": "f_magnification",
    "fluor": "f_fluor",
    "format": "f_format",
    "origin": "f_origin",
    "license": "f_license",
    "access": "f_access",
}
# Facet name → keyword document field its counts come from (the record's own values).
FACET_FIELDS: dict[str, str] = {
    "organism": "f_organism",
    "method": "f_method",
    "instrument": "f_instrument",
    "magnification": "f_magnification",
    "fluor": "f_fluor",
    "format": "f_format",
    "origin": "f_origin",
    "license": "f_license",
    "access": "f_access",
}
# ``policy`` holds "<lifecycle>/<visibility>" (``policy_key``): the access policy is one filter
# on one field. As two filters (lifecycle, visibility), every query intersected two
# posting lists of ~90 % of the catalog: ~20 ms of a match-all query at 1M records.
KEYWORD_FIELDS: tuple[str, ...] = (
    "id",
    "policy",
    *dict.fromkeys(FACET_FIELDS.values()),
)
# Every text field's words in one field, indexed without frequencies or positions: an
# unrestricted word clause finds its documents (exact or within the edit distance) with ONE
# fuzzy automaton over this field, and only scores them with exact terms per field. Fuzzy
# queries over each of the nine fields built nine large doc sets per word; 2-word queries at 1M
# records took 19 ms (median) that way against 6 ms (bench/search.py, docs/benchmarks.md).
ALL_TEXT = "all_text"


def policy_key(lifecycle: str, visibility: str) -> str:
    """The ``policy`` value of a document: one term per (lifecycle, visibility) pair."""
    return f"{lifecycle}/{visibility}"


def policy_values(query: SearchQuery) -> list[str]:
    """The ``policy`` values the caller of ``query`` may read (every allowed pair)."""
    return sorted(policy_key(lc, v) for lc in query.lifecycles for v in query.visibilities)


_SPLIT_RE = re.compile(r"[^\w]+|_+")


def analyse(text: str) -> list[str]:
    """The words of ``text`` as both backends index them: runs of letters and digits, lowercased.

    Elasticsearch gets the same rule as a pattern tokenizer (``[^\\p{L}\\p{N}]+``), tantivy its
    ``default`` tokenizer (alphanumeric runs, lowercase, words of 40 bytes or more dropped).
    Lowercasing is per character, as the engines do it: Python's ``str.lower`` would turn a
    word-final Σ into ς where both engines index σ."""
    lowered = "".join(c.lower() for c in text)
    return [w for w in _SPLIT_RE.split(lowered) if w and len(w.encode()) < 40]


def fuzziness(word: str) -> int:
    """Edit distance tolerated for ``word``: none below 5 letters (too many false friends),
    1 up to 8 letters, 2 beyond (Elasticsearch's AUTO, shifted one letter up)."""
    n = len(word)
    return 0 if n < 5 else 1 if n < 9 else 2


class ClauseKind(StrEnum):
    word = "word"
    phrase = "phrase"
    prefix = "prefix"


@dataclass(frozen=True)
class Clause:
    """One part of the text query. ``words`` holds one word for ``word`` and ``prefix``."""

    kind: ClauseKind
    words: tuple[str, ...]
    field: str | None = None  # a key of TEXT_FIELDS; None = every text field
    negated: bool = False


class Sort(StrEnum):
    relevance = "relevance"
    newest = "newest"
    oldest = "oldest"
    title = "title"


@dataclass(frozen=True)
class SearchQuery:
    """A validated query: only ``node.search.query`` builds these from user input."""

    clauses: tuple[Clause, ...] = ()
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    acquired_from: datetime | None = None
    acquired_to: datetime | None = None
    has_z: bool | None = None
    has_t: bool | None = None
    min_channels: int | None = None
    origins: frozenset[str] | None = None  # scope; None = every origin
    lifecycles: frozenset[str] = frozenset({"published"})
    visibilities: frozenset[str] = frozenset({"public"})
    sort: Sort = Sort.relevance
    limit: int = 20
    cursor: str | None = None
    facet_size: int = 20
    facets: bool = True
    highlight: bool = True


@dataclass(frozen=True)
class Hit:
    id: str
    score: float | None = None
    # field → HTML fragments: text escaped, matches wrapped in <mark></mark>
    highlights: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class FacetValue:
    value: str
    label: str
    count: int


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    next: str | None = None


@dataclass(frozen=True)
class Health:
    ok: bool
    backend: str
    documents: int | None
    detail: str


ProgressFn = Callable[[int], None]


class SearchBackend(Protocol):
    """What the search service needs from an index. Writers are serialised by the caller
    (the ``search-index`` lease in the catalog), so a backend never sees two writers."""

    name: str

    def index(self, records: Iterable[RecordJSON]) -> int:
        """Add or replace the records' documents; durable and visible to readers on return."""
        ...

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents by dataset id (absent ids are fine); durable on return."""
        ...

    def search(self, query: SearchQuery) -> SearchResult: ...

    def reindex(self, records: Iterable[RecordJSON], progress: ProgressFn | None = None) -> int:
        """Build a new index from ``records`` beside the live one and swap it in atomically:
        readers see the old index until the new one is complete (no downtime)."""
        ...

    def health(self) -> Health: ...

    def close(self) -> None: ...
