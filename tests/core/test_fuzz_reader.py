"""Fuzzing the reader: mutated PNG, JPEG, TIFF, GIF, BMP, WebP and DICOM bytes.

Whatever comes in, decode_image must return a finite float32 2-D array in [0, 1] (and a colour
thumbnail that is None or small RGB) or raise ImageReadError: no other exception, no hang. The
DICOM seeds cover the transfer syntaxes that are decoded here (explicit and implicit VR, deflate,
RLE, JPEG Baseline, JPEG 2000) and preamble tricks (EPS, TIFF, PNG headers before ``DICM``); half
of the byte mutations are read with a small output budget, so the reduced reading is fuzzed too.
The run is reproducible (``derandomize``) and bounded to 500 examples in all; for a long run set
FUZZ_EXAMPLES, e.g.

    FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest -q tests/core/test_fuzz_reader.py

and for examples other than the fixed ones, FUZZ_RANDOM=1 (add --hypothesis-seed=N to repeat a run).
Four fifths of the examples go to byte-level mutation, one fifth to DICOM header values.
"""

import io
import os
import struct
import time
import zlib

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from core.imaging import ImageReadError, decode_image, read_image
from tests import corpus

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 500))
RANDOM = os.environ.get("FUZZ_RANDOM", "") not in ("", "0")
# A mutated header may declare any size; a small pixel limit keeps each example to milliseconds
# while going through the same size checks as the default limit.
MAX_PIXELS = 4_000_000
SMALL_OUTPUT = 200  # pixels: seeds are 24×32, so this budget makes the reader reduce them
SLOW_SECONDS = 10  # one example taking more CPU than this counts as a hang


def _fuzz_settings(share: float):
    return settings(max_examples=max(1, round(EXAMPLES * share)), deadline=None, derandomize=not RANDOM,
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kw)
    return buffer.getvalue()


def _dicom(rows=8, columns=8, *, ts=ExplicitVRLittleEndian, bits=16, samples=1, photometric="MONOCHROME2",
           frames=None, pixel_bytes=None, **tags) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ts
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns = "DX", rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    if samples > 1:
        ds.PlanarConfiguration = 0
    if frames is not None:
        ds.NumberOfFrames = frames
    if pixel_bytes is None:
        count = rows * columns * samples * (frames or 1)
        pixel_bytes = np.arange(count, dtype=np.uint16 if bits == 16 else np.uint8).tobytes()
    ds.PixelData = pixel_bytes
    for key, value in tags.items():
        setattr(ds, key, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    grey = Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8))
    colour = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    deep = Image.fromarray(rng.integers(0, 65536, (24, 32), dtype=np.uint16))
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "png-grey": _encode(grey, "PNG"),
        "png-rgb": _encode(colour, "PNG"),
        "png-16bit": _encode(deep, "PNG"),
        "png-palette": _encode(colour.convert("P"), "PNG", transparency=0),
        "jpeg-grey": _encode(grey, "JPEG", quality=90),
        "jpeg-rgb-exif": _encode(colour, "JPEG", quality=90, exif=exif.tobytes()),
        "jpeg-progressive": _encode(grey, "JPEG", quality=80, progressive=True),
        "tiff": _encode(grey, "TIFF"),
        "tiff-float": _encode(Image.fromarray(rng.random((12, 16)).astype(np.float32), "F"), "TIFF"),
        "gif": _encode(grey.convert("P"), "GIF", save_all=True, append_images=[grey.convert("P")]),
        "bmp": _encode(grey, "BMP"),
        "webp": _encode(grey, "WEBP", lossless=True),
        "dicom": _dicom(),
        "dicom-window": _dicom(WindowCenter=100, WindowWidth=50, RescaleSlope=2, RescaleIntercept=-10),
        "dicom-multiframe": _dicom(frames=3),
        "dicom-rle": _dicom_rle(),
        "dicom-rle-rgb": _dicom_rle(samples=3),
        "dicom-deflate": _dicom(12, 10, ts=DeflatedExplicitVRLittleEndian, WindowCenter=40, WindowWidth=80),
        "dicom-jpeg": corpus.encapsulated_dicom(_encode(grey, "JPEG", quality=90), "JPEGBaseline8Bit", 24, 32),
        "dicom-jpeg-rgb": corpus.encapsulated_dicom(_encode(colour, "JPEG", quality=90), "JPEGBaseline8Bit", 24, 32,
                                                    samples=3, photometric="YBR_FULL_422"),
        "dicom-j2k": corpus.encapsulated_dicom(_encode(grey, "JPEG2000", no_jp2=True), "JPEG2000Lossless", 24, 32),
        "dicom-j2k-16bit": corpus.encapsulated_dicom(_encode(deep, "JPEG2000", no_jp2=True), "JPEG2000Lossless",
                                                     24, 32, bits=16),
        "dicom-eps-preamble": corpus.with_preamble(_dicom(), corpus.EPS_PREAMBLE),
        "dicom-tiff-preamble": corpus.with_preamble(_dicom(), corpus.tiff_header(64, 64, rgb=True)),
        "dicom-png-preamble": corpus.with_preamble(_dicom(), _encode(Image.new("L", (4, 4)), "PNG")),
        "png-rgba": _encode(colour.convert("RGBA"), "PNG"),
        "tiff-float64": corpus.float64_tiff(12, 16),
    }


def _dicom_rle(samples: int = 1) -> bytes:
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(_dicom(16, 16, samples=samples, bits=8 if samples > 1 else 16,
                                   photometric="RGB" if samples > 1 else "MONOCHROME2")))
    ds.compress(RLELossless)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


SEEDS = _seeds()


def _fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk CRC so that mutations reach the decoder instead of the CRC check."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return data
    out, pos = bytearray(data[:8]), 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        end = pos + 8 + length
        if end + 4 > len(data):
            out += data[pos:]
            return bytes(out)
        body = data[pos + 4:end]
        out += data[pos:end] + struct.pack(">I", zlib.crc32(body))
        pos = end + 4
    return bytes(out + data[pos:])


# In-place changes are listed twice: they keep the structure and so reach deeper into decoders.
MUTATIONS = ("flip", "flip", "overwrite", "overwrite", "field", "field", "insert", "delete", "truncate")
EXTREMES = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


@st.composite
def mutated(draw) -> tuple[str, bytes, int | None]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(MUTATIONS))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        # Headers hold the interesting fields: half of the mutations land in the first 160 bytes.
        if draw(st.booleans()):
            pos = min(pos, draw(st.integers(0, min(160, max(0, len(data) - 1)))))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos:pos + len(chunk)] = chunk
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "field":
            width, order = draw(st.sampled_from([(2, "<"), (2, ">"), (4, "<"), (4, ">")]))
            value = draw(st.sampled_from(EXTREMES)) % (1 << (8 * width))
            data[pos:pos + width] = struct.pack(order + ("H" if width == 2 else "I"), value)
    output = draw(st.sampled_from([None, SMALL_OUTPUT]))
    if name.startswith("png") and draw(st.booleans()):
        return name, _fix_png_crcs(bytes(data)), output
    return name, bytes(data), output


def _assert_image_or_read_error(seed: str, data: bytes, max_output_pixels: int | None = None) -> None:
    started = time.thread_time()  # this thread's CPU time: a hang, not a busy machine
    budget = {} if max_output_pixels is None else {"max_output_pixels": max_output_pixels}
    try:
        decoded = decode_image(data, max_pixels=MAX_PIXELS, **budget)
    except ImageReadError:
        event(f"{seed}: ImageReadError")  # counts shown by --hypothesis-show-statistics
    else:
        event(f"{seed}: read" + (" reduced" if max_output_pixels else ""))
        image, thumbnail = decoded.grey, decoded.colour_thumbnail
        assert isinstance(image, np.ndarray) and image.dtype == np.float32 and image.ndim == 2
        assert image.size > 0 and np.isfinite(image).all()
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert image.flags.c_contiguous
        if max_output_pixels is not None:
            assert image.size <= max_output_pixels
        if thumbnail is not None:
            assert thumbnail.dtype == np.uint8 and thumbnail.ndim == 3 and thumbnail.shape[2] == 3
            assert max(thumbnail.shape[:2]) <= 64
    seconds = time.thread_time() - started
    assert seconds < SLOW_SECONDS, f"read_image took {seconds:.1f} s of CPU on {len(data)} bytes"


UNREADABLE_SEEDS = {"tiff-float64"}  # refused with a precise message; its mutations probe the TIFF parser


def test_seeds_are_valid_images():
    for name, data in SEEDS.items():
        if name in UNREADABLE_SEEDS:
            continue
        assert read_image(data).ndim == 2, name
        assert read_image(data, max_output_pixels=SMALL_OUTPUT).size <= SMALL_OUTPUT, name


@_fuzz_settings(0.8)
@given(mutated())
def test_mutated_files_read_or_raise_image_read_error(seed_data_and_budget):
    _assert_image_or_read_error(*seed_data_and_budget)


@st.composite
def dicom_headers(draw) -> bytes:
    bits = draw(st.sampled_from([8, 16]))
    samples = draw(st.sampled_from([1, 1, 3]))
    tags = {}
    if draw(st.booleans()):
        tags["WindowCenter"] = draw(st.floats(-1e6, 1e6, allow_nan=False) | st.just(float("nan")))
        tags["WindowWidth"] = draw(st.floats(-1e6, 1e6) | st.just(0.0))
    if draw(st.booleans()):
        tags["RescaleSlope"] = draw(st.floats(-1e6, 1e6, allow_nan=False) | st.just(0.0))
        tags["RescaleIntercept"] = draw(st.floats(-1e9, 1e9, allow_nan=False))
    if draw(st.booleans()):
        tags["BitsStored"] = draw(st.integers(0, 40))
        tags["HighBit"] = draw(st.integers(0, 40))
    if draw(st.booleans()):
        tags["PixelRepresentation"] = draw(st.integers(0, 2))
    if draw(st.booleans()):
        tags["VOILUTFunction"] = draw(st.sampled_from(["LINEAR", "SIGMOID", "LINEAR_EXACT", "BOGUS"]))
    if draw(st.booleans()):  # a single-valued element stored with two values
        name = draw(st.sampled_from(["Rows", "Columns", "SamplesPerPixel", "PixelRepresentation", "NumberOfFrames"]))
        tags[name] = [draw(st.integers(0, 70)), draw(st.integers(0, 70))]
    data = _dicom(
        rows=draw(st.integers(0, 70)), columns=draw(st.integers(0, 70)),
        ts=draw(st.sampled_from([ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian])),
        bits=bits, samples=samples,
        photometric=draw(st.sampled_from(["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "PALETTE COLOR", "X"])),
        frames=draw(st.none() | st.integers(0, 5)),
        pixel_bytes=draw(st.none() | st.binary(max_size=600)),
        **tags)
    if draw(st.booleans()):
        data = data[132:]  # preamble-less, as old scanners write it
    return data


@_fuzz_settings(0.2)
@given(dicom_headers())
def test_dicom_with_odd_header_values_reads_or_raises_image_read_error(data):
    _assert_image_or_read_error("dicom-header", data)
