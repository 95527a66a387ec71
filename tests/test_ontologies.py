"""Real lookups against the vocabulary files in ontologies/ (node/ontologies.py, build.py).

Nothing is mocked: the committed TSVs are loaded as at run time. The FBbi ids used below were read
from fbbi.obo (FBbi 2020-11-06), not guessed. The rebuild test needs the shared source ontologies
(``<repo>/../shared/ontologies``) and is skipped when they are absent.
"""

from __future__ import annotations

import csv
import filecmp
import re
import subprocess
import sys
from pathlib import Path

import pytest

from node import ontologies
from node.ontologies import (
    AmbiguousTermError,
    License,
    UnknownTermError,
    fbbi_ancestors,
    fbbi_descendants,
    format_term,
    method_for_acquisition_mode,
    method_for_contrast_method,
    resolve_imaging_method,
    resolve_license,
    resolve_organism,
    taxon_ancestors,
    taxon_descendants,
)
from node.records import Term

REPO = Path(__file__).resolve().parents[1]
VOCAB_DIR = REPO / "ontologies"
SOURCE = REPO.parent / "shared" / "ontologies"  # same resolution as build.py's default
GENERATED = ["fbbi.tsv", "ncbitaxon.tsv", "edam_formats.tsv", "spdx.tsv"]

OBO = "http://purl.obolibrary.org/obo/"
MOUSE = Term(label="Mus musculus", iri=OBO + "NCBITaxon_10090")
CONFOCAL = OBO + "FBbi_00000251"  # confocal microscopy
SPINNING_DISK = OBO + "FBbi_00000253"  # spinning disk confocal microscopy
FLUORESCENCE = OBO + "FBbi_00000246"  # fluorescence microscopy


# --------------------------------------------------------------------------- organisms


@pytest.mark.parametrize(
    "value",
    [
        "mouse",
        "house mouse",
        "Mus musculus",
        "  mus   MUSCULUS ",
        "NCBITaxon:10090",
        "NCBITaxon_10090",
        "http://purl.obolibrary.org/obo/NCBITaxon_10090",
        "NCBITaxon:85055",  # merged into 10090: kept as an alt_id in taxslim
    ],
)
def test_every_way_of_naming_the_mouse_gives_the_same_term(value: str) -> None:
    assert resolve_organism(value) == MOUSE


@pytest.mark.parametrize(
    ("value", "label", "taxon"),
    [
        ("zebrafish", "Danio rerio", 7955),
        ("zebra fish", "Danio rerio", 7955),
        ("human", "Homo sapiens", 9606),
        ("fruit fly", "Drosophila melanogaster", 7227),
        ("worm", "Caenorhabditis elegans", 6239),
        ("C. elegans", "Caenorhabditis elegans", 6239),
        ("yeast", "Saccharomyces cerevisiae", 4932),
        ("baker's yeast", "Saccharomyces cerevisiae", 4932),
        ("fission yeast", "Schizosaccharomyces pombe", 4896),
        ("E. coli", "Escherichia coli", 562),
        ("E.coli", "Escherichia coli", 562),
        ("thale cress", "Arabidopsis thaliana", 3702),
        ("African clawed frog", "Xenopus laevis", 8355),
        ("chicken", "Gallus gallus", 9031),
        ("rat", "Rattus norvegicus", 10116),
        ("Norway rat", "Rattus norvegicus", 10116),
    ],
)
def test_model_organisms_resolve_by_common_name(value: str, label: str, taxon: int) -> None:
    assert resolve_organism(value) == Term(label=label, iri=f"{OBO}NCBITaxon_{taxon}")


def test_zebrafish_is_danio_rerio_7955() -> None:
    term = resolve_organism("zebrafish")
    assert term.label == "Danio rerio"
    assert term.iri == "http://purl.obolibrary.org/obo/NCBITaxon_7955"


def test_genus_names_resolve_to_the_genus_not_a_species() -> None:
    # "Mus" is both the genus and its nominotypical subgenus in NCBI: the genus wins.
    assert resolve_organism("Mus").iri == OBO + "NCBITaxon_10088"
    assert resolve_organism("arabidopsis").iri == OBO + "NCBITaxon_3701"
    assert resolve_organism("Xenopus").iri == OBO + "NCBITaxon_8353"


def test_unknown_organism_names_the_value_and_suggests_the_right_species() -> None:
    with pytest.raises(UnknownTermError, match="Mus muscolus") as info:
        resolve_organism("Mus muscolus")
    assert info.value.suggestions[0] == "Mus musculus"
    assert "NCBITaxon" in str(info.value)
    assert "'Mus musculus'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_taxon_id_outside_taxslim_is_reported_as_such() -> None:
    with pytest.raises(UnknownTermError, match=r"NCBITaxon:999999999 is not in this vocabulary"):
        resolve_organism("NCBITaxon:999999999")


def test_empty_organism_is_an_error() -> None:
    with pytest.raises(UnknownTermError, match="empty"):
        resolve_organism("   ")


def test_ambiguous_names_list_the_candidates_instead_of_picking_one() -> None:
    # FBbi has three classes labelled "nearfield illumination".
    with pytest.raises(AmbiguousTermError, match="FBbi:00000281") as info:
        resolve_imaging_method("nearfield illumination")
    assert len(info.value.candidates) == 3


def test_taxon_ancestors_reach_the_root() -> None:
    ancestors = taxon_ancestors(MOUSE.iri)
    assert OBO + "NCBITaxon_10088" in ancestors  # Mus
    assert OBO + "NCBITaxon_40674" in ancestors  # Mammalia
    assert OBO + "NCBITaxon_1" in ancestors
    assert MOUSE.iri not in ancestors
    assert MOUSE.iri in taxon_descendants(OBO + "NCBITaxon_10088")


# --------------------------------------------------------------------------- imaging methods


@pytest.mark.parametrize(
    "value",
    [
        "confocal microscopy",
        "Confocal Microscopy",
        "FBbi:00000251",
        "FBbi_00000251",
        "http://purl.obolibrary.org/obo/FBbi_00000251",
    ],
)
def test_imaging_method_by_label_curie_or_iri(value: str) -> None:
    assert resolve_imaging_method(value) == Term(label="confocal microscopy", iri=CONFOCAL)


@pytest.mark.parametrize(
    "value",
    ["light sheet fluorescence microscopy", "Light-sheet microscopy", "LSFM", "SPIM"],
)
def test_light_sheet_resolves_to_fbbi_spim(value: str) -> None:
    # FBbi 2020-11-06 has no "light sheet" label: FBbi:00000369 "SPIM" is the class that
    # makes_use_of light-sheet illumination (FBbi:00000364).
    assert resolve_imaging_method(value) == Term(label="SPIM", iri=OBO + "FBbi_00000369")


def test_fbbi_synonyms_and_label_abbreviations_resolve() -> None:
    assert resolve_imaging_method("Nomarski").iri == OBO + "FBbi_00000245"  # FBbi synonym
    assert resolve_imaging_method("SIM").iri == OBO + "FBbi_00000332"  # "… (SIM)" in label
    assert resolve_imaging_method("TIRF").iri == OBO + "FBbi_00000617"


def test_confocal_descendants_include_spinning_disk() -> None:
    descendants = fbbi_descendants(CONFOCAL)
    assert SPINNING_DISK in descendants
    assert OBO + "FBbi_00000252" in descendants  # single-spot confocal microscopy
    assert CONFOCAL not in descendants
    assert fbbi_descendants(SPINNING_DISK) == set()


def test_spinning_disk_ancestors_include_confocal_and_fluorescence() -> None:
    ancestors = fbbi_ancestors(SPINNING_DISK)
    assert {CONFOCAL, FLUORESCENCE, OBO + "FBbi_00000345"} <= ancestors  # …light microscopy
    assert all(iri.startswith(OBO + "FBbi_") for iri in ancestors)


def test_unknown_imaging_method_suggests_close_labels() -> None:
    with pytest.raises(UnknownTermError, match="spinning disc confocal") as info:
        resolve_imaging_method("spinning disc confocal microscopy")
    assert "spinning disk confocal microscopy" in info.value.suggestions


# --------------------------------------------------------------------------- OME modes


def _mode_rows() -> list[dict[str, str]]:
    with (VOCAB_DIR / "ome_acquisition_modes.tsv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_every_fbbi_id_in_the_mode_mapping_exists_with_its_label() -> None:
    rows = [row for row in _mode_rows() if row["fbbi_id"]]
    assert rows
    for row in rows:
        assert resolve_imaging_method(row["fbbi_id"]).label == row["fbbi_label"], row
        assert row["match"] in {"exact", "broad"}, row


def test_unmapped_modes_say_why() -> None:
    unmapped = [row for row in _mode_rows() if not row["fbbi_id"]]
    assert {row["ome_value"] for row in unmapped} >= {"SpectralImaging", "FSM", "LCM", "Other"}
    assert all(row["comment"] for row in unmapped)


def test_every_ome_acquisition_mode_is_covered() -> None:
    modes = {row["ome_value"] for row in _mode_rows() if row["ome_property"] == "AcquisitionMode"}
    assert len(modes) == 23
    for mode in modes:
        method_for_acquisition_mode(mode)  # never raises for an OME value


def test_acquisition_mode_lookup() -> None:
    assert method_for_acquisition_mode("SpinningDiskConfocal") == Term(
        label="spinning disk confocal microscopy", iri=SPINNING_DISK
    )
    assert method_for_acquisition_mode("spinning disk confocal").iri == SPINNING_DISK
    assert method_for_acquisition_mode("SPIM").iri == OBO + "FBbi_00000369"
    assert method_for_acquisition_mode("SpectralImaging") is None
    assert method_for_contrast_method("DIC").iri == OBO + "FBbi_00000245"
    with pytest.raises(UnknownTermError, match="Widefeld") as info:
        method_for_acquisition_mode("Widefeld")
    assert info.value.suggestions == ["WideField"]


# --------------------------------------------------------------------------- licences


@pytest.mark.parametrize(
    "value",
    [
        "CC-BY-4.0",
        "cc-by-4.0",
        "CC BY 4.0",
        "https://spdx.org/licenses/CC-BY-4.0",
        "https://spdx.org/licenses/CC-BY-4.0.html",
        "https://creativecommons.org/licenses/by/4.0/",
        "Creative Commons Attribution 4.0 International",
    ],
)
def test_licence_spellings_fold_to_the_spdx_id(value: str) -> None:
    assert resolve_license(value) == License(
        id="CC-BY-4.0",
        name="Creative Commons Attribution 4.0 International",
        iri="https://spdx.org/licenses/CC-BY-4.0",
    )


def test_licence_flags_come_from_the_spdx_list() -> None:
    assert resolve_license("apache-2.0").id == "Apache-2.0"
    assert resolve_license("mit").osi_approved
    assert resolve_license("GPL-2.0").deprecated
    assert resolve_license("https://creativecommons.org/publicdomain/zero/1.0/").id == "CC0-1.0"


def test_unknown_licence_names_value_and_suggests() -> None:
    with pytest.raises(UnknownTermError, match="'cc-by-4'") as info:
        resolve_license("cc-by-4")
    assert "CC-BY-4.0" in info.value.suggestions
    with pytest.raises(UnknownTermError, match="SPDX"):
        resolve_license("all rights reserved, ask me")


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "label", "edam"),
    [
        ("OME-TIFF", "OME-TIFF", "format_3727"),
        ("TIFF", "TIFF", "format_3591"),
        ("ome-tiff", "OME-TIFF", "format_3727"),
        ("OME-Zarr", "Zarr", "format_3915"),  # no OME-Zarr class: its true parent
        ("OME-XML", "XML", "format_2332"),
        ("HDF5", "HDF5", "format_3590"),
    ],
)
def test_format_terms(name: str, label: str, edam: str) -> None:
    assert format_term(name) == Term(label=label, iri=f"http://edamontology.org/{edam}")


@pytest.mark.parametrize("name", ["CZI", "ND2", "LIF", "DV", "no such format"])
def test_formats_without_an_edam_class_give_none(name: str) -> None:
    assert format_term(name) is None


# --------------------------------------------------------------------------- files


def test_override_directory_via_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ontologies.ENV_DIR, str(tmp_path))
    assert ontologies.ontologies_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="FAIRNODE_ONTOLOGIES_DIR"):
        resolve_organism("mouse")


def test_vocabulary_files_are_small_sorted_utf8_tsv() -> None:
    total = sum(path.stat().st_size for path in VOCAB_DIR.iterdir() if path.is_file())
    assert total < 3_000_000
    for name in GENERATED:
        lines = (VOCAB_DIR / name).read_text(encoding="utf-8").splitlines()
        width = len(lines[0].split("\t"))
        assert all(len(line.split("\t")) == width for line in lines), name
        ids = [line.split("\t", 1)[0] for line in lines[1:]]
        key = (lambda i: int(re.sub(r"\D", "", i))) if name == "ncbitaxon.tsv" else None
        assert ids == sorted(ids, key=key), name
        assert len(ids) == len(set(ids)), name


@pytest.mark.skipif(not SOURCE.is_dir(), reason=f"source ontologies not found at {SOURCE}")
def test_build_reproduces_the_committed_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(VOCAB_DIR / "build.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in [*GENERATED, "ome_acquisition_modes.tsv"]:
        assert filecmp.cmp(tmp_path / name, VOCAB_DIR / name, shallow=False), name
