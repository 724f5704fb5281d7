"""Read an X-ray image from an upload or a path into one grey float array.

This package is the ONE reader of user bytes: the classifier, the radiograph check's colour
measure, the app, the CLI and training all go through :func:`decode_image` (or
:func:`read_image`, its grey part). Everything happens in memory: uploads are never written to
disk, and the format is decided by the bytes, never by the file name. Only the Pillow plugins in
``PIL_FORMATS`` may open a file (so EPS, which runs Ghostscript, never can), and a file with
``DICM`` at byte 128 is read as DICOM and nothing else, whatever its preamble holds.

Memory is budgeted per file, so that any accepted upload is answered in bounded memory:

* the byte limit applies to what is read (at most ``max_bytes + 1`` bytes, from regular files
  only) and to what a deflated DICOM inflates to;
* the declared size is checked before any pixel is decoded, and for compressed DICOM the size
  in the codestream's own header must match Rows × Columns;
* images larger than ``max_output_pixels`` are read reduced (JPEG by DCT scaling, the rest by
  averaging boxes of pixels), and conversions to float run tile by tile, so no full-size float64
  copy of a large image is ever made;
* the work is bounded too (``core.imaging.limits``): scans, segments, chunks, strips and RLE
  pixels are counted before decoding, and a deadline stops a decode that runs too long.
"""

from __future__ import annotations

import os

import numpy as np

from core.imaging.common import SUPPORTED_FORMATS, DecodedImage, ImageReadError, MAX_FILE_BYTES, MAX_OUTPUT_PIXELS, MAX_PIXELS
from core.imaging.sources import load_bytes
from core.imaging.raster import read_pillow
from core.imaging.dicom import looks_like_dicom, read_dicom
from core.imaging.limits import decode_deadline

__all__ = ["DecodedImage", "ImageReadError", "MAX_FILE_BYTES", "MAX_OUTPUT_PIXELS", "MAX_PIXELS",
           "SUPPORTED_FORMATS", "decode_image", "read_image"]


def read_image(source: bytes | bytearray | memoryview | str | os.PathLike,
               *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES,
               max_output_pixels: int = MAX_OUTPUT_PIXELS) -> np.ndarray:
    """Decode an X-ray image into a grey float array.

    Args:
        source: The file content (``bytes``, ``bytearray`` or ``memoryview``,
            e.g. an upload) or a path (``str`` or ``os.PathLike``) to a regular file.
        max_pixels: Largest accepted width × height, checked from the header
            before any pixel is decoded.
        max_bytes: Largest accepted file size in bytes, checked before a path is read;
            also the most a deflated DICOM may inflate to.
        max_output_pixels: Larger images are read reduced by the smallest integer factor
            that brings them within this many pixels.

    Returns:
        A C-contiguous 2-D float32 array (H, W) with values in [0, 1], bone bright.
        8-bit images are divided by 255 and 16-bit ones by 65535 (absolute
        intensities kept); float images and DICOM are min-max scaled, so a
        constant one comes back as zeros.

    Raises:
        ImageReadError: The source is missing, not a regular file, empty, not a supported
            image, too large, truncated beyond use, or otherwise undecodable.
        TypeError: ``source`` is neither bytes-like nor a path.
    """
    return decode_image(source, max_pixels=max_pixels, max_bytes=max_bytes,
                        max_output_pixels=max_output_pixels).grey


def decode_image(source: bytes | bytearray | memoryview | str | os.PathLike,
                 *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES,
                 max_output_pixels: int = MAX_OUTPUT_PIXELS) -> DecodedImage:
    """:func:`read_image`, plus a colour thumbnail taken from the same decode.

    The radiograph check measures colour on the thumbnail, so a file is opened once, by one
    reader with one allow-list of formats.
    """
    data, label = load_bytes(source, max_bytes)
    with decode_deadline(label):  # see core.imaging.limits: the work is bounded, not only the bytes
        if looks_like_dicom(data):
            return DecodedImage(read_dicom(data, label, max_pixels, max_bytes, max_output_pixels))
        return read_pillow(data, label, max_pixels, max_output_pixels)
