"""Shared fixtures: a real catalog database (SQLite, and PostgreSQL when available), the app,
its test client, and a small "actions" helper that writes real records through RecordService.

PostgreSQL runs when FAIRNODE_TEST_DATABASE_URL names a server (each test gets a fresh database
there). Without it the PostgreSQL param is skipped, unless FAIRNODE_REQUIRE_SERVICES=1 (CI sets
it), in which case it fails: a missing service must never turn into a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image as PILImage
from sqlalchemy import Engine, create_engine, make_url, text

from node.catalog.db import open_catalog
from node.catalog.runs import HarvestError, RunStore
from node.catalog.service import RecordService
from node.config import Config, parse_config
from node.records import (
    Channel,
    Dataset,
    Image,
    Instrument,
    Lifecycle,
    Objective,
    PhysicalSize,
    Provenance,
    Size5D,
    Visibility,
    aggregate_images,
)

PG_ENV = "FAIRNODE_TEST_DATABASE_URL"
REQUIRE_ENV = "FAIRNODE_REQUIRE_SERVICES"
NODE_ID = "test-node"
BASE_URL = "http://node.test"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Under FAIRNODE_REQUIRE_SERVICES=1 (CI) every skip is a failure: nothing may silently not run.

    Missing services, libraries, sample folders or tools are all things CI must provide.
    """
    outcome = yield
    report = outcome.get_result()
    if os.environ.get(REQUIRE_ENV) == "1" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but {REQUIRE_ENV}=1 requires every test to run: {reason}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty catalog database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
        return
    server_url = os.environ.get(PG_ENV)
    if not server_url:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(
                f"{REQUIRE_ENV}=1 but {PG_ENV} is not set: the PostgreSQL tests cannot run. "
                f"Set {PG_ENV}=postgresql+psycopg://user@host:5432/db",
                pytrace=False,
            )
        pytest.skip(f"PostgreSQL not configured (set {PG_ENV})")
    name = f"fn_{uuid.uuid4().hex}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    """A node configuration with its data folder under tmp_path and small page sizes."""
    return parse_config(
        {
            "node": {
                "id": NODE_ID,
                "name": "Test Imaging Node",
                "base_url": BASE_URL,
                "data_dir": str(tmp_path / "data"),
                "description": "A node made by the test suite.",
            },
            "database": {"url": db_url},
            "web": {"page_size": 3, "max_page_size": 20},
        },
        env=False,
    )


@pytest.fixture
def engine(config: Config) -> Iterator[Engine]:
    """The catalog engine, schema migrated; disposed before the database is dropped."""
    eng = open_catalog(config.database.url)
    yield eng
    eng.dispose()


@pytest.fixture
def app(config: Config, engine: Engine) -> Flask:
    from node.app import create_app

    flask_app = create_app(config, engine=engine)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class CatalogActions:
    """Builds real Dataset/Image records and writes them the way harvesters do (flaskr-style
    ``AuthActions``): one session per dataset, RecordService.save_dataset + save_images."""

    def __init__(self, config: Config, engine: Engine):
        self.config = config
        self.records = RecordService(engine)
        self.runs = RunStore(engine)
        self._n = 0

    def image(self, dataset_id: str, name: str = "cells", **fields: Any) -> Image:
        """A fully described image; ``fields`` override any part."""
        self._n += 1
        path = fields.pop("path", f"{dataset_id}/{name}.ome.tif")
        values: dict[str, Any] = {
            "id": f"im-{dataset_id}-{self._n}",
            "dataset_id": dataset_id,
            "name": name,
            "path": path,
            "files": [path],
            "format": "OME-TIFF",
            "media_type": "image/tiff",
            "file_size": 123456,
            "size": Size5D(x=512, y=256, z=7, c=2, t=3),
            "dimension_order": "XYZCT",
            "pixel_type": "uint16",
            "physical_size": {
                "x": PhysicalSize(
                    value_um=0.065, original_value=65.0, original_unit="nm", source="ome-xml"
                ),
                "y": PhysicalSize(
                    value_um=0.065, original_value=65.0, original_unit="nm", source="ome-xml"
                ),
                # A 72-dpi default: kept as the original, never trusted as a µm value.
                "z": PhysicalSize(
                    value_um=None,
                    original_value=0.013888,
                    original_unit="inch",
                    source="tiff-resolution",
                    suspicious="72 dpi is a scanner/screen default, not a pixel size",
                ),
            },
            "time_increment_s": 2.5,
            "channels": [
                Channel(name="DAPI", fluor="DAPI", excitation_nm=358.0, emission_nm=461.0),
                Channel(name="GFP", fluor="EGFP", excitation_nm=488.0, emission_nm=507.0),
            ],
            "objective": Objective(
                model="Plan-Apochromat",
                manufacturer="Zeiss",
                magnification=63.0,
                na=1.4,
                immersion="Oil",
            ),
            "microscope": Instrument(manufacturer="Zeiss", model="LSM 980", type="Inverted"),
            "detectors": [Instrument(manufacturer="Hamamatsu", model="ORCA-Fusion")],
            "acquired_at": datetime(2023, 11, 5, 9, 30, tzinfo=UTC),
            "key_values": {"Stain": "Hoechst 33342", "Operator": "lab-robot-7"},
            "tags": ["mitosis", "HeLa"],
            "notes": ["image id repaired from duplicate UUID"],
        }
        values.update(fields)
        return Image(**values)

    def dataset(
        self,
        dataset_id: str,
        title: str | None = None,
        *,
        lifecycle: Lifecycle = Lifecycle.published,
        visibility: Visibility = Visibility.public,
        modified: datetime = T0,
        **fields: Any,
    ) -> Dataset:
        return Dataset(
            id=dataset_id,
            title=title or f"Dataset {dataset_id}",
            lifecycle=lifecycle,
            visibility=visibility,
            modified=modified,
            provenance=Provenance(origin_node=self.config.node.id, source="microscopy"),
            **fields,
        )

    def add(self, dataset: Dataset, images: list[Image] | None = None) -> Dataset:
        """Write ``dataset`` and its images in one transaction; totals computed from images."""
        images = images or []
        dataset = aggregate_images(dataset, images)
        with self.records.sessions() as s, s.begin():
            self.records.save_dataset(s, dataset, source="microscopy", folder=dataset.id)
            self.records.save_images(s, images, source="microscopy")
        return dataset

    def add_simple(
        self, dataset_id: str, n_images: int = 1, **kw: Any
    ) -> tuple[Dataset, list[Image]]:
        """A dataset with ``n_images`` images, each with a thumbnail on disk."""
        images = [self.with_thumbnail(self.image(dataset_id, f"img{i}")) for i in range(n_images)]
        return self.add(self.dataset(dataset_id, **kw), images), images

    def with_thumbnail(self, image: Image) -> Image:
        """Write a real PNG for ``image`` into the thumbnail folder, as the harvester does."""
        folder = self.config.thumbnail_dir
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{image.id}.png"
        PILImage.new("RGB", (8, 6), (200, 30, 90)).save(folder / name, format="PNG")
        return image.model_copy(update={"thumbnail": name})

    def run_with_errors(
        self, source: str, errors: list[tuple[str, str]], status: str = "completed"
    ) -> int:
        """A finished harvest run of ``source`` with per-file errors (path, reason)."""
        run_id = self.runs.start_run(source)
        self.runs.add_errors(run_id, [HarvestError(path=p, reason=r) for p, r in errors])
        self.runs.finish_run(run_id, status, {"files_seen": 10, "images": 7, "errors": len(errors)})
        return run_id


@pytest.fixture
def catalog(config: Config, engine: Engine) -> CatalogActions:
    return CatalogActions(config, engine)
