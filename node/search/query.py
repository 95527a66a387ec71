"""User input → ``SearchQuery``: the text syntax, the filters, and every error a person can fix.

The syntax is small on purpose (what catalog users type): words (AND by default), ``"phrases"``,
``field:value``, prefixes ``conf*`` and exclusions ``-word``. It is parsed here, by hand, rather
than handed to a backend's query parser (tantivy's or Elasticsearch's query_string): those accept
far more (ranges, regexes, boosts, fuzzy operators) than we can translate identically to the
other backend or bound in cost, and passing user text through would be an injection into their
languages. A library parser (luqum) would parse the Lucene syntax we then have to reject piece by
piece; forty lines of tokenizer are easier to keep exact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

from node.errors import BadRequestError
from node.ontologies import (
    UnknownTermError,
    fbbi_descendants,
    resolve_imaging_method,
    resolve_organism,
    taxon_descendants,
)
from node.search.backend import (
    FIELD_ALIASES,
    FILTER_FIELDS,
    TEXT_FIELDS,
    Clause,
    ClauseKind,
    SearchQuery,
    Sort,
    analyse,
)

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 20
MAX_PHRASE_WORDS = 12
MAX_FILTER_VALUES = 20
MAX_FILTER_CHARS = 300
MAX_CURSOR_CHARS = 2000
MIN_PREFIX_CHARS = 2

SEARCH_PARAMS = (
    "q",
    *FILTER_FIELDS,
    "acquired_from",
    "acquired_to",
    "has_z",
    "has_t",
    "min_channels",
    "scope",
    "sort",
    "limit",
    "cursor",
)

# A token: optional '-', optional 'field:', then a quoted phrase or a run of non-space.
_TOKEN_RE = re.compile(
    r'(?P<neg>-)?(?:(?P<field>[A-Za-z_]+):)?(?:"(?P<phrase>[^"]*)"|(?P<bare>\S+))'
)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _field_name(name: str, token: str) -> str:
    key = name.lower()
    key = FIELD_ALIASES.get(key, key)
    if key not in TEXT_FIELDS:
        known = ", ".join(sorted(TEXT_FIELDS))
        raise BadRequestError(
            f"unknown search field {name!r} in {token!r}: use one of {known}, "
            f'or put the text in quotes ("{token}") to search for it as it is'
        )
    return key


def _check_quotes(q: str) -> None:
    if q.count('"') % 2:
        pos = q.rfind('"')
        raise BadRequestError(
            f"unbalanced quote in q: the '\"' at position {pos + 1} has no closing quote; "
            "close the phrase or remove the quote"
        )


def parse_text(q: str) -> tuple[Clause, ...]:
    """The clauses of the text query ``q``; BadRequestError saying what to fix."""
    if len(q) > MAX_QUERY_CHARS:
        raise BadRequestError(
            f"q is {len(q)} characters long; the limit is {MAX_QUERY_CHARS}: shorten the query "
            "or use filters"
        )
    if _CONTROL_RE.search(q):
        raise BadRequestError("q contains control characters; remove them")
    _check_quotes(q)
    clauses: list[Clause] = []
    for m in _TOKEN_RE.finditer(q):
        token = m.group(0)
        bare = m.group("bare")
        phrase = m.group("phrase")
        name = m.group("field")
        if bare is not None and name is None and bare in ("AND", "&&"):
            continue  # AND is what every query does already
        if bare is not None and name is None and bare in ("OR", "NOT", "||"):
            raise BadRequestError(
                f"{bare!r} is not supported in q: words are combined with AND; exclude a word "
                "with '-word', and choose several values of a filter for alternatives"
            )
        field = None
        if name is not None:
            if bare is not None and bare.startswith("//"):
                # a URL (https://...): searched as the words it contains
                bare, name = f"{name}:{bare}", None
            else:
                field = _field_name(name, token)
        clause = _clause(token, field, m.group("neg") is not None, phrase, bare)
        if clause is not None:
            clauses.append(clause)
        if len(clauses) > MAX_CLAUSES:
            raise BadRequestError(
                f"q has more than {MAX_CLAUSES} terms; use fewer words or filters instead"
            )
    return tuple(clauses)


def _clause(
    token: str, field: str | None, negated: bool, phrase: str | None, bare: str | None
) -> Clause | None:
    if phrase is not None:
        words = analyse(phrase)
        kind = ClauseKind.phrase if len(words) > 1 else ClauseKind.word
    else:
        assert bare is not None
        if "*" in bare.rstrip("*") or "?" in bare:
            raise BadRequestError(
                f"wildcard in {token!r}: only a '*' at the end of a word is supported (conf*)"
            )
        if bare.endswith("*"):
            words = analyse(bare.rstrip("*"))
            if len(words) != 1 or len(words[0]) < MIN_PREFIX_CHARS:
                raise BadRequestError(
                    f"prefix {token!r} needs one word of at least {MIN_PREFIX_CHARS} letters or "
                    "digits before the '*'"
                )
            return Clause(ClauseKind.prefix, (words[0],), field, negated)
        words = analyse(bare)
        kind = ClauseKind.phrase if len(words) > 1 else ClauseKind.word
    if not words:
        return None  # punctuation only: nothing to search for
    if len(words) > MAX_PHRASE_WORDS:
        raise BadRequestError(
            f"phrase {token[:80]!r} has {len(words)} words; the limit is {MAX_PHRASE_WORDS}"
        )
    return Clause(kind, tuple(words), field, negated)


# --------------------------------------------------------------------------- parameters


def _one(args: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = args.get(name) or []
    if len(values) > 1:
        raise BadRequestError(f"parameter {name!r} is given {len(values)} times; give it once")
    return values[0] if values else None


def _bool(args: Mapping[str, Sequence[str]], name: str) -> bool | None:
    raw = _one(args, name)
    if raw is None or raw == "":
        return None
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise BadRequestError(f"{name}={raw[:40]!r} is not a boolean; use true or false")


def _int(args: Mapping[str, Sequence[str]], name: str, low: int, high: int) -> int | None:
    raw = _one(args, name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"{name}={raw[:40]!r} is not a whole number") from None
    if not low <= value <= high:
        raise BadRequestError(f"{name}={value} is out of range: use {low} to {high}")
    return value


def _date(args: Mapping[str, Sequence[str]], name: str, *, end: bool) -> datetime | None:
    """A date (2024-05-01) or a date-time with zone; a bare date as an upper bound is the end
    of that day."""
    raw = _one(args, name)
    if raw is None or raw == "":
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            return moment + timedelta(days=1) - timedelta(microseconds=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(
            f"{name}={raw[:40]!r} is not a date: use YYYY-MM-DD or an ISO 8601 date-time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _term_iri(name: str, value: str) -> str:
    resolve = resolve_organism if name == "organism" else resolve_imaging_method
    try:
        term = resolve(value)
    except UnknownTermError as e:
        if value.startswith(("http://", "https://")):
            return value  # a term from another vocabulary (harvested records): filter as is
        raise BadRequestError(f"{name}={value[:80]!r}: {e}") from None
    assert term.iri is not None
    return term.iri


def _with_subclasses(name: str, iri: str) -> list[str]:
    """``iri`` and every sub-class of it the node's vocabulary knows (a filter on a class
    matches its sub-classes: 'Vertebrata' finds zebrafish and mouse records). Expanded here, at
    query time, so documents carry only their own terms (a smaller, faster index)."""
    descendants = taxon_descendants if name == "organism" else fbbi_descendants
    try:
        return [iri, *sorted(descendants(iri))]
    except UnknownTermError:
        return [iri]  # a term from another vocabulary: only itself


def parse_filters(args: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Filter name → accepted values. Organism and method accept an IRI, a CURIE or a name
    (resolved through the vocabularies: 'mouse' → NCBITaxon_10090), and match sub-classes."""
    filters: dict[str, tuple[str, ...]] = {}
    for name in FILTER_FIELDS:
        values = [v.strip() for v in args.get(name) or [] if v.strip()]
        if not values:
            continue
        if len(values) > MAX_FILTER_VALUES:
            raise BadRequestError(
                f"{name} is given {len(values)} values; the limit is {MAX_FILTER_VALUES}"
            )
        for v in values:
            if len(v) > MAX_FILTER_CHARS:
                raise BadRequestError(
                    f"a value of {name} is {len(v)} characters long; "
                    f"the limit is {MAX_FILTER_CHARS}"
                )
        if name in ("organism", "method"):
            values = [x for v in values for x in _with_subclasses(name, _term_iri(name, v))]
        filters[name] = tuple(dict.fromkeys(values))
    return filters


def parse_sort(raw: str | None) -> Sort:
    if raw is None or raw == "":
        return Sort.relevance
    try:
        return Sort(raw)
    except ValueError:
        known = ", ".join(s.value for s in Sort)
        raise BadRequestError(f"sort={raw[:40]!r} is not supported: use one of {known}") from None


def build_query(
    args: Mapping[str, Sequence[str]],
    *,
    lifecycles: frozenset[str],
    visibilities: frozenset[str],
    origins: frozenset[str] | None,
    default_limit: int,
    max_limit: int,
) -> SearchQuery:
    """A SearchQuery from request parameters (``args``: name → values), for a caller whose
    access policy allows ``lifecycles`` × ``visibilities`` within the scope ``origins``."""
    unknown = sorted(set(args) - set(SEARCH_PARAMS))
    if unknown:
        raise BadRequestError(
            f"unknown parameter {unknown[0]!r}; search takes: " + ", ".join(SEARCH_PARAMS)
        )
    q = _one(args, "q") or ""
    acquired_from = _date(args, "acquired_from", end=False)
    acquired_to = _date(args, "acquired_to", end=True)
    if acquired_from and acquired_to and acquired_from > acquired_to:
        raise BadRequestError(
            f"acquired_from ({acquired_from.date()}) is after acquired_to ({acquired_to.date()})"
        )
    limit = _int(args, "limit", 1, max_limit)
    cursor = _one(args, "cursor") or None
    if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
        raise BadRequestError("cursor is too long; use the 'next' value of a previous page")
    return SearchQuery(
        clauses=parse_text(q),
        filters=parse_filters(args),
        acquired_from=acquired_from,
        acquired_to=acquired_to,
        has_z=_bool(args, "has_z"),
        has_t=_bool(args, "has_t"),
        min_channels=_int(args, "min_channels", 1, 10_000),
        origins=origins,
        lifecycles=lifecycles,
        visibilities=visibilities,
        sort=parse_sort(_one(args, "sort")),
        limit=limit or default_limit,
        cursor=cursor,
    )
