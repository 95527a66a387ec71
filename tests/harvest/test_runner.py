"""Harvest runs end to end: real files in, catalog out; incremental, removals, sidecars, locks."""

from __future__ import annotations

import os
import shutil
import time
from datetime import timedelta

import pytest
from harvest_helpers import make_config, snapshot, write_ome_tiff
from sqlalchemy import select

from node.auth.policy import ANONYMOUS, read_scope
from node.catalog.models import DatasetRow, ImageRow
from node.catalog.runs import RunStore
from node.catalog.service import RecordService
from node.errors import ConflictError
from node.harvest.ids import dataset_id
from node.harvest.runner import Harvester
from node.records import Dataset, Image, Lifecycle

PUBLIC = read_scope(ANONYMOUS)


def datasets_by_folder(engine) -> dict[str, Dataset]:
    with engine.connect() as c:
        return {
            r.folder: Dataset.model_validate(r.doc)
            for r in c.execute(select(DatasetRow.folder, DatasetRow.doc))
        }


def images(engine) -> list[Image]:
    with engine.connect() as c:
        return [Image.model_validate(d) for d in c.scalars(select(ImageRow.doc))]


def test_samples_become_datasets_with_metadata_from_inside_the_files(
    tmp_path, harvest_db, db_url, samples_tree
):
    cfg = make_config(tmp_path, db_url, samples_tree)
    run = Harvester(cfg, harvest_db).run("store")
    assert run.status == "completed", run.errors
    ds = datasets_by_folder(harvest_db)
    assert set(ds) == {
        "cell-biology/allen-cell/brightfield-reference",
        "ome/artificial/stacks-and-channels",
        "ome/artificial/multi-file-z-stack",
        "ome/specification/metadata-samples",
        "nikon/soft-matter/cluster-timelapse",
    }
    bf = ds["cell-biology/allen-cell/brightfield-reference"]
    assert bf.title == "Brightfield reference field, three file formats"
    assert bf.lifecycle is Lifecycle.published  # publish = "auto"
    assert bf.license == "BSD-3-Clause"
    assert [o.iri for o in bf.organisms] == ["http://purl.obolibrary.org/obo/NCBITaxon_9606"]
    assert bf.formats == ["CZI", "OME-TIFF", "TIFF"]
    assert bf.file_count == 3
    assert bf.image_count == 3
    assert bf.id == dataset_id("store", "cell-biology/allen-cell/brightfield-reference")

    by_path = {im.path: im for im in images(harvest_db)}
    ome = by_path["cell-biology/allen-cell/brightfield-reference/aics_s_1_t_1_c_1_z_1.ome.tiff"]
    assert (ome.size.x, ome.size.y) == (475, 325)
    assert ome.physical_size_um["x"] == pytest.approx(1.0833, abs=1e-3)
    assert ome.objective.magnification == 20
    assert ome.objective.na == pytest.approx(0.8)
    assert ome.dataset_id == bf.id

    # The multi-file OME-TIFF is ONE image of five planes, not five images.
    mf = [im for im in by_path.values() if im.path.startswith("ome/artificial/multi-file-z-stack/")]
    assert len(mf) == 1
    assert mf[0].size.z == 5
    assert len(mf[0].files) == 6
    assert ds["ome/artificial/multi-file-z-stack"].image_count == 1

    # Plates: 22 images from one OME-XML; published datasets are visible to anonymous readers.
    everything = images(harvest_db)
    plates = [
        im for im in everything if im.path.endswith("two-screens-two-plates-four-wells.ome.xml")
    ]
    assert len(plates) == 22
    page = RecordService(harvest_db).list_datasets(PUBLIC, limit=50)
    assert page.total == 5


def test_rescan_of_unchanged_files_reads_nothing_and_changes_nothing(
    tmp_path, harvest_db, db_url, samples_tree
):
    cfg = make_config(tmp_path, db_url, samples_tree)
    h = Harvester(cfg, harvest_db)
    h.run("store")
    before = snapshot(harvest_db)
    modified = {k: v.modified for k, v in datasets_by_folder(harvest_db).items()}
    run = h.run("store")
    c = run.counts
    assert c["files_unchanged"] == c["files_seen"] > 0
    assert c["files_new"] == c["files_changed"] == c["files_removed"] == 0
    assert c["filesets_extracted"] == 0
    assert c["datasets_updated"] == 0
    assert snapshot(harvest_db) == before
    assert {k: v.modified for k, v in datasets_by_folder(harvest_db).items()} == modified


def test_changed_new_and_vanished_files(tmp_path, harvest_db, db_url):
    root = tmp_path / "store"
    write_ome_tiff(root / "lab/p1/d1/a.ome.tif", seed=1)
    write_ome_tiff(root / "lab/p1/d1/b.ome.tif", seed=2)
    write_ome_tiff(root / "lab/p1/d2/c.ome.tif", seed=3)
    cfg = make_config(tmp_path, db_url, root)
    h = Harvester(cfg, harvest_db)
    h.run("store")
    assert {im.path for im in images(harvest_db)} == {
        "lab/p1/d1/a.ome.tif",
        "lab/p1/d1/b.ome.tif",
        "lab/p1/d2/c.ome.tif",
    }
    d1_before = datasets_by_folder(harvest_db)["lab/p1/d1"]
    d2_before = datasets_by_folder(harvest_db)["lab/p1/d2"]
    assert d2_before.identifier is not None

    # Change one file (new content and size), add one, remove a whole folder.
    write_ome_tiff(
        root / "lab/p1/d1/a.ome.tif", shape=(3, 20, 30), channels=("DAPI", "GFP", "RFP"), seed=4
    )
    write_ome_tiff(root / "lab/p1/d1/new.ome.tif", seed=5)
    shutil.rmtree(root / "lab/p1/d2")
    run = h.run("store")
    c = run.counts
    assert c["files_changed"] == 1
    assert c["files_new"] == 1
    assert c["files_removed"] == 1
    assert c["filesets_extracted"] == 2  # a.ome.tif and new.ome.tif only; b.ome.tif is not re-read
    by_path = {im.path: im for im in images(harvest_db)}
    assert set(by_path) == {"lab/p1/d1/a.ome.tif", "lab/p1/d1/b.ome.tif", "lab/p1/d1/new.ome.tif"}
    assert [ch.name for ch in by_path["lab/p1/d1/a.ome.tif"].channels] == ["DAPI", "GFP", "RFP"]
    ds = datasets_by_folder(harvest_db)
    # Its folder vanished. The dataset was published, so it is withdrawn, not deleted: its PID
    # and citation stay on a tombstone and OAI-PMH reports it as deleted.
    gone = ds["lab/p1/d2"]
    assert gone.lifecycle is Lifecycle.withdrawn
    assert gone.withdrawn_reason == "its files are no longer in the storage (store: lab/p1/d2)"
    assert gone.identifier == d2_before.identifier
    assert ds["lab/p1/d1"].image_count == 3
    assert ds["lab/p1/d1"].modified > d1_before.modified


def test_dataset_depth_and_sidecars_decide_the_datasets(tmp_path, harvest_db, db_url):
    root = tmp_path / "store"
    write_ome_tiff(root / "grp/proj/ds1/sub/x.ome.tif", seed=1)
    write_ome_tiff(root / "grp/proj/ds1/y.ome.tif", seed=2)
    write_ome_tiff(root / "top.ome.tif", seed=3)
    cfg = make_config(tmp_path, db_url, root, dataset_depth=3)
    h = Harvester(cfg, harvest_db)
    h.run("store")
    ds = datasets_by_folder(harvest_db)
    assert set(ds) == {"grp/proj/ds1", ""}  # deeper folders fold into their depth-3 ancestor
    assert ds["grp/proj/ds1"].image_count == 2

    # A sidecar in a deeper folder makes it a dataset of its own: its images move there.
    (root / "grp/proj/ds1/sub/dataset.toml").write_text('title = "The sub folder"\n')
    h.run("store")
    ds = datasets_by_folder(harvest_db)
    assert ds["grp/proj/ds1/sub"].title == "The sub folder"
    assert ds["grp/proj/ds1/sub"].image_count == 1
    assert ds["grp/proj/ds1"].image_count == 1
    moved = next(im for im in images(harvest_db) if im.path == "grp/proj/ds1/sub/x.ome.tif")
    assert moved.dataset_id == ds["grp/proj/ds1/sub"].id

    # Edit the card: the dataset follows. Remove it: the images go back.
    time.sleep(0.01)
    (root / "grp/proj/ds1/sub/dataset.toml").write_text(
        'title = "Renamed sub folder"\nlicense = "CC0-1.0"\n'
    )
    h.run("store")
    assert datasets_by_folder(harvest_db)["grp/proj/ds1/sub"].license == "CC0-1.0"
    (root / "grp/proj/ds1/sub/dataset.toml").unlink()
    h.run("store")
    ds = datasets_by_folder(harvest_db)
    # It was published: withdrawn (tombstone, PID kept), not deleted
    assert ds["grp/proj/ds1/sub"].lifecycle is Lifecycle.withdrawn
    assert ds["grp/proj/ds1/sub"].image_count == 1  # what it held when it was withdrawn
    assert ds["grp/proj/ds1"].image_count == 2


def test_invalid_sidecar_is_reported_and_the_dataset_still_harvested(tmp_path, harvest_db, db_url):
    root = tmp_path / "store"
    write_ome_tiff(root / "d/a.ome.tif")
    (root / "d/dataset.toml").write_text(
        'title = "Good title"\norganism = "Mus muscolus"\nlicense = 42\n'
    )
    cfg = make_config(tmp_path, db_url, root)
    run = Harvester(cfg, harvest_db).run("store")
    errs = {(e.path, e.reason) for e in run.errors}
    assert any(
        p == "d/dataset.toml" and "organism" in r and "Mus muscolus" in r and "line 2" in r
        for p, r in errs
    )
    assert any(p == "d/dataset.toml" and "license" in r and "line 3" in r for p, r in errs)
    ds = datasets_by_folder(harvest_db)["d"]
    assert ds.title == "Good title"
    assert ds.image_count == 1
    assert ds.organisms == []


def test_draft_sources_stay_invisible_to_anonymous_readers(tmp_path, harvest_db, db_url):
    root = tmp_path / "store"
    write_ome_tiff(root / "d/a.ome.tif")
    cfg = make_config(tmp_path, db_url, root, publish="draft")
    Harvester(cfg, harvest_db).run("store")
    svc = RecordService(harvest_db)
    assert svc.list_datasets(PUBLIC, limit=10).total == 0
    assert datasets_by_folder(harvest_db)["d"].lifecycle is Lifecycle.draft


def test_two_runs_of_one_source_never_overlap(tmp_path, harvest_db, db_url):
    root = tmp_path / "store"
    write_ome_tiff(root / "d/a.ome.tif")
    cfg = make_config(tmp_path, db_url, root)
    runs = RunStore(harvest_db)
    assert runs.acquire("store", "other-host:123", timedelta(minutes=5))
    with pytest.raises(ConflictError, match="being harvested by other-host:123"):
        Harvester(cfg, harvest_db).run("store")
    # A crashed holder's lease expires; then the next run proceeds.
    assert runs.acquire("store", "other-host:123", timedelta(seconds=-1))
    run = Harvester(cfg, harvest_db).run("store")
    assert run.status == "completed"
    assert runs.lock_holder_of("store") is None  # released at the end


def test_thumbnails_are_made_after_the_metadata(tmp_path, harvest_db, db_url):
    root = tmp_path / "store"
    write_ome_tiff(root / "d/a.ome.tif", shape=(2, 64, 80))
    cfg = make_config(tmp_path, db_url, root, thumbnails=True)
    run = Harvester(cfg, harvest_db).run("store")
    assert run.status == "completed"
    (im,) = images(harvest_db)
    assert im.thumbnail
    assert (cfg.thumbnail_dir / im.thumbnail).is_file()
    ds = datasets_by_folder(harvest_db)["d"]
    assert ds.thumbnail == im.thumbnail


def test_run_is_recorded_with_counts(tmp_path, harvest_db, db_url):
    root = tmp_path / "store"
    write_ome_tiff(root / "d/a.ome.tif")
    (root / "d/broken.tif").write_bytes(b"II*\x00garbage")
    cfg = make_config(tmp_path, db_url, root)
    run = Harvester(cfg, harvest_db).run("store")
    listed = RunStore(harvest_db).list_runs(limit=10)
    assert listed.total == 1
    assert listed.items[0].id == run.id
    assert run.counts["files_seen"] == 2
    assert run.counts["images_failed"] == 1
    assert [e.path for e in run.errors if e.level == "error"] == ["d/broken.tif"]
    assert run.ended_at >= run.started_at
    os.utime(root / "d/a.ome.tif")  # mtime changed, content the same: re-read, same record
    run2 = Harvester(cfg, harvest_db).run("store")
    assert run2.counts["files_changed"] == 1
    assert run2.status == "completed"


def test_metadata_ok_pixels_broken_becomes_metadata_only(tmp_path, harvest_db, db_url):
    import numpy as np
    import tifffile

    root = tmp_path / "store"
    path = root / "d" / "garbled.ome.tif"
    path.parent.mkdir(parents=True)
    data = np.random.default_rng(7).integers(0, 4000, size=(64, 80), dtype=np.uint16)
    tifffile.imwrite(path, data, ome=True, compression="zlib", metadata={"axes": "YX"})
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        offsets, counts = page.dataoffsets, page.databytecounts
    raw = bytearray(path.read_bytes())
    for off, n in zip(offsets, counts, strict=True):  # same length: the header stays valid
        raw[off : off + n] = bytes((i * 37 + 11) % 256 for i in range(n))
    path.write_bytes(bytes(raw))
    write_ome_tiff(root / "d" / "fine.ome.tif")
    cfg = make_config(tmp_path, db_url, root, thumbnails=True)
    run = Harvester(cfg, harvest_db).run("store")
    assert run.status == "completed"
    by_path = {im.path: im for im in images(harvest_db)}
    garbled = by_path["d/garbled.ome.tif"]
    assert garbled.status.value == "metadata_only"
    assert "cannot read pixels" in garbled.error
    assert (garbled.size.x, garbled.size.y) == (80, 64)  # the metadata is kept
    assert by_path["d/fine.ome.tif"].status.value == "ok"
    assert by_path["d/fine.ome.tif"].thumbnail
    reasons = {e.path: e.reason for e in run.errors}
    assert reasons["d/garbled.ome.tif"].startswith("metadata read, but cannot read pixels")
