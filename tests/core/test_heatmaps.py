"""core.heatmaps: every method's contract through the one front door, model safety, agreement of
the compiled Grad-CAM with tf-keras-vis's, the class as a parameter, and localisation on
hand-built models."""

import keras
import numpy as np
import pytest
from keras import layers

from core.heatmaps import METHODS, SLOW_METHODS, HeatmapExplainer
from core.config import MODELS_DIR
from training.data import load_arrays, load_index
from core.classifier import FractureClassifier
from training.model import CAM_LAYER, build_model
from training.config import DEFAULT_DATA_DIR

SIZE, BLOCK = 32, 4  # the hand-built model's 'cam_features' sees 4 x 4 blocks: an 8 x 8 map


@pytest.fixture(scope="module")
def residual():
    keras.utils.set_random_seed(0)  # random weights, the same on every run (seeds 2, 3 give all-zero maps)
    model = build_model("residual", 64)  # random weights; 'cam_features' is 4 x 4 x 256
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 1)).astype(np.uint8)
    before = model(images.astype(np.float32)).numpy()
    return model, HeatmapExplainer(model, CAM_LAYER), images, before


def tf_keras_vis_gradcam(explainer: HeatmapExplainer, images: np.ndarray) -> np.ndarray:
    """tf-keras-vis's own Grad-CAM with the options the production methods use, as the reference
    the compiled Grad-CAM must match."""
    import tensorflow as tf
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    gradcam = Gradcam(explainer.model, model_modifier=ReplaceToLinear(), clone=True)
    cams = gradcam(CategoricalScore(1), np.asarray(images, np.float32), penultimate_layer=explainer.cam_layer,
                   seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False)
    cams = tf.image.resize(np.asarray(cams, np.float32)[..., None], (explainer.size,) * 2, method="bilinear")
    cams = np.maximum(cams[..., 0].numpy(), 0.0)
    peaks = cams.max(axis=(1, 2), keepdims=True)
    return np.divide(cams, peaks, out=np.zeros_like(cams), where=peaks > 0)


def test_methods_are_listed_in_order():
    assert list(METHODS) == ["gradcam", "gradcam++", "scorecam", "layercam", "smoothgrad", "fracturemap"]
    assert SLOW_METHODS <= set(METHODS)


def test_a_model_without_a_map_of_its_own_offers_every_method_but_the_fracture_map(residual):
    _, explainer, images, _ = residual
    assert explainer.methods == ("gradcam", "gradcam++", "scorecam", "layercam", "smoothgrad")
    with pytest.raises(ValueError, match="no fracture map of its own"):
        explainer.explain(images, "fracturemap")


@pytest.mark.parametrize("method", [name for name in METHODS if name != "fracturemap"])
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
    for method in explainer.methods:
        explainer.explain(images[:1], method)
    assert model.get_layer("probabilities").activation is keras.activations.softmax
    np.testing.assert_allclose(model(images.astype(np.float32)).numpy(), before, atol=1e-6)


def test_compiled_gradcam_matches_tf_keras_vis(residual):
    _, explainer, images, _ = residual
    ours, theirs = explainer.explain(images, "gradcam"), tf_keras_vis_gradcam(explainer, images)
    for mine, reference in zip(ours, theirs):
        assert mine.max() > 0  # a non-trivial map, or the correlation below means nothing
        assert np.corrcoef(mine.ravel(), reference.ravel())[0, 1] >= 0.99
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "labels.csv").is_file(),
                    reason=f"FracAtlas not found at {DEFAULT_DATA_DIR}; this check needs the real test split")
def test_compiled_gradcam_matches_tf_keras_vis_on_the_fracatlas_test_split():
    """The fast path stands in for tf-keras-vis only if it draws the same map: Pearson r >= 0.99
    on every image of the test split where either map is not empty (617 images, batched; 20-40 s
    on 2 cores). A box model's Grad-CAM is empty where no cell's evidence for "fractured" is
    positive, which is most normal images: the shipped model gives 286 maps to compare, and both
    methods must agree on which maps are empty."""
    classifier = FractureClassifier.load(MODELS_DIR)
    explainer = classifier.explainer
    samples = [sample for sample in load_index(DEFAULT_DATA_DIR) if sample.split == "test"]
    images, _ = load_arrays(samples, classifier.preprocess_config)  # conftest keeps the cache temporary
    correlations, both_empty = {}, 0
    for start in range(0, len(images), 32):
        chunk = images[start : start + 32]
        pairs = zip(explainer.explain(chunk, "gradcam"), tf_keras_vis_gradcam(explainer, chunk))
        for sample, (mine, reference) in zip(samples[start : start + 32], pairs):
            if mine.max() == 0 and reference.max() == 0:  # no evidence for "fractured" in either
                both_empty += 1
                continue
            assert mine.std() > 0 and reference.std() > 0, f"{sample.image_id}: one map is flat, the other not"
            correlations[sample.image_id] = np.corrcoef(mine.ravel(), reference.ravel())[0, 1]
    assert len(correlations) >= 0.3 * len(samples), f"{both_empty} of {len(samples)} maps are empty in both"
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
    return HeatmapExplainer(brightness_model(), "cam_features")


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


def test_gradcam_on_the_trained_model(classifier, sample_paths, trained_model):
    explainer = classifier.explainer
    inputs = np.stack([classifier.classify(path).model_input for path in sample_paths])
    size = classifier.preprocess_config.image_size
    maps = explainer.explain(inputs)
    assert maps.shape == (len(sample_paths), size, size)
    assert maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0
    for single in maps:  # each map is normalised to its own peak (or is all zero)
        assert single.max() == pytest.approx(1.0, abs=1e-6) or single.max() == 0.0
    # oneDNN sums in a batch-size-dependent order, so float32 results differ in the 5th decimal.
    np.testing.assert_allclose(explainer.explain(inputs[:1])[0], maps[0], atol=1e-4)


def test_the_class_to_explain_is_a_parameter():
    model = signed_brightness_model(fracture_weight=4.0)
    explainer = HeatmapExplainer(model, "cam_features")
    image = patch_image(4, 20)
    fractured, normal = explainer.explain(image, class_index=1)[0], explainer.explain(image, class_index=0)[0]
    # The patch is the evidence for "fractured" and against "not fractured".
    assert fractured[6:10, 22:26].min() == pytest.approx(1.0, abs=1e-5)
    assert normal[6:10, 22:26].max() == 0.0
    for method in ("gradcam++", "layercam"):
        assert explainer.explain(image, method, class_index=0)[0][6:10, 22:26].max() < 0.5


# --- Grad-CAM localisation on a hand-built model whose evidence is known ----------------

def signed_brightness_model(fracture_weight: float) -> keras.Model:
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
    model = signed_brightness_model(fracture_weight=4.0)
    image = patch_image(top, left)
    assert model(image.astype(np.float32))[0, 1] > model(patch_image(0, 0, side=0).astype(np.float32))[0, 1]
    heatmap = HeatmapExplainer(model, "cam_features").explain(image)[0]
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
    model = signed_brightness_model(fracture_weight=-4.0)
    heatmap = HeatmapExplainer(model, "cam_features").explain(patch_image(4, 20))[0]
    assert heatmap[6:10, 22:26].max() == 0.0  # patch centre (its edges get the background's bleed)
    assert heatmap[4:12, 20:28].mean() < 0.5 * heatmap[16:, :16].mean()
    assert heatmap.max() == pytest.approx(1.0)
    row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    assert not (0 <= row < 16 and 16 <= col < 32)


# --- A box-supervised model's own map, on a synthetic bar whose box is known ----------------

def bar_box_model() -> keras.Model:
    """The shipped box model's head on a hand-made 'backbone': 'cam_features' = each 4 x 4 block's
    mean brightness; each cell's fracture logit is 40 x (brightness - 0.3), pooled by log-mean-exp
    into the verdict, with the fixed two-class output of ``training.model.build_box_model``."""
    from core.layers import LogMeanExpPooling

    inputs = keras.Input((SIZE, SIZE, 1), name="xray")
    hidden = layers.Conv2D(1, BLOCK, strides=BLOCK, name="cell_hidden")
    x = layers.Activation("relu", name="cam_features")(hidden(layers.Rescaling(1.0 / 255.0)(inputs)))
    cells = layers.Conv2D(1, 1, name="fracture_map")
    output = layers.Dense(2, activation="softmax", name="probabilities")
    model = keras.Model(inputs, output(LogMeanExpPooling(name="image_logit")(cells(x))))
    hidden.set_weights([np.full((BLOCK, BLOCK, 1, 1), 1.0 / BLOCK**2, np.float32), np.zeros(1, np.float32)])
    cells.set_weights([np.full((1, 1, 1, 1), 40.0, np.float32), np.array([-12.0], np.float32)])
    output.set_weights([np.array([[-0.5, 0.5]], np.float32), np.zeros(2, np.float32)])
    return model


def bar_image(top: int, left: int) -> np.ndarray:
    """A thin bright bar (2 x 8 px) on a dark image: the 'fracture', boxed by rows top..top+2."""
    image = np.full((1, SIZE, SIZE, 1), 20, np.uint8)
    image[0, top : top + 2, left : left + 8] = 255
    return image


@pytest.fixture(scope="module")
def bar_explainer():
    return HeatmapExplainer(bar_box_model(), "cam_features")


@pytest.mark.parametrize("top, left", [(4, 20), (21, 4), (12, 12)])
@pytest.mark.parametrize("method", ["fracturemap", "gradcam"])
def test_a_box_models_map_peaks_inside_the_bars_box(bar_explainer, method, top, left):
    heatmap = bar_explainer.explain(bar_image(top, left), method)[0]
    row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    assert top <= row < top + 2 and left <= col < left + 8, (row, col)  # inside the bar's box
    assert heatmap.max() == pytest.approx(1.0, abs=1e-6) and heatmap.min() >= 0.0


def test_the_fracture_map_is_each_cells_probability_resized_bilinearly_and_divided_by_its_peak(bar_explainer):
    import cv2

    image = bar_image(4, 20)
    cell_logits = keras.Model(bar_explainer.model.input, bar_explainer.model.get_layer("fracture_map").output)(
        image.astype(np.float32)).numpy()[0, ..., 0]
    for class_index, sign in ((1, 1.0), (0, -1.0)):
        cell_probability = (1.0 / (1.0 + np.exp(-sign * cell_logits))).astype(np.float32)
        expected = cv2.resize(cell_probability, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)  # half-pixel centres
        expected /= expected.max()
        heatmap = bar_explainer.explain(image, "fracturemap", class_index=class_index)[0]
        np.testing.assert_allclose(heatmap, expected, atol=1e-5)
    assert np.unravel_index(np.argmax(cell_logits), cell_logits.shape) == (1, 5)  # the bar's cells


def test_a_box_models_verdict_is_pooled_from_its_map(bar_explainer):
    model = bar_explainer.model
    blank = model(np.full((1, SIZE, SIZE, 1), 20, np.float32)).numpy()[0, 1]
    barred = model(bar_image(4, 20).astype(np.float32)).numpy()[0, 1]
    assert barred > 0.5 > blank
    assert bar_explainer.methods[-1] == "fracturemap"


def test_compiled_gradcam_matches_tf_keras_vis_on_a_box_model(bar_explainer):
    images = np.concatenate([bar_image(4, 20), bar_image(21, 4), bar_image(12, 12)])
    ours, theirs = bar_explainer.explain(images, "gradcam"), tf_keras_vis_gradcam(bar_explainer, images)
    for mine, reference in zip(ours, theirs):
        assert mine.max() > 0 and np.corrcoef(mine.ravel(), reference.ravel())[0, 1] >= 0.99
