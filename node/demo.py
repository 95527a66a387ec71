"""``fairnode demo``: a node in a local folder harvesting the real sample files of the repo.

The samples are arranged the way an imaging facility stores data
(group/project/dataset/) with sidecar cards that say what the files cannot.
Each sidecar keeps the licence and attribution of the files it describes
(tests/data/samples/ATTRIBUTION.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO_SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "samples"

# dataset folder -> (files from the samples folder, sidecar TOML)
LAYOUT: dict[str, tuple[list[str], str]] = {
    "cell-biology/allen-cell/brightfield-reference": (
        [
            "ome-tiff/aics_s_1_t_1_c_1_z_1.ome.tiff",
            "tiff/aics_s_1_t_1_c_1_z_1.tiff",
            "czi/aics_s_1_t_1_c_1_z_1.czi",
        ],
        '''title = "Brightfield reference field, three file formats"
description = """One transmitted-light field acquired on a ZEISS inverted stand with a \
Plan-Apochromat 20x/0.8 objective, saved as CZI, as OME-TIFF (Bio-Formats) and as an ImageJ \
TIFF. Sample data of the Allen Institute for Cell Science (aicsimageio test resources)."""
license = "BSD-3-Clause"
keywords = ["brightfield", "format comparison", "test data"]
organism = "Homo sapiens"
imaging_method = "bright-field microscopy"
[[creators]]
name = "Allen Institute for Cell Science"
[key_values]
origin = "AllenCellModeling/aicsimageio tests/resources"
''',
    ),
    "ome/artificial/stacks-and-channels": (
        [
            "ome-tiff/single-channel.ome.tif",
            "ome-tiff/multi-channel.ome.tif",
            "ome-tiff/z-series.ome.tif",
            "ome-tiff/ome-types_ome.tiff",
        ],
        '''title = "OME artificial OME-TIFF samples: channels and Z-stacks"
description = """Synthetic images from the OME bioformats-artificial sample set, \
used to test OME-TIFF readers."""
license = "CC-BY-4.0"
keywords = ["OME-TIFF", "synthetic", "test data"]
[[creators]]
name = "Open Microscopy Environment"
''',
    ),
    "ome/artificial/multi-file-z-stack": (
        [f"ome-tiff-multifile/multifile-Z{i}.ome.tiff" for i in range(1, 6)]
        + ["ome-tiff-multifile/multifile.companion.ome"],
        '''title = "Multi-file OME-TIFF Z-stack with companion file"
description = """Five binary-only OME-TIFF planes whose metadata lives in a \
.companion.ome file: one image, not five."""
license = "CC-BY-4.0"
keywords = ["OME-TIFF", "multi-file", "companion"]
[[creators]]
name = "Open Microscopy Environment"
''',
    ),
    "ome/specification/metadata-samples": (
        [
            "ome-xml/instrument.ome.xml",
            "ome-xml/tubhiswt.ome.xml",
            "ome-xml/mapannotation.ome.xml",
            "ome-xml/tagannotation.ome.xml",
            "ome-xml/two-screens-two-plates-four-wells.ome.xml",
        ],
        '''title = "OME-XML specification samples: instruments, annotations and plates"
description = """Metadata-only OME-XML documents from the OME data model \
specification and ome-types: a full instrument description, the tubhiswt C. elegans \
acquisition, map and tag annotations, and a screen/plate/well hierarchy."""
license = "BSD-2-Clause"
keywords = ["OME-XML", "metadata", "high-content screening"]
organism = "Caenorhabditis elegans"
''',
    ),
    "nikon/soft-matter/cluster-timelapse": (
        ["nd2/cluster.nd2"],
        '''title = "Nikon ND2 time-lapse Z-stack of a particle cluster"
description = """A NIS-Elements ND2 file with 3 time points, 10 Z planes and \
2 channels (PIMS test data)."""
license = "BSD-3-Clause"
keywords = ["ND2", "time-lapse", "z-stack"]
[[creators]]
name = "soft-matter/pims contributors"
''',
    ),
}

NODE_TOML = """# Demo node written by `fairnode demo`. See docs/configuration.md for every setting.
[node]
id = "demo"
name = "Demo imaging facility"
base_url = "http://127.0.0.1:5000"
level = "institute"
data_dir = "var"
description = "A fairnode demo harvesting real, openly licensed sample microscopy files."

[[harvest.sources]]
name = "microscopy"
path = "data"
schedule = "0 2 * * *"
visibility = "public"
data_access = "open"
publish = "auto"
"""


def build_demo(directory: Path, samples: Path | None = None) -> Path:
    """Lay out the demo data and config in ``directory`` (idempotent); return the config path."""
    samples = samples or REPO_SAMPLES
    if not samples.is_dir():
        raise FileNotFoundError(f"sample folder {samples} not found; pass --samples DIR")
    data = directory / "data"
    for folder, (files, sidecar) in LAYOUT.items():
        target = data / folder
        target.mkdir(parents=True, exist_ok=True)
        for rel in files:
            src = samples / rel
            dst = target / src.name
            if src.is_file() and not dst.exists():
                shutil.copy2(src, dst)  # a copy, so the demo never touches the repository's files
        card = target / "dataset.toml"
        if not card.exists() or card.read_text(encoding="utf-8") != sidecar:
            card.write_text(sidecar, encoding="utf-8")
    cfg = directory / "node.toml"
    if not cfg.exists():
        cfg.write_text(NODE_TOML, encoding="utf-8")
    return cfg
