"""Look up organisms, imaging methods, licences and file formats in the node's vocabularies.

The vocabularies are the compact TSV files in ``<repo>/ontologies/`` (built from NCBITaxon
taxslim, FBbi, EDAM and the SPDX License List by ``ontologies/build.py``; see its README). A
different folder can be used by setting ``FAIRNODE_ONTOLOGIES_DIR``. Each file is read once, on
first use, and kept in memory (about 22 MB for all of them; taxslim takes ~0.4 s to load).

Curators and sidecar files give free text ("mouse", "confocal microscopy", "cc-by-4.0");
these functions turn it into ``records.Term`` values with a label and an IRI, or raise
``UnknownTermError`` naming the value and the closest known names. The search layer uses the
``*_ancestors``/``*_descendants`` helpers to expand a query for a class to its sub-classes.

Matching is case-insensitive and ignores runs of spaces, hyphens and underscores, so
"light-sheet  microscopy" equals "Light sheet microscopy". Names are tried in tiers: labels, then
(taxa) the node's curated preferred names, then common names, then other synonyms. Within the
label tier a genus beats its same-named subgenus; otherwise a name that fits several terms of its
tier raises ``AmbiguousTermError`` listing them instead of picking one silently.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from node.records import Term

ENV_DIR = "FAIRNODE_ONTOLOGIES_DIR"

__all__ = [
    "AmbiguousTermError",
    "License",
    "UnknownTermError",
    "fbbi_ancestors",
    "fbbi_below",
    "fbbi_descendants",
    "format_term",
    "imaging_method_lineage_names",
    "imaging_method_names",
    "method_for_acquisition_mode",
    "method_for_contrast_method",
    "ontologies_dir",
    "organism_lineage_names",
    "organism_names",
    "resolve_imaging_method",
    "resolve_license",
    "resolve_organism",
    "taxa_below",
    "taxon_ancestors",
    "taxon_descendants",
    "term_label",
]


class UnknownTermError(ValueError):
    """A value that names no term of a vocabulary; the message offers close matches."""

    def __init__(
        self,
        value: str,
        vocabulary: str,
        suggestions: Iterable[str] = (),
        reason: str | None = None,
        *,
        message: str | None = None,
    ) -> None:
        self.value = value
        self.vocabulary = vocabulary
        self.suggestions = list(suggestions)[:3]
        if message is None:
            message = f"{value!r} is not a known {vocabulary} term"
            if reason:
                message += f" ({reason})"
            if self.suggestions:
                message += "; did you mean " + " or ".join(map(repr, self.suggestions)) + "?"
        super().__init__(message)


class AmbiguousTermError(UnknownTermError):
    """A value that fits several terms equally well (e.g. a common name shared by two taxa)."""

    def __init__(self, value: str, vocabulary: str, candidates: Iterable[str]) -> None:
        self.candidates = list(candidates)
        shown = ", ".join(self.candidates[:5]) + (", …" if len(self.candidates) > 5 else "")
        message = f"{value!r} is ambiguous in {vocabulary}: it names {shown}; give the id"
        super().__init__(value, vocabulary, self.candidates, message=message)


@dataclass(frozen=True)
class License:
    """An SPDX licence: ``id`` as SPDX spells it, ``iri`` the https://spdx.org/licenses/ IRI."""

    id: str
    name: str
    iri: str
    osi_approved: bool = False
    deprecated: bool = False


# Resolved once: lookups run per channel of every harvested image, and resolve() is a syscall.
_DEFAULT_DIR = Path(__file__).resolve().parents[1] / "ontologies"


def ontologies_dir() -> Path:
    """The folder holding the vocabulary TSVs (``FAIRNODE_ONTOLOGIES_DIR`` or <repo>/ontologies)."""
    override = os.environ.get(ENV_DIR)
    return Path(override) if override else _DEFAULT_DIR


# --------------------------------------------------------------------------- loading


def _read_tsv(directory: Path, name: str) -> list[dict[str, str]]:
    path = directory / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"vocabulary file {path} not found: set {ENV_DIR} or run `python ontologies/build.py`"
        ) from None
    lines = text.splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


def _split(cell: str) -> list[str]:
    return cell.split("|") if cell else []


def _norm(text: str) -> str:
    """Matching key: NFKC, case-folded, spaces/hyphens/underscores collapsed, 'E.coli'='E. coli'."""
    text = unicodedata.normalize("NFKC", text).casefold().replace(".", ". ")
    return " ".join(re.sub(r"[\s_\-]+", " ", text).split())


@dataclass(frozen=True)
class _Entry:
    id: str
    iri: str
    label: str

    def term(self) -> Term:
        return Term(label=self.label, iri=self.iri)


@dataclass
class _Vocabulary:
    """Terms of one ontology with name indexes in priority tiers and the is_a graph."""

    name: str  # for messages, e.g. "NCBITaxon (taxslim)"
    prefix: str  # CURIE prefix, e.g. "NCBITaxon"
    id_width: int  # zero padding of the numeric part (FBbi: 8, NCBITaxon: none)
    entries: dict[str, _Entry] = field(default_factory=dict)
    tiers: list[dict[str, set[str]]] = field(default_factory=list)
    display: dict[str, str] = field(default_factory=dict)  # key → first name seen, for hints
    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    alt_ids: dict[str, str] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)  # id → every name, label first
    ranks: dict[str, str] = field(default_factory=dict)  # NCBITaxon rank ("genus", "clade", ...)
    common: dict[str, list[str]] = field(default_factory=dict)  # NCBITaxon common names

    def add_names(self, tier: int, term_id: str, names: Iterable[str]) -> None:
        while len(self.tiers) <= tier:
            self.tiers.append({})
        known = self.names.setdefault(term_id, [])
        for name in names:
            key = _norm(name)
            if key:
                self.tiers[tier].setdefault(key, set()).add(term_id)
                self.display.setdefault(key, name)
                if name not in known:
                    known.append(name)

    def find(self, iri: str) -> _Entry | None:
        """The entry of a CURIE or IRI, or None when this vocabulary does not hold it."""
        curie = self.curie(iri)
        return self.entries.get(curie) if curie else None

    def names_of(self, iri: str) -> list[str]:
        """Every name of the term, label first; empty when the vocabulary does not hold
        ``iri`` (a record harvested from elsewhere)."""
        entry = self.find(iri)
        return list(self.names.get(entry.id, [entry.label])) if entry is not None else []

    def curie(self, value: str) -> str | None:
        """'NCBITaxon:7955', 'NCBITaxon_7955' or the OBO IRI → canonical CURIE; else None."""
        m = re.fullmatch(
            rf"(?:https?://purl\.obolibrary\.org/obo/)?{self.prefix}[:_](\d+)", value, re.I
        )
        if not m:
            return None
        curie = f"{self.prefix}:{int(m.group(1)):0{self.id_width}d}"
        return self.alt_ids.get(curie, curie)

    def lookup(self, value: str) -> _Entry:
        if not isinstance(value, str) or not value.strip():
            raise UnknownTermError(str(value), self.name, reason="empty value")
        text = " ".join(value.split())
        curie = self.curie(text)
        if curie is not None:
            if curie in self.entries:
                return self.entries[curie]
            raise UnknownTermError(value, self.name, reason=f"{curie} is not in this vocabulary")
        key = _norm(text)
        for rank, tier in enumerate(self.tiers):
            ids = tier.get(key, set())
            if rank == 0 and len(ids) > 1:
                ids = self._outermost(ids)
            if len(ids) == 1:
                return self.entries[next(iter(ids))]
            if ids:
                labels = sorted(f"{self.entries[i].label} ({i})" for i in ids)
                raise AmbiguousTermError(value, self.name, labels)
        raise UnknownTermError(value, self.name, self.suggest(key))

    def _outermost(self, ids: set[str]) -> set[str]:
        """If one id is an ancestor of all the others, just that one (genus Mus over subgenus
        Mus: the nominotypical subgenus shares the genus name); otherwise all of them."""
        for candidate in ids:
            if all(candidate in self.reach(other, self.parents) for other in ids - {candidate}):
                return {candidate}
        return ids

    @staticmethod
    def reach(start: str, edges: dict[str, tuple[str, ...]]) -> set[str]:
        """Ids reachable from ``start`` along ``edges`` (``start`` itself excluded)."""
        seen = _Vocabulary.reach_all([start], edges)
        seen.discard(start)
        return seen

    @staticmethod
    def reach_all(starts: Iterable[str], edges: dict[str, tuple[str, ...]]) -> set[str]:
        """Ids reachable from any of ``starts`` along ``edges``, in one walk (a start itself
        only when it is reachable from another)."""
        seen: set[str] = set()
        stack = list(starts)
        while stack:
            for nxt in edges.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    def suggest(self, key: str) -> list[str]:
        close = difflib.get_close_matches(key, self.display.keys(), n=3, cutoff=0.6)
        return [self.display[k] for k in close]

    @functools.cached_property
    def children(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for child, parents in self.parents.items():
            for parent in parents:
                out.setdefault(parent, []).append(child)
        return {parent: tuple(kids) for parent, kids in out.items()}

    def closure(self, value: str, edges: dict[str, tuple[str, ...]]) -> set[str]:
        """IRIs of every term reachable from ``value`` along ``edges`` (the term excluded)."""
        return {self.entries[i].iri for i in self.reach(self.lookup(value).id, edges)}


_UNIQUE_SUFFIX_RE = re.compile(r"\s+<[^<>]*>$")


@functools.cache
def _taxa(directory: Path) -> _Vocabulary:
    vocab = _Vocabulary("NCBITaxon (taxslim)", "NCBITaxon", 0)
    for row in _read_tsv(directory, "ncbitaxon.tsv"):
        term_id = row["id"]
        vocab.entries[term_id] = _Entry(term_id, row["iri"], row["label"])
        vocab.parents[term_id] = (row["parent"],) if row["parent"] else ()
        # "Mus <genus>" is NCBI's unique name; its scientific name "Mus" ranks with labels.
        vocab.add_names(0, term_id, [row["label"], _UNIQUE_SUFFIX_RE.sub("", row["label"])])
        vocab.add_names(1, term_id, _split(row["preferred_names"]))
        vocab.add_names(2, term_id, _split(row["common_names"]))
        vocab.ranks[term_id] = row["rank"]
        vocab.common[term_id] = _split(row["common_names"])
        vocab.add_names(3, term_id, _split(row["synonyms"]))
        for alt in _split(row["alt_ids"]):
            vocab.alt_ids[alt] = term_id
    return vocab


@functools.cache
def _fbbi(directory: Path) -> _Vocabulary:
    vocab = _Vocabulary("FBbi", "FBbi", 8)
    for row in _read_tsv(directory, "fbbi.tsv"):
        term_id = row["id"]
        vocab.entries[term_id] = _Entry(term_id, row["iri"], row["label"])
        vocab.parents[term_id] = tuple(_split(row["parents"]))
        vocab.add_names(0, term_id, [row["label"]])
        vocab.add_names(1, term_id, _split(row["synonyms"]) + _split(row["extra_synonyms"]))
    return vocab


# --------------------------------------------------------------------------- organisms, methods


def resolve_organism(value: str) -> Term:
    """Scientific/common name, synonym, NCBITaxon CURIE or IRI → Term(scientific name, IRI)."""
    return _taxa(ontologies_dir()).lookup(value).term()


def resolve_imaging_method(value: str) -> Term:
    """FBbi label, synonym, CURIE or IRI → Term(FBbi label, IRI)."""
    return _fbbi(ontologies_dir()).lookup(value).term()


def fbbi_ancestors(iri: str) -> set[str]:
    """IRIs of every FBbi class the given one is (transitively) a sub-class of."""
    vocab = _fbbi(ontologies_dir())
    return vocab.closure(iri, vocab.parents)


def fbbi_descendants(iri: str) -> set[str]:
    """IRIs of every FBbi sub-class (transitive) of the given class."""
    vocab = _fbbi(ontologies_dir())
    return vocab.closure(iri, vocab.children)


def taxon_ancestors(iri: str) -> set[str]:
    """IRIs of every taxon above the given one in taxslim, up to the root (NCBITaxon:1)."""
    vocab = _taxa(ontologies_dir())
    return vocab.closure(iri, vocab.parents)


def taxon_descendants(iri: str) -> set[str]:
    """IRIs of every taxslim taxon below the given one (only those taxslim keeps)."""
    vocab = _taxa(ontologies_dir())
    return vocab.closure(iri, vocab.children)


def _below(vocab: _Vocabulary, iris: Iterable[str]) -> set[str]:
    """IRIs of every term below one of ``iris`` (those themselves only when below another),
    in one walk; IRIs the vocabulary does not hold are skipped."""
    starts = [entry.id for entry in map(vocab.find, iris) if entry is not None]
    return {vocab.entries[i].iri for i in vocab.reach_all(starts, vocab.children)}


def taxa_below(iris: Iterable[str]) -> set[str]:
    """IRIs of every taxslim taxon below one of the NCBITaxon ``iris``."""
    return _below(_taxa(ontologies_dir()), iris)


def fbbi_below(iris: Iterable[str]) -> set[str]:
    """IRIs of every FBbi sub-class (transitive) of one of the FBbi ``iris``."""
    return _below(_fbbi(ontologies_dir()), iris)


# The lineage search matches for an organism: the Linnaean ranks people search by ("mammals",
# "rodents", "Drosophila"), not the dozens of clades in between (Euteleostomi, Glires, ...).
_SEARCH_RANKS = {"genus", "family", "order", "class", "phylum", "kingdom", "superkingdom"}


def organism_names(iri: str) -> list[str]:
    """Every name of an NCBITaxon term (scientific, preferred and common names, synonyms; the
    label first); empty when taxslim does not hold ``iri``."""
    return _taxa(ontologies_dir()).names_of(iri)


def imaging_method_names(iri: str) -> list[str]:
    """Every name of an FBbi imaging method (label first, then synonyms); empty when FBbi does
    not hold ``iri``."""
    return _fbbi(ontologies_dir()).names_of(iri)


def organism_lineage_names() -> dict[str, list[str]]:
    """IRI → the names an NCBITaxon term lends to its sub-taxa in search (a 'rodents' query finds
    mouse records): the scientific and common names of the terms at the major ranks (genus to
    superkingdom); other terms lend nothing."""
    vocab = _taxa(ontologies_dir())
    out: dict[str, list[str]] = {}
    for term_id, entry in vocab.entries.items():
        if vocab.ranks.get(term_id) in _SEARCH_RANKS:
            names = [_UNIQUE_SUFFIX_RE.sub("", entry.label), *vocab.common.get(term_id, ())]
            out[entry.iri] = list(dict.fromkeys(names))
    return out


def imaging_method_lineage_names() -> dict[str, list[str]]:
    """IRI → the names an FBbi class lends to its sub-classes in search ('confocal' finds
    spinning-disk confocal records): its label. The roots lend nothing: they name FBbi's
    branches ('imaging method', 'sample preparation method', 'detection method', ...), which
    would make 'imaging' or 'method' match every record with a method of the branch, as
    NCBITaxon's root and 'cellular organisms' (no rank) lend nothing either."""
    vocab = _fbbi(ontologies_dir())
    return {
        entry.iri: [entry.label]
        for term_id, entry in vocab.entries.items()
        if vocab.parents.get(term_id)
    }


def term_label(iri: str) -> str | None:
    """The label of an NCBITaxon or FBbi IRI (facets show labels), or None if neither holds it."""
    directory = ontologies_dir()
    for vocab in (_taxa(directory), _fbbi(directory)):
        entry = vocab.find(iri)
        if entry is not None:
            return entry.label
    return None


def _squash(value: str) -> str:
    return re.sub(r"[\s_\-]+", "", value).casefold()


@functools.cache
def _ome_mapping(directory: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """{OME property: {squashed value: (value as OME spells it, FBbi id or '')}}."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for row in _read_tsv(directory, "ome_acquisition_modes.tsv"):
        values = out.setdefault(row["ome_property"], {})
        values[_squash(row["ome_value"])] = (row["ome_value"], row["fbbi_id"])
    return out


def _ome_method(prop: str, value: str) -> Term | None:
    values = _ome_mapping(ontologies_dir())[prop]
    found = values.get(_squash(value or ""))
    if found is None:
        names = [spelled for spelled, _ in values.values()]
        close = difflib.get_close_matches(value or "", names, n=3, cutoff=0.5)
        raise UnknownTermError(value, f"OME {prop}", close)
    fbbi_id = found[1]
    return resolve_imaging_method(fbbi_id) if fbbi_id else None


def method_for_acquisition_mode(mode: str) -> Term | None:
    """The FBbi method for an OME Channel AcquisitionMode ('SpinningDiskConfocal'), or None.

    None means FBbi has no fitting class (e.g. SpectralImaging, FSM, Other); a string that is not
    an OME AcquisitionMode value raises UnknownTermError. Some mappings are to a broader class
    (WideField → light microscopy); the ``match`` column of the TSV says which.
    """
    return _ome_method("AcquisitionMode", mode)


def method_for_contrast_method(method: str) -> Term | None:
    """The FBbi method for an OME Channel ContrastMethod ('DIC', 'Phase'), or None for Other."""
    return _ome_method("ContrastMethod", method)


# --------------------------------------------------------------------------- licences

_SPDX_IRI_RE = re.compile(r"https?://(?:www\.)?spdx\.org/licenses/([^/?#]+?)(?:\.html|\.json)?/?")
_CC_URL_RE = re.compile(
    r"https?://(?:www\.)?creativecommons\.org/"
    r"(?:licenses/(?P<kind>[a-z-]+)/(?P<ver>\d\.\d)(?:/(?P<port>[a-z]{2}))?"
    r"|publicdomain/(?P<pd>zero)/(?P<pdver>1\.0))(?:/.*)?",
    re.I,
)


@dataclass(frozen=True)
class _Licences:
    by_id: dict[str, License]  # case-folded SPDX id → licence
    by_name: dict[str, License]  # case-folded full name → licence


@functools.cache
def _licences(directory: Path) -> _Licences:
    by_id, by_name = {}, {}
    for row in _read_tsv(directory, "spdx.tsv"):
        lic = License(
            id=row["id"],
            name=row["name"],
            iri=row["iri"],
            osi_approved=row["osi_approved"] == "true",
            deprecated=row["deprecated"] == "true",
        )
        by_id[lic.id.casefold()] = lic
        by_name.setdefault(" ".join(lic.name.casefold().split()), lic)
    return _Licences(by_id, by_name)


def _cc_spdx_ids(url: str) -> list[str]:
    """creativecommons.org deed/legalcode URL → candidate SPDX ids, most specific first."""
    m = _CC_URL_RE.fullmatch(url)
    if not m:
        return []
    if m.group("pd"):
        return ["CC0-1.0"]
    base = f"CC-{m.group('kind').upper()}-{m.group('ver')}"
    port = m.group("port")
    return [f"{base}-{port.upper()}", base] if port else [base]


def resolve_license(value: str) -> License:
    """SPDX id in any case, SPDX IRI, full SPDX name or creativecommons.org URL → License."""
    licences = _licences(ontologies_dir())
    text = " ".join(str(value or "").split())
    m = _SPDX_IRI_RE.fullmatch(text)
    # "CC BY 4.0" and "Apache 2.0" are how people write SPDX ids: spaces stand for hyphens.
    candidates = [m.group(1)] if m else [*_cc_spdx_ids(text), text.replace(" ", "-")]
    for candidate in candidates:
        found = licences.by_id.get(candidate.casefold())
        if found:
            return found
    found = licences.by_name.get(text.casefold())
    if found:
        return found
    ids = {lic.id.casefold(): lic.id for lic in licences.by_id.values()}
    close = difflib.get_close_matches(candidates[-1].casefold(), ids, n=3, cutoff=0.6)
    raise UnknownTermError(value, "SPDX licence", [ids[c] for c in close])


# --------------------------------------------------------------------------- file formats

# The node's own format names → EDAM class id. EDAM 1.25 has no class for OME-Zarr, CZI, ND2, LIF
# or DeltaVision. Where the format *is* an instance of a specific EDAM class we return that class
# under its own EDAM label (OME-Zarr is a Zarr hierarchy, OME-XML is XML); where the only true
# parents are the generic "Image format"/"Binary format" we return None rather than a term that
# says nothing, and callers keep the format name as a label without IRI.
_FORMAT_EDAM: dict[str, str | None] = {
    "ometiff": "format_3727",
    "tiff": "format_3591",
    "tif": "format_3591",
    "omezarr": "format_3915",  # Zarr
    "omexml": "format_2332",  # XML
    "czi": None,
    "nd2": None,
    "lif": None,
    "dv": None,
}


@functools.cache
def _edam(directory: Path) -> tuple[dict[str, _Entry], list[dict[str, set[str]]]]:
    entries: dict[str, _Entry] = {}
    tiers: list[dict[str, set[str]]] = [{}, {}, {}]
    for row in _read_tsv(directory, "edam_formats.tsv"):
        entries[row["id"]] = _Entry(row["id"], row["iri"], row["label"])
        names = ([row["label"]], _split(row["synonyms"]), _split(row["extensions"]))
        for tier, values in zip(tiers, names, strict=True):
            for name in values:
                tier.setdefault(_squash(name), set()).add(row["id"])
    return entries, tiers


def format_term(name: str) -> Term | None:
    """EDAM format term for a format name ('OME-TIFF', 'TIFF', 'HDF5'), or None if EDAM has none.

    'OME-Zarr' gives EDAM's Zarr and 'OME-XML' EDAM's XML (true, less specific classes);
    'CZI', 'ND2', 'LIF' and 'DV' give None. Other names are looked up among EDAM format labels,
    synonyms and file extensions; unknown or ambiguous names give None.
    """
    entries, tiers = _edam(ontologies_dir())
    key = _squash(name or "")
    if key in _FORMAT_EDAM:
        edam_id = _FORMAT_EDAM[key]
        return entries[edam_id].term() if edam_id else None
    for tier in tiers:
        ids = tier.get(key)
        if ids:
            return entries[next(iter(ids))].term() if len(ids) == 1 else None
    return None
