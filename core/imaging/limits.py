"""Bounds on the WORK of a decode, not just its bytes and pixels (issue 25).

A file can pass the byte limit and the pixel limit and still make a decoder run for minutes: a
TIFF of ten million one-row strips, a progressive JPEG whose scan is repeated ten thousand times,
a PNG of a million empty chunks, an RLE BMP that Pillow decodes pixel by pixel in Python, a JPEG
of hundreds of EXIF segments that Pillow joins one by one. So, before Pillow sees a file:

* its structure is counted from the bytes (JPEG segments and scans up to the first EOI, PNG
  chunks, the entries and value counts of a TIFF's first directory, a GIF's extension blocks
  before its first image, an RLE BMP's pixels) and a
  file over a count is refused with the count in the message;

and while it is decoded:

* a deadline on the decoding thread's CPU time (what a hostile file burns, whatever the load of
  the machine) and on the wall clock (so an upload is answered) is checked at every read Pillow
  makes from the file and between the tiles of the float conversion. It is cooperative (no
  worker thread or process, so nothing to leak); the counts above keep the work between two
  checks small.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import re
import struct
import time

from core.imaging.common import ImageReadError

# Legitimate files stay far below these: libjpeg writes 6-10 scans for a progressive JPEG
# (mozjpeg up to about 20), and a JPEG holds a few dozen segments (APPn, tables, one DHT per scan).
MAX_JPEG_SCANS = 100
MAX_JPEG_SEGMENTS = 1000
# EXIF belongs in one APP1 segment; Pillow joins any further ones by bytes concatenation
# (quadratic: 700 segments of 64 KB took 7-20 s).
MAX_JPEG_EXIF_SEGMENTS = 16
# libpng writes 8 KB IDAT chunks (6,400 for a 50 MB file); Pillow handles each chunk in Python.
MAX_PNG_CHUNKS = 100_000
# Pillow makes a Python tile per strip or tile and a tuple of every value of a numeric tag.
MAX_TIFF_STRIPS = 1 << 17
MAX_TIFF_VALUES = 1 << 18  # a 16-bit palette's ColorMap holds 3 × 65,536
MAX_TIFF_ENTRIES = 4096
# GIF: the data sub-blocks of the extensions before the first image, which Pillow reads one by one
# in Python, joining comments by bytes concatenation (ten million took 5 s and 1.8 GB).
MAX_GIF_SUB_BLOCKS = 100_000
# Pillow decodes RLE4/RLE8 BMPs in pure Python, byte by byte (about 0.2 µs per pixel).
MAX_RLE_BMP_PIXELS = 16_000_000
# The decode deadline: CPU seconds of the decoding thread, and wall-clock seconds.
DECODE_CPU_SECONDS = 15.0
DECODE_WALL_SECONDS = 40.0

_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # the marker that ends a scan's coded data
_TIFF_BYTE_TYPES = frozenset({1, 2, 6, 7})  # BYTE, ASCII, SBYTE, UNDEFINED: kept as bytes


# ---------------------------------------------------------------- the deadline

class _Deadline:
    def __init__(self, cpu_seconds: float, wall_seconds: float, label: str):
        self.cpu_end = time.thread_time() + cpu_seconds
        self.wall_end = time.monotonic() + wall_seconds
        self.cpu_seconds, self.wall_seconds, self.label = cpu_seconds, wall_seconds, label

    def check(self) -> None:
        if time.thread_time() > self.cpu_end:
            raise ImageReadError(f"decoding {self.label} took more than {self.cpu_seconds:g} s of CPU time, "
                                 "far more than any image of its size needs; it was stopped and refused")
        if time.monotonic() > self.wall_end:
            raise ImageReadError(f"decoding {self.label} took more than {self.wall_seconds:g} s; it was "
                                 "stopped and refused (the server may be busy: try again)")


_current: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar("decode_deadline", default=None)


@contextlib.contextmanager
def decode_deadline(label: str, cpu_seconds: float | None = None, wall_seconds: float | None = None):
    """Within this block, :func:`check_deadline` raises once the decode has run too long. A block
    inside another keeps the outer deadline."""
    if _current.get() is not None:
        yield
        return
    token = _current.set(_Deadline(DECODE_CPU_SECONDS if cpu_seconds is None else cpu_seconds,
                                   DECODE_WALL_SECONDS if wall_seconds is None else wall_seconds, label))
    try:
        yield
    finally:
        _current.reset(token)


def check_deadline() -> None:
    """Raise ImageReadError if the decode in progress (if any) is past its deadline."""
    deadline = _current.get()
    if deadline is not None:
        deadline.check()


class GuardedBytes(io.BytesIO):
    """The file as Pillow reads it: reads check the deadline (every read of a block, every 64th of
    the one- and two-byte reads Pillow's Python parsers make, so that the check stays cheap)."""

    _small_reads = 0

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > 64:
            check_deadline()
        else:
            self._small_reads += 1
            if not self._small_reads & 63:
                check_deadline()
        return super().read(size)

    def readinto(self, buffer) -> int:
        check_deadline()
        return super().readinto(buffer)


# ---------------------------------------------------------------- structure counts

def check_structure(data: bytes, label: str) -> None:
    """Refuse a file whose structure would cost a decoder far more work than its size suggests."""
    if data[:3] == b"\xff\xd8\xff":
        check_jpeg(data, label)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        _check_png(data, label)
    elif data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        _check_tiff(data, label)
    elif data[:2] == b"BM":
        _check_bmp(data, label)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        _check_gif(data, label)


def check_jpeg(data: bytes, label: str, what: str = "JPEG") -> None:
    """Count segments, scans (SOS markers) and EXIF segments up to the first EOI."""
    segments = scans = exif = 0
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return  # not a marker: the decoder will say what is wrong
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        length = struct.unpack_from(">H", data, pos + 2)[0]
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise ImageReadError(f"{what} in {label} has more than {MAX_JPEG_SEGMENTS:,} marker segments "
                                 "(an image needs a few dozen); refused before decoding")
        if marker == 0xE1 and data[pos + 4:pos + 10] == b"Exif\x00\x00":
            exif += 1
            if exif > MAX_JPEG_EXIF_SEGMENTS:
                raise ImageReadError(f"{what} in {label} has more than {MAX_JPEG_EXIF_SEGMENTS} EXIF (APP1) "
                                     "segments (EXIF belongs in one); refused before decoding")
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise ImageReadError(f"{what} in {label} has more than {MAX_JPEG_SCANS} scans (SOS markers; "
                                     "a progressive JPEG needs about 10), and each scan makes the decoder "
                                     "pass over the whole image; refused before decoding")
            found = _ENTROPY_END.search(data, pos + 2 + length)
            if found is None:
                return
            pos = found.start()
            continue
        pos += 2 + length


def _check_png(data: bytes, label: str) -> None:
    pos, chunks = 8, 0
    while pos + 8 <= len(data):
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise ImageReadError(f"PNG in {label} has more than {MAX_PNG_CHUNKS:,} chunks (an encoder writes "
                                 "a few thousand at most: 8 KB of pixels each); refused before decoding")
        length = struct.unpack_from(">I", data, pos)[0]
        if data[pos + 4:pos + 8] == b"IEND":
            return
        pos += 12 + length


def _check_tiff(data: bytes, label: str) -> None:
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    try:
        if big:
            offset = struct.unpack_from(order + "Q", data, 8)[0]
            count = struct.unpack_from(order + "Q", data, offset)[0]
            entry_format, first, size = order + "HHQ", offset + 8, 20
        else:
            offset = struct.unpack_from(order + "I", data, 4)[0]
            count = struct.unpack_from(order + "H", data, offset)[0]
            entry_format, first, size = order + "HHI", offset + 2, 12
    except struct.error:
        return  # a broken header: Pillow will say so
    if count > MAX_TIFF_ENTRIES:
        raise ImageReadError(f"TIFF in {label} has {count:,} entries in its first directory (the limit is "
                             f"{MAX_TIFF_ENTRIES:,}; an image needs a few dozen); refused before decoding")
    for entry in range(first, first + size * count, size):
        try:
            tag, kind, values = struct.unpack_from(entry_format, data, entry)
        except struct.error:
            return
        if tag in (273, 279, 324, 325) and values > MAX_TIFF_STRIPS:  # Strip/Tile Offsets/ByteCounts
            what = "strips" if tag in (273, 279) else "tiles"
            raise ImageReadError(f"TIFF in {label} is stored in {values:,} {what} (the limit is "
                                 f"{MAX_TIFF_STRIPS:,}): each one costs the decoder a step of its own, "
                                 "whatever its size; refused before decoding")
        if kind not in _TIFF_BYTE_TYPES and values > MAX_TIFF_VALUES:
            raise ImageReadError(f"TIFF in {label} has a tag ({tag}) of {values:,} numbers (the limit is "
                                 f"{MAX_TIFF_VALUES:,}); refused before decoding")


def _check_gif(data: bytes, label: str) -> None:
    if len(data) < 13:
        return
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the global colour table
    blocks = 0
    while pos < len(data) and data[pos] == 0x21:  # an extension, up to the first image
        pos += 2
        while pos < len(data):
            size = data[pos]
            pos += 1 + size
            blocks += 1
            if blocks > MAX_GIF_SUB_BLOCKS:
                raise ImageReadError(f"GIF in {label} has more than {MAX_GIF_SUB_BLOCKS:,} extension blocks "
                                     "before its first image (an image needs a few); refused before decoding")
            if size == 0:
                break


def _check_bmp(data: bytes, label: str) -> None:
    try:
        header = struct.unpack_from("<I", data, 14)[0]
        if header < 40:
            return  # OS/2 1.x: no compression
        width, height, _, _, compression = struct.unpack_from("<iiHHI", data, 18)
    except struct.error:
        return
    if compression in (1, 2):  # RLE8, RLE4
        pixels = abs(width) * abs(height)
        if pixels > MAX_RLE_BMP_PIXELS:
            raise ImageReadError(f"RLE-compressed BMP in {label} is {abs(width)}×{abs(height)} = "
                                 f"{pixels / 1e6:.1f} MP; the limit for RLE BMP is {MAX_RLE_BMP_PIXELS / 1e6:.1f} MP, "
                                 "because it is decoded pixel by pixel (save it as PNG)")


__all__ = ["GuardedBytes", "check_deadline", "check_jpeg", "check_structure", "decode_deadline"]
