"""Ontology lineage of the text query, matched at query time, the same for every backend.

A word that names a super-class finds the records of its sub-classes: 'rodents' (the order's
common name) finds mouse records, 'fluorescence' finds spinning-disk confocal records. Search
documents carry only their own terms' names (node/search/documents.py); here a text clause is
matched against the names each term lends to its sub-classes (NCBITaxon: the scientific and
common names of the major ranks; FBbi: the labels), and the matched terms' sub-classes become
IRIs the backends look for in the ``f_organism``/``f_method`` fields.

The names are matched by a small in-memory tantivy index with the clause semantics of the
search index itself (node/search/backend.py): the same analyser, a word exact or within
``fuzziness(word)`` edits (transpositions cost one), a prefix, a phrase within one name. Both
backends get the same IRIs, so they agree on which records match.

Why at query time: the lineage text of a record (~50 names: mouse has 9 ancestors at major
ranks, each with its common names, and methods 5-10 super-classes) was two thirds of a
document's organism and method text and 40 % of the JSON tantivy parsed; leaving it out made a
reindex 10-15 % cheaper (docs/benchmarks.md, table 7), for a vocabulary that fits in a few
hundred kilobytes here.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import tantivy
from tantivy import Occur, Query

from node.ontologies import (
    fbbi_below,
    imaging_method_lineage_names,
    ontologies_dir,
    organism_lineage_names,
    taxa_below,
)
from node.search.backend import Clause, ClauseKind, fuzziness

# text field key (TEXT_FIELDS) → the keyword field holding the record's own term IRIs
LINEAGE_FIELDS: dict[str, str] = {"organism": "f_organism", "method": "f_method"}
_BELOW = {"organism": taxa_below, "method": fbbi_below}
# Kept: the terms each clause matches (a few IRIs), and the sub-classes of each set of terms
# (up to ~7,000 IRIs, ~0.4 MB: many clauses match the same few classes).
_CLAUSES_KEPT = 4096
_SETS_KEPT = 128


class _Names:
    """The names terms lend to their sub-classes, one tantivy document per term."""

    def __init__(self) -> None:
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("name", tokenizer_name="default")  # positions: phrases
        sb.add_text_field("field", tokenizer_name="raw", index_option="basic")
        sb.add_text_field("iri", stored=True, tokenizer_name="raw", index_option="basic")
        self.schema = sb.build()
        index = tantivy.Index(self.schema)  # in memory
        writer = index.writer(heap_size=50_000_000, num_threads=1)
        self.size = 0
        for field, lent in (
            ("organism", organism_lineage_names()),
            ("method", imaging_method_lineage_names()),
        ):
            for iri, names in lent.items():
                # a list: one position between names, as the index has between values, so a
                # phrase never spans two names
                writer.add_document(tantivy.Document(name=names, field=[field], iri=[iri]))
                self.size += 1
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        self.searcher = index.searcher()

    def _text(self, clause: Clause) -> Query:
        word = clause.words[0]
        if clause.kind is ClauseKind.phrase:
            return Query.phrase_query(self.schema, "name", list(clause.words))
        if clause.kind is ClauseKind.prefix:
            return Query.fuzzy_term_query(self.schema, "name", word, distance=0, prefix=True)
        exact = Query.term_query(self.schema, "name", word)
        distance = fuzziness(word)
        if not distance:
            return exact
        fuzzy = Query.fuzzy_term_query(
            self.schema, "name", word, distance=distance, transposition_cost_one=True
        )
        return Query.boolean_query([(Occur.Should, exact), (Occur.Should, fuzzy)])

    def terms(self, clause: Clause, field: str) -> list[str]:
        """IRIs of the ``field`` terms with a name the clause matches."""
        query = Query.boolean_query(
            [
                (Occur.Must, self._text(clause)),
                (Occur.Must, Query.term_query(self.schema, "field", field)),
            ]
        )
        hits = self.searcher.search(query, self.size).hits
        return [self.searcher.doc(address)["iri"][0] for _, address in hits]


_built: dict[Path, _Names] = {}
_build_lock = threading.Lock()


def _names(directory: Path | None = None) -> _Names:
    """The names of the vocabularies in ``directory`` (ontologies_dir()), built on first use
    (~0.3 s: taxslim is read then) and kept."""
    directory = directory or ontologies_dir()
    names = _built.get(directory)
    if names is None:
        with _build_lock:
            names = _built.get(directory)
            if names is None:
                names = _built[directory] = _Names()
    return names


def warm_up_in_background() -> threading.Thread:
    """Build the names (``_names``) in a daemon thread, so that a web process's first text
    query does not wait ~0.3 s for them: node.wsgi and ``fairnode serve`` call it once per
    process. A query arriving before it is done waits on the same lock, never builds twice."""
    thread = threading.Thread(target=_names, name="fairnode-lineage-warm-up", daemon=True)
    thread.start()
    return thread


def lineage_fields(clause: Clause) -> tuple[str, ...]:
    """The keys of LINEAGE_FIELDS a clause looks in: both without a field, else its own."""
    if clause.field is None:
        return tuple(LINEAGE_FIELDS)
    return (clause.field,) if clause.field in LINEAGE_FIELDS else ()


@functools.lru_cache(maxsize=_CLAUSES_KEPT)
def _matched(
    directory: Path, kind: ClauseKind, words: tuple[str, ...], field: str
) -> frozenset[str]:
    return frozenset(_names(directory).terms(Clause(kind, words, field), field))


@functools.lru_cache(maxsize=_SETS_KEPT)
def _below(directory: Path, field: str, terms: frozenset[str]) -> frozenset[str]:
    return frozenset(_BELOW[field](terms))


def lineage_matches(clause: Clause) -> dict[str, frozenset[str]]:
    """Text field key → IRIs of the records' own terms the clause matches through their
    lineage: the sub-classes (transitive) of every term with a name the clause matches. A key
    is left out when nothing matches. The term itself is not among them: a record of that term
    holds the name in its own text."""
    out: dict[str, frozenset[str]] = {}
    directory = ontologies_dir()
    for field in lineage_fields(clause):
        terms = _matched(directory, clause.kind, clause.words, field)
        below = _below(directory, field, terms) if terms else frozenset()
        if below:
            out[field] = below
    return out
