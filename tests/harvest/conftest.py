"""Fixtures for the harvest tests: the demo layout of the shipped samples, a fresh catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from node.catalog.db import open_catalog
from node.demo import build_demo


@pytest.fixture
def samples_tree(tmp_path: Path) -> Path:
    """The demo layout (group/project/dataset folders with dataset.toml) of tests/data/samples."""
    build_demo(tmp_path / "demo")
    return tmp_path / "demo" / "data"


@pytest.fixture
def harvest_db(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh catalog database (schema migrated)."""
    engine = open_catalog(db_url)
    yield engine
    engine.dispose()
