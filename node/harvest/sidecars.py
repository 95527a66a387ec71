"""Sidecar files (dataset.toml / .yaml / .json): what files cannot say about a dataset.

A sidecar marks its folder as a dataset and carries title, description,
creators, licence, organism, method, keywords and key-values. A bad field is
reported with file, line and field and dropped; the rest of the sidecar and
the dataset's images are still harvested.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from node.ontologies import (
    UnknownTermError,
    resolve_imaging_method,
    resolve_license,
    resolve_organism,
)
from node.records import DataAccess, Funding, Person, Term, Visibility

SIDECAR_NAMES = ("dataset.toml", "dataset.yaml", "dataset.yml", "dataset.json")
MAX_SIDECAR_BYTES = 1 << 20  # a sidecar is a hand-written card; more is a mistake or an attack


@dataclass(frozen=True)
class SidecarProblem:
    """One problem in a sidecar: file, line (when known), field and why."""

    file: str
    line: int | None
    field: str | None
    why: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.why}" if self.field else f"{where}: {self.why}"


class SidecarCreator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    orcid: str | None = None
    affiliation: str | None = None
    role: str | None = None


class SidecarFunding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    funder: str = Field(min_length=1)
    funder_id: str | None = None
    award: str | None = None


def _listify(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


class SidecarModel(BaseModel):
    """The keys a sidecar may carry (unknown keys are errors: they are usually typos)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1)
    description: str | None = None
    license: str | None = None
    keywords: list[str] = Field(default_factory=list)
    organism: list[str] = Field(default_factory=list)
    imaging_method: list[str] = Field(default_factory=list)
    sample: str | None = None
    creators: list[SidecarCreator] = Field(default_factory=list)
    contributors: list[SidecarCreator] = Field(default_factory=list)
    funding: list[SidecarFunding] = Field(default_factory=list)
    related_publications: list[str] = Field(default_factory=list)
    version: str | None = None
    visibility: Visibility | None = None
    data_access: DataAccess | None = None
    access_contact: str | None = None
    embargo_end: date | None = None
    instruments: list[str] = Field(default_factory=list)
    key_values: dict[str, str | int | float | bool] = Field(default_factory=dict)

    _list = field_validator(
        "keywords",
        "organism",
        "imaging_method",
        "related_publications",
        "instruments",
        mode="before",
    )(classmethod(lambda cls, v: _listify(v)))


@dataclass
class Sidecar:
    """A validated sidecar, with terms resolved against the vocabularies."""

    path: str
    title: str | None = None
    description: str | None = None
    license: str | None = None
    keywords: list[str] | None = None
    organisms: list[Term] | None = None
    imaging_methods: list[Term] | None = None
    sample: str | None = None
    creators: list[Person] | None = None
    contributors: list[Person] | None = None
    funding: list[Funding] | None = None
    related_publications: list[str] | None = None
    version: str | None = None
    visibility: Visibility | None = None
    data_access: DataAccess | None = None
    access_contact: str | None = None
    embargo_end: date | None = None
    instruments: list[str] | None = None
    key_values: dict[str, str] | None = None


# ---------------------------------------------------------------------- locating fields


def _yaml_line(text: str, loc: tuple) -> int | None:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == part:
                    line, nxt = k.start_mark.line + 1, v
                    break
            node = nxt
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
        if node is None:
            break
    return line


def _text_line(text: str, loc: tuple, fmt: str) -> int | None:
    """Best-effort line of a field in TOML or JSON text (neither parser keeps positions)."""
    pos = 0
    line = None
    for i, part in enumerate(loc):
        if isinstance(part, int):
            if fmt == "toml" and i > 0:
                header = re.compile(r"^\s*\[\[\s*" + re.escape(str(loc[i - 1])) + r"\s*\]\]", re.M)
                hits = list(header.finditer(text, pos))
                if part < len(hits):
                    pos = hits[part].end()
                    line = text.count("\n", 0, hits[part].start()) + 1
            continue
        if fmt == "toml":
            pat = re.compile(r"^\s*(?:\[\[?\s*)?" + re.escape(str(part)) + r"\s*(?:=|\]\]?)", re.M)
        else:
            pat = re.compile(r'"' + re.escape(str(part)) + r'"\s*:')
        m = pat.search(text, pos)
        if not m:
            break
        pos = m.end()
        line = text.count("\n", 0, m.start()) + 1
    return line


def _line_of(text: str, fmt: str, loc: tuple) -> int | None:
    return _yaml_line(text, loc) if fmt == "yaml" else _text_line(text, loc, fmt)


def _dotted(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# ---------------------------------------------------------------------- loading


def _parse(text: str, fmt: str, file: str) -> tuple[dict | None, SidecarProblem | None]:
    try:
        if fmt == "toml":
            data = tomllib.loads(text)
        elif fmt == "yaml":
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        # tomllib says "at end of document" without a line number for a truncated file.
        line = (
            int(m.group(1))
            if m
            else (text.count("\n") + 1 if "end of document" in str(e) else None)
        )
        return None, SidecarProblem(file, line, None, f"not valid TOML: {e}")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        return None, SidecarProblem(
            file, mark.line + 1 if mark else None, None, f"not valid YAML: {e}"
        )
    except json.JSONDecodeError as e:
        return None, SidecarProblem(file, e.lineno, None, f"not valid JSON: {e.msg}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, SidecarProblem(
            file, 1, None, f"must be a mapping of keys to values, not {type(data).__name__}"
        )
    return data, None


def _validate(
    data: dict, text: str, fmt: str, file: str, problems: list[SidecarProblem]
) -> SidecarModel:
    """Validate, dropping each bad top-level field (reported) until the rest is valid."""
    data = dict(data)
    for _ in range(len(data) + 1):
        try:
            return SidecarModel.model_validate(data)
        except ValidationError as e:
            dropped = False
            for err in e.errors():
                loc = tuple(err["loc"])
                top = loc[0] if loc else None
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = (
                        "unknown key (known: " + ", ".join(sorted(SidecarModel.model_fields)) + ")"
                    )
                problems.append(SidecarProblem(file, _line_of(text, fmt, loc), _dotted(loc), msg))
                if top in data:
                    del data[top]
                    dropped = True
            if not dropped:
                break
    return SidecarModel()


def _person(
    c: SidecarCreator, idx: int, key: str, text: str, fmt: str, file: str, problems: list
) -> Person | None:
    try:
        return Person(name=c.name, orcid=c.orcid, affiliation=c.affiliation, role=c.role)
    except ValidationError as e:
        for err in e.errors():
            loc = (key, idx, *err["loc"])
            why = str(err.get("ctx", {}).get("error") or err["msg"])
            problems.append(SidecarProblem(file, _line_of(text, fmt, loc), _dotted(loc), why))
        try:  # keep the person, without the bad identifier
            return Person(name=c.name)
        except ValidationError:
            return None


def _terms(
    values: list[str], key: str, resolve, text: str, fmt: str, file: str, problems: list
) -> list[Term]:
    out: list[Term] = []
    for v in values:
        try:
            out.append(resolve(v))
        except UnknownTermError as e:
            problems.append(SidecarProblem(file, _line_of(text, fmt, (key,)), key, str(e)))
    return out


def load_sidecar(
    path: str | Path, display: str | None = None
) -> tuple[Sidecar | None, list[SidecarProblem]]:
    """Read one sidecar. Returns what is valid (None if nothing is) and every problem found."""
    p = Path(path)
    file = display or str(p)
    fmt = {"toml": "toml", "yaml": "yaml", "yml": "yaml", "json": "json"}.get(
        p.suffix.lstrip(".").lower()
    )
    if fmt is None:
        return None, [SidecarProblem(file, None, None, f"unknown sidecar type {p.suffix!r}")]
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_SIDECAR_BYTES + 1)
    except OSError as e:
        return None, [SidecarProblem(file, None, None, f"cannot read: {e.strerror or e}")]
    if len(raw) > MAX_SIDECAR_BYTES:
        return None, [SidecarProblem(file, None, None, f"larger than {MAX_SIDECAR_BYTES} bytes")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        return None, [
            SidecarProblem(
                file, line, None, f"not UTF-8 (byte {raw[e.start]:#x} at offset {e.start})"
            )
        ]
    data, problem = _parse(text, fmt, file)
    if problem:
        return None, [problem]
    problems: list[SidecarProblem] = []
    m = _validate(data, text, fmt, file, problems)
    sc = Sidecar(path=file)
    sc.title = m.title
    sc.description = m.description
    if m.license:
        try:
            sc.license = resolve_license(m.license).id
        except UnknownTermError as e:
            problems.append(
                SidecarProblem(file, _line_of(text, fmt, ("license",)), "license", str(e))
            )
    fields = m.model_fields_set
    if "keywords" in fields:
        sc.keywords = [k.strip() for k in m.keywords if k.strip()]
    if "organism" in fields:
        sc.organisms = _terms(m.organism, "organism", resolve_organism, text, fmt, file, problems)
    if "imaging_method" in fields:
        sc.imaging_methods = _terms(
            m.imaging_method, "imaging_method", resolve_imaging_method, text, fmt, file, problems
        )
    for key in ("creators", "contributors"):
        if key in fields:
            people = [
                _person(c, i, key, text, fmt, file, problems) for i, c in enumerate(getattr(m, key))
            ]
            setattr(sc, key, [p for p in people if p])
    if "funding" in fields:
        sc.funding = [Funding(**f.model_dump()) for f in m.funding]
    for key in ("related_publications", "instruments"):
        if key in fields:
            setattr(sc, key, list(getattr(m, key)))
    for key in ("sample", "version", "visibility", "data_access", "access_contact", "embargo_end"):
        if key in fields:
            setattr(sc, key, getattr(m, key))
    if "key_values" in fields:
        sc.key_values = {k: str(v) for k, v in m.key_values.items()}
    return sc, problems


def embargo_datetime(d: date | None) -> datetime | None:
    from datetime import UTC

    return datetime(d.year, d.month, d.day, tzinfo=UTC) if d else None
