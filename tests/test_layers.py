"""The architecture's import rules (DESIGN §2, docs/architecture.md), checked on the source:
heavy libraries stay inside their package, the record model imports nothing else from
``node``, and harvest and federation never reach into the web layer.

Imports are read with ``ast`` (every ``import`` and ``from ... import``, at any depth, also
inside functions), so a lazy import cannot slip past."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NODE = Path(__file__).resolve().parents[1] / "node"

# library → the packages (paths under node/) allowed to import it
HEAVY = {
    "rdflib": ("linkeddata",),
    "tantivy": ("search",),
    "elasticsearch": ("search",),
    "tifffile": ("harvest",),
    "bioio": ("harvest",),
    "zarr": ("harvest",),
    "authlib": ("auth",),
}
WEB_LAYER = ("node.web", "node.api")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(NODE.parent).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


MODULES = sorted(NODE.rglob("*.py"))


def test_the_scan_sees_the_code() -> None:
    # A rule over no files would pass for nothing: the scan must find the known imports.
    everything = {name for p in MODULES for _, name in imports(p)}
    assert len(MODULES) > 50
    assert {"rdflib", "tantivy", "elasticsearch", "tifffile", "node.records"} <= {
        n.split(".")[0] if not n.startswith("node.") else n for n in everything
    }
    relative = imports(NODE / "linkeddata" / "dcat_read.py")
    assert any(name == "node.linkeddata.context" for _, name in relative)


@pytest.mark.parametrize("library", sorted(HEAVY))
def test_heavy_libraries_stay_in_their_package(library: str) -> None:
    allowed = tuple(NODE / p for p in HEAVY[library])
    outside = [
        f"{p.relative_to(NODE.parent)}:{line} imports {name}"
        for p in MODULES
        if not any(p.is_relative_to(a) for a in allowed)
        for line, name in imports(p)
        if name.split(".")[0] == library
    ]
    assert not outside, f"{library} is for node/{'|'.join(HEAVY[library])} only:\n" + "\n".join(
        outside
    )


def test_the_record_model_imports_nothing_else_from_node() -> None:
    own = [name for _, name in imports(NODE / "records.py") if name.split(".")[0] == "node"]
    assert not own, own


@pytest.mark.parametrize("package", ["harvest", "federation", "catalog", "search", "auth"])
def test_lower_layers_never_import_the_web_layer(package: str) -> None:
    upward = [
        f"{p.relative_to(NODE.parent)}:{line} imports {name}"
        for p in sorted((NODE / package).rglob("*.py"))
        for line, name in imports(p)
        if name.startswith(WEB_LAYER)
    ]
    assert not upward, "\n".join(upward)
