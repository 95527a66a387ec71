"""From channel planes to the PNG on disk: contrast, colours, compositing, resize, writing."""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import suppress
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from node.harvest.thumbnails.errors import ThumbnailError
from node.harvest.thumbnails.planes import _Planes
from node.records import Image

GREY = (255, 255, 255)
#: Colours for channels without one of their own, in channel order (when there are several).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 0, 255),  # magenta
    (0, 255, 0),  # green
    (0, 255, 255),  # cyan
)

_COLOR = re.compile(r"^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")


def _parse_color(value: str | None) -> tuple[int, int, int] | None:
    if not value:
        return None
    m = _COLOR.match(value.strip())
    if not m:
        return None
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _channel_colors(image: Image, n: int) -> list[tuple[int, int, int]]:
    colors = []
    for i in range(n):
        own = _parse_color(image.channels[i].color) if i < len(image.channels) else None
        if own is not None and own != (0, 0, 0):  # black would hide the channel entirely
            colors.append(own)
        elif n == 1:
            colors.append(GREY)
        else:
            colors.append(PALETTE[i % len(PALETTE)])
    return colors


def _normalise(plane: np.ndarray) -> np.ndarray:
    """Auto-contrast one channel to 0..1 (float32) from its 0.5 and 99.5 percentiles.

    Works for signed, unsigned and float data alike because the limits come from the data, not
    the dtype. NaN/inf pixels are ignored for the limits and shown black. A constant plane has
    no contrast to stretch and becomes flat mid-grey instead of dividing by zero.
    """
    data = np.asarray(plane)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if np.iscomplexobj(data):
        data = np.abs(data)
    data = data.astype(np.float64, copy=False)
    finite = np.isfinite(data)
    values = data[finite]
    if values.size == 0:
        return np.zeros(data.shape, np.float32)
    lo, hi = np.percentile(values, [0.5, 99.5])
    if not hi > lo:
        # Sparse signal (most pixels equal): the percentiles collapse, min/max still differ.
        lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        return np.full(data.shape, 0.5, np.float32)
    out = (data - lo) / (hi - lo)
    out[~finite] = 0.0
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _composite(planes: _Planes, image: Image) -> np.ndarray:
    """Tint each channel with its colour and add them up into an (y, x, 3) uint8 array."""
    shape = planes.channels[0].shape
    for ch in planes.channels:
        if ch.shape != shape:
            raise ThumbnailError(
                f"{image.path}: channel planes differ in shape ({ch.shape} vs {shape})"
            )
    if planes.rgb:
        colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)][: len(planes.channels)]
    else:
        colors = _channel_colors(image, len(planes.channels))
    rgb = np.zeros((*shape, 3), np.float32)
    for plane, color in zip(planes.channels, colors, strict=True):
        if planes.rgb and plane.dtype == np.uint8:
            norm = plane.astype(np.float32) / 255.0  # colour photographs keep their own balance
        else:
            norm = _normalise(plane)
        rgb += norm[..., None] * (np.asarray(color, np.float32) / 255.0)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _resize(rgb: np.ndarray, full_shape: tuple[int, int], max_side: int) -> PILImage.Image:
    """Scale to fit ``max_side``; the target size comes from the full-resolution plane so that
    pyramid levels and strides (which round) do not skew the aspect ratio. Never enlarges."""
    fy, fx = full_shape
    scale = min(1.0, max_side / max(fy, fx))
    width = max(1, min(max_side, round(fx * scale)))
    height = max(1, min(max_side, round(fy * scale)))
    picture = PILImage.fromarray(rgb, "RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), PILImage.Resampling.LANCZOS)
    return picture


def _write_png(picture: PILImage.Image, out_dir: Path, image_id: str, name: str) -> str:
    """Write atomically: a temp file in the same folder, then os.replace (no half PNGs)."""
    filename = f"{image_id}.png"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{image_id}.", suffix=".tmp", dir=out_dir)
    except OSError as exc:
        raise ThumbnailError(f"{name}: cannot write thumbnail to {out_dir}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            picture.save(fh, format="PNG", optimize=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out_dir / filename)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ThumbnailError(f"{name}: cannot write thumbnail {filename}: {exc}") from exc
        raise
    return filename
