"""The shipped model and its heatmap explainer are shared by every session and thread of the app: prove it.

Streamlit runs each session's script in its own thread, and the app caches ONE
:class:`FractureClassifier` (with its :class:`HeatmapExplainer`) per process. Here :data:`THREADS` threads
wait at a barrier, then classify and explain *different* images at the same moment, for
:data:`ROUNDS` rounds (the image each thread gets rotates every round), and every answer must be
exactly the answer of a sequential run.

Exact equality (``np.array_equal``, ``==`` on the probability) and no tolerance: every call feeds
one image of the same shape, so TensorFlow/oneDNN pick the same kernels and split the work the
same way whatever else runs; concurrency only changes when the work is scheduled, never the
arithmetic. A race (a visualiser built twice, a tensor or buffer shared between calls, a
tf-keras-vis model modifier applied to the shared model) would show as a different number.

SmoothGrad is not compared: tf-keras-vis draws its noise from NumPy's global, unseeded
``np.random.normal`` (``tf_keras_vis/saliency.py``), so two sequential calls already differ;
seeding the global generator would not help either, because concurrent threads would interleave
their draws. It is run concurrently and checked to give valid maps (shape, finite, in [0, 1]).

The shipped model is real; images are synthetic (different per thread) plus, where
``../shared/datasets/fracatlas`` exists, real FracAtlas test radiographs.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from core import FractureClassifier, HeatmapExplainer
from core.config import MODELS_DIR
from tests.threads import run_together, synthetic_image
from training.config import DEFAULT_DATA_DIR

THREADS = 8
ROUNDS = 3
DETERMINISTIC_METHODS = ("gradcam", "gradcam++", "layercam", "scorecam")

# Slow: every round runs the shipped model and four heatmap methods on 8 images in 8 threads.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (MODELS_DIR / "metadata.json").is_file(),
                                                   reason=f"no shipped model in {MODELS_DIR}")]


def _fracatlas_test_images(count: int) -> list[bytes]:
    labels = DEFAULT_DATA_DIR / "labels.csv"
    if not labels.is_file():
        return []
    with open(labels, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    # Both classes, so the probabilities spread out instead of sitting near one end.
    chosen = ([row for row in rows if row["label"] == "fractured"][: count // 2]
              + [row for row in rows if row["label"] == "not_fractured"][: count - count // 2])
    return [(DEFAULT_DATA_DIR / row["path"]).read_bytes() for row in chosen]


@pytest.fixture(scope="module")
def classifier() -> FractureClassifier:
    return FractureClassifier.load()


@pytest.fixture(scope="module")
def explainer(classifier) -> HeatmapExplainer:
    return classifier.explainer


@pytest.fixture(scope="module")
def synthetic_images() -> list[bytes]:
    images = [synthetic_image(index) for index in range(THREADS)]
    assert len(set(images)) == THREADS
    return images


@pytest.fixture(scope="module")
def fracatlas_images() -> list[bytes]:
    images = _fracatlas_test_images(THREADS)
    if len(images) < THREADS:
        pytest.skip(f"FracAtlas not found at {DEFAULT_DATA_DIR}; this check needs real test images")
    return images


def _analyse(classifier, explainer, data: bytes, methods) -> tuple[float, dict[str, np.ndarray]]:
    result = classifier.classify(data)
    return result.probability_fractured, {method: explainer.explain(result.model_input[None], method)[0]
                                          for method in methods}


def _rotated(methods, by: int) -> tuple[str, ...]:
    """Each thread walks the methods in its own order, so different methods overlap too."""
    return tuple(methods[(by + offset) % len(methods)] for offset in range(len(methods)))


def _assert_same(expected, actual, label: str) -> None:
    expected_probability, expected_maps = expected
    probability, maps = actual
    assert probability == expected_probability, f"{label}: P(fractured) {probability!r} != {expected_probability!r}"
    for method, heatmap in expected_maps.items():
        assert np.array_equal(maps[method], heatmap), (
            f"{label}, {method}: max |difference| {np.abs(maps[method] - heatmap).max():.3g}")


def _check_concurrent_rounds(classifier, explainer, images: list[bytes]) -> None:
    sequential = [_analyse(classifier, explainer, data, DETERMINISTIC_METHODS) for data in images]
    assert len({probability for probability, _ in sequential}) > 1, "every image got the same probability"
    for round_number in range(ROUNDS):
        def task(thread):
            image_index = (thread + round_number) % len(images)
            methods = _rotated(DETERMINISTIC_METHODS, thread + round_number)
            return image_index, _analyse(classifier, explainer, images[image_index], methods)

        for image_index, answer in run_together(task, THREADS):
            _assert_same(sequential[image_index], answer, f"round {round_number}, image {image_index}")


def test_concurrent_classify_and_heatmaps_equal_a_sequential_run_synthetic(classifier, explainer, synthetic_images):
    _check_concurrent_rounds(classifier, explainer, synthetic_images)


def test_concurrent_classify_and_heatmaps_equal_a_sequential_run_fracatlas(classifier, explainer, fracatlas_images):
    _check_concurrent_rounds(classifier, explainer, fracatlas_images)


def test_first_use_from_many_threads_at_once(classifier, explainer, synthetic_images):
    """A cold classifier (forward pass not traced) and a cold explainer (no visualiser built yet),
    first called by all threads at the same moment: the lazy tracing and building must happen
    safely and give the same answers as the warm, shared instances."""
    # The cold classifier runs on TensorFlow; the shared one may run on LiteRT (within 1e-5 of it,
    # tests/core/test_litert_parity.py), so the bit-for-bit reference is a warm TensorFlow one.
    warm = FractureClassifier(classifier.model, classifier.metadata)
    reference = [_analyse(warm, warm.explainer, data, DETERMINISTIC_METHODS) for data in synthetic_images]
    cold_classifier = FractureClassifier(classifier.model, classifier.metadata)
    cold_explainer = cold_classifier.explainer
    assert not cold_explainer._visualisers  # nothing built yet: the threads race to build them

    def task(thread):
        # Two threads per method start on it at once (8 threads, 4 methods).
        return _analyse(cold_classifier, cold_explainer, synthetic_images[thread], _rotated(DETERMINISTIC_METHODS, thread))

    for index, answer in enumerate(run_together(task, THREADS)):
        _assert_same(reference[index], answer, f"cold start, image {index}")
    # Every visualiser the threads raced for was built and kept for the next caller.
    assert set(cold_explainer._visualisers) == set(DETERMINISTIC_METHODS) - {"gradcam"}


def test_the_shared_model_is_left_as_it_was(classifier, explainer, synthetic_images):
    """tf-keras-vis swaps the softmax for a linear activation on a CLONE (clone=True); the shared
    model, used concurrently by classify, must keep its softmax and its weights."""
    import keras

    weights_before = [weight.copy() for weight in classifier.model.get_weights()]
    model_input = classifier.classify(synthetic_images[0]).model_input[None]
    run_together(lambda thread: explainer.explain(model_input, _rotated(DETERMINISTIC_METHODS, thread)[0]), THREADS)
    assert classifier.model.get_layer("probabilities").activation is keras.activations.softmax
    assert all(np.array_equal(before, after) for before, after in zip(weights_before, classifier.model.get_weights()))
    outputs = classifier.model(model_input.astype(np.float32), training=False).numpy()
    assert np.allclose(outputs.sum(axis=1), 1.0, atol=1e-5)  # still probabilities, not logits


def test_smoothgrad_runs_concurrently_and_gives_valid_maps(classifier, explainer, synthetic_images):
    """Not compared with a sequential run: its noise is unseeded (see the module docstring)."""
    size = classifier.preprocess_config.image_size
    inputs = [classifier.classify(data).model_input[None] for data in synthetic_images[:4]]
    maps = run_together(lambda thread: explainer.explain(inputs[thread], "smoothgrad"), len(inputs))
    for heatmap in maps:
        assert heatmap.shape == (1, size, size) and heatmap.dtype == np.float32
        assert np.isfinite(heatmap).all() and heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
