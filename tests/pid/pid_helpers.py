"""Helpers of the PID tests: configs with a [pid] section, datasets written like harvests write
them, the ``fairnode`` command as a real process, and small real OME-TIFF trees."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import tifffile
from sqlalchemy import Engine, select

from node.catalog.models import DatasetRow, PidRow
from node.catalog.service import RecordService
from node.config import Config
from node.records import Dataset, Lifecycle, Person, Provenance, Visibility

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def with_pid(config: Config, **settings) -> Config:
    """``config`` with some [pid] settings changed."""
    return dataclasses.replace(config, pid=dataclasses.replace(config.pid, **settings))


def add_dataset(
    engine: Engine,
    dataset_id: str,
    *,
    lifecycle: Lifecycle = Lifecycle.draft,
    visibility: Visibility = Visibility.public,
    **fields,
) -> Dataset:
    """Write a dataset record through RecordService, as harvests do."""
    values = {
        "title": f"Dataset {dataset_id}",
        "creators": [Person(name="Ada Lovelace"), Person(name="Charles Babbage")],
        "publisher": "Test Imaging Node",
        "modified": T0,
        **fields,
    }
    ds = Dataset(
        id=dataset_id,
        lifecycle=lifecycle,
        visibility=visibility,
        provenance=Provenance(origin_node="test-node", source="microscopy"),
        **values,
    )
    records = RecordService(engine)
    with records.sessions() as s, s.begin():
        records.save_dataset(s, ds, source="microscopy", folder=dataset_id)
    return ds


def stored(engine: Engine, dataset_id: str) -> Dataset:
    with engine.connect() as c:
        doc = c.scalar(select(DatasetRow.doc).where(DatasetRow.id == dataset_id))
    return Dataset.model_validate(doc)


def pid_rows(engine: Engine) -> list[tuple[str, str, str, str]]:
    """(pid, dataset_id, scheme, status) of every row of the pids table."""
    with engine.connect() as c:
        return sorted(
            (r.pid, r.dataset_id, r.scheme, r.status)
            for r in c.execute(select(PidRow.pid, PidRow.dataset_id, PidRow.scheme, PidRow.status))
        )


def fairnode(*args: str, env: dict | None = None, timeout: float = 300):
    """The ``fairnode`` command as a real process (like tests/test_cli.py)."""
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)},
        timeout=timeout,
    )


def write_ome_tiff(path: Path, *, seed: int = 0) -> Path:
    """A small real OME-TIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 4000, size=(2, 16, 24), dtype=np.uint16)
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={"axes": "CYX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325},
    )
    return path
