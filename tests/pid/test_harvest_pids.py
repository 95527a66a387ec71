"""Auto-published harvests mint exactly one PID per dataset, in the dataset's transaction, and
keep it through re-harvests, removals and returns; a failed mint keeps the dataset a draft."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pid_helpers import pid_rows, stored, with_pid, write_ome_tiff
from sqlalchemy import Engine, select

from node.catalog.db import open_catalog
from node.catalog.models import DatasetRow
from node.config import Config, parse_config
from node.harvest.ids import dataset_id
from node.harvest.runner import Harvester
from node.pid import ark
from node.records import Lifecycle

FOLDERS = ("lab/proj/ds-a", "lab/proj/ds-b", "lab/other/ds-c")


def node_config(tmp_path: Path, db_url: str, root: Path, publish: str = "auto") -> Config:
    return parse_config(
        {
            "node": {"id": "test-node", "name": "Test node", "data_dir": str(tmp_path / "var")},
            "database": {"url": db_url},
            "harvest": {
                "thumbnails": False,
                "sources": [{"name": "store", "path": str(root), "publish": publish}],
            },
        },
        path=tmp_path / "node.toml",
        env=False,
    )


def tree(root: Path) -> Path:
    for i, folder in enumerate(FOLDERS):
        write_ome_tiff(root / folder / "cells.ome.tif", seed=i)
    return root


def lifecycles(engine: Engine) -> dict[str, str]:
    with engine.connect() as c:
        return dict(c.execute(select(DatasetRow.folder, DatasetRow.lifecycle)).all())


def identifiers(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as c:
        return dict(c.execute(select(DatasetRow.folder, DatasetRow.identifier)).all())


def test_auto_publish_mints_one_pid_per_dataset_that_survives_reharvests(
    tmp_path: Path, db_url: str
):
    root = tree(tmp_path / "store")
    cfg = node_config(tmp_path, db_url, root)
    engine = open_catalog(db_url)
    try:
        assert Harvester(cfg, engine).run("store").status == "completed"
        first = identifiers(engine)
        assert set(first) == set(FOLDERS)
        for folder, pid in first.items():
            assert ark.is_valid(pid, naan="99999", shoulder="fk4"), folder
            ds = stored(engine, dataset_id("store", folder))
            assert (ds.lifecycle, ds.identifier) == (Lifecycle.published, pid)
            assert ds.issued is not None
        assert len(set(first.values())) == len(FOLDERS)
        rows = pid_rows(engine)
        assert sorted((p, d) for p, d, _, _ in rows) == sorted(
            (pid, dataset_id("store", f)) for f, pid in first.items()
        )

        # A rescan with nothing changed, then one with a changed file (the dataset is rebuilt).
        assert Harvester(cfg, engine).run("store").status == "completed"
        write_ome_tiff(root / FOLDERS[0] / "cells.ome.tif", seed=99)
        write_ome_tiff(root / FOLDERS[0] / "more.ome.tif", seed=98)
        run = Harvester(cfg, engine).run("store")
        assert run.status == "completed"
        assert run.counts["datasets_updated"] >= 1
        assert identifiers(engine) == first
        assert pid_rows(engine) == rows

        # A dataset whose files vanish is withdrawn (its PID shows a tombstone); when they come
        # back it is published again under the same PID.
        gone = root / FOLDERS[1]
        shutil.move(gone, tmp_path / "aside")
        Harvester(cfg, engine).run("store")
        assert identifiers(engine) == first
        assert lifecycles(engine)[FOLDERS[1]] == "withdrawn"
        shutil.move(tmp_path / "aside", gone)
        os.utime(gone / "cells.ome.tif")
        Harvester(cfg, engine).run("store")
        assert identifiers(engine) == first
        assert lifecycles(engine)[FOLDERS[1]] == "published"
        assert pid_rows(engine) == rows  # never a second PID, never one deleted
    finally:
        engine.dispose()


def test_draft_sources_mint_nothing(tmp_path: Path, db_url: str):
    root = tree(tmp_path / "store")
    engine = open_catalog(db_url)
    try:
        Harvester(node_config(tmp_path, db_url, root, publish="draft"), engine).run("store")
        assert set(identifiers(engine).values()) == {None}
        assert pid_rows(engine) == []
    finally:
        engine.dispose()


def test_a_failed_mint_keeps_the_datasets_drafts_and_says_why(
    tmp_path: Path, db_url: str, monkeypatch
):
    # DataCite DOIs without credentials: minting fails before any network, as it must.
    monkeypatch.delenv("FAIRNODE_DATACITE_USERNAME", raising=False)
    monkeypatch.delenv("FAIRNODE_DATACITE_PASSWORD", raising=False)
    root = tree(tmp_path / "store")
    cfg = with_pid(
        node_config(tmp_path, db_url, root), scheme="datacite", datacite_prefix="10.80000"
    )
    engine = open_catalog(db_url)
    try:
        run = Harvester(cfg, engine).run("store")
        assert run.status == "completed"
        for folder in FOLDERS:
            ds = stored(engine, dataset_id("store", folder))
            assert (ds.lifecycle, ds.identifier, ds.issued) == (Lifecycle.draft, None, None)
        reasons = {e.path: e.reason for e in run.errors}
        assert set(reasons) == set(FOLDERS)
        assert all(
            r.startswith("identifier: kept as a draft, no PID could be minted: no DataCite")
            and "FAIRNODE_DATACITE_USERNAME" in r
            for r in reasons.values()
        ), reasons
        assert pid_rows(engine) == []

        # Once minting works (here: ARKs), the next harvest that rebuilds them publishes them.
        for folder in FOLDERS:
            os.utime(root / folder / "cells.ome.tif", (1, 1))
        Harvester(with_pid(cfg, scheme="ark"), engine).run("store")
        assert all(ark.is_valid(p) for p in identifiers(engine).values())
    finally:
        engine.dispose()
