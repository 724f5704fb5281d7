"""Fuzzing read_image: mutated PNG, JPEG, TIFF, GIF, BMP, WebP and DICOM bytes.

Whatever comes in, read_image must return a finite float32 2-D array in [0, 1] or raise
ImageReadError: no other exception, no hang. The run is reproducible (``derandomize``) and bounded
to 500 examples in all; for a long run set FUZZ_EXAMPLES, e.g.

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
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from core.imaging import ImageReadError, read_image

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 500))
RANDOM = os.environ.get("FUZZ_RANDOM", "") not in ("", "0")
# A mutated header may declare any size; a small pixel limit keeps each example to milliseconds
# while going through the same size checks as the default limit.
MAX_PIXELS = 4_000_000
SLOW_SECONDS = 10  # one example taking longer than this counts as a hang


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
    }


def _dicom_rle() -> bytes:
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(_dicom(16, 16)))
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
def mutated(draw) -> tuple[str, bytes]:
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
    if name.startswith("png") and draw(st.booleans()):
        return name, _fix_png_crcs(bytes(data))
    return name, bytes(data)


def _assert_image_or_read_error(seed: str, data: bytes) -> None:
    started = time.perf_counter()
    try:
        image = read_image(data, max_pixels=MAX_PIXELS)
    except ImageReadError:
        event(f"{seed}: ImageReadError")  # counts shown by --hypothesis-show-statistics
    else:
        event(f"{seed}: read")
        assert isinstance(image, np.ndarray) and image.dtype == np.float32 and image.ndim == 2
        assert image.size > 0 and np.isfinite(image).all()
        assert image.min() >= 0.0 and image.max() <= 1.0
    seconds = time.perf_counter() - started
    assert seconds < SLOW_SECONDS, f"read_image took {seconds:.1f} s on {len(data)} bytes"


def test_seeds_are_valid_images():
    for name, data in SEEDS.items():
        assert read_image(data).ndim == 2, name


@_fuzz_settings(0.8)
@given(mutated())
def test_mutated_files_read_or_raise_image_read_error(seed_and_data):
    _assert_image_or_read_error(*seed_and_data)


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
        ts=draw(st.sampled_from([ExplicitVRLittleEndian, ImplicitVRLittleEndian])),
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
