"""Hostile files of issue 13, each generated here: one reader with one allow-list (defect 1),
sizes checked before inflating or decoding DICOM (defect 2), special files (defect 3).

Memory per upload (defect 4) is tests/core/test_memory_budget.py and, for the reduced reading,
tests/core/test_imaging.py; the 64-bit float TIFF (defect 10) is a case of tests/corpus.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageFile

from core.config import PROJECT_DIR
from core.imaging import ImageReadError, read_image
from core.radiograph_check import colourfulness
from tests import corpus

DICOM = corpus.dicom_bytes(corpus.bright_left())
PREAMBLES = {
    "eps": corpus.EPS_PREAMBLE,
    "eps-dos-binary": b"\xc5\xd0\xd3\xc6" + bytes(28) + corpus.EPS_PREAMBLE[:90],
    "tiff-13000x13000-rgb": corpus.tiff_header(13000, 13000, rgb=True),
    "tiff-64x64-rgb": corpus.tiff_header(64, 64, rgb=True),  # would decode: colourful bytes of the header
    "png": corpus.encode(corpus.marker_image(8, 8), "PNG"),
}


@pytest.fixture
def opened(monkeypatch, tmp_path):
    """Everything Pillow is asked to open, every program started, and a temporary directory that
    must stay empty: records ``(what, detail)`` pairs."""
    events: list[tuple[str, str]] = []
    image_file_init = ImageFile.ImageFile.__init__

    def recording_init(self, *args, **kwargs):
        events.append(("pillow plugin", type(self).__name__))
        return image_file_init(self, *args, **kwargs)

    class NoPrograms:
        def __init__(self, command, *args, **kwargs):
            events.append(("program", str(command)))
            raise OSError("tests start no programs")

    monkeypatch.setattr(ImageFile.ImageFile, "__init__", recording_init)
    monkeypatch.setattr(subprocess, "Popen", NoPrograms)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: events.append(("ghostscript", "")))
    temporary = tmp_path / "tempdir"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    yield events
    assert list(temporary.iterdir()) == [], "something was written to the temporary directory"


# --- defect 1: one reader, one allow-list --------------------------------------------------------

@pytest.mark.parametrize("preamble", PREAMBLES.values(), ids=PREAMBLES.keys())
def test_a_dicom_preamble_is_never_handed_to_pillow(opened, preamble):
    """DICM at byte 128 means DICOM and nothing else: not the EPS (Ghostscript), TIFF or PNG
    that the 128 bytes before it may spell. Before, the colour check opened every upload with
    all of Pillow's plugins."""
    data = corpus.with_preamble(DICOM, preamble)
    np.testing.assert_array_equal(read_image(data), corpus.bright_left_expected())
    assert colourfulness(data) == 0.0
    assert opened == []


@pytest.mark.parametrize("preamble", ["eps", "tiff-13000x13000-rgb"])
def test_the_classifier_opens_a_dicom_preamble_nowhere_else(opened, shipped_classifier, preamble):
    result = shipped_classifier.classify(corpus.with_preamble(DICOM, PREAMBLES[preamble]))
    assert result.image.shape == (6, 8) and result.radiograph_check.colourfulness == 0.0
    assert opened == []


def test_one_decode_gives_the_grey_image_and_the_colour_thumbnail(opened):
    from core.imaging import decode_image

    decoded = decode_image(corpus.with_preamble(DICOM, corpus.EPS_PREAMBLE))
    assert decoded.grey.shape == (6, 8) and decoded.colour_thumbnail is None
    photo = corpus.encode(Image.new("RGB", (300, 200), (200, 30, 30)), "PNG")
    decoded = decode_image(photo)
    assert decoded.colour_thumbnail.shape == (43, 64, 3) and colourfulness(photo) > 15
    assert [what for what, _ in opened] == ["pillow plugin"] * 2  # the PNG, once per decode


def test_an_eps_file_is_refused_without_its_plugin_running(opened):
    for data in (corpus.EPS, b"\xc5\xd0\xd3\xc6" + bytes(28) + corpus.EPS):  # plain and DOS-binary EPS
        with pytest.raises(ImageReadError, match="expected an image file"):
            read_image(data)
        assert colourfulness(data) == 0.0
    assert ("pillow plugin", "EpsImageFile") not in opened
    assert not [event for event in opened if event[0] in ("program", "ghostscript")]


def test_a_polyglot_with_dicm_at_128_is_not_read_as_the_png_it_starts_with(opened):
    data = corpus.encode(corpus.marker_image(8, 8), "PNG").ljust(128, b"\0") + b"DICM" + bytes(64)
    with pytest.raises(ImageReadError, match="DICOM"):
        read_image(data)
    assert colourfulness(data) == 0.0
    assert opened == []


# --- defect 2: sizes checked before inflating or decoding -------------------------------------

def test_a_deflated_dicom_reads():
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    data = corpus.dicom_bytes(corpus.bright_left(), ts=DeflatedExplicitVRLittleEndian)
    np.testing.assert_array_equal(read_image(data), corpus.bright_left_expected())
    np.testing.assert_array_equal(read_image(data[132:]), corpus.bright_left_expected())  # without preamble


def test_a_deflate_bomb_is_refused_after_inflating_no_more_than_the_limit():
    bomb = corpus.deflate_bomb_dicom()  # 52 KB that inflate to 51 MB (and declare 2 GB)
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError, match=r"deflated DICOM in the upload inflates to more than 1.0 MB "
                                                 r"\(1,048,576 bytes, the upload limit\)"):
            read_image(bomb, max_bytes=2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MB allocated"


@pytest.mark.parametrize("make, codec", [
    (lambda: corpus.jpeg_in_dicom((64, 48), 8, 8), "the JPEG codestream of the first frame is 64×48"),
    (lambda: corpus.j2k_in_dicom((64, 48), 8, 8), "the JPEG 2000 codestream of the first frame is 64×48"),
    (lambda: corpus.j2k_in_dicom((64, 48), 48, 64, declare=(13000, 13000)),
     "the JPEG 2000 codestream of the first frame is 13000×13000 with 1 component(s), but Columns × Rows is 64×48"),
    (lambda: corpus.encapsulated_dicom(corpus.jpeg_declaring(12000, 12000), "JPEGBaseline8Bit", 8, 8),
     "the JPEG codestream of the first frame is 12000×12000"),
], ids=["jpeg", "j2k", "j2k-siz-claims-169mp", "jpeg-sof-claims-144mp"])
def test_a_codestream_larger_than_rows_by_columns_is_refused_before_decoding(opened, make, codec):
    with pytest.raises(ImageReadError) as error:
        read_image(make())
    assert codec in str(error.value) and "refused before decoding" in str(error.value)
    assert "broadcast" not in str(error.value)
    assert opened == []  # pydicom's decoder (Pillow) was never called


def test_encapsulated_frames_whose_header_matches_read():
    for data in (corpus.jpeg_in_dicom((64, 48), 48, 64), corpus.j2k_in_dicom((64, 48), 48, 64),
                 corpus.rle_dicom(30, 20, bits=16)):
        assert read_image(data).shape in ((48, 64), (30, 20))


def test_an_rle_segment_that_decodes_past_rows_by_columns_is_refused():
    with pytest.raises(ImageReadError, match=r"segment 1 of the first frame decodes to more than "
                                             r"Rows × Columns = 4,096 bytes; refused before decoding"):
        read_image(corpus.rle_bomb_dicom())


def test_an_rle_segment_that_decodes_short_is_refused_after_one_quick_count():
    """The count walks the segment once; a stretch of no-op bytes (128) is skipped at C speed."""
    frame = corpus.rle_frame([b"\x80" * (10 * corpus.MB)])
    cpu = time.thread_time()  # this thread's CPU time: a busy machine does not count against it
    with pytest.raises(ImageReadError, match=r"segment 1 of the first frame decodes to 0 bytes, fewer than "
                                             r"Rows × Columns = 4,096"):
        read_image(corpus.encapsulated_dicom(frame, "RLELossless", 64, 64))
    assert time.thread_time() - cpu < 5.0


def test_a_frame_that_would_decode_past_the_frame_budget_is_refused():
    with pytest.raises(ImageReadError, match=r"would decode to 206 MB \(6000×6000 × 3 sample\(s\) × 16 bits "
                                             r"allocated\); the limit is 114 MB per frame \(60.0 MP × 2 bytes\)"):
        read_image(corpus.frame_too_large_dicom())


# --- defect 3: special files --------------------------------------------------------------------

def _read_in_subprocess(path, *, memory_limit: int = 2 * 2**30, timeout: float = 60) -> str:
    """read_image(path) in a child process with a memory ceiling and a deadline, so that a reader
    that waits for ever or reads without end fails this test instead of hanging or swapping."""
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({memory_limit}, {memory_limit}))
        from core.imaging import ImageReadError, read_image
        try:
            read_image(sys.argv[1])
        except ImageReadError as error:
            print("ImageReadError:", error)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "scan.png"
    os.mkfifo(fifo)
    assert "got 'scan.png', which is a FIFO (named pipe), not a regular file" in _read_in_subprocess(fifo, timeout=30)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_link_to_an_endless_device_is_refused_without_reading(tmp_path, device):
    link = tmp_path / "xray.dcm"
    link.symlink_to(device)
    assert "got 'xray.dcm', which is a character device, not a regular file" in _read_in_subprocess(link)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_a_device_given_directly_is_refused():
    with pytest.raises(ImageReadError, match="got 'null', which is a character device, not a regular file"):
        read_image("/dev/null")


def test_at_most_the_limit_plus_one_byte_is_read(tmp_path, monkeypatch):
    """A file that grows after its size was checked (here: whose size is misreported) is read only
    up to the limit plus the one byte that proves it too large."""
    path = tmp_path / "growing.png"
    path.write_bytes(bytes(1000))
    real_stat, real_fstat = os.stat, os.fstat

    def small(result):
        fields = list(result)
        fields[6] = 10  # st_size
        return os.stat_result(fields)

    monkeypatch.setattr(os, "stat", lambda p, *a, **k: small(real_stat(p, *a, **k)) if str(p) == str(path)
                        else real_stat(p, *a, **k))
    monkeypatch.setattr(os, "fstat", lambda fd: small(real_fstat(fd)))
    with pytest.raises(ImageReadError,
                       match=r"'growing.png' is 0.0 MB \(101 bytes\); the limit is 0.0 MB \(100 bytes\)"):
        read_image(path, max_bytes=100)


# ---------------------------------------------------------------------------------------------
# Issue 25, item 1: files that pass every size check but make a decoder work for minutes. Each is
# built here just over its count (the counts, not the full-size bombs, are what is tested); the
# full-size files and their times are in docs/robustness.md.

from core.imaging import limits  # noqa: E402


def _jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _tiff_strips(strips: int, width: int = 6) -> bytes:
    """An uncompressed 8-bit TIFF of ``width`` × ``strips`` pixels, one row per strip, every strip
    pointing at the same bytes (the issue's file had 10,000,000 of them)."""
    import struct
    entries = [(256, 4, 1, width), (257, 4, 1, strips), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, strips, 0), (277, 3, 1, 1), (278, 4, 1, 1), (279, 4, 1, width)]
    pixels_at = 8 + 2 + 12 * len(entries) + 4
    offsets_at = pixels_at + 16
    entries[5] = (273, 4, strips, offsets_at)
    head = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    head += b"".join(struct.pack("<HHII", *entry) for entry in entries) + bytes(4)
    return head + bytes(range(16)) + np.full(strips, pixels_at, "<u4").tobytes()


def test_a_tiff_of_too_many_strips_is_refused_before_pillow_lists_them():
    ok = _tiff_strips(1000)
    assert read_image(ok).shape == (1000, 6)  # the same file with fewer strips reads
    with pytest.raises(ImageReadError, match=r"stored in 131,073 strips \(the limit is 131,072\)"):
        read_image(_tiff_strips(limits.MAX_TIFF_STRIPS + 1))


@pytest.mark.parametrize("compression", ["raw", "tiff_deflate", "packbits"])
def test_multi_strip_tiffs_still_read(compression):
    image = corpus.marker_image(900, 400)
    data = corpus.encode(image, "TIFF", compression=compression, tiffinfo={278: 20})
    assert Image.open(io.BytesIO(data)).tag_v2[273].__len__() > 1  # several strips
    np.testing.assert_array_equal(read_image(data), corpus.marker_array(900, 400))


def _progressive_with_scans(extra: int) -> bytes:
    data = _jpeg(Image.new("L", (64, 64), 100), progressive=True)
    last = data.rfind(b"\xff\xda")
    return data[:-2] + data[last:-2] * extra + b"\xff\xd9"


def test_a_jpeg_whose_scan_repeats_past_the_scan_limit_is_refused():
    normal = _progressive_with_scans(0)
    assert 1 < normal.count(b"\xff\xda") <= limits.MAX_JPEG_SCANS  # an ordinary progressive JPEG
    assert read_image(normal).shape == (64, 64)
    with pytest.raises(ImageReadError, match=r"more than 100 scans \(SOS markers"):
        read_image(_progressive_with_scans(limits.MAX_JPEG_SCANS))


def test_a_dicom_jpeg_frame_of_too_many_scans_is_refused_before_decoding():
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit
    frame = _progressive_with_scans(limits.MAX_JPEG_SCANS)
    data = corpus.dicom_bytes(np.zeros((64, 64)), ts=JPEGBaseline8Bit, pixel_data=encapsulate([frame]),
                              BitsAllocated=8, BitsStored=8, HighBit=7)
    with pytest.raises(ImageReadError, match=r"JPEG codestream in the upload has more than 100 scans"):
        read_image(data)


def test_a_jpeg_of_many_exif_segments_is_refused():
    payload = b"Exif\x00\x00" + bytes(1000)
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    base = _jpeg(Image.new("L", (16, 16), 128))
    assert read_image(base[:2] + segment + base[2:]).shape == (16, 16)  # one EXIF segment: normal
    with pytest.raises(ImageReadError, match=r"more than 16 EXIF \(APP1\) segments"):
        read_image(base[:2] + segment * (limits.MAX_JPEG_EXIF_SEGMENTS + 1) + base[2:])


def test_a_jpeg_of_too_many_segments_is_refused():
    comment = b"\xff\xfe\x00\x03x"
    base = _jpeg(Image.new("L", (16, 16), 128))
    with pytest.raises(ImageReadError, match=r"more than 1,000 marker segments"):
        read_image(base[:2] + comment * limits.MAX_JPEG_SEGMENTS + base[2:])


def test_a_png_of_too_many_chunks_is_refused():
    import struct
    import zlib
    base = corpus.encode(corpus.marker_image(8, 8), "PNG")
    empty = struct.pack(">I", 0) + b"abCd" + struct.pack(">I", zlib.crc32(b"abCd"))
    at = base.find(b"IDAT") - 4
    assert read_image(base[:at] + empty * 100 + base[at:]).shape == (8, 8)  # unknown chunks are skipped
    with pytest.raises(ImageReadError, match=r"more than 100,000 chunks"):
        read_image(base[:at] + empty * limits.MAX_PNG_CHUNKS + base[at:])


def _rle8_bmp(width: int, height: int, rows: bytes) -> bytes:
    import struct
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    start = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(rows), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", start + len(rows), 0, 0, start) + info + palette + rows


def test_an_rle_bmp_is_decoded_up_to_its_own_pixel_limit():
    # 4×2, bottom-up: bottom row 10 10 20 20, top row four 30s
    small = _rle8_bmp(4, 2, b"\x02\x0a\x02\x14\x00\x00\x04\x1e\x00\x00\x00\x01")
    np.testing.assert_array_equal(read_image(small) * 255, [[30] * 4, [10, 10, 20, 20]])
    # the file: one pixel and an end of line per row, which Pillow pads in Python byte by byte
    height = 1000
    bomb = _rle8_bmp(limits.MAX_RLE_BMP_PIXELS // height + 1, height, b"\x01\x07\x00\x00" * height + b"\x00\x01")
    with pytest.raises(ImageReadError, match=r"RLE-compressed BMP in the upload is 16001×1000 = 16.0 MP; "
                                             r"the limit for RLE BMP is 16.0 MP"):
        read_image(bomb)


def test_a_decode_past_its_cpu_deadline_is_stopped_and_the_next_one_has_its_own(monkeypatch):
    png = corpus.encode(corpus.marker_image(64, 64), "PNG")
    monkeypatch.setattr(limits, "DECODE_CPU_SECONDS", -1.0)  # already past: the first read stops it
    with pytest.raises(ImageReadError, match=r"decoding the upload took more than -1 s of CPU time"):
        read_image(png)
    monkeypatch.setattr(limits, "DECODE_CPU_SECONDS", -1.0)
    with pytest.raises(ImageReadError, match=r"took more than -1 s of CPU time"):  # DICOM: between tiles
        read_image(DICOM)
    monkeypatch.setattr(limits, "DECODE_CPU_SECONDS", 15.0)
    monkeypatch.setattr(limits, "DECODE_WALL_SECONDS", -1.0)
    with pytest.raises(ImageReadError, match=r"took more than -1 s; it was stopped"):
        read_image(png)
    monkeypatch.setattr(limits, "DECODE_WALL_SECONDS", 40.0)
    assert read_image(png).shape == (64, 64)  # no deadline is left behind


def test_the_deadline_stops_a_slow_decode_that_passes_every_count(monkeypatch):
    """An RLE BMP just under its pixel limit costs Pillow seconds of Python; with a 0.3 s CPU budget
    the decode is stopped at a read long before the end (bound generous: the machine may be busy)."""
    height = 1000
    slow = _rle8_bmp(limits.MAX_RLE_BMP_PIXELS // height, height, b"\x01\x07\x00\x00" * height + b"\x00\x01")
    monkeypatch.setattr(limits, "DECODE_CPU_SECONDS", 0.3)
    start = time.thread_time()
    with pytest.raises(ImageReadError, match=r"took more than 0.3 s of CPU time"):
        read_image(slow)
    assert time.thread_time() - start < 10


def test_a_gif_of_too_many_extension_blocks_is_refused():
    """Found on the way: ten million one-byte comment blocks (50 MB) read in 5 s but took 1.8 GB,
    Pillow joining the comment by bytes concatenation."""
    base = corpus.encode(corpus.marker_image(8, 8), "GIF")
    at = base.find(b",")  # the image descriptor
    comment = b"!\xfe\x01x\x00"
    assert read_image(base[:at] + comment * 100 + base[at:]).shape == (8, 8)
    with pytest.raises(ImageReadError, match=r"more than 100,000 extension blocks before its first image"):
        read_image(base[:at] + comment * (limits.MAX_GIF_SUB_BLOCKS // 2 + 1) + base[at:])
