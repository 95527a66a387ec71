"""Helpers for harvest tests: real files written with tifffile, configs, catalog snapshots."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import tifffile
from sqlalchemy import select

from node.catalog.models import DatasetRow, FileRow, ImageRow
from node.config import Config, parse_config

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def write_ome_tiff(
    path: Path, *, shape=(2, 16, 24), channels=("DAPI", "GFP"), size_um=0.325, seed=0
) -> Path:
    """A small real OME-TIFF with channel names, pixel size and an objective."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 4000, size=shape, dtype=np.uint16)
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "CYX",
            "PhysicalSizeX": size_um,
            "PhysicalSizeY": size_um,
            "Channel": {"Name": list(channels)},
        },
    )
    return path


def make_config(tmp_path: Path, db_url: str, root: Path, **source) -> Config:
    root.mkdir(parents=True, exist_ok=True)
    data = {
        "node": {"id": "test-node", "name": "Test node", "data_dir": str(tmp_path / "var")},
        "database": {"url": db_url},
        "harvest": {
            "thumbnails": source.pop("thumbnails", False),
            "sources": [{"name": "store", "path": str(root), "publish": "auto", **source}],
        },
    }
    return parse_config(data, path=tmp_path / "node.toml", env=False)


def snapshot(engine) -> dict:
    """The catalog's content without the timestamps that differ between runs."""
    with engine.connect() as c:
        datasets = {}
        for row in c.execute(select(DatasetRow.id, DatasetRow.doc, DatasetRow.dirty)):
            doc = dict(row.doc)
            for k in ("modified", "issued"):
                doc.pop(k, None)
            # PIDs are minted at random: compare that one exists, not its value.
            doc["identifier"] = bool(doc.get("identifier"))
            doc["provenance"] = {
                k: v
                for k, v in doc["provenance"].items()
                if k not in ("first_seen", "last_harvested")
            }
            datasets[row.id] = (doc, row.dirty)
        images = {r.id: r.doc for r in c.execute(select(ImageRow.id, ImageRow.doc))}
        files = sorted(
            (r.dir, r.name, r.size, r.fileset, r.dataset_id)
            for r in c.execute(
                select(FileRow.dir, FileRow.name, FileRow.size, FileRow.fileset, FileRow.dataset_id)
            )
        )
    return {"datasets": datasets, "images": images, "files": files}


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst
