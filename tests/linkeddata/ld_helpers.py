"""Helpers for the linked-data tests: the official validators (local copies), real records and
field projections for round-trip comparisons."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pyshacl
from lxml import etree
from rdflib import RDF, Graph, URIRef
from rdflib.namespace import SH

from node.harvest.entries import FileEntry
from node.harvest.extractors import extract_fileset
from node.harvest.filesets import group_filesets
from node.records import Dataset, Image

BASE_URL = "http://node.test"
NODE_ID = "test-node"
DATA = Path(__file__).resolve().parents[1] / "data"
VALIDATORS = DATA / "validators"
SAMPLES = DATA / "samples"
DCAT_AP = VALIDATORS / "dcat-ap-3.0.1"

# Upstream defect (SEMICeu/DCAT-AP issue #448, open): dcat-ap-SHACL.ttl of 3.0.1 lists two
# property shapes of DataServiceShape (endpointURL and endpointDescription, class rdfs:Resource)
# that it never defines; SHACL engines (pySHACL, Jena) refuse the whole file. They are range
# constraints published only in ranges.ttl, so the dangling references are dropped.
DANGLING_3_0_1 = {
    "https://semiceu.github.io/DCAT-AP/releases/3.0.1#dcat:DataServiceShape/"
    "dc08f4dca4377fade57f89454e3fa06a8389d314",
    "https://semiceu.github.io/DCAT-AP/releases/3.0.1#dcat:DataServiceShape/"
    "eb3ac4e4fdde2e2588a9502c5956060a18c5c99f",
}


def dangling_property_shapes(shapes: Graph) -> set[str]:
    return {str(o) for o in shapes.objects(None, SH.property) if (o, SH.path, None) not in shapes}


@cache
def shapes(name: str) -> Graph:
    """An official DCAT-AP shapes file, with only the known dangling references removed."""
    g = Graph().parse(DCAT_AP / name)
    for s, o in list(g.subject_objects(SH.property)):
        if str(o) in DANGLING_3_0_1:
            g.remove((s, SH.property, o))
    return g


@dataclass(frozen=True)
class ShaclResult:
    severity: str  # "Violation", "Warning", "Info"
    focus: str
    focus_types: frozenset[str]
    path: str
    message: str


def shacl(data: Graph, shapes_name: str) -> list[ShaclResult]:
    """Every result of validating ``data`` with the named shapes file (no inference)."""
    _, report, _ = pyshacl.validate(
        data, shacl_graph=shapes(shapes_name), inference="none", allow_warnings=True
    )
    out = []
    # Only the report's own results: sh:detail nests the reasons of a Warning as Violations.
    for r in report.objects(None, SH.result):
        focus = report.value(r, SH.focusNode)
        out.append(
            ShaclResult(
                severity=str(report.value(r, SH.resultSeverity)).rsplit("#", 1)[-1],
                focus=str(focus),
                focus_types=frozenset(str(t) for t in data.objects(focus, RDF.type)),
                path=str(report.value(r, SH.resultPath)),
                message=str(report.value(r, SH.resultMessage)),
            )
        )
    return out


def violations(data: Graph, shapes_name: str) -> list[ShaclResult]:
    return [r for r in shacl(data, shapes_name) if r.severity == "Violation"]


def xml_schema(relative: str) -> etree.XMLSchema:
    """An official XSD (with its local includes/imports); loading never uses the network."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(VALIDATORS / relative), parser))


@cache
def schema_context() -> dict[str, Any]:
    return json.loads((VALIDATORS / "schemaorg-30.0" / "schemaorgcontext.jsonld").read_text())


@cache
def schema_vocabulary() -> frozenset[str]:
    """Every term (class, property, enumeration member) of schema.org 30.0, as http IRIs."""
    doc = json.loads((VALIDATORS / "schemaorg-30.0" / "schemaorg-current-https.jsonld").read_text())
    ids = {node["@id"] for node in doc["@graph"]}
    return frozenset(i.replace("schema:", "http://schema.org/") for i in ids)


def _person_or_organisation(prop: dict[str, Any]) -> bool:
    refs = {alt.get("$ref") for alt in prop.get("oneOf", [])}
    return {"#/definitions/person", "#/definitions/organization"} <= refs


def bioschemas_profile_defects(schema: dict[str, Any]) -> set[str]:
    """Properties whose ``oneOf`` offers both person and organization: the profile's own
    definitions let any object with a name match both, so ``oneOf`` can never pass."""
    return {k for k, v in schema["properties"].items() if _person_or_organisation(v)}


@cache
def bioschemas_dataset_profile() -> dict[str, Any]:
    """The JSON Schema of the Bioschemas Dataset 1.0-RELEASE profile, with its person-or-
    organization ``oneOf`` read as the ``anyOf`` it means (see bioschemas_profile_defects)."""
    doc = json.loads((VALIDATORS / "bioschemas" / "Dataset_v1.0-RELEASE.json").read_text())
    [node] = [n for n in doc["@graph"] if "$validation" in n]
    schema = copy.deepcopy(node["$validation"])
    for name in bioschemas_profile_defects(schema):
        schema["properties"][name]["anyOf"] = schema["properties"][name].pop("oneOf")
    return schema


@cache
def bioschemas_dataset_profile_as_published() -> dict[str, Any]:
    doc = json.loads((VALIDATORS / "bioschemas" / "Dataset_v1.0-RELEASE.json").read_text())
    [node] = [n for n in doc["@graph"] if "$validation" in n]
    return node["$validation"]


def extract_samples(*folders: str) -> list[Image]:
    """Real Image records of sample folders, as the harvester extracts them."""
    images: list[Image] = []
    for folder in folders:
        d = SAMPLES / folder
        entries = [
            FileEntry(rel=f"{folder}/{n}", abs=str(d / n), size=(d / n).stat().st_size, mtime_ns=0)
            for n in sorted(os.listdir(d))
            if not n.startswith(".")
        ]
        for fs in group_filesets(entries):
            images.extend(extract_fileset(fs, "microscopy"))
    return images


def project(ds: Dataset, field: str) -> Any:
    """The value of a ``*_FIELDS`` entry: ``a.b`` is a part of a field, ``a[].b`` the part of
    every item of a list field."""
    if "[]." in field:
        head, _, tail = field.partition("[].")
        return [getattr(item, tail) for item in getattr(ds, head)]
    value: Any = ds
    for part in field.split("."):
        value = getattr(value, part)
    return value


def as_day(value: Any) -> Any:
    return value.date() if isinstance(value, datetime) else value


def assert_carries(
    original: Dataset,
    back: Dataset,
    fields: tuple[str, ...],
    *,
    unordered: frozenset[str] = frozenset(),
    day_precision: frozenset[str] = frozenset(),
) -> None:
    """Every field of ``fields`` reads back equal (sets for ``unordered``, dates for
    ``day_precision``); the message lists every field that differs."""
    diffs = []
    for field in fields:
        want, got = project(original, field), project(back, field)
        if field in unordered:
            want, got = sorted(want, key=repr), sorted(got, key=repr)
        if field in day_precision:
            want, got = as_day(want), as_day(got)
        if want != got:
            diffs.append(f"{field}: wrote {want!r}, read {got!r}")
    assert not diffs, "fields changed on the round trip:\n" + "\n".join(diffs)


def iri(value: str) -> URIRef:
    return URIRef(value)
