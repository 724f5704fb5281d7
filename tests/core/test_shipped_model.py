"""The model shipped in models/: it loads on a fresh machine, and its written figures are true.

Quality checks read the FracAtlas images from ../shared; they are skipped, with the reason,
where that folder is absent.
"""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from core.config import METRICS_FILENAME, MODELS_DIR, PROBABILITIES_FILENAME
from training.data import load_arrays, load_index, split_hash
from core.classifier import FractureClassifier
from core.metrics import operating_point
from training.config import DEFAULT_DATA_DIR

needs_fracatlas = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "labels.csv").is_file(),
    reason=f"FracAtlas not found at {DEFAULT_DATA_DIR}; quality checks need the real images",
)


@pytest.fixture(scope="module")
def classifier():
    return FractureClassifier.load(MODELS_DIR)


@pytest.fixture(scope="module")
def metrics():
    return json.loads((MODELS_DIR / METRICS_FILENAME).read_text())


@pytest.fixture(scope="module")
def stored_probabilities():
    with open(MODELS_DIR / PROBABILITIES_FILENAME, newline="") as handle:
        return list(csv.DictReader(handle))


def _split_arrays(rows, split):
    members = [row for row in rows if row["split"] == split]
    labels = np.array([int(row["label"]) for row in members])
    probabilities = np.array([float(row["probability_fractured"]) for row in members])
    return members, labels, probabilities


def test_shipped_model_classifies_an_upload_without_any_data_set(classifier):
    pixels = np.random.default_rng(0).integers(0, 255, (454, 373), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    result = classifier.classify(buffer.getvalue())
    assert 0.0 <= result.probability_fractured <= 1.0
    size = classifier.metadata.input_size
    assert classifier.model.input_shape == (None, size, size, 1)
    assert set(classifier.thresholds) == {"screening", "balanced", "specific"}


def test_stored_probabilities_cover_val_and_test_once(stored_probabilities, metrics):
    for split in ("val", "test"):
        members, labels, _ = _split_arrays(stored_probabilities, split)
        assert len(members) == metrics["splits"][split]["n"]
        assert int(labels.sum()) == metrics["splits"][split]["n_positive"]
    ids = [row["image_id"] for row in stored_probabilities]
    assert len(ids) == len(set(ids))


def test_thresholds_meet_their_definitions_on_val(stored_probabilities, classifier):
    _, labels, probabilities = _split_arrays(stored_probabilities, "val")
    thresholds = classifier.thresholds
    assert operating_point(labels, probabilities, thresholds["screening"]).sensitivity >= 0.90
    assert operating_point(labels, probabilities, thresholds["specific"]).specificity >= 0.95

    def youden(threshold):
        point = operating_point(labels, probabilities, threshold)
        return point.sensitivity + point.specificity - 1

    best_possible = max(youden(score) for score in np.unique(probabilities))
    assert youden(thresholds["balanced"]) == pytest.approx(best_possible, abs=1e-9)


def test_metrics_file_agrees_with_stored_probabilities(stored_probabilities, metrics):
    for split in ("val", "test"):
        _, labels, probabilities = _split_arrays(stored_probabilities, split)
        written = metrics["splits"][split]["auroc"]["auroc"]
        assert roc_auc_score(labels, probabilities) == pytest.approx(written, abs=1e-4)


@needs_fracatlas
def test_shipped_model_keeps_its_test_auroc(classifier, metrics, tmp_path):
    samples = load_index(DEFAULT_DATA_DIR)
    assert split_hash(samples) == classifier.metadata.split_hash
    test_samples = [sample for sample in samples if sample.split == "test"]
    images, labels = load_arrays(test_samples, classifier.preprocess_config, cache_dir=tmp_path)
    probabilities = classifier.predict_batch(images)
    auroc = roc_auc_score(labels, probabilities)
    assert auroc == pytest.approx(metrics["splits"]["test"]["auroc"]["auroc"], abs=0.005)


@needs_fracatlas
def test_shipped_models_default_heatmap_points_as_its_metrics_say(classifier):
    """The pointing game of the default heatmap on the test fractures, recomputed through the app's
    classify path, is the figure the app's caption quotes (``metrics.json["localisation"]``)."""
    from core.overlay import heatmap_to_image
    from training.localisation import load_boxes, score_heatmap

    from core.artifacts import load_metrics

    stored = load_metrics().pointing(classifier.default_heatmap)
    assert stored is not None and stored.model_version == classifier.version
    boxes = load_boxes(DEFAULT_DATA_DIR)
    fractured = [sample for sample in load_index(DEFAULT_DATA_DIR)
                 if sample.split == stored.split and sample.label == 1 and sample.image_id in boxes]
    hits = 0
    for sample in fractured:
        result = classifier.classify(sample.path, heatmap=classifier.default_heatmap)
        heatmap = heatmap_to_image(result.heatmap, result.source_shape, classifier.preprocess_config)
        hits += score_heatmap(heatmap, boxes[sample.image_id])["hit"]
    assert (hits, len(fractured)) == (stored.peak_inside_box, stored.n_images)
