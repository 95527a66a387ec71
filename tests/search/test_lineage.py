"""Lineage matching at query time (node/search/lineage.py) and the names it matches
(node/ontologies.py)."""

from __future__ import annotations

import os

from node.ontologies import (
    fbbi_below,
    fbbi_descendants,
    imaging_method_lineage_names,
    organism_lineage_names,
    taxa_below,
    taxon_descendants,
)
from node.search.backend import Clause, ClauseKind
from node.search.lineage import lineage_matches

OBO = "http://purl.obolibrary.org/obo/"
MOUSE = OBO + "NCBITaxon_10090"
HUMAN = OBO + "NCBITaxon_9606"
ZEBRAFISH = OBO + "NCBITaxon_7955"
RODENTIA = OBO + "NCBITaxon_9989"
MAMMALIA = OBO + "NCBITaxon_40674"
VERTEBRATA = OBO + "NCBITaxon_7742"
CONFOCAL = OBO + "FBbi_00000251"
SPINNING_DISK = OBO + "FBbi_00000253"


def test_major_ranks_lend_their_scientific_and_common_names():
    lent = organism_lineage_names()
    assert lent[RODENTIA][0] == "Rodentia"
    assert {"rodent", "rodents"} <= set(lent[RODENTIA])
    assert "mammals" in lent[MAMMALIA]
    assert VERTEBRATA not in lent  # a clade between the ranks people search by
    assert MOUSE not in lent  # a species: its names are in its records' own text
    methods = imaging_method_lineage_names()
    assert methods[CONFOCAL] == ["confocal microscopy"]
    assert OBO + "FBbi_00000222" not in methods  # the root 'imaging method' names a branch
    # so 'imaging' does not find every record with an imaging method
    imaging = lineage_matches(Clause(ClauseKind.word, ("imaging",))).get("method", frozenset())
    assert SPINNING_DISK not in imaging
    assert SPINNING_DISK in lineage_matches(Clause(ClauseKind.word, ("microscopy",)))["method"]


def test_below_walks_several_terms_at_once():
    assert taxa_below([RODENTIA, MAMMALIA]) == taxon_descendants(MAMMALIA)
    assert RODENTIA in taxa_below([MAMMALIA])  # a start below another start is kept
    assert MAMMALIA not in taxa_below([MAMMALIA])
    assert taxa_below([CONFOCAL, "https://example.org/unknown"]) == set()  # not taxa
    assert fbbi_below([CONFOCAL]) == fbbi_descendants(CONFOCAL)


def test_a_word_matches_the_sub_classes_of_the_terms_it_names():
    found = lineage_matches(Clause(ClauseKind.word, ("rodents",)))
    assert set(found) == {"organism"}
    assert MOUSE in found["organism"]
    assert RODENTIA not in found["organism"]  # its own records hold the name
    assert HUMAN not in found["organism"]
    method = lineage_matches(Clause(ClauseKind.word, ("confocal",)))["method"]
    assert SPINNING_DISK in method
    assert CONFOCAL not in method


def test_the_clause_field_chooses_the_vocabulary():
    assert set(lineage_matches(Clause(ClauseKind.word, ("rodents",), "organism"))) == {"organism"}
    assert lineage_matches(Clause(ClauseKind.word, ("rodents",), "method")) == {}
    assert lineage_matches(Clause(ClauseKind.word, ("rodents",), "title")) == {}
    assert lineage_matches(Clause(ClauseKind.word, ("zargel",))) == {}


def test_typos_prefixes_and_phrases_follow_the_index_rules():
    mammals = taxon_descendants(MAMMALIA)
    assert mammals <= lineage_matches(Clause(ClauseKind.word, ("mammalia",)))["organism"]
    assert mammals <= lineage_matches(Clause(ClauseKind.word, ("mamalia",)))["organism"]
    assert ZEBRAFISH not in lineage_matches(Clause(ClauseKind.word, ("mamalia",)))["organism"]
    assert lineage_matches(Clause(ClauseKind.word, ("mamlia",))) == {}  # 7 letters: 1 edit
    rodents = lineage_matches(Clause(ClauseKind.word, ("rodents",)))["organism"]
    assert lineage_matches(Clause(ClauseKind.word, ("rodent",)))["organism"] == rodents
    assert lineage_matches(Clause(ClauseKind.word, ("rdoents",)))["organism"] == rodents
    assert lineage_matches(Clause(ClauseKind.word, ("rode",))) == {}  # 4 letters: exact only
    assert rodents <= lineage_matches(Clause(ClauseKind.prefix, ("rode",)))["organism"]
    apes = lineage_matches(Clause(ClauseKind.phrase, ("great", "apes")))["organism"]
    assert HUMAN in apes
    assert MOUSE not in apes
    assert lineage_matches(Clause(ClauseKind.phrase, ("apes", "great"))) == {}


def test_a_reader_process_finds_a_new_organism_after_the_writer_commits(tmp_path):
    """A web process reads the index the worker writes. tantivy's reader follows commits a
    moment late; the values the reader's lineage sets are cut down to must not stay those
    of the index before the commit."""
    import time

    from search_helpers import corpus, make_backend

    from node.ontologies import resolve_organism
    from node.search.query import build_query

    def rodents(backend) -> set[str]:
        q = build_query(
            {"q": ["rodents"]},
            lifecycles=frozenset({"published"}),
            visibilities=frozenset({"public"}),
            origins=None,
            default_limit=50,
            max_limit=100,
        )
        return {h.id for h in backend.search(q).hits}

    writer = make_backend("tantivy", tmp_path)
    writer.reindex(d.to_json() for d in corpus())
    reader = make_backend("tantivy", tmp_path)
    assert rodents(reader) == {"d01", "d06"}
    rat = corpus()[0].model_copy(
        update={"id": "d96", "organisms": [resolve_organism("Rattus norvegicus")]}
    )
    writer.index([rat.to_json()])
    for _ in range(10):  # the reader's first queries may still see the index before
        found = rodents(reader)
        if "d96" in found:
            break
    deadline = time.monotonic() + 10
    while "d96" not in found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = rodents(reader)
    assert found == {"d01", "d06", "d96"}


def test_a_gunicorn_worker_builds_the_names_before_its_first_query(tmp_path):
    """node.wsgi (what each gunicorn worker imports) starts building the lineage names in the
    background; a query afterwards finds them built and builds nothing again."""
    import subprocess
    import sys
    import textwrap

    config = tmp_path / "node.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [node]
            id = "warm"
            name = "Warm-up node"
            base_url = "http://127.0.0.1:5000"
            data_dir = "{tmp_path / "data"}"
            """
        )
    )
    script = textwrap.dedent(
        """
        import threading
        from node.ontologies import ontologies_dir
        from node.search import lineage
        assert not lineage._built, "built before the app was loaded"
        import node.wsgi
        (warm,) = [t for t in threading.enumerate() if t.name == "fairnode-lineage-warm-up"]
        warm.join(30)
        built = lineage._built[ontologies_dir()]
        from node.search.backend import Clause, ClauseKind
        found = lineage.lineage_matches(Clause(ClauseKind.word, ("rodents",)))
        assert lineage._built[ontologies_dir()] is built, "built twice"
        print("mouse" if lineage.MOUSE_CHECK in found["organism"] else "no mouse")
        """
    ).replace("lineage.MOUSE_CHECK", repr(MOUSE))
    env = {**os.environ, "FAIRNODE_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mouse"
