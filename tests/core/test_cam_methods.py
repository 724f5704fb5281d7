"""Tests for core.cam_methods: every heatmap method's contract, model safety, agreement of the
compiled Grad-CAM with tf-keras-vis's, and localisation on a hand-built model."""

import keras
import numpy as np
import pytest
from keras import layers

from core.cam_methods import METHODS, SLOW_METHODS, Explainer
from core.config import DEFAULT_DATA_DIR, MODELS_DIR
from core.data import load_arrays, load_index
from core.inference import FractureClassifier
from core.model import CAM_LAYER, build_model

SIZE, BLOCK = 32, 4  # the hand-built model's 'cam_features' sees 4 x 4 blocks: an 8 x 8 map


@pytest.fixture(scope="module")
def residual():
    keras.utils.set_random_seed(0)  # random weights, the same on every run (seeds 2, 3 give all-zero maps)
    model = build_model("residual", 64)  # random weights; 'cam_features' is 4 x 4 x 256
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 1)).astype(np.uint8)
    before = model(images.astype(np.float32)).numpy()
    return model, Explainer(model, CAM_LAYER), images, before


def test_methods_are_listed_in_order():
    assert list(METHODS) == ["gradcam", "gradcam++", "scorecam", "layercam", "smoothgrad"]
    assert SLOW_METHODS <= set(METHODS)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_returns_normalised_maps(residual, method):
    _, explainer, images, _ = residual
    maps = explainer.explain(images, method)
    assert maps.shape == (3, 64, 64) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0
    for single in maps:  # each map is normalised to its own peak (or is all zero)
        assert single.max() == pytest.approx(1.0, abs=1e-6) or single.max() == 0.0


def test_unknown_method_lists_the_valid_ones(residual):
    with pytest.raises(ValueError) as error:
        residual[1].explain(residual[2], "occlusion")
    assert "occlusion" in str(error.value) and all(key in str(error.value) for key in METHODS)


def test_shared_model_is_left_untouched(residual):
    model, explainer, images, before = residual
    explainer.build_all()
    for method in METHODS:
        explainer.explain(images[:1], method)
    assert model.get_layer("probabilities").activation is keras.activations.softmax
    np.testing.assert_allclose(model(images.astype(np.float32)).numpy(), before, atol=1e-6)


def test_compiled_gradcam_matches_tf_keras_vis(residual):
    _, explainer, images, _ = residual
    ours, theirs = explainer.explain(images, "gradcam"), explainer.tf_keras_vis_gradcam(images)
    for mine, reference in zip(ours, theirs):
        assert mine.max() > 0  # a non-trivial map, or the correlation below means nothing
        assert np.corrcoef(mine.ravel(), reference.ravel())[0, 1] >= 0.99
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "labels.csv").is_file(),
                    reason=f"FracAtlas not found at {DEFAULT_DATA_DIR}; this check needs the real test split")
def test_compiled_gradcam_matches_tf_keras_vis_on_the_fracatlas_test_split():
    """The fast path stands in for tf-keras-vis only if it draws the same map: Pearson r >= 0.99
    on every image of the test split (617 images, batched; 10-20 s on 2 cores)."""
    classifier = FractureClassifier.load(MODELS_DIR)
    explainer = Explainer(classifier.model, classifier.metadata["cam_layer"])
    samples = [sample for sample in load_index(DEFAULT_DATA_DIR) if sample.split == "test"]
    images, _ = load_arrays(samples, classifier.preprocess_config)  # conftest keeps the cache temporary
    correlations, both_empty = {}, 0
    for start in range(0, len(images), 32):
        chunk = images[start : start + 32]
        pairs = zip(explainer.explain(chunk, "gradcam"), explainer.tf_keras_vis_gradcam(chunk))
        for sample, (mine, reference) in zip(samples[start : start + 32], pairs):
            if mine.max() == 0 and reference.max() == 0:  # no evidence for "fractured" in either
                both_empty += 1
                continue
            assert mine.std() > 0 and reference.std() > 0, f"{sample.image_id}: one map is flat, the other not"
            correlations[sample.image_id] = np.corrcoef(mine.ravel(), reference.ravel())[0, 1]
    assert len(correlations) >= 0.9 * len(samples), f"{both_empty} of {len(samples)} maps are empty in both"
    worst = min(correlations, key=correlations.get)
    assert correlations[worst] >= 0.99, (f"{worst}: r = {correlations[worst]:.4f}; median "
                                         f"{np.median(list(correlations.values())):.4f}")


def brightness_model() -> keras.Model:
    """'cam_features' channel 0 = block brightness, channel 1 = block darkness; the fracture
    logit is 40 x mean brightness - 4, so a black image is "not fractured" (P = 0.02) and a bright
    patch is the evidence. (Score-CAM weighs each feature map by the raw P(fractured) of the
    input masked by it, with no baseline subtracted, so the black-masked image must score low.)"""
    inputs = keras.Input((SIZE, SIZE, 1), name="xray")
    cam = layers.Conv2D(2, BLOCK, strides=BLOCK, activation="relu", name="cam_features")
    x = cam(layers.Rescaling(1.0 / 255.0)(inputs))
    head = layers.Dense(2, activation="softmax", name="probabilities")
    model = keras.Model(inputs, head(layers.GlobalAveragePooling2D()(x)))
    kernel = np.zeros((BLOCK, BLOCK, 1, 2), np.float32)
    kernel[..., 0], kernel[..., 1] = 1.0 / BLOCK**2, -1.0 / BLOCK**2
    cam.set_weights([kernel, np.array([0.0, 1.0], np.float32)])
    head.set_weights([np.array([[0.0, 40.0], [0.0, 0.0]], np.float32), np.array([0.0, -4.0], np.float32)])
    return model


@pytest.fixture(scope="module")
def brightness_explainer():
    return Explainer(brightness_model(), "cam_features")


# SmoothGrad is left out: its peak is the steepest input gradient, which with this model lies on
# any pixel of a block (every pixel has the same weight), not specifically in the patch.
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "scorecam", "layercam"])
def test_cam_methods_peak_on_the_evidence_for_fracture(brightness_explainer, method):
    images = np.zeros((3, SIZE, SIZE, 1), np.uint8)
    corners = [(4, 20), (20, 8), (0, 0)]
    for index, (top, left) in enumerate(corners):
        images[index, top : top + 8, left : left + 8] = 250
    maps = brightness_explainer.explain(images, method)
    for heatmap, (top, left) in zip(maps, corners):
        row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        assert top <= row < top + 8 and left <= col < left + 8, (method, row, col)
        assert heatmap[top + 2 : top + 6, left + 2 : left + 6].min() > 0.9
