"""DICOM window/level (core.imaging.windowing) on synthetic DICOMs built with pydicom in memory."""

import io

import numpy as np
import pytest
from PIL import Image

from core.imaging import MAX_FILE_BYTES, ImageReadError, read_image
from core.imaging.windowing import (BONE, FILE_DEFAULT, SOFT_TISSUE, Window, apply_window, dicom_windowable,
                                    window_presets)
from tests.corpus import (bright_left, deflate_bomb_dicom, dicom_bytes, frame_too_large_dicom, jpeg_in_dicom,
                          junk_compressed_dicom, rle_bomb_dicom)

# A synthetic radiograph in detector units, in vertical bands (left to right): air, fat, muscle, bone.
BANDS = {"air": (200, 20, 0.4), "fat": (800, 30, 0.2), "muscle": (1100, 30, 0.2), "bone": (3000, 250, 0.2)}


def radiograph(seed: int = 0, shape=(120, 200)) -> np.ndarray:
    """uint16 (H, W): each band of ``BANDS`` its mean plus normal noise, over its share of the width."""
    rng = np.random.default_rng(seed)
    columns = [np.full((shape[0], round(share * shape[1])), float(mean)) + rng.normal(0, spread, (shape[0], round(share * shape[1])))
               for mean, spread, share in BANDS.values()]
    return np.clip(np.hstack(columns), 0, 65535).astype(np.uint16)


def regions(values: np.ndarray) -> dict[str, np.ndarray]:
    bounds = np.cumsum([0] + [round(share * values.shape[1]) for _, _, share in BANDS.values()])
    return {name: values[:, start:end] for name, start, end in zip(BANDS, bounds, bounds[1:])}


def test_values_are_after_the_rescale_slope_and_intercept():
    pixels = np.array([[0, 100, 500, 1000, 4000]], np.uint16)
    image = dicom_windowable(dicom_bytes(pixels, RescaleSlope=2, RescaleIntercept=-1024))
    assert image.values.dtype == np.float32 and image.values.shape == (1, 5)
    np.testing.assert_array_equal(image.values, pixels * 2.0 - 1024)
    assert image.modality == "DX" and not image.inverted


def test_monochrome1_is_inverted_so_the_high_stored_value_shows_dark():
    data = dicom_bytes(bright_left(), photometric="MONOCHROME1")
    image = dicom_windowable(data)
    shown = apply_window(image.values, image.default)
    assert image.inverted
    assert (shown[:, :4] < shown[:, 4:]).all()  # the stored 4000 is dark in MONOCHROME1
    np.testing.assert_allclose(shown, read_image(data), atol=0.01)  # as the classifier reads it


def test_file_window_is_the_default_and_shows_what_the_reader_reads():
    pixels = np.array([[0, 100, 500, 1000, 4000]], np.uint16)
    data = dicom_bytes(pixels, WindowCenter=500, WindowWidth=200)
    image = dicom_windowable(data)
    assert image.default == Window(500.0, 200.0)
    shown = apply_window(image.values, image.default)
    np.testing.assert_allclose(shown, [[0, 0, 0.5, 1, 1]], atol=0.01)
    np.testing.assert_allclose(shown, read_image(data), atol=0.01)


def test_the_first_of_several_file_windows_is_the_default_in_rescaled_units():
    data = dicom_bytes(np.array([[0, 1000, 2000]], np.uint16), RescaleSlope=1, RescaleIntercept=-1000,
                       WindowCenter=[0, 3000], WindowWidth=[400, 10])
    assert dicom_windowable(data).default == Window(0.0, 400.0)


def test_monochrome1_file_window_is_negated_with_the_values():
    pixels = np.array([[0, 100, 500, 1000, 4000]], np.uint16)
    data = dicom_bytes(pixels, photometric="MONOCHROME1", WindowCenter=500, WindowWidth=200)
    image = dicom_windowable(data)
    assert image.default == Window(-500.0, 200.0)
    np.testing.assert_allclose(apply_window(image.values, image.default), [[1, 1, 0.5, 0, 0]], atol=0.01)


@pytest.mark.parametrize("tags", [{}, {"WindowCenter": 500, "WindowWidth": 0}, {"WindowCenter": 500}],
                         ids=["no-window", "zero-width", "centre-only"])
def test_without_a_valid_file_window_the_default_spans_the_percentiles(tags):
    pixels = radiograph()
    image = dicom_windowable(dicom_bytes(pixels, **tags))
    low, high = np.percentile(pixels.astype(np.float64), (0.5, 99.5))
    assert image.default.center == pytest.approx((low + high) / 2)
    assert image.default.width == pytest.approx(high - low)


def test_constant_image_gets_a_window_of_width_one():
    image = dicom_windowable(dicom_bytes(np.full((4, 4), 1234, np.uint16)))
    assert image.default == Window(1234.0, 1.0)
    assert image.value_range == (1234.0, 1234.0)


def test_presets_differ_and_map_into_the_unit_range():
    image = dicom_windowable(dicom_bytes(radiograph(), WindowCenter=1500, WindowWidth=3000))
    presets = window_presets(image)
    assert list(presets) == [FILE_DEFAULT, BONE, SOFT_TISSUE]
    assert presets[FILE_DEFAULT] == image.default
    assert len(set(presets.values())) == 3
    for window in presets.values():
        shown = apply_window(image.values, window)
        assert shown.dtype == np.float32 and shown.shape == image.values.shape
        assert shown.min() >= 0 and shown.max() <= 1
        assert shown.max() - shown.min() > 0.5  # each preset shows something, not a flat field


def test_bone_preset_gives_bone_the_contrast_and_soft_tissue_preset_gives_it_to_soft_tissue():
    image = dicom_windowable(dicom_bytes(radiograph()))
    presets = window_presets(image)
    bone_view = regions(apply_window(image.values, presets[BONE]))
    soft_view = regions(apply_window(image.values, presets[SOFT_TISSUE]))

    def fat_muscle_contrast(view):
        return view["muscle"].mean() - view["fat"].mean()
    assert fat_muscle_contrast(soft_view) > 2 * fat_muscle_contrast(bone_view) > 0
    assert bone_view["bone"].std() > 3 * soft_view["bone"].std()  # bone saturates under soft tissue
    assert soft_view["bone"].mean() > 0.9
    assert bone_view["fat"].mean() < 0.1  # soft tissue goes dark under bone
    assert max(soft_view["air"].mean(), bone_view["air"].mean()) < 0.05  # air stays black under both


def test_bone_and_soft_tissue_presets_follow_the_image_not_fixed_units():
    dim = dicom_windowable(dicom_bytes(radiograph()))
    bright = dicom_windowable(dicom_bytes(radiograph(), RescaleSlope=3, RescaleIntercept=500))
    for name in (BONE, SOFT_TISSUE):
        a, b = window_presets(dim)[name], window_presets(bright)[name]
        assert b.center == pytest.approx(3 * a.center + 500, rel=0.02)
        np.testing.assert_allclose(apply_window(bright.values, b), apply_window(dim.values, a), atol=0.02)


def test_ct_presets_are_the_classic_hounsfield_windows():
    hounsfield = np.array([[-1000, 40, 400, 1300]])
    image = dicom_windowable(dicom_bytes(hounsfield + 1024, Modality="CT", RescaleSlope=1, RescaleIntercept=-1024))
    presets = window_presets(image)
    assert presets[BONE] == Window(400.0, 1800.0) and presets[SOFT_TISSUE] == Window(40.0, 400.0)
    np.testing.assert_allclose(apply_window(image.values, presets[SOFT_TISSUE]), [[0, 0.5, 1, 1]])
    np.testing.assert_allclose(apply_window(image.values, presets[BONE]), [[0, 0.3, 0.5, 1]], atol=1e-6)  # -500..1300 HU


def test_large_image_is_reduced_to_max_side_by_box_averaging():
    pixels = np.tile(np.arange(300, dtype=np.uint16), (100, 1))
    image = dicom_windowable(dicom_bytes(pixels), max_side=64)
    assert image.values.shape == (20, 60)  # reduced 5 times: ceil(300 / 64)
    np.testing.assert_allclose(image.values[0, :3], [2, 7, 12])  # the means of 0..4, 5..9, 10..14


def test_multiframe_gives_the_first_frame():
    frames = np.stack([bright_left(), bright_left()[:, ::-1]])
    image = dicom_windowable(dicom_bytes(frames))
    assert (image.values[:, :4] == 4000).all() and (image.values[:, 4:] == 100).all()


def test_colour_dicom_gives_its_luma_in_the_unit_range():
    from pydicom.uid import ExplicitVRLittleEndian

    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :3] = 200
    data = dicom_bytes(pixel_data=rgb.tobytes(), photometric="RGB", Rows=4, Columns=6, SamplesPerPixel=3,
                       BitsAllocated=8, BitsStored=8, HighBit=7, PlanarConfiguration=0, ts=ExplicitVRLittleEndian)
    image = dicom_windowable(data)
    np.testing.assert_allclose(image.values, read_image(data))


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 100).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("data", [_png(), b"", b"not an image at all", bytes(200)], ids=["png", "empty", "text", "zeros"])
def test_a_file_that_is_not_dicom_gives_none(data):
    assert dicom_windowable(data) is None


HOSTILE = {
    "declares 30000x30000": lambda: dicom_bytes(Rows=30000, Columns=30000),
    "frame too large": frame_too_large_dicom,
    "rle bomb": rle_bomb_dicom,
    "deflate bomb": deflate_bomb_dicom,
    "jpeg bigger than its header": lambda: jpeg_in_dicom((4000, 4000), 8, 8),
    "junk jpeg 2000": junk_compressed_dicom("JPEG2000Lossless"),
    "no pixel data": lambda: dicom_bytes(pixel_data=False),
    "truncated pixel data": lambda: dicom_bytes(bright_left())[:-20],
}


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_dicom_raises_the_readers_error(make):
    data = make()
    with pytest.raises(ImageReadError) as reader:
        read_image(data)
    with pytest.raises(ImageReadError) as windowing:
        dicom_windowable(data)
    assert str(windowing.value) == str(reader.value)


def test_dicom_over_the_upload_limit_is_refused_before_parsing():
    data = dicom_bytes(bright_left()) + bytes(MAX_FILE_BYTES)
    with pytest.raises(ImageReadError, match="the limit is 50.0 MB"):
        dicom_windowable(data)


def test_window_needs_a_positive_finite_width():
    for width in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="width > 0"):
            Window(0.0, width)
    with pytest.raises(ValueError, match="finite center"):
        Window(float("nan"), 1.0)


def test_apply_window_shows_nan_black_and_keeps_the_shape():
    values = np.array([[np.nan, -10.0], [5.0, 100.0]], np.float32)
    shown = apply_window(values, Window(5.0, 10.0))
    np.testing.assert_array_equal(shown, [[0, 0], [0.5, 1]])
    assert shown.dtype == np.float32


def test_max_side_must_be_positive():
    with pytest.raises(ValueError, match="max_side"):
        dicom_windowable(dicom_bytes(bright_left()), max_side=0)


def test_presets_of_a_two_level_image_are_still_valid_windows():
    image = dicom_windowable(dicom_bytes(bright_left()))  # 100 and 4000 only: no third class
    for window in window_presets(image).values():
        shown = apply_window(image.values, window)
        assert (shown[:, :4] > shown[:, 4:]).all()
