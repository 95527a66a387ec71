"""The errors of thumbnail making: why an image got no thumbnail."""

from __future__ import annotations


class ThumbnailError(Exception):
    """A thumbnail could not be made; the message names the file and the reason."""


class PixelReadError(ThumbnailError):
    """The reader failed on the pixel data itself: the metadata was readable, the pixels not.

    Reading one plane for the thumbnail is the only time the node touches pixels, so this is
    how a harvest learns that an image is really ``metadata_only`` (e.g. bioio-lif on lambda
    scans). Refusals (size caps, unsupported layouts) are plain ThumbnailErrors.
    """
