"""Rebuild the run-time vocabulary files in ``ontologies/`` from the shared source ontologies.

    python ontologies/build.py [--source ../shared/ontologies] [--out ontologies]

Reads FBbi (``fbbi/fbbi.obo``), NCBITaxon taxslim (``ncbitaxon/taxslim.obo``), the EDAM 1.25
formats TSV (``edam/EDAM_1.25_formats.tsv``) and the SPDX licence list (``spdx/licenses.json``)
and writes compact, sorted, UTF-8 TSV files that ``node/ontologies.py`` loads at run time:
``fbbi.tsv``, ``ncbitaxon.tsv``, ``edam_formats.tsv`` and ``spdx.tsv``. The hand-curated
``ome_acquisition_modes.tsv`` is not generated: it is validated against FBbi (every id must
exist and carry the label written next to it) and copied when ``--out`` is another folder.

Output is deterministic (same input, same bytes) so the committed files can be checked by
rebuilding them into a temporary folder and comparing (tests/test_ontologies.py does).
The script uses only the standard library and imports nothing from ``node``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The shared ontology collection sits next to the repository checkout (…/main, …/shared).
DEFAULT_SOURCE = REPO.parent / "shared" / "ontologies"

OBO = "http://purl.obolibrary.org/obo/"
EDAM = "http://edamontology.org/"
SPDX = "https://spdx.org/licenses/"
IANA_MEDIA_TYPES = "http://www.iana.org/assignments/media-types/"

CURATED_MODES = "ome_acquisition_modes.tsv"
MODE_COLUMNS = ["ome_property", "ome_value", "fbbi_id", "fbbi_label", "match", "comment"]

# Every value of the OME 2016-06 schema enumerations the curated mapping must cover. Written out
# here rather than read from ome-types so that rebuilding needs nothing beyond the stdlib.
OME_ENUMS: dict[str, tuple[str, ...]] = {
    "AcquisitionMode": (
        "WideField",
        "LaserScanningConfocalMicroscopy",
        "SpinningDiskConfocal",
        "SlitScanConfocal",
        "MultiPhotonMicroscopy",
        "StructuredIllumination",
        "SingleMoleculeImaging",
        "TotalInternalReflection",
        "FluorescenceLifetime",
        "SpectralImaging",
        "FluorescenceCorrelationSpectroscopy",
        "NearFieldScanningOpticalMicroscopy",
        "SecondHarmonicGenerationImaging",
        "PALM",
        "STORM",
        "STED",
        "TIRF",
        "FSM",
        "LCM",
        "Other",
        "BrightField",
        "SweptFieldConfocal",
        "SPIM",
    ),
    "ContrastMethod": (
        "Brightfield",
        "Phase",
        "DIC",
        "HoffmanModulation",
        "ObliqueIllumination",
        "PolarizedLight",
        "Darkfield",
        "Fluorescence",
        "Other",
    ),
}

# Names people use for an FBbi term that FBbi lacks. They go into their own column
# (``extra_synonyms``) so nobody mistakes them for FBbi's own synonyms.
# FBbi 2020-11-06 calls light-sheet microscopy only "SPIM" (def: "single (or selective) plane
# illumination", is_a fluorescence microscopy, makes_use_of light-sheet illumination).
EXTRA_FBBI_SYNONYMS: dict[str, tuple[str, ...]] = {
    "FBbi:00000251": ("confocal",),
    "FBbi:00000369": (
        "light sheet",
        "selective plane illumination microscopy",
        "single plane illumination microscopy",
        "light sheet fluorescence microscopy",
        "light sheet microscopy",
        "LSFM",
    ),
    "FBbi:00000617": ("total internal reflection fluorescence microscopy", "TIRF", "TIRFM"),
    "FBbi:00000368": ("fluorescence lifetime imaging microscopy", "fluorescence lifetime imaging"),
    "FBbi:00000367": (
        "Förster resonance energy transfer",
        "fluorescence resonance energy transfer",
    ),
    "FBbi:00000366": ("fluorescence recovery after photobleaching",),
    "FBbi:00000365": ("fluorescence loss in photobleaching",),
    "FBbi:00000252": ("laser scanning confocal microscopy", "point scanning confocal microscopy"),
    "FBbi:00000255": ("multiphoton microscopy",),
    "FBbi:00000254": ("two-photon microscopy",),
    "FBbi:00000371": ("optical coherence tomography",),
    "FBbi:00000370": ("coherent anti-Stokes Raman scattering microscopy",),
}

# Names this node resolves to a given taxon even though taxslim lacks them ("worm", "yeast",
# "D. rerio") or shares them between taxa ("mouse" is also a common name of the genus Mus,
# "fruit fly" of Drosophila and of Tephritidae). They go into the ``preferred_names`` column,
# which the lookup tries before taxslim's common names. Genus names ("Arabidopsis", "Xenopus",
# "Drosophila") are deliberately left alone: they are the genus' scientific name and resolve to
# the genus.
PREFERRED_NAMES: dict[str, tuple[str, ...]] = {
    "NCBITaxon:10090": ("mouse", "M. musculus", "lab mouse", "laboratory mouse"),
    "NCBITaxon:10116": ("rat", "R. norvegicus"),
    "NCBITaxon:7227": ("fruit fly", "fly", "D. melanogaster"),
    "NCBITaxon:6239": ("worm", "C. elegans", "nematode worm"),
    "NCBITaxon:4932": ("yeast", "budding yeast"),
    "NCBITaxon:4896": ("S. pombe",),
    "NCBITaxon:9606": ("H. sapiens",),
    "NCBITaxon:7955": ("D. rerio",),
    "NCBITaxon:3702": ("A. thaliana",),
    "NCBITaxon:8355": ("X. laevis",),
    "NCBITaxon:44689": ("D. discoideum",),
}

# taxslim synonym types that are everyday names (→ common_names); the rest are scientific
# synonyms. "in_part" names denote a taxon that only partly overlaps this one: dropped.
COMMON_NAME_TYPES = {"common_name", "genbank_common_name", "blast_name"}
DROPPED_SYNONYM_TYPES = {"in_part", "misspelling", "misnomer"}


class BuildError(Exception):
    """The sources or the curated mapping are not what this script expects."""


# --------------------------------------------------------------------------- OBO reading
# A 60-line reader instead of pronto/fastobo: OBO 1.2/1.4 term stanzas are plain "tag: value"
# lines, and we only need id, name, synonym, is_a, alt_id, is_obsolete and has_rank. Not worth
# a build-time dependency (pronto is not installed in the node's environment).

_SYNONYM_RE = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(EXACT|BROAD|NARROW|RELATED)(?:\s+([^\s\[]+))?')
_ESCAPES = {"n": "\n", "t": "\t", "W": " "}


def _unescape(text: str) -> str:
    """Undo OBO backslash escapes (\\" \\\\ \\n \\t \\W \\: …)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _strip_comment(value: str) -> str:
    """Drop a trailing `` ! comment`` and `` {qualifiers}`` from a tag value."""
    value = re.sub(r"(?<!\\)\s!\s.*$", "", value)
    value = re.sub(r"\s*\{[^}]*\}\s*$", "", value)
    return value.strip()


def read_obo_terms(path: Path) -> Iterator[dict[str, list[str]]]:
    """Yield each ``[Term]`` stanza of an OBO file as {tag: [raw values]}."""
    stanza: dict[str, list[str]] | None = None
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            if line.startswith("["):
                if stanza is not None:
                    yield stanza
                stanza = {} if line.strip() == "[Term]" else None
                continue
            if stanza is None or not line.strip() or line.startswith("!"):
                continue
            tag, sep, value = line.partition(":")
            if not sep:
                raise BuildError(f"{path}: not a 'tag: value' line: {line!r}")
            stanza.setdefault(tag.strip(), []).append(value.strip())
    if stanza is not None:
        yield stanza


def obo_first(stanza: dict[str, list[str]], tag: str) -> str:
    """The first value of ``tag`` without comment, unescaped ('' when absent)."""
    values = stanza.get(tag)
    return _unescape(_strip_comment(values[0])) if values else ""


def obo_refs(stanza: dict[str, list[str]], tag: str) -> list[str]:
    """Identifier-valued tags (is_a, alt_id): the first token of each value."""
    return [_strip_comment(v).split()[0] for v in stanza.get(tag, []) if v.strip()]


def obo_synonyms(stanza: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(text, scope, type) for every ``synonym:`` line; type is '' when not given."""
    out = []
    for value in stanza.get("synonym", []):
        m = _SYNONYM_RE.match(value)
        if not m:
            raise BuildError(f"unparseable synonym line: {value!r}")
        out.append((_unescape(m.group(1)), m.group(2), m.group(3) or ""))
    return out


def is_obsolete(stanza: dict[str, list[str]]) -> bool:
    return obo_first(stanza, "is_obsolete") == "true"


# --------------------------------------------------------------------------- helpers


def obo_iri(curie: str) -> str:
    """FBbi:00000251 → http://purl.obolibrary.org/obo/FBbi_00000251."""
    return OBO + curie.replace(":", "_", 1)


def clean(text: str) -> str:
    """One line of text with single spaces, safe inside a TSV cell and a '|' list."""
    text = " ".join(text.split())
    if "|" in text:
        raise BuildError(f"{text!r} contains '|', the list separator of the TSV files")
    return text


def join(values: Iterable[str], exclude: Iterable[str] = ()) -> str:
    """'|'-join cleaned values, dropping empties, duplicates and anything in ``exclude``."""
    seen = {clean(v).casefold() for v in exclude}
    out = []
    for value in values:
        value = clean(value)
        if value and value.casefold() not in seen:
            seen.add(value.casefold())
            out.append(value)
    return "|".join(out)


def write_tsv(path: Path, header: list[str], rows: Iterable[list[str]]) -> int:
    """Write a TSV with '\\n' line ends and no quoting (cells are cleaned); return row count."""
    lines = ["\t".join(header)]
    for row in rows:
        if len(row) != len(header):
            raise BuildError(f"{path.name}: row {row!r} does not have {len(header)} cells")
        if any("\t" in cell or "\n" in cell for cell in row):
            raise BuildError(f"{path.name}: row {row!r} has a tab or newline in a cell")
        lines.append("\t".join(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return len(lines) - 1


_ABBREVIATED_RE = re.compile(r"^(?P<a>[^()]+?)\s*\((?P<b>[^()]+)\)$")


def label_variants(label: str) -> list[str]:
    """Split FBbi labels like 'structured illumination microscopy (SIM)' into both halves."""
    m = _ABBREVIATED_RE.match(" ".join(label.split()))
    return [m.group("a"), m.group("b")] if m else []


# --------------------------------------------------------------------------- vocabularies


def build_fbbi(source: Path, out: Path) -> dict[str, str]:
    """fbbi.tsv: non-obsolete FBbi terms; return {id: label} for validating the mapping."""
    terms: dict[str, dict[str, list[str]]] = {}
    for stanza in read_obo_terms(source / "fbbi" / "fbbi.obo"):
        term_id = obo_first(stanza, "id")
        if term_id.startswith("FBbi:") and not is_obsolete(stanza):
            terms[term_id] = stanza
    unknown = sorted(set(EXTRA_FBBI_SYNONYMS) - set(terms))
    if unknown:
        raise BuildError(f"EXTRA_FBBI_SYNONYMS names ids that are not live FBbi terms: {unknown}")
    # A label half that is another term's label ("ANSOM" in "nearfield scanning optical
    # microscopy (ANSOM)" is the child FBbi:00000349) is not a synonym: skip it.
    labels = {clean(obo_first(stanza, "name")).casefold() for stanza in terms.values()}
    rows = []
    for term_id in sorted(terms):
        stanza = terms[term_id]
        label = obo_first(stanza, "name")
        synonyms = [text for text, _scope, _type in obo_synonyms(stanza)]
        halves = [v for v in label_variants(label) if clean(v).casefold() not in labels]
        extra = [*halves, *EXTRA_FBBI_SYNONYMS.get(term_id, ())]
        # Parents outside the FBbi: namespace (the FBbi_root:00000000 placeholder) are dropped.
        parents = sorted(p for p in obo_refs(stanza, "is_a") if p in terms)
        rows.append(
            [
                term_id,
                obo_iri(term_id),
                clean(label),
                join(synonyms, exclude=[label]),
                join(extra, exclude=[label, *synonyms]),
                "|".join(parents),
            ]
        )
    header = ["id", "iri", "label", "synonyms", "extra_synonyms", "parents"]
    write_tsv(out / "fbbi.tsv", header, rows)
    return {term_id: clean(obo_first(stanza, "name")) for term_id, stanza in terms.items()}


def build_ncbitaxon(source: Path, out: Path) -> int:
    """ncbitaxon.tsv: every taxslim taxon with rank, parent, names and merged (alt) ids."""
    rows = []
    seen: set[str] = set()
    for stanza in read_obo_terms(source / "ncbitaxon" / "taxslim.obo"):
        taxon_id = obo_first(stanza, "id")
        # Skip the 27 rank terms (NCBITaxon:species, …): they are not taxa.
        if not re.fullmatch(r"NCBITaxon:\d+", taxon_id) or is_obsolete(stanza):
            continue
        label = obo_first(stanza, "name")
        common, synonyms = [], []
        for text, _scope, kind in obo_synonyms(stanza):
            if kind in DROPPED_SYNONYM_TYPES:
                continue
            (common if kind in COMMON_NAME_TYPES else synonyms).append(text)
        rank = ""
        for value in stanza.get("property_value", []):
            prop, _, obj = value.partition(" ")
            if prop == "has_rank":
                rank = obj.split()[0].removeprefix("NCBITaxon:")
        parents = obo_refs(stanza, "is_a")
        rows.append(
            [
                taxon_id,
                obo_iri(taxon_id),
                clean(label),
                rank,
                parents[0] if parents else "",
                join(PREFERRED_NAMES.get(taxon_id, ())),
                join(common, exclude=[label]),
                join(synonyms, exclude=[label, *common]),
                "|".join(sorted(obo_refs(stanza, "alt_id"))),
            ]
        )
        seen.add(taxon_id)
    unknown = sorted(set(PREFERRED_NAMES) - seen)
    if unknown:
        raise BuildError(f"PREFERRED_NAMES names taxa missing from taxslim: {unknown}")
    rows.sort(key=lambda row: int(row[0].partition(":")[2]))
    header = [
        "id",
        "iri",
        "label",
        "rank",
        "parent",
        "preferred_names",
        "common_names",
        "synonyms",
        "alt_ids",
    ]
    return write_tsv(out / "ncbitaxon.tsv", header, rows)


def build_edam_formats(source: Path, out: Path) -> int:
    """edam_formats.tsv: the non-obsolete ``format_*`` classes of EDAM 1.25."""
    path = source / "edam" / "EDAM_1.25_formats.tsv"
    with path.open(encoding="utf-8", newline="") as fh:
        records = list(csv.DictReader(fh, delimiter="\t"))
    rows = []
    for rec in records:
        iri = rec["Class ID"].strip()
        local = iri.removeprefix(EDAM)
        if not local.startswith("format_") or rec["Obsolete"].strip().upper() == "TRUE":
            continue
        label = rec["Preferred Label"]
        parents = [p.strip().removeprefix(EDAM) for p in rec["Parents"].split("|")]
        media = [m.strip().removeprefix(IANA_MEDIA_TYPES) for m in rec["Media type"].split("|")]
        rows.append(
            [
                local,
                iri,
                clean(label),
                join(rec["Synonyms"].split("|"), exclude=[label]),
                join(e.strip().lstrip(".") for e in rec["File extension"].split("|")),
                join(media),
                "|".join(sorted(p for p in parents if p.startswith("format_"))),
            ]
        )
    rows.sort(key=lambda row: row[0])
    header = ["id", "iri", "label", "synonyms", "extensions", "media_types", "parents"]
    return write_tsv(out / "edam_formats.tsv", header, rows)


def build_spdx(source: Path, out: Path) -> int:
    """spdx.tsv: every licence of the SPDX License List, with its canonical IRI."""
    data = json.loads((source / "spdx" / "licenses.json").read_text(encoding="utf-8"))
    rows = [
        [
            lic["licenseId"],
            clean(lic["name"]),
            SPDX + lic["licenseId"],
            "true" if lic.get("isOsiApproved") else "false",
            "true" if lic.get("isDeprecatedLicenseId") else "false",
        ]
        for lic in data["licenses"]
    ]
    rows.sort(key=lambda row: row[0])
    return write_tsv(out / "spdx.tsv", ["id", "name", "iri", "osi_approved", "deprecated"], rows)


def check_mode_mapping(path: Path, fbbi_labels: dict[str, str]) -> int:
    """Validate the hand-curated OME → FBbi mapping; raise BuildError listing every problem."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames != MODE_COLUMNS:
            raise BuildError(f"{path.name}: header {reader.fieldnames} is not {MODE_COLUMNS}")
        rows = list(reader)
    problems = []
    seen: set[tuple[str, str]] = set()
    for n, row in enumerate(rows, start=2):
        key = (row["ome_property"], row["ome_value"])
        if row["ome_value"] not in OME_ENUMS.get(row["ome_property"], ()):
            problems.append(f"line {n}: {key} is not a value of an OME enumeration we map")
        if key in seen:
            problems.append(f"line {n}: {key} appears twice")
        seen.add(key)
        fbbi_id, match = row["fbbi_id"], row["match"]
        if fbbi_id:
            if fbbi_id not in fbbi_labels:
                problems.append(f"line {n}: {fbbi_id} is not a live FBbi term")
            elif fbbi_labels[fbbi_id] != row["fbbi_label"]:
                problems.append(
                    f"line {n}: {fbbi_id} is {fbbi_labels[fbbi_id]!r} in FBbi, "
                    f"not {row['fbbi_label']!r}"
                )
            if match not in {"exact", "broad"}:
                problems.append(f"line {n}: match must be 'exact' or 'broad', not {match!r}")
        elif match or row["fbbi_label"] or not row["comment"]:
            problems.append(f"line {n}: unmapped {key} needs an empty match/label and a comment")
    for prop, values in OME_ENUMS.items():
        missing = [v for v in values if (prop, v) not in seen]
        if missing:
            problems.append(f"{prop} values missing from the mapping: {missing}")
    if problems:
        raise BuildError(f"{path}:\n  " + "\n  ".join(problems))
    return len(rows)


def build(source: Path, out: Path) -> dict[str, int]:
    """Write every generated file into ``out``; return row counts per file."""
    for required in ("fbbi/fbbi.obo", "ncbitaxon/taxslim.obo", "spdx/licenses.json"):
        if not (source / required).is_file():
            raise BuildError(f"source file {source / required} not found (use --source)")
    out.mkdir(parents=True, exist_ok=True)
    fbbi_labels = build_fbbi(source, out)
    counts = {
        "fbbi.tsv": len(fbbi_labels),
        "ncbitaxon.tsv": build_ncbitaxon(source, out),
        "edam_formats.tsv": build_edam_formats(source, out),
        "spdx.tsv": build_spdx(source, out),
    }
    curated = HERE / CURATED_MODES
    counts[CURATED_MODES] = check_mode_mapping(curated, fbbi_labels)
    if out.resolve() != HERE:
        shutil.copyfile(curated, out / CURATED_MODES)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="shared ontologies")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (ontologies/)")
    args = parser.parse_args(argv)
    try:
        counts = build(args.source.resolve(), args.out.resolve())
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    for name, count in counts.items():
        print(f"{name}: {count} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
