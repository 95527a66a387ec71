"""Metadata extraction without reading pixels: one fileset in, its Image records out.

``extract_fileset`` never raises for bad content or I/O: a fileset nothing could be read
from gives one record with status ``failed`` and an error naming the file and the reason;
metadata without readable pixels gives ``metadata_only``.
"""

from __future__ import annotations

import logging

from node.harvest.entries import Fileset
from node.harvest.extractors.bioio_fallback import extract_bioio
from node.harvest.extractors.common import ExtractError, failed_image
from node.harvest.extractors.ome_xml import extract_ome_xml
from node.harvest.extractors.ome_zarr import ZarrError, extract_ome_zarr
from node.harvest.extractors.tiff import extract_tiff
from node.harvest.xml import XmlError
from node.records import Image

log = logging.getLogger(__name__)

_BY_KIND = {
    "ome-tiff": extract_tiff,
    "tiff": extract_tiff,
    "ome-xml": extract_ome_xml,
    "ome-zarr": extract_ome_zarr,
    "bioio": extract_bioio,
}


def extract_fileset(fs: Fileset, source: str) -> list[Image]:
    """Image records (one per scene/series) for ``fs``; never raises for bad files."""
    rel = fs.main.rel
    try:
        return _BY_KIND.get(fs.kind, extract_bioio)(fs, source)
    except (ExtractError, XmlError, ZarrError) as exc:
        return [failed_image(fs, source, str(exc))]
    except FileNotFoundError as exc:
        name = exc.filename or rel
        return [failed_image(fs, source, f"{rel}: file vanished before it could be read ({name})")]
    except IsADirectoryError:
        return [failed_image(fs, source, f"{rel}: is a directory, not a file")]
    except OSError as exc:
        return [failed_image(fs, source, f"{rel}: I/O error: {exc.strerror or exc}")]
    except MemoryError:
        return [failed_image(fs, source, f"{rel}: out of memory while reading metadata")]
    except Exception as exc:
        # A reader bug or a file shape nobody foresaw: record it and keep harvesting.
        log.warning("unexpected error extracting %s", rel, exc_info=True)
        return [failed_image(fs, source, f"{rel}: could not be read: {type(exc).__name__}: {exc}")]


__all__ = ["extract_fileset"]
