"""Sidecar cards: all three formats, term resolution, and errors naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.harvest.sidecars import load_sidecar

ISSUE_TOML = """title = "Zebrafish heart regeneration, light-sheet time course"
description = "Hearts imaged every 2 h for 3 days after cryo-injury."
license = "CC-BY-4.0"
keywords = ["heart", "regeneration"]
organism = "Danio rerio"
imaging_method = "light sheet fluorescence microscopy"
[[creators]]
name = "Ada Lovelace"
orcid = "0000-0002-1825-0097"
affiliation = "https://ror.org/035xkbk20"
[key_values]
temperature = "28 C"
"""

ISSUE_DATA = {
    "title": "Zebrafish heart regeneration, light-sheet time course",
    "description": "Hearts imaged every 2 h for 3 days after cryo-injury.",
    "license": "CC-BY-4.0",
    "keywords": ["heart", "regeneration"],
    "organism": "http://purl.obolibrary.org/obo/NCBITaxon_7955",
    "imaging_method": "light sheet fluorescence microscopy",
    "creators": [
        {
            "name": "Ada Lovelace",
            "orcid": "0000-0002-1825-0097",
            "affiliation": "https://ror.org/035xkbk20",
        }
    ],
    "key_values": {"temperature": "28 C"},
}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("fmt", ["toml", "yaml", "json"])
def test_issue_example_in_every_format(tmp_path: Path, fmt: str):
    import yaml

    if fmt == "toml":
        p = _write(tmp_path, "dataset.toml", ISSUE_TOML)
    elif fmt == "yaml":
        p = _write(tmp_path, "dataset.yaml", yaml.safe_dump(ISSUE_DATA))
    else:
        p = _write(tmp_path, "dataset.json", json.dumps(ISSUE_DATA, indent=2))
    sc, problems = load_sidecar(p)
    assert problems == []
    assert sc.title == ISSUE_DATA["title"]
    assert sc.license == "CC-BY-4.0"
    assert sc.keywords == ["heart", "regeneration"]
    # Labels and IRIs resolve to the same terms.
    assert [(t.label, t.iri) for t in sc.organisms] == [
        ("Danio rerio", "http://purl.obolibrary.org/obo/NCBITaxon_7955")
    ]
    assert sc.imaging_methods[0].iri.startswith("http://purl.obolibrary.org/obo/FBbi_")
    person = sc.creators[0]
    assert person.orcid == "0000-0002-1825-0097"
    assert person.affiliation == "https://ror.org/035xkbk20"
    assert sc.key_values == {"temperature": "28 C"}


def test_bad_fields_name_file_line_and_field_and_the_rest_survives(tmp_path: Path):
    text = ISSUE_TOML.replace('organism = "Danio rerio"', 'organism = "Danio reriooo"').replace(
        'orcid = "0000-0002-1825-0097"', 'orcid = "0000-0002-1825-0098"'
    )
    text = text.replace(
        'keywords = ["heart", "regeneration"]',
        'keywords = ["heart", "regeneration"]\ncolour = "red"',
    )
    p = _write(tmp_path, "dataset.toml", text)
    sc, problems = load_sidecar(p, "lab/zebrafish/dataset.toml")
    msgs = [str(x) for x in problems]
    by_field = {x.field: x for x in problems}
    assert by_field["colour"].line == 5
    assert "unknown key" in by_field["colour"].why
    assert by_field["organism"].line == 6
    assert "Danio reriooo" in by_field["organism"].why
    assert "Danio rerio" in by_field["organism"].why  # a suggestion
    assert by_field["creators[0].orcid"].line == 10
    assert "check digit" in by_field["creators[0].orcid"].why
    assert all(m.startswith("lab/zebrafish/dataset.toml:") for m in msgs)
    # Everything else is kept.
    assert sc.title.startswith("Zebrafish")
    assert sc.license == "CC-BY-4.0"
    assert sc.creators[0].name == "Ada Lovelace"
    assert sc.creators[0].orcid is None
    assert sc.organisms == []


def test_yaml_line_numbers_come_from_the_parser(tmp_path: Path):
    p = _write(tmp_path, "dataset.yaml", "title: Fine\nlicense: CC-BY-4.0\nvisibility: everyone\n")
    sc, problems = load_sidecar(p)
    assert [(x.field, x.line) for x in problems] == [("visibility", 3)]
    assert "public" in problems[0].why  # says what is allowed
    assert sc.title == "Fine"
    assert sc.visibility is None


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"),
    [
        ("dataset.toml", 'title = "x"\nkeywords = [\n', 3, "not valid TOML"),
        ("dataset.yaml", "title: [unclosed\nlicense: x\n", 2, "not valid YAML"),
        ("dataset.json", '{"title": "x",\n "license": }', 2, "not valid JSON"),
        ("dataset.json", '["a list"]', 1, "must be a mapping"),
    ],
)
def test_unparseable_sidecars(tmp_path: Path, name: str, text: str, line: int, fragment: str):
    sc, problems = load_sidecar(_write(tmp_path, name, text))
    assert sc is None
    assert problems[0].line == line
    assert fragment in problems[0].why


def test_not_utf8_and_oversize(tmp_path: Path):
    p = tmp_path / "dataset.toml"
    p.write_bytes(b'title = "caf\xe9"\n')
    sc, problems = load_sidecar(p)
    assert sc is None
    assert "not UTF-8" in problems[0].why
    assert problems[0].line == 1
    p.write_text('title = "x"\n' + "#" * (2 << 20))
    sc, problems = load_sidecar(p)
    assert sc is None
    assert "larger than" in problems[0].why


def test_license_case_is_fixed_and_unknown_is_reported(tmp_path: Path):
    sc, problems = load_sidecar(_write(tmp_path, "dataset.toml", 'license = "cc-by-4.0"\n'))
    assert sc.license == "CC-BY-4.0"
    assert problems == []
    sc, problems = load_sidecar(
        _write(tmp_path, "dataset.toml", 'title = "t"\nlicense = "CC-BY-5.0"\n')
    )
    assert sc.license is None
    assert problems[0].field == "license"
    assert problems[0].line == 2
