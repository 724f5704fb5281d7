"""Tests for core.explain: Grad-CAM maps, mapping back to the image, overlays, and localisation."""

import keras
import matplotlib
import numpy as np
import pytest
from keras import layers

from core.explain import GradCam, heatmap_to_image, overlay_heatmap
from core.preprocessing import PreprocessConfig, content_box


def test_gradcam_on_the_trained_model(classifier, sample_paths, trained_model):
    explainer = GradCam(classifier.model, classifier.metadata["cam_layer"])
    inputs = np.stack([classifier.prepare(path)[1] for path in sample_paths])
    size = classifier.preprocess_config.image_size
    maps = explainer(inputs)
    assert maps.shape == (len(sample_paths), size, size)
    assert maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0
    for single in maps:  # each map is normalised to its own peak (or is all zero)
        assert single.max() == pytest.approx(1.0, abs=1e-6) or single.max() == 0.0
    # oneDNN sums in a batch-size-dependent order, so float32 results differ in the 5th decimal.
    np.testing.assert_allclose(explainer(inputs[:1])[0], maps[0], atol=1e-4)


@pytest.mark.parametrize("shape", [(20, 60), (60, 20), (40, 40), (3, 200)])
@pytest.mark.parametrize("aspect", ["pad", "stretch"])
def test_heatmap_to_image_crops_the_padding(shape, aspect):
    config = PreprocessConfig(32, aspect, "none")
    top, left, height, width = content_box(shape, config)
    inside = np.zeros((32, 32), np.float32)
    inside[top : top + height, left : left + width] = 1.0
    mapped = heatmap_to_image(inside, shape, config)
    assert mapped.shape == shape
    np.testing.assert_allclose(mapped, 1.0)
    assert (heatmap_to_image(1.0 - inside, shape, config) == 0.0).all()


def test_heatmap_to_image_keeps_position():
    config = PreprocessConfig(32, "pad", "none")
    heatmap = np.zeros((32, 32), np.float32)
    heatmap[12:20, 24:32] = 1.0  # right end of the content of a 20 x 80 image (rows 12-19)
    mapped = heatmap_to_image(heatmap, (20, 80), config)
    assert mapped[:, 70:].min() > 0.99 and mapped[:, :50].max() == 0.0


def test_overlay_shape_and_opacity_extremes():
    rng = np.random.default_rng(0)
    image = rng.random((12, 20)).astype(np.float32)
    heatmap = rng.random((12, 20)).astype(np.float32)
    blended = overlay_heatmap(image, heatmap)
    assert blended.shape == (12, 20, 3) and blended.dtype == np.uint8

    grey = overlay_heatmap(image, heatmap, opacity=0.0)
    expected_grey = np.round(image * 255).astype(np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(grey[..., channel], expected_grey)

    coloured = overlay_heatmap(image, heatmap, opacity=1.0, colormap="viridis")
    expected = np.round(matplotlib.colormaps["viridis"](heatmap)[..., :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(coloured, expected)

    hot_cold = overlay_heatmap(np.zeros((1, 2)), np.array([[0.0, 1.0]]), opacity=1.0)  # jet
    assert hot_cold[0, 0, 2] > 100 and hot_cold[0, 0, 0] == 0  # blue for 0
    assert hot_cold[0, 1, 0] > 100 and hot_cold[0, 1, 2] == 0  # red for 1


@pytest.mark.parametrize("image, heatmap, message", [
    (np.zeros((4, 5)), np.zeros((5, 4)), "same shape"),
    (np.zeros((4, 4, 1)), np.zeros((4, 4, 1)), "2-D"),
    (np.full((4, 4), 1.2), np.zeros((4, 4)), "image values must be finite and in [0, 1]"),
    (np.zeros((4, 4)), np.full((4, 4), -0.1), "heatmap values must be finite and in [0, 1]"),
    (np.zeros((4, 4)), np.array([[np.nan] * 4] * 4), "heatmap values must be finite"),
])
def test_overlay_rejects_bad_inputs(image, heatmap, message):
    with pytest.raises(ValueError) as error:
        overlay_heatmap(image, heatmap)
    assert message in str(error.value)


def test_overlay_rejects_unknown_colormap_and_lists_options():
    with pytest.raises(ValueError) as error:
        overlay_heatmap(np.zeros((4, 4)), np.zeros((4, 4)), colormap="rainbowish")
    message = str(error.value)
    assert "rainbowish" in message
    assert all(name in message for name in ("jet", "inferno", "viridis"))


@pytest.mark.parametrize("opacity", [-0.1, 1.01, float("nan")])
def test_overlay_rejects_opacity_out_of_range(opacity):
    with pytest.raises(ValueError, match=r"opacity must be in \[0, 1\]"):
        overlay_heatmap(np.zeros((4, 4)), np.zeros((4, 4)), opacity=opacity)


# --- localisation on a hand-built model -------------------------------------------------

SIZE, BLOCK = 32, 4  # 'cam_features' sees non-overlapping 4 x 4 blocks: an 8 x 8 feature map


def brightness_model(fracture_weight: float) -> keras.Model:
    """Channel 0 of 'cam_features' = block brightness, channel 1 = block darkness (1 - brightness);
    the fracture logit is fracture_weight x (mean brightness - mean darkness)."""
    inputs = keras.Input((SIZE, SIZE, 1), name="xray")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    cam = layers.Conv2D(2, BLOCK, strides=BLOCK, activation="relu", name="cam_features")
    x = cam(x)
    pooled = layers.GlobalAveragePooling2D()(x)
    head = layers.Dense(2, activation="softmax", name="probabilities")
    outputs = head(pooled)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((BLOCK, BLOCK, 1, 2), np.float32)
    kernel[..., 0], kernel[..., 1] = 1.0 / BLOCK**2, -1.0 / BLOCK**2
    cam.set_weights([kernel, np.array([0.0, 1.0], np.float32)])
    head.set_weights([np.array([[0.0, fracture_weight], [0.0, -fracture_weight]], np.float32),
                      np.zeros(2, np.float32)])
    return model


def patch_image(top: int, left: int, side: int = 8) -> np.ndarray:
    image = np.full((1, SIZE, SIZE, 1), 20, np.uint8)
    image[0, top : top + side, left : left + side] = 250
    return image


@pytest.mark.parametrize("top, left", [(4, 20), (20, 8), (0, 0)])
def test_gradcam_peaks_on_the_evidence_for_fracture(top, left):
    model = brightness_model(fracture_weight=4.0)
    image = patch_image(top, left)
    assert model(image.astype(np.float32))[0, 1] > model(patch_image(0, 0, side=0).astype(np.float32))[0, 1]
    heatmap = GradCam(model, "cam_features")(image)[0]
    row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    assert top <= row < top + 8 and left <= col < left + 8
    # Bilinear upsampling of the 8 x 8 map: a plateau of 1 in the patch's centre, falling off
    # over one 4 px block on each side.
    np.testing.assert_allclose(heatmap[top + 2 : top + 6, left + 2 : left + 6], 1.0, atol=1e-5)
    assert heatmap[top : top + 8, left : left + 8].min() > 0.3
    away = np.ones((SIZE, SIZE), bool)
    away[max(0, top - BLOCK) : top + 8 + BLOCK, max(0, left - BLOCK) : left + 8 + BLOCK] = False
    assert heatmap[away].max() == 0.0  # dark background is no evidence for a fracture


def test_gradcam_follows_the_fracture_class_not_brightness():
    # Same features, but brightness now argues against a fracture: the map must leave the patch.
    model = brightness_model(fracture_weight=-4.0)
    heatmap = GradCam(model, "cam_features")(patch_image(4, 20))[0]
    assert heatmap[6:10, 22:26].max() == 0.0  # patch centre (its edges get the background's bleed)
    assert heatmap[4:12, 20:28].mean() < 0.5 * heatmap[16:, :16].mean()
    assert heatmap.max() == pytest.approx(1.0)
    row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    assert not (0 <= row < 16 and 16 <= col < 32)


def test_overlay_on_original_and_png_round_trip():
    import io

    from PIL import Image

    from core.explain import encode_png, overlay_on_original

    config = PreprocessConfig(32, "pad", "none")
    image = np.linspace(0, 1, 20 * 60, dtype=np.float32).reshape(20, 60)
    overlay = overlay_on_original(image, np.ones((32, 32), np.float32), config, opacity=0.0)
    assert overlay.shape == (20, 60, 3) and overlay.dtype == np.uint8
    np.testing.assert_array_equal(overlay[..., 0], np.round(image * 255).astype(np.uint8))
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(overlay))))
    np.testing.assert_array_equal(decoded, overlay)


def test_fit_for_display_shrinks_only_large_images():
    from core.explain import fit_for_display

    small = np.full((300, 200), 0.5, np.float32)
    assert fit_for_display(small) is small
    large = np.random.default_rng(0).random((3000, 1500)).astype(np.float32)
    shown = fit_for_display(large, max_side=800)
    assert shown.shape == (800, 400)
    assert 0.0 <= shown.min() and shown.max() <= 1.0
    assert shown.mean() == pytest.approx(large.mean(), abs=0.01)
