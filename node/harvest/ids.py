"""Stable identifiers for harvested datasets and images.

Ids are derived from where the thing lives (source name + relative path), so a
rerun, a resumed run and an uninterrupted run all produce the same ids.
"""

from __future__ import annotations

import base64
import hashlib


def _digest(*parts: str) -> str:
    h = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogateescape")).digest()
    return base64.b32encode(h[:10]).decode("ascii").lower()


def dataset_id(source: str, folder: str) -> str:
    """Id of the dataset rooted at ``folder`` (POSIX, relative to the source root; "" = root)."""
    return "ds-" + _digest(source, folder)


def image_id(source: str, path: str, series: int) -> str:
    """Id of series ``series`` of the fileset whose main file is ``path`` (relative, POSIX)."""
    return "im-" + _digest(source, path, str(series))
