"""What every reader hands back (one strided plane per channel) and the checks they share.

The limits that get tuned (:data:`~node.harvest.thumbnails.MAX_PLANE_BYTES`,
:data:`~node.harvest.thumbnails.DIRECT_READ_BYTES`) live in the package ``__init__`` instead:
the readers look them up there each time they run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from node.harvest.thumbnails.errors import ThumbnailError

#: A claimed plane with more pixels than this is a broken or hostile header, not an image.
ABSURD_PLANE_PIXELS = 2**34
#: Companion OME-XML files are small; a bigger one is refused before parsing.
MAX_XML_BYTES = 64 * 2**20
MAX_CHANNELS = 3


@dataclass
class _Planes:
    """What a reader hands back: one strided 2-D plane per channel (at most three)."""

    channels: list[np.ndarray]
    full_shape: tuple[int, int]  # (y, x) of the plane at full resolution, for the aspect ratio
    rgb: bool = False  # channels are the R, G, B samples of a colour image: no tinting


def _check_plane_claim(name: str, y: int, x: int) -> None:
    if x * y > ABSURD_PLANE_PIXELS:
        raise ThumbnailError(
            f"{name}: claimed plane of {x}x{y} pixels is absurd (> 2**34); not reading it"
        )


def _inside(root: Path, rel: str, name: str, *, base: Path | None = None) -> Path:
    """``(base or root)/rel``, refusing paths that climb out of ``root`` (the source root):
    file names inside metadata are data, not trusted paths."""
    path = (base if base is not None else root) / rel
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise ThumbnailError(f"{name}: path {rel!r} lies outside the source root") from None
    return path


def _step(shape: Sequence[int], max_side: int) -> int:
    """Stride that keeps the longest side at least ``2 * max_side``: the final Lanczos resize
    then still averages over a few samples, which keeps aliasing (noise, moire) down while
    the strided plane stays tiny (at most ~4 * max_side**2 pixels per channel)."""
    return max(1, max(shape) // (2 * max_side))


def _middle(n: int) -> int:
    return max(0, (n - 1) // 2) if n > 1 else 0


def _zarr() -> Any | None:
    """The zarr module (v3 or later, which tifffile's ``aszarr`` stores speak), or None when it
    is not installed: it is optional and every reader here has a fallback without it."""
    try:
        import zarr
    except ImportError:
        return None
    major = str(getattr(zarr, "__version__", "0")).split(".")[0]
    return zarr if major.isdigit() and int(major) >= 3 else None
