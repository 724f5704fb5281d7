"""The shipped model on LiteRT against the same model on TensorFlow (issue 22, items 1 to 3):
P(fractured) within 1e-5 and the fracture map within 1e-4, the same decision except within 1e-5
of the threshold; the default path never imports TensorFlow; the gradient methods still run,
loading TensorFlow on first use; a model without a .tflite, or whose default heatmap needs
gradients, runs on TensorFlow and says so once."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from core import classifier as classifier_module
from core.classifier import LITERT, TENSORFLOW, FractureClassifier
from core.config import MODELS_DIR, PROJECT_DIR
from core.metadata import ModelMetadata
from tests.threads import synthetic_image
from training.config import DEFAULT_DATA_DIR

P_TOLERANCE = 1e-5
MAP_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def on_litert() -> FractureClassifier:
    classifier = FractureClassifier.load()
    if classifier.runtime != LITERT:
        pytest.skip("the shipped model ships no .tflite; run python -m training.litert_export")
    return classifier


@pytest.fixture(scope="module")
def on_tensorflow() -> FractureClassifier:
    return FractureClassifier.load(runtime=TENSORFLOW)


def assert_agree(litert_results, tensorflow_results, threshold: float) -> None:
    for index, (ours, theirs) in enumerate(zip(litert_results, tensorflow_results, strict=True)):
        gap = abs(ours.probability_fractured - theirs.probability_fractured)
        assert gap <= P_TOLERANCE, f"image {index}: P differs by {gap:.2e}"
        map_gap = float(np.abs(ours.heatmap - theirs.heatmap).max())
        assert map_gap <= MAP_TOLERANCE, f"image {index}: the fracture map differs by {map_gap:.2e}"
        if abs(theirs.probability_fractured - threshold) > P_TOLERANCE:
            assert ours.decision(threshold) == theirs.decision(threshold), f"image {index}"
        assert ours.radiograph_check.looks_like_radiograph == theirs.radiograph_check.looks_like_radiograph
        if theirs.radiograph_check.distance is not None:
            assert ours.radiograph_check.distance == pytest.approx(theirs.radiograph_check.distance, rel=1e-4, abs=1e-5)


def test_litert_matches_tensorflow_on_synthetic_images(on_litert, on_tensorflow):
    images = [synthetic_image(index) for index in range(8)]
    heatmap = on_litert.default_heatmap
    assert heatmap == "fracturemap"
    prepared = [on_litert.prepare(data) for data in images]
    assert_agree(on_litert.classify_prepared(prepared, heatmap=heatmap),
                 on_tensorflow.classify_prepared(prepared, heatmap=heatmap), on_litert.thresholds["balanced"])
    # One at a time, as the app and the CLI ask.
    assert_agree([on_litert.classify(images[0], heatmap=heatmap)], [on_tensorflow.classify(images[0], heatmap=heatmap)],
                 on_litert.thresholds["balanced"])


def test_litert_matches_tensorflow_on_the_fracatlas_test_split(on_litert, on_tensorflow):
    labels = DEFAULT_DATA_DIR / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"FracAtlas not found at {DEFAULT_DATA_DIR} (../shared/datasets/fracatlas); "
                    "the parity on its 617 test images needs it")
    with open(labels, newline="") as handle:
        paths = [DEFAULT_DATA_DIR / row["path"] for row in csv.DictReader(handle) if row["split"] == "test"]
    assert len(paths) == 617
    threshold = on_litert.thresholds["balanced"]
    for start in range(0, len(paths), 64):
        prepared = [on_litert.prepare(path) for path in paths[start : start + 64]]
        assert_agree(on_litert.classify_prepared(prepared, heatmap="fracturemap"),
                     on_tensorflow.classify_prepared(prepared, heatmap="fracturemap"), threshold)


NO_TENSORFLOW = """
import sys
from core.classifier import FractureClassifier
classifier = FractureClassifier.load()
result = classifier.classify(sys.argv[1], heatmap=classifier.default_heatmap)
assert result.heatmap is not None and result.heatmap_method == "fracturemap"
assert classifier.explainer.methods[-1] == "fracturemap"
classifier.explainer.explain(result.model_input[None])  # the default map, asked of the explainer
loaded = sorted(name for name in ("tensorflow", "keras", "tf_keras_vis") if name in sys.modules)
print(classifier.runtime, loaded)
"""


def test_the_default_path_never_imports_tensorflow(on_litert, tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(synthetic_image(3))
    done = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, str(path)], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "litert []"


def test_the_gradient_methods_still_run_and_load_tensorflow_on_first_use(on_tensorflow, tmp_path):
    classifier = FractureClassifier.load(runtime=LITERT)  # a fresh one: nothing of TensorFlow built yet
    assert not classifier.explainer.loaded
    data = synthetic_image(5)
    result = classifier.classify(data, heatmap="gradcam")
    assert classifier.explainer.loaded
    expected = on_tensorflow.classify(data, heatmap="gradcam")
    # The verdict stays LiteRT's whatever the method: the same P as without a heatmap.
    assert result.probability_fractured == classifier.classify(data).probability_fractured
    assert result.probability_fractured == pytest.approx(expected.probability_fractured, abs=P_TOLERANCE)
    np.testing.assert_allclose(result.heatmap, expected.heatmap, atol=1e-6)
    layercam = classifier.classify(data, heatmap="layercam")
    assert layercam.probability_fractured == result.probability_fractured
    np.testing.assert_allclose(layercam.heatmap,
                               on_tensorflow.explainer.explain(expected.model_input[None], "layercam")[0], atol=1e-6)
    assert classifier.model.get_layer("probabilities") is not None


def test_fallback_to_tensorflow_is_said_once(caplog, monkeypatch):
    stored = dict(ModelMetadata.parse(json.loads((MODELS_DIR / "metadata.json").read_text())).raw)
    monkeypatch.setattr(classifier_module, "_SAID", set())
    without = ModelMetadata.parse({key: value for key, value in stored.items() if key != "litert"})
    gradients = ModelMetadata.parse({**stored, "litert": {"file": "x.tflite", "sha256": "0" * 64},
                                     "default_heatmap": "gradcam"})
    with caplog.at_level(logging.WARNING, logger="core.classifier"):
        assert classifier_module._choose_runtime(without, "here") == TENSORFLOW
        assert classifier_module._choose_runtime(without, "here") == TENSORFLOW
        assert classifier_module._choose_runtime(gradients, "here") == TENSORFLOW
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "no .tflite" in messages[0] and "needs gradients" in messages[1]
    if "litert" in stored:
        assert classifier_module._choose_runtime(ModelMetadata.parse(stored), "here") == LITERT


def test_an_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="unknown runtime 'onnx'"):
        FractureClassifier.load(runtime="onnx")


def test_on_litert_a_lone_image_runs_one_row_and_equals_any_batch_bit_for_bit(on_litert, monkeypatch):
    prepared = [on_litert.prepare(synthetic_image(index)) for index in range(5)]
    rows_seen = []
    forward = on_litert._forward
    monkeypatch.setattr(on_litert, "_forward", lambda images: rows_seen.append(len(images)) or forward(images))
    alone = [on_litert.classify_prepared([image], heatmap="fracturemap")[0] for image in prepared]
    assert rows_seen == [1] * 5  # no blank second row (core.classifier.MIN_BATCH_ROWS is TensorFlow's)
    for size in (2, 5):
        together = on_litert.classify_prepared(prepared[:size], heatmap="fracturemap")
        for one, batched in zip(alone, together):
            assert one.probability_fractured == batched.probability_fractured
            assert np.array_equal(one.heatmap, batched.heatmap)
            assert one.radiograph_check == batched.radiograph_check
