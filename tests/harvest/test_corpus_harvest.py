"""A full harvest (with thumbnails) over the whole shared sample corpus.

Every file ends up as an image record or a reported error, never a crash; vendor files whose
pixels the readers cannot decode are ``metadata_only`` with the reason, not ``ok``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from harvest_helpers import make_config
from sqlalchemy import select

from node.catalog.models import FileRow, ImageRow
from node.harvest.runner import Harvester
from node.records import Image

CORPUS = Path(
    os.environ.get("FAIRNODE_SAMPLES_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "microscopy"
)

pytestmark = pytest.mark.corpus


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"sample corpus not found at {CORPUS} (set FAIRNODE_SAMPLES_DIR)")
    # A copy: the shared corpus is read-only, and the harvest must not depend on that.
    return Path(shutil.copytree(CORPUS, tmp_path / "corpus"))


def test_whole_corpus_harvest(tmp_path: Path, harvest_db, db_url: str, corpus_copy: Path):
    cfg = make_config(tmp_path, db_url, corpus_copy, dataset_depth=1, thumbnails=True)
    run = Harvester(cfg, harvest_db).run("store")
    assert run.status == "completed"
    with harvest_db.connect() as c:
        files = {f"{r.dir}/{r.name}": r.fileset for r in c.execute(select(FileRow))}
        images = [Image.model_validate(d) for d in c.scalars(select(ImageRow.doc))]
    image_files = {f for f in files if not f.endswith((".md", ".tsv"))}
    covered = {m for im in images for m in (im.files or [im.path])}
    reported = {e.path for e in run.errors}
    missing = sorted(f for f in image_files if f not in covered and f not in reported)
    assert missing == [], f"files neither catalogued nor reported: {missing}"

    status = {}
    for im in images:
        status.setdefault(im.path, set()).add(im.status.value)
    # MANIFEST: bioio-lif reads the LIF's metadata but fails on its pixels (lambda scans).
    assert status["lif/LeicaLASX_wavelength-sweep_example.lif"] == {"metadata_only"}
    lif = [im for im in images if im.path.startswith("lif/")]
    assert len(lif) == 3
    assert all("cannot read pixels" in im.error for im in lif)
    # MANIFEST: DAPI_GFP.czi fails in bioio-czi on its scaling metadata.
    assert status["czi/DAPI_GFP.czi"] == {"failed"}
    # The readable ones got thumbnails.
    nd2 = next(im for im in images if im.path == "nd2/cluster.nd2")
    assert nd2.status.value == "ok"
    assert nd2.thumbnail
    assert (cfg.thumbnail_dir / nd2.thumbnail).is_file()
