"""Planes from vendor formats (CZI, ND2, LIF, DV, ...) through bioio plugins, strided with dask."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# The package, not its names: MAX_PLANE_BYTES is looked up there at call time, so that
# setting it on node.harvest.thumbnails (as tests do) applies.
from node.harvest import thumbnails
from node.harvest.thumbnails.errors import ThumbnailError
from node.harvest.thumbnails.planes import MAX_CHANNELS, _check_plane_claim, _middle, _Planes, _step
from node.records import Image

log = logging.getLogger(__name__)


def _read_bioio(image: Image, path: Path, max_side: int) -> _Planes:
    """CZI, ND2, LIF, DV, ... through bioio plugins (optional dependency, imported lazily)."""
    name = image.path
    # Plugins emit deprecation and metadata warnings at import and read time; they are not
    # our errors (and the test suite turns warnings into errors), so they are logged instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            from bioio import BioImage
        except ImportError as exc:
            raise ThumbnailError(
                f"{name}: format {image.format!r} needs bioio and its plugins ({exc})"
            ) from exc
        img = BioImage(path)
        scenes = img.scenes
        if image.series >= len(scenes):
            raise ThumbnailError(
                f"{name}: series {image.series} does not exist (file has {len(scenes)} scenes)"
            )
        if image.series:
            img.set_scene(image.series)
        dims = img.dims
        fy, fx = int(dims.Y), int(dims.X)
        _check_plane_claim(name, fy, fx)
        _pick_bioio_level(img, max_side)
        dims = img.dims
        step = _step((int(dims.Y), int(dims.X)), max_side)
        order = dims.order
        samples = int(dims.S) if "S" in order else 1
        z = _middle(int(dims.Z)) if "Z" in order else 0
        n_channels = min(MAX_CHANNELS, int(dims.C)) if "C" in order else 1
        channels: list[np.ndarray] = []
        rgb = samples in (3, 4)
        if rgb:
            data = img.get_image_dask_data("YXS", T=0, C=0, Z=z)
            _check_dask_chunks(name, data)
            data = np.asarray(data[::step, ::step, :3].compute(scheduler="synchronous"))
            channels = [np.ascontiguousarray(data[:, :, s]) for s in range(3)]
        else:
            for c in range(n_channels):
                data = img.get_image_dask_data("YX", T=0, C=c, Z=z)
                _check_dask_chunks(name, data)
                # The synchronous scheduler decodes one chunk after the other, not several
                # planes' worth in parallel threads.
                channels.append(np.asarray(data[::step, ::step].compute(scheduler="synchronous")))
    for w in caught:
        log.debug("bioio warning while thumbnailing %s: %s", name, w.message)
    return _Planes(channels, (fy, fx), rgb)


def _check_dask_chunks(name: str, data: Any) -> None:
    """Plugins chunk by plane or by tile; a strided compute still decodes whole chunks."""
    chunk_bytes = int(np.prod(data.chunksize, dtype=np.int64)) * np.dtype(data.dtype).itemsize
    if chunk_bytes > thumbnails.MAX_PLANE_BYTES:
        raise ThumbnailError(
            f"{name}: plane too large without a pyramid: {'x'.join(map(str, data.shape))} read "
            f"in chunks of {chunk_bytes / 2**20:.0f} MiB decoded "
            f"(limit {thumbnails.MAX_PLANE_BYTES / 2**20:.0f} MiB)"
        )


def _pick_bioio_level(img: Any, max_side: int) -> None:
    """Switch to the smallest resolution level still >= max_side, when the reader has levels."""
    try:
        levels = img.resolution_levels
        level_dims = img.resolution_level_dims
    except Exception:  # plugins without pyramid support raise assorted errors here
        return
    if not levels or len(levels) < 2:
        return
    best = 0
    for lvl in levels:
        shape = level_dims.get(lvl) if isinstance(level_dims, dict) else None
        if shape is None or len(shape) < 2:
            continue
        if len(shape) >= 3 and shape[-1] in (3, 4):
            shape = shape[:-1]  # trailing RGB(A) samples
        if max(shape[-1], shape[-2]) >= max_side:
            best = max(best, lvl)
    if best:
        img.set_resolution_level(best)
