"""Tests for core.preprocessing: shapes, letterbox geometry, extreme sizes, validation, intensity order."""

import numpy as np
import pytest

from core.preprocessing import ASPECT_MODES, CONTRAST_MODES, ContentBox, PreprocessConfig, content_box, preprocess

SIDE = 32


def noise(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.mark.parametrize("aspect", ASPECT_MODES)
@pytest.mark.parametrize("contrast", CONTRAST_MODES)
@pytest.mark.parametrize("shape", [(40, 40), (30, 70), (90, 25)])
def test_output_is_square_uint8_with_one_channel(aspect, contrast, shape):
    out = preprocess(noise(shape), PreprocessConfig(SIDE, aspect, contrast))
    assert out.shape == (SIDE, SIDE, 1)
    assert out.dtype == np.uint8


def test_pad_keeps_aspect_ratio_and_pads_with_black():
    wide = np.ones((20, 80), np.float32)  # 4:1 -> 32 x 8 content
    out = preprocess(wide, PreprocessConfig(SIDE, "pad", "none"))[..., 0]
    box = content_box(wide.shape, PreprocessConfig(SIDE, "pad", "none"))
    top, left, height, width = box.top, box.left, box.height, box.width
    assert (top, left, height, width) == (12, 0, 8, 32)
    assert (out[top : top + height] == 255).all()
    assert (out[:top] == 0).all() and (out[top + height :] == 0).all()


def test_pad_with_clahe_still_leaves_padding_black():
    tall = noise((90, 30)) * 0.8 + 0.1
    config = PreprocessConfig(SIDE, "pad", "clahe")
    out = preprocess(tall, config)[..., 0]
    box = content_box(tall.shape, config)
    top, left, height, width = box.top, box.left, box.height, box.width
    assert (top, height) == (0, SIDE) and width < SIDE
    assert (out[:, :left] == 0).all() and (out[:, left + width :] == 0).all()
    assert out[:, left : left + width].mean() > 20


def test_stretch_fills_the_whole_square():
    wide = np.ones((20, 80), np.float32)
    config = PreprocessConfig(SIDE, "stretch", "none")
    assert (preprocess(wide, config) == 255).all()
    assert content_box(wide.shape, config) == ContentBox(0, 0, SIDE, SIDE)


@pytest.mark.parametrize("side", [32, 64])
@pytest.mark.parametrize("shape", [(20, 80), (80, 20), (33, 33), (1, 1), (1, 7), (28, 600), (14, 600),
                                   (38, 700), (513, 3000), (3000, 2000), (1023, 1500), (20000, 20)])
def test_content_box_matches_where_letterbox_puts_the_content(shape, side):
    config = PreprocessConfig(side, "pad", "none")
    out = preprocess(np.ones(shape, np.float32), config)[..., 0]
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    found = (rows[0], cols[0], len(rows), len(cols))
    assert content_box(shape, config) == ContentBox(*found)
    top, left, height, width = found
    assert (out[top : top + height, left : left + width] > 0).all()  # a solid rectangle


@pytest.mark.parametrize("shape", [(3000, 2000), (1, 1), (8, 8), (20000, 20), (20, 20000)])
@pytest.mark.parametrize("aspect", ASPECT_MODES)
@pytest.mark.parametrize("contrast", CONTRAST_MODES)
def test_huge_and_tiny_images(shape, aspect, contrast):
    image = noise(shape, seed=1)
    out = preprocess(image, PreprocessConfig(SIDE, aspect, contrast))
    assert out.shape == (SIDE, SIDE, 1) and out.dtype == np.uint8
    assert out.max() > 0  # content survived


def test_single_pixel_fills_the_square():
    out = preprocess(np.full((1, 1), 0.5, np.float32), PreprocessConfig(SIDE, "pad", "none"))
    assert (out == 128).all()


@pytest.mark.parametrize("image, message", [
    (np.zeros((4, 4, 3), np.float32), "2-D"),
    (np.zeros(5, np.float32), "2-D"),
    ([[0.0, 1.0]], "2-D"),
    (np.full((4, 4), 1.5, np.float32), "[0, 1]"),
    (np.full((4, 4), -0.1, np.float32), "[0, 1]"),
    (np.array([[0.2, np.nan], [0.1, 0.3]], np.float32), "[0, 1]"),
    (np.array([[0.2, np.inf]]), "[0, 1]"),
    (np.zeros((0, 5), np.float32), "non-empty"),
])
def test_invalid_images_raise_value_error(image, message):
    with pytest.raises(ValueError) as error:
        preprocess(image, PreprocessConfig())
    assert message in str(error.value)


@pytest.mark.parametrize("kwargs, listed", [
    ({"aspect": "crop"}, ASPECT_MODES),
    ({"contrast": "histeq"}, CONTRAST_MODES),
])
def test_invalid_modes_list_the_valid_choices(kwargs, listed):
    with pytest.raises(ValueError) as error:
        PreprocessConfig(**kwargs)
    assert all(choice in str(error.value) for choice in listed)


@pytest.mark.parametrize("size", [7, 1025, 0, -64, 32.0, "32", None])
def test_invalid_image_size(size):
    with pytest.raises(ValueError, match=r"image_size must be an integer in \[8, 1024\]"):
        PreprocessConfig(image_size=size)


def test_config_round_trips_through_a_dict():
    config = PreprocessConfig(96, "stretch", "none")
    values = config.to_dict()
    assert values == {"image_size": 96, "aspect": "stretch", "contrast": "none"}
    assert PreprocessConfig.from_dict(values) == config
    assert PreprocessConfig.from_dict({**values, "unrelated": 1}) == config
    assert PreprocessConfig() == PreprocessConfig(64, "pad", "clahe")


@pytest.mark.parametrize("aspect", ASPECT_MODES)
def test_brighter_input_stays_brighter_without_contrast_normalisation(aspect):
    config = PreprocessConfig(SIDE, aspect, "none")
    image = np.full((60, 60), 0.2, np.float32)
    image[10:30, 30:55] = 0.7
    out = preprocess(image, config)[..., 0].astype(int)
    scale = SIDE / 60
    bright = out[int(12 * scale) : int(28 * scale), int(32 * scale) : int(53 * scale)]
    dark = out[int(40 * scale) :, : int(25 * scale)]
    assert bright.min() > dark.max()
    assert abs(bright.mean() - 0.7 * 255) < 2 and abs(dark.mean() - 0.2 * 255) < 2


def test_monotone_ramp_stays_monotone():
    ramp = np.tile(np.linspace(0.0, 1.0, 300, dtype=np.float32), (200, 1))
    out = preprocess(ramp, PreprocessConfig(SIDE, "stretch", "none"))[..., 0].astype(int)
    assert (np.diff(out, axis=1) >= 0).all()
    assert out[:, -1].min() - out[:, 0].max() > 200
