"""Read an X-ray image from an upload or a path into one grey float array.

Everything happens in memory: uploads are never written to disk, and the
format is decided by the bytes, never by the file name.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageOps
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.pixels.decoders.base import get_decoder

SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "TIFF", "WebP", "GIF", "DICOM")
# The app's upload limit (server.maxUploadSize = 50 in .streamlit/config.toml; Streamlit's server
# counts 2**20 bytes to the MB), so the CLI and any other caller refuse what the server would.
MAX_FILE_BYTES = 50 * 2**20
_EXPECTED = "expected an image file: PNG, JPEG, BMP, TIFF, WebP, GIF or DICOM"
# Only these Pillow plugins may open input: others (EPS via Ghostscript, PSD, ...)
# widen the attack surface of a web upload for no benefit.
_PIL_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF")
_JPEG_EOI = b"\xff\xd9"
_DICOM_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM "
    b"UC UI UL UN UR US UT UV".split()
)
_HINTS = ((b"PK\x03\x04", "a ZIP archive"), (b"%PDF", "a PDF document"),
          (b"<", "an HTML/XML text document"), (b"{", "a JSON text document"),
          (b"\xff\xd8\xff", "a JPEG cut short or damaged"), (b"\x89PNG", "a damaged PNG"))


class ImageReadError(ValueError):
    """Raised when a file cannot be read as an X-ray image; message says what was expected and what came."""


def read_image(source: bytes | bytearray | memoryview | str | os.PathLike,
               *, max_pixels: int = 60_000_000, max_bytes: int = MAX_FILE_BYTES) -> np.ndarray:
    """Decode an X-ray image into a grey float array.

    Args:
        source: The file content (``bytes``, ``bytearray`` or ``memoryview``,
            e.g. an upload) or a path (``str`` or ``os.PathLike``).
        max_pixels: Largest accepted width × height, checked from the header
            before any pixel is decoded.
        max_bytes: Largest accepted file size in bytes, checked before a path is read.

    Returns:
        A C-contiguous 2-D float32 array (H, W) with values in [0, 1], bone bright.
        8-bit images are divided by 255 and 16-bit ones by 65535 (absolute
        intensities kept); float images and DICOM are min-max scaled, so a
        constant one comes back as zeros.

    Raises:
        ImageReadError: The source is missing, empty, not a supported image,
            too large, truncated beyond use, or otherwise undecodable.
        TypeError: ``source`` is neither bytes-like nor a path.
    """
    data, label = _load(source, max_bytes)
    if _looks_like_dicom(data):
        return _read_dicom(data, label, max_pixels)
    return _read_pillow(data, label, max_pixels)


def _load(source, max_bytes: int) -> tuple[bytes, str]:
    """Return the raw bytes and a short description of where they came from."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), "the upload"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = f"'{path.name or path}'"
        try:
            if path.is_dir():
                raise ImageReadError(f"{_EXPECTED}; got {label}, which is a directory")
            if path.stat().st_size > max_bytes:  # before reading, so a huge file is never loaded
                raise _too_many_bytes(path.stat().st_size, max_bytes, label)
            data = path.read_bytes()
        except FileNotFoundError as e:
            raise ImageReadError(f"{_EXPECTED}; got {label}, which does not exist") from e
        except OSError as e:
            raise ImageReadError(f"{_EXPECTED}; could not read {label}: {e.strerror or e}") from e
    else:
        raise TypeError(f"source must be bytes or a path, not {type(source).__name__}"
                        " (for a file object pass .getvalue() or .read())")
    if not data:
        raise ImageReadError(f"{_EXPECTED}; got 0 bytes from {label}")
    if len(data) > max_bytes:
        raise _too_many_bytes(len(data), max_bytes, label)
    return data, label


def _too_many_bytes(n: int, max_bytes: int, label: str) -> ImageReadError:
    return ImageReadError(f"{label} is {n / 2**20:.1f} MB ({n:,} bytes); "
                          f"the limit is {max_bytes / 2**20:.1f} MB ({max_bytes:,} bytes)")


def _describe(data: bytes, label: str) -> str:
    """Say what came, e.g. "37 bytes that start with '<html>…' (looks like …)"."""
    head = repr(data[:16])[1:]  # a bytes repr has no control characters, safe to show
    more = "…" if len(data) > 16 else ""
    hint = next((f" (looks like {what})" for magic, what in _HINTS
                 if data.lstrip()[:len(magic)] == magic), "")
    n = f"{len(data)} byte" + ("s" if len(data) != 1 else "")
    return f"got {n} from {label} that start{'s' * (len(data) == 1)} with {head}{more}{hint}"


def _too_big(w: int, h: int, max_pixels: int) -> ImageReadError:
    def mp(n: int) -> str:  # tiny limits (tests, previews) would all read "0.0 MP"
        return f"{n / 1e6:.1f} MP" if n >= 100_000 else f"{n:,} pixels"
    return ImageReadError(f"image is {w}×{h} = {mp(w * h)}; the limit is {mp(max_pixels)}")


def _looks_like_dicom(data: bytes) -> bool:
    """Content sniffing for DICOM, strict enough that random bytes do not pass."""
    if data[128:132] == b"DICM":
        return True
    # Preamble-less files (old ACR-NEMA style) start directly with a group 0002
    # or 0008 element; demand a known VR (explicit) or a length that fits the
    # file (implicit) so pydicom's force=True is never pointed at junk.
    if len(data) < 8:
        return False
    group, elem = struct.unpack("<HH", data[:4])
    if group not in (0x0002, 0x0008) or elem > 0x0100:
        return False
    return data[4:6] in _DICOM_VRS or struct.unpack("<I", data[4:8])[0] < len(data)


def _read_dicom(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM")
        rows, cols = ds.get("Rows"), ds.get("Columns")
    except Exception as e:
        raise ImageReadError(f"{_EXPECTED}; {label} looks like DICOM but cannot be parsed: {e}") from e
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageReadError(f"DICOM file has no pixel data ({label} may be a report or "
                             "presentation state, not an image)")
    if not isinstance(rows, int) or not isinstance(cols, int) or not rows or not cols:  # e.g. two values
        raise ImageReadError(f"DICOM image in {label} has no size (Rows={rows}, Columns={cols})")
    if rows * cols > max_pixels:
        raise _too_big(int(cols), int(rows), max_pixels)
    ts = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    if ts is not None and not getattr(ts, "is_transfer_syntax", False):  # ts.is_compressed would raise
        raise ImageReadError(f"DICOM file in {label} names an unknown transfer syntax "
                             f"'{str(ts)[:64]}', so its pixel data cannot be decoded")
    if ts is not None and ts.is_compressed:
        try:
            available = get_decoder(ts).is_available
        except NotImplementedError:
            available = False
        if not available:
            raise ImageReadError(f"DICOM pixel data in {label} is compressed as "
                                 f"'{ts.name}' ({ts}), which cannot be decoded here")
    try:
        # Only the first frame of a multi-frame file (cine, tomosynthesis) is
        # decoded: it is the one a radiograph viewer shows first, and decoding
        # every frame could use many times max_pixels of memory.
        if int(ds.get("NumberOfFrames") or 1) > 1:
            ds.pixel_array_options(index=0)
        arr = ds.pixel_array
    except Exception as e:
        what = f"'{ts.name}' " if ts is not None and ts.is_compressed else ""
        raise ImageReadError(f"DICOM {what}pixel data in {label} cannot be decoded: {e}") from e
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        # pydicom already converted YBR to RGB; LUTs only apply to monochrome.
        return _min_max(_luma(arr[..., :3].astype(np.float64)), label)
    if arr.ndim != 2:
        raise ImageReadError(f"DICOM image in {label} has unexpected shape {arr.shape}")
    try:
        arr = apply_modality_lut(arr, ds).astype(np.float64)
    except Exception as e:  # unlike a window, a wrong rescale could silently invert the image
        raise ImageReadError(f"DICOM rescale (RescaleSlope '{ds.get('RescaleSlope')}', RescaleIntercept "
                             f"'{ds.get('RescaleIntercept')}') or modality LUT in {label} is unusable: {e}") from e
    try:
        arr = apply_voi_lut(arr, ds, index=0)
    except Exception:  # a malformed window is better ignored than fatal: the image is still valid
        pass
    if photometric == "MONOCHROME1":  # MONOCHROME1 stores bone dark
        arr = -np.asarray(arr, dtype=np.float64)
    return _min_max(np.asarray(arr, dtype=np.float64), label)


def _open_pil(data: bytes, label: str, max_pixels: int) -> Image.Image:
    """Open lazily (header only), check the declared size, then decode."""
    try:
        img = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        size = _declared_size(data)
        if size is not None:
            raise _too_big(*size, max_pixels) from e
        raise ImageReadError(f"image is too large: {e}") from e
    except Image.UnidentifiedImageError as e:
        raise ImageReadError(f"{_EXPECTED}; {_describe(data, label)}") from e
    except Exception as e:
        raise ImageReadError(f"{_EXPECTED}; {label} is truncated or has a broken header: {e}") from e
    w, h = img.size
    if w * h > max_pixels:
        raise _too_big(w, h, max_pixels)
    if w == 0 or h == 0:
        raise ImageReadError(f"image in {label} is empty ({w}×{h} pixels)")
    img.load()
    return img


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Header size of an image Pillow refused as a bomb, only to word the error."""
    for fmt in _PIL_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is not None and (accept is None or accept(data[:16]) is True):
            try:
                return factory(io.BytesIO(data)).size  # plugin constructors skip the bomb check
            except Exception:
                continue
    return None


def _read_pillow(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    try:
        try:
            img = _open_pil(data, label, max_pixels)
        except OSError:
            # A JPEG cut short (interrupted upload) still holds the top of the
            # picture. Pillow's LOAD_TRUNCATED_IMAGES switch would do, but it is a
            # process-wide global that is racy to toggle per call in a threaded
            # web app and surprising to set for everyone; closing the stream
            # with an EOI marker makes libjpeg finish the image on its own.
            if data[:3] != b"\xff\xd8\xff" or data.endswith(_JPEG_EOI) or not _has_scan_data(data):
                raise
            img = _open_pil(data + _JPEG_EOI, label, max_pixels)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(f"image is too large: {e}") from e
    except Exception as e:
        raise ImageReadError(f"{_EXPECTED}; {label} is truncated or corrupt: {e}") from e
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # broken EXIF must not reject an otherwise good image
        pass
    return _pil_to_grey(img, label)


def _has_scan_data(data: bytes) -> bool:
    """True when a JPEG got past its headers into compressed pixels (SOS + payload)."""
    sos = data.find(b"\xff\xda")
    if sos < 0 or len(data) < sos + 4:
        return False
    return len(data) > sos + 2 + struct.unpack(">H", data[sos + 2:sos + 4])[0]


def _pil_to_grey(img: Image.Image, label: str) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16"):
        # Full 16-bit range rather than a per-image stretch, so intensities mean
        # the same in every file; 12-bit data in a 16-bit file comes out dim and
        # the model's own normalisation takes care of contrast.
        return _finish(np.asarray(img, dtype=np.float64) / 65535.0, label)
    if mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and arr.min() >= 0 and arr.max() <= 65535:  # 16-bit data in a 32-bit container
            return _finish(arr / 65535.0, label)
        return _min_max(arr, label)
    if mode == "F":
        return _min_max(np.asarray(img, dtype=np.float64), label)
    has_alpha = mode in ("LA", "La", "RGBA", "RGBa", "PA") or "transparency" in img.info
    if has_alpha:
        # Composite on black: radiographs have a black background, so clear
        # pixels become background instead of a bright frame that looks like bone.
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
        grey = _luma(rgba[..., :3]) * (rgba[..., 3] / 255.0)
    else:
        # Pillow's "L" conversion uses ITU-R 601 luma for RGB, CMYK and palettes. 8-bit values
        # need no NaN or range clean-up: float32 straight away is 2.5x faster than via float64.
        grey = np.asarray(img.convert("L"), dtype=np.float32)
        if 0 in grey.shape:
            raise ImageReadError(f"image in {label} is empty or not 2-D (shape {grey.shape})")
        grey /= 255.0
        return grey
    return _finish(grey / 255.0, label)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def _min_max(arr: np.ndarray, label: str) -> np.ndarray:
    finite = np.isfinite(arr)
    if arr.size == 0:
        return _finish(arr, label)
    if not finite.any():
        raise ImageReadError(f"image in {label} has no finite pixel values (all NaN/inf)")
    lo, hi = arr[finite].min(), arr[finite].max()
    # A constant image is valid (a blank plate): zeros, not a division by zero.
    arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return _finish(np.where(finite, arr, 0.0), label)


def _finish(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.ndim != 2 or 0 in arr.shape:
        raise ImageReadError(f"image in {label} is empty or not 2-D (shape {arr.shape})")
    return np.ascontiguousarray(np.clip(np.nan_to_num(arr), 0.0, 1.0), dtype=np.float32)
