"""Tests for core.imaging.read_image; every input file is generated here, in memory."""

import io
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

from core.imaging import SUPPORTED_FORMATS, ImageReadError, read_image

# tests/ is not a package: tf-keras-vis installs a top-level "tests" package that would shadow it.
from tests.corpus import dicom_bytes

EXPECTED = "expected an image file"


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def marker_image(h=40, w=60, mode="L") -> Image.Image:
    """Dark image with a bright block in the top-left corner (asymmetric on purpose)."""
    arr = np.full((h, w), 30, np.uint8)
    arr[: h // 3, : w // 3] = 230
    return Image.fromarray(arr).convert(mode)


def assert_image(out, shape):
    assert out.dtype == np.float32 and out.ndim == 2 and out.shape == shape
    assert out.flags.c_contiguous
    assert 0.0 <= out.min() and out.max() <= 1.0


def assert_marker(out, h=40, w=60, tol=0.06):
    assert_image(out, (h, w))
    assert abs(out[2, 2] - 230 / 255) < tol, "top-left marker should be bright"
    assert abs(out[-3, -3] - 30 / 255) < tol, "bottom-right should be dark"


# --- Pillow formats -------------------------------------------------------------------

@pytest.mark.parametrize("fmt,mode,kw", [
    ("PNG", "L", {}), ("PNG", "RGB", {}), ("BMP", "L", {}), ("BMP", "RGB", {}),
    ("TIFF", "L", {}), ("WEBP", "L", {"lossless": True}), ("GIF", "L", {}),
    ("JPEG", "L", {"quality": 95}), ("JPEG", "RGB", {"quality": 95}),
    ("JPEG", "CMYK", {"quality": 95}),
])
def test_pillow_formats_keep_marker(fmt, mode, kw):
    assert_marker(read_image(encode(marker_image(mode=mode), fmt, **kw)))


def test_supported_formats_listed():
    assert set(SUPPORTED_FORMATS) >= {"PNG", "JPEG", "BMP", "TIFF", "WebP", "GIF", "DICOM"}


def test_png_8bit_exact_scaling():
    arr = np.array([[0, 51, 255]], np.uint8)
    np.testing.assert_allclose(read_image(encode(Image.fromarray(arr), "PNG")), [[0, 0.2, 1]], atol=1e-6)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_precision_survives(fmt):
    arr = np.array([[0, 32768, 65535, 1]], np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    out = read_image(encode(img, fmt))
    assert out[0, 0] == 0.0 and out[0, 2] == 1.0
    assert abs(out[0, 1] - 0.5) < 1e-4
    assert 0 < out[0, 3] < 1 / 255  # a step an 8-bit path would have lost


def test_rgba_composited_on_black():
    arr = np.zeros((2, 2, 4), np.uint8)
    arr[..., :3] = 255
    arr[..., 3] = [[0, 255], [128, 255]]
    out = read_image(encode(Image.fromarray(arr, "RGBA"), "PNG"))
    np.testing.assert_allclose(out, [[0, 1], [128 / 255, 1]], atol=1e-3)


def test_la_composited_on_black():
    out = read_image(encode(Image.fromarray(np.array([[[200, 0], [200, 255]]], np.uint8), "LA"), "PNG"))
    np.testing.assert_allclose(out, [[0, 200 / 255]], atol=1e-3)


def test_palette_with_transparency():
    img = Image.new("P", (3, 1))
    img.putpalette([255, 255, 255, 255, 255, 255, 0, 0, 0] + [0] * 759)
    img.putdata([0, 1, 2])
    out = read_image(encode(img, "PNG", transparency=0))
    np.testing.assert_allclose(out, [[0, 1, 0]], atol=1e-3)  # index 0 is white but transparent


def test_bilevel_and_float_tiff():
    bi = Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1")
    np.testing.assert_array_equal(read_image(encode(bi, "PNG")), [[0, 1]])
    f = Image.fromarray(np.array([[-5.0, 0.0, 5.0]], np.float32), "F")
    np.testing.assert_allclose(read_image(encode(f, "TIFF")), [[0, 0.5, 1]], atol=1e-6)


def test_constant_images_do_not_divide_by_zero():
    f = Image.fromarray(np.full((4, 5), 7.0, np.float32), "F")
    out = read_image(encode(f, "TIFF"))
    assert_image(out, (4, 5))
    assert not out.any()
    out8 = read_image(encode(Image.new("L", (5, 4), 128), "PNG"))
    assert np.allclose(out8, 128 / 255)  # fixed 8-bit scaling keeps the absolute level


def test_all_nan_float_rejected():
    f = Image.fromarray(np.full((3, 3), np.nan, np.float32), "F")
    with pytest.raises(ImageReadError, match="finite"):
        read_image(encode(f, "TIFF"))


def test_multipage_tiff_and_animated_gif_first_frame():
    first = marker_image()
    second = first.transpose(Image.Transpose.ROTATE_180)  # marker bottom-right
    assert_marker(read_image(encode(first, "TIFF", save_all=True, append_images=[second])))
    gif = encode(first.convert("P"), "GIF", save_all=True, append_images=[second.convert("P")],
                 duration=100, loop=0)
    assert Image.open(io.BytesIO(gif)).n_frames == 2
    assert_marker(read_image(gif))


@pytest.mark.parametrize("orientation,stored_rotation", [
    (6, Image.Transpose.ROTATE_90),   # camera turned: viewer must rotate 90° clockwise
    (8, Image.Transpose.ROTATE_270),  # viewer must rotate 90° counter-clockwise
    (3, Image.Transpose.ROTATE_180),
])
def test_exif_orientation_honoured(orientation, stored_rotation):
    stored = marker_image().transpose(stored_rotation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size != (60, 40) or orientation == 3
    assert_marker(read_image(data))  # upright: (40, 60), marker top-left


def noisy_jpeg(h=96, w=128) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(0)
    arr = (rng.random((h, w)) * 255).astype(np.uint8)
    data = encode(Image.fromarray(arr), "JPEG", quality=90)
    return data, np.asarray(Image.open(io.BytesIO(data)), np.float32) / 255


def test_truncated_jpeg_decodes_as_far_as_it_goes():
    data, full = noisy_jpeg()
    out = read_image(data[: int(len(data) * 0.6)])
    assert_image(out, full.shape)
    np.testing.assert_allclose(out[:16], full[:16], atol=1e-6)  # top rows were in the kept bytes
    assert not np.allclose(out[-8:], full[-8:], atol=0.02)


def test_truncated_jpeg_does_not_change_pillow_global():
    from PIL import ImageFile
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    data, _ = noisy_jpeg()
    read_image(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES == before


@pytest.mark.parametrize("cut", [20, 200])
def test_jpeg_cut_in_header_rejected(cut):
    data, _ = noisy_jpeg()
    with pytest.raises(ImageReadError, match=f"{EXPECTED}.*(JPEG cut short|truncated)"):
        read_image(data[:cut])


def test_truncated_png_rejected_cleanly():
    data = encode(Image.fromarray((np.random.default_rng(1).random((64, 64)) * 255).astype(np.uint8)), "PNG")
    with pytest.raises(ImageReadError):
        read_image(data[: len(data) // 2])


def test_bytes_and_path_give_identical_arrays(tmp_path):
    data = encode(marker_image(mode="RGB"), "JPEG", quality=80)
    path = tmp_path / "scan.whatever"  # extension is irrelevant: content decides
    path.write_bytes(data)
    a = read_image(data)
    np.testing.assert_array_equal(a, read_image(path))
    np.testing.assert_array_equal(a, read_image(str(path)))
    np.testing.assert_array_equal(a, read_image(bytearray(data)))
    np.testing.assert_array_equal(a, read_image(memoryview(data)))


def test_tiny_and_extreme_aspect_images():
    assert_image(read_image(encode(Image.new("L", (1, 1), 255), "PNG")), (1, 1))
    out = read_image(encode(Image.new("L", (20000, 20), 0), "PNG"))
    assert_image(out, (20, 20000))


# --- bad input ------------------------------------------------------------------------

def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xray.png", b"not really")
    return buf.getvalue()


@pytest.mark.parametrize("data,says", [
    (b"", "got 0 bytes"),
    (b"\x89", "got 1 byte from"),
    (bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8)), "got 4096 bytes"),
    (b"<html><body>Not Found</body></html>\n", "<html>"),
    (zip_bytes(), "ZIP"),
    (b"%PDF-1.7\n" + b"x" * 300, "PDF"),
])
def test_non_images_rejected_with_helpful_message(data, says):
    with pytest.raises(ImageReadError) as exc:
        read_image(data)
    assert EXPECTED in str(exc.value) and says in str(exc.value)
    assert "DICOM" in str(exc.value)


def test_html_renamed_png_and_bad_paths(tmp_path):
    fake = tmp_path / "xray.png"
    fake.write_bytes(b"<!DOCTYPE html><html>login</html>")
    with pytest.raises(ImageReadError, match="xray.png.*<!DOCTYPE"):
        read_image(fake)
    with pytest.raises(ImageReadError, match="does not exist") as exc:
        read_image(tmp_path / "nope.png")
    assert isinstance(exc.value.__cause__, FileNotFoundError)
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_wrong_source_type_is_a_type_error():
    with pytest.raises(TypeError):
        read_image(12345)


# --- decompression bombs --------------------------------------------------------------

def png_header_only(w: int, h: int) -> bytes:
    """A tiny PNG whose IHDR declares w×h (1-bit grey) with a few bytes of IDAT."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("w,h,says", [
    (30000, 30000, "30000×30000 = 900.0 MP; the limit is 60.0 MP"),  # beyond Pillow's own limit
    (10000, 7000, "10000×7000 = 70.0 MP; the limit is 60.0 MP"),      # only our limit catches it
])
def test_bomb_rejected_before_decoding(w, h, says):
    cpu = time.thread_time()  # this thread's CPU, not the wall clock: other processes cannot slow it
    with pytest.raises(ImageReadError) as exc:
        read_image(png_header_only(w, h))
    assert says in str(exc.value)
    assert time.thread_time() - cpu < 1.0  # decoding 900 MP would take minutes


def test_max_pixels_parameter():
    data = encode(Image.new("L", (100, 100)), "PNG")
    with pytest.raises(ImageReadError, match="100×100 = 10,000 pixels; the limit is 5,000 pixels"):
        read_image(data, max_pixels=5000)
    assert read_image(data, max_pixels=10_000).shape == (100, 100)


# --- DICOM ----------------------------------------------------------------------------

def bright_left(h=6, w=8, lo=100, hi=4000):
    arr = np.full((h, w), lo, np.uint16)
    arr[:, : w // 2] = hi
    return arr


def test_dicom_monochrome2_16bit():
    out = read_image(dicom_bytes(bright_left()))
    assert_image(out, (6, 8))
    assert (out[:, :4] == 1).all() and (out[:, 4:] == 0).all()


def test_dicom_monochrome1_inverted():
    out = read_image(dicom_bytes(bright_left(), photometric="MONOCHROME1"))
    assert (out[:, :4] == 0).all() and (out[:, 4:] == 1).all()  # high stored value = dark


def test_dicom_negative_rescale_slope_applied():
    out = read_image(dicom_bytes(bright_left(), RescaleSlope=-1, RescaleIntercept=0))
    assert (out[:, :4] == 0).all() and (out[:, 4:] == 1).all()


def test_dicom_window_clips():
    px = np.array([[0, 100, 500, 1000, 4000]], np.uint16)
    out = read_image(dicom_bytes(px, WindowCenter=500, WindowWidth=200))
    np.testing.assert_allclose(out, [[0, 0, 0.5, 1, 1]], atol=0.01)


def test_dicom_window_uses_rescaled_units_and_first_window():
    px = np.array([[0, 1000, 2000]], np.uint16)  # -1000, 0, 1000 HU after rescale
    out = read_image(dicom_bytes(px, RescaleSlope=1, RescaleIntercept=-1000,
                                 WindowCenter=[0, 3000], WindowWidth=[400, 10]))
    np.testing.assert_allclose(out, [[0, 0.5, 1]], atol=0.01)


@pytest.mark.parametrize("center, width", [(float("nan"), float("inf")), (float("nan"), 200), (500, float("inf")),
                                           (float("inf"), float("nan"))])
def test_dicom_broken_window_is_ignored(center, width):
    """Issue 25, item 8: a window whose centre is NaN or width infinite is ignored, as documented;
    before, it made every pixel NaN and the file was refused ("has no finite pixel values")."""
    px = np.array([[0, 100, 500, 1000, 4000]], np.uint16)
    out = read_image(dicom_bytes(px, WindowCenter=center, WindowWidth=width))
    np.testing.assert_array_equal(out, read_image(dicom_bytes(px)))


def test_dicom_multiframe_first_frame():
    frames = np.stack([bright_left(), bright_left()[:, ::-1], bright_left()[:, ::-1]])
    out = read_image(dicom_bytes(frames))
    assert_image(out, (6, 8))
    assert (out[:, :4] == 1).all() and (out[:, 4:] == 0).all()


def test_dicom_constant_image_is_zeros():
    out = read_image(dicom_bytes(np.full((4, 4), 1234, np.uint16)))
    assert_image(out, (4, 4))
    assert not out.any()


def test_dicom_recognised_by_content(tmp_path):
    data = dicom_bytes(bright_left())
    path = tmp_path / "IM000001"  # DICOMDIR-style name without extension
    path.write_bytes(data)
    np.testing.assert_array_equal(read_image(path), read_image(data))
    # without the 128-byte preamble and "DICM" magic, as old scanners write it
    np.testing.assert_array_equal(read_image(data[132:]), read_image(data))


def test_dicom_without_pixel_data():
    with pytest.raises(ImageReadError, match="DICOM file has no pixel data"):
        read_image(dicom_bytes(pixel_data=False))


def test_dicom_huge_declared_size():
    data = dicom_bytes(Rows=30000, Columns=30000)
    with pytest.raises(ImageReadError, match="30000×30000 = 900.0 MP"):
        read_image(data)


def test_dicom_undecodable_transfer_syntax():
    junk = encapsulate([b"\x00junk-not-a-codestream" * 4])
    with pytest.raises(ImageReadError, match="JPEG-LS.*cannot be decoded here"):
        read_image(dicom_bytes(ts=JPEGLSLossless, pixel_data=junk))
    with pytest.raises(ImageReadError, match="JPEG 2000") as exc:
        read_image(dicom_bytes(ts=JPEG2000Lossless, pixel_data=junk))
    assert exc.value.__cause__ is not None


def test_random_bytes_never_taken_for_dicom():
    rng = np.random.default_rng(3)
    for _ in range(50):
        data = bytes(rng.integers(0, 256, 512, dtype=np.uint8))
        with pytest.raises(ImageReadError, match=EXPECTED):
            read_image(data)


# --- memory: large images are read reduced, conversions run tile by tile (issue 13) ---------

def test_an_image_over_the_output_budget_is_read_reduced_by_box_averaging():
    pixels = np.random.default_rng(4).integers(0, 256, (40, 60), dtype=np.uint8)
    out = read_image(encode(Image.fromarray(pixels), "PNG"), max_output_pixels=600)  # 2400 px: halved
    expected = pixels.reshape(20, 2, 30, 2).mean(axis=(1, 3)) / 255
    assert_image(out, (20, 30))
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_reduction_keeps_edge_pixels_and_extreme_aspect_ratios():
    # factor 2: 21 × 31, the last row and column of boxes averaged over what is there
    out = read_image(encode(marker_image(41, 61), "PNG"), max_output_pixels=700)
    assert_marker(out, 21, 31)
    wide = read_image(encode(Image.new("L", (5000, 1), 255), "PNG"), max_output_pixels=1000)
    assert_image(wide, (1, 1000)) and np.allclose(wide, 1.0)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale():
    data = encode(marker_image(mode="RGB"), "JPEG", quality=95)
    out = read_image(data, max_output_pixels=600)  # DCT scaling by 1/2: 20 × 30, never 40 × 60
    assert_marker(out, 20, 30, tol=0.08)


def test_reduced_transparency_averages_the_composited_pixels():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = [[0, 255], [255, 255]]  # one clear white pixel of four: composited on black
    out = read_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), max_output_pixels=1)
    np.testing.assert_allclose(out, [[0.75]], atol=1e-6)


@pytest.mark.parametrize("pixels", [
    np.array([[0, 65535], [65535, 0]], np.uint16),
    np.array([[0.0, 1.0], [np.nan, 3.0]], np.float32),  # NaN counts as 0 after scaling to [0, 1]
], ids=["16-bit", "float"])
def test_deep_images_reduce_after_scaling(pixels):
    out = read_image(encode(Image.fromarray(pixels), "TIFF" if pixels.dtype == np.float32 else "PNG"),
                     max_output_pixels=1)
    expected = 0.5 if pixels.dtype == np.uint16 else (0 + 1 / 3 + 0 + 1) / 4
    np.testing.assert_allclose(out, [[expected]], atol=1e-6)


@pytest.mark.parametrize("orientation,stored_rotation",
                         [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)])
def test_exif_orientation_is_applied_to_a_reduced_image(orientation, stored_rotation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(marker_image().transpose(stored_rotation), "PNG", exif=exif.tobytes())
    assert_marker(read_image(data, max_output_pixels=600), 20, 30)


def test_a_dicom_over_the_output_budget_is_read_reduced():
    pixels = np.random.default_rng(5).integers(0, 4096, (40, 60), dtype=np.uint16)
    out = read_image(dicom_bytes(pixels), max_output_pixels=600)
    scaled = (pixels - pixels.min()) / (pixels.max() - pixels.min())
    np.testing.assert_allclose(out, scaled.reshape(20, 2, 30, 2).mean(axis=(1, 3)), atol=1e-6)


@pytest.mark.parametrize("mode,make", [
    ("16-bit", lambda: Image.fromarray(np.random.default_rng(6).integers(0, 65536, (1500, 2000), dtype=np.uint16))),
    ("RGBA", lambda: Image.fromarray(np.random.default_rng(7).integers(0, 256, (1500, 2000, 4), dtype=np.uint8),
                                     "RGBA")),
    ("float", lambda: Image.fromarray(np.random.default_rng(8).random((1500, 2000), dtype=np.float32))),
])
def test_deep_and_transparent_images_are_converted_without_full_size_float64_copies(mode, make):
    """Before, a 16-bit, float or RGBA image went through whole-image float64 arrays: 8-32 bytes per
    pixel, several at once (an RGBA PNG at the 60 MP limit took 4.7 GB). Now numpy holds the
    float32 result and one tile's temporaries."""
    import tracemalloc

    data = encode(make(), "TIFF" if mode == "float" else "PNG")
    tracemalloc.start()
    try:
        out = read_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_image(out, (1500, 2000))
    assert peak < out.nbytes + 48 * 2**20, f"{peak / 2**20:.0f} MB allocated for a {out.nbytes / 2**20:.0f} MB image"


# --- 64-bit float TIFF (issue 13, defect 10) --------------------------------------------------

def test_a_64_bit_float_tiff_is_refused_with_a_precise_message():
    from tests.corpus import float64_tiff

    with pytest.raises(ImageReadError, match="TIFF in the upload holds 64-bit floating-point samples, which are "
                                             r"not supported \(32-bit float TIFF is\)"):
        read_image(float64_tiff())


def test_webp_gets_a_quarter_of_the_pixel_limit():
    """libwebp holds about 16 bytes per pixel while Pillow decodes a WebP (4 for other formats)."""
    data = encode(Image.new("RGB", (100, 100), (90, 90, 90)), "WEBP", lossless=True)
    assert read_image(data, max_pixels=40_000).shape == (100, 100)
    with pytest.raises(ImageReadError,
                       match="WebP image is 100×100 = 10,000 pixels; the limit for WebP is 9,999 pixels"):
        read_image(data, max_pixels=39_999)
