"""What every part of the reader shares: the limits, the error, the decoded result, and the
words of its messages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "TIFF", "WebP", "GIF", "DICOM")
# The app's upload limit (server.maxUploadSize = 50 in .streamlit/config.toml; Streamlit's server
# counts 2**20 bytes to the MB), so the CLI and any other caller refuse what the server would.
MAX_FILE_BYTES = 50 * 2**20
MAX_PIXELS = 60_000_000
# Larger images are read reduced by an integer factor. Everything downstream (preprocessing at
# 512 px, the app's 800 px display, the CLI's overlay at the size of the image as read) costs
# up to ~40 bytes per pixel of the image as read, so 12 MP keeps any accepted upload within the
# 1.5 GB budget of a CLI process, about 0.75 GB of which is TensorFlow and the model (see
# docs/robustness.md). Radiographs are mostly 4-9 MP (3,000 px a side): read unchanged.
MAX_OUTPUT_PIXELS = 12_000_000
# A decoded DICOM frame may hold at most this many bytes per pixel of max_pixels: a 16-bit grey
# image at the full pixel limit, a colour one at a third of it less.
FRAME_BYTES_PER_PIXEL = 2
# libwebp's decoder keeps about four full-size RGBA copies while Pillow reads a WebP (16 bytes per
# pixel, against at most 4 for the other formats), so WebP gets a quarter of the pixel limit.
WEBP_COST = 4
TILE_PIXELS = 1 << 19  # float64 temporaries of one tile: 4 MB each
EXPECTED = "expected an image file: PNG, JPEG, BMP, TIFF, WebP, GIF or DICOM"
# Only these Pillow plugins may open input: others (EPS via Ghostscript, PSD, ...)
# widen the attack surface of a web upload for no benefit.
PIL_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF")
# Pillow modes that can hold colour; the rest are grey and have colourfulness 0.
COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "CMYK", "P", "YCbCr", "LAB", "HSV", "PA"})
THUMBNAIL = (64, 64)  # colourfulness is a global statistic; a thumbnail measures it
JPEG_EOI = b"\xff\xd9"
DICOM_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM "
    b"UC UI UL UN UR US UT UV".split()
)
_HINTS = ((b"PK\x03\x04", "a ZIP archive"), (b"%PDF", "a PDF document"),
          (b"<", "an HTML/XML text document"), (b"{", "a JSON text document"),
          (b"\xff\xd8\xff", "a JPEG cut short or damaged"), (b"\x89PNG", "a damaged PNG"))


class ImageReadError(ValueError):
    """Raised when a file cannot be read as an X-ray image; message says what was expected and what came."""


@dataclass(frozen=True)
class DecodedImage:
    """What one decode of a file gives.

    Attributes:
        grey: C-contiguous float32 (H, W) in [0, 1], bone bright (see :func:`read_image`).
        colour_thumbnail: uint8 RGB (h, w, 3), at most 64 px a side, for a file stored in a
            colour mode (RGB, palette, CMYK, ...); None for grey files and for DICOM.
    """

    grey: np.ndarray
    colour_thumbnail: np.ndarray | None = None


def too_many_bytes(n: int, max_bytes: int, label: str) -> ImageReadError:
    return ImageReadError(f"{label} is {n / 2**20:.1f} MB ({n:,} bytes); "
                          f"the limit is {max_bytes / 2**20:.1f} MB ({max_bytes:,} bytes)")


def describe(data: bytes, label: str) -> str:
    """Say what came, e.g. "37 bytes that start with '<html>…' (looks like …)"."""
    head = repr(data[:16])[1:]  # a bytes repr has no control characters, safe to show
    more = "…" if len(data) > 16 else ""
    hint = next((f" (looks like {what})" for magic, what in _HINTS
                 if data.lstrip()[:len(magic)] == magic), "")
    n = f"{len(data)} byte" + ("s" if len(data) != 1 else "")
    return f"got {n} from {label} that start{'s' * (len(data) == 1)} with {head}{more}{hint}"


def mp(n: int) -> str:
    return f"{n / 1e6:.1f} MP" if n >= 100_000 else f"{n:,} pixels"  # tiny limits (tests) would read "0.0 MP"


def too_big(w: int, h: int, max_pixels: int) -> ImageReadError:
    return ImageReadError(f"image is {w}×{h} = {mp(w * h)}; the limit is {mp(max_pixels)}")
