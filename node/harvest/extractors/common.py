"""Helpers shared by the extractors: the error type, failed records, file checks, warnings."""

from __future__ import annotations

import logging
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from node.harvest.entries import Fileset
from node.harvest.ids import image_id
from node.records import Image, ReadStatus

# Formats by file name suffix (longest first), for records and failed records alike.
FORMAT_BY_SUFFIX: tuple[tuple[str, str], ...] = (
    (".companion.ome", "OME-TIFF"),
    (".ome.tiff", "OME-TIFF"),
    (".ome.tif", "OME-TIFF"),
    (".ome.tf2", "OME-TIFF"),
    (".ome.tf8", "OME-TIFF"),
    (".ome.btf", "OME-TIFF"),
    (".ome.xml", "OME-XML"),
    (".ome.zarr", "OME-Zarr"),
    (".zarr", "OME-Zarr"),
    (".tiff", "TIFF"),
    (".tif", "TIFF"),
    (".btf", "TIFF"),
    (".tf2", "TIFF"),
    (".tf8", "TIFF"),
    (".lsm", "LSM"),
    (".svs", "SVS"),
    (".ndpi", "NDPI"),
    (".scn", "SCN"),
    (".czi", "CZI"),
    (".nd2", "ND2"),
    (".lif", "LIF"),
    (".dv", "DV"),
    (".r3d", "DV"),
    (".ims", "IMS"),
    (".oib", "OIB"),
    (".oif", "OIF"),
    (".vsi", "VSI"),
    (".ics", "ICS"),
    (".ome", "OME-XML"),
)

MEDIA_TYPES = {"OME-TIFF": "image/tiff", "TIFF": "image/tiff", "OME-XML": "application/xml"}


class ExtractError(Exception):
    """A fileset that cannot be read; the message names the file and the reason."""


def format_for(name: str, kind: str = "") -> str:
    """Format name of a fileset from its kind (when it decides) or its main file's suffix."""
    if kind in ("ome-tiff", "ome-zarr"):  # e.g. an .ome.xml companion of TIFF files
        return "OME-TIFF" if kind == "ome-tiff" else "OME-Zarr"
    low = name.lower()
    for suffix, fmt in FORMAT_BY_SUFFIX:
        if low.endswith(suffix):
            return fmt
    return {
        "ome-tiff": "OME-TIFF",
        "tiff": "TIFF",
        "ome-xml": "OME-XML",
        "ome-zarr": "OME-Zarr",
    }.get(kind, os.path.splitext(low)[1].lstrip(".").upper() or "unknown")


def failed_image(fs: Fileset, source: str, error: str, notes: list[str] | None = None) -> Image:
    """The one record for a fileset nothing could be read from."""
    fmt = format_for(fs.main.rel, fs.kind)
    return Image(
        id=image_id(source, fs.main.rel, 0),
        path=fs.main.rel,
        files=[m.rel for m in fs.members] or [fs.main.rel],
        format=fmt,
        media_type=MEDIA_TYPES.get(fmt),
        file_size=fs.total_size,
        status=ReadStatus.failed,
        error=error,
        notes=notes or [],
    )


def check_regular_file(path: str, rel: str) -> int:
    """Size of the regular file at ``path``; ExtractError if it is gone, a directory or empty."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ExtractError(f"{rel}: file vanished before it could be read") from None
    except OSError as exc:
        raise ExtractError(f"{rel}: cannot access file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ExtractError(f"{rel}: is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise ExtractError(f"{rel}: not a regular file")
    if st.st_size == 0:
        raise ExtractError(f"{rel}: empty file (0 bytes)")
    return st.st_size


@contextmanager
def captured_warnings(notes: list[str], prefix: str) -> Iterator[None]:
    """Record warnings raised by readers as notes instead of letting them escape.

    Reader libraries warn about the data they meet (repaired ids, odd tags); those warnings
    are data-quality notes, and the test suite turns escaped warnings into errors.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                msg = f"{prefix}: {w.category.__name__}: {w.message}"
                if msg not in notes:
                    notes.append(msg)


class _ThreadRecords(logging.Handler):
    """Collects the WARNING+ records a logger emits in the current thread only."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.records.append(record)


@contextmanager
def captured_logs(*names: str) -> Iterator[list[logging.LogRecord]]:
    """The WARNING+ records the loggers ``names`` emit meanwhile, kept from the console.

    tifffile logs, rather than raises, when a tag value or an IFD lies beyond the end of a
    truncated file; bioio plugins log what they cannot parse. Both are data about the file:
    they become notes, and must not interleave with the progress bar. Propagation is off
    only while a reader runs (a harvest reads files one at a time in one thread).
    """
    handler = _ThreadRecords()
    loggers = [logging.getLogger(n) for n in names]
    saved = [lg.propagate for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        yield handler.records
    finally:
        for lg, prop in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.propagate = prop
