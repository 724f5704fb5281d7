"""Tests for core.inference with the tiny trained model: inputs, thresholds, loading, threads."""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core.config import METADATA_FILENAME, THRESHOLD_NAMES
from core.imaging import ImageReadError, read_image
from core.inference import FractureClassifier
from core.preprocessing import preprocess


def test_bytes_and_path_give_the_same_result(classifier, sample_paths):
    for path in sample_paths[:2]:
        from_path = classifier.classify(path)
        from_str = classifier.classify(str(path))
        from_bytes = classifier.classify(path.read_bytes())
        assert from_bytes.probability_fractured == from_path.probability_fractured
        assert from_str.probability_fractured == from_path.probability_fractured
        np.testing.assert_array_equal(from_bytes.model_input, from_path.model_input)
        assert 0.0 <= from_path.probability_fractured <= 1.0


def test_classification_carries_what_the_network_saw(classifier, sample_paths):
    result = classifier.classify(sample_paths[0])
    image = read_image(sample_paths[0])
    np.testing.assert_array_equal(result.image, image)
    np.testing.assert_array_equal(result.model_input, preprocess(image, classifier.preprocess_config))
    assert result.model_input.dtype == np.uint8


def test_classify_agrees_with_predict_batch(classifier, sample_paths):
    stack = np.stack([classifier.prepare(path)[1] for path in sample_paths])
    batch = classifier.predict_batch(stack)
    single = [classifier.classify(path).probability_fractured for path in sample_paths]
    np.testing.assert_allclose(single, batch, atol=1e-6)
    assert classifier.predict_batch(stack[:0]).shape == (0,)


def test_unreadable_input_raises_image_read_error(classifier, tmp_path):
    with pytest.raises(ImageReadError):
        classifier.classify(b"%PDF-1.4 definitely not an x-ray")
    with pytest.raises(ImageReadError, match="does not exist"):
        classifier.classify(tmp_path / "missing.png")


def test_resolve_threshold_presets_and_numbers(classifier, trained_model):
    metadata = json.loads((trained_model.directory / METADATA_FILENAME).read_text())
    for name in THRESHOLD_NAMES:
        assert classifier.resolve_threshold(name) == metadata["thresholds"][name]
    assert classifier.resolve_threshold(0.3) == 0.3
    assert classifier.resolve_threshold("0.25") == 0.25
    assert classifier.resolve_threshold(0) == 0.0
    assert classifier.resolve_threshold("1") == 1.0


@pytest.mark.parametrize("threshold, message", [
    ("nonsense", "unknown threshold 'nonsense'; valid: a number in [0, 1] or one of "
                 + ", ".join(THRESHOLD_NAMES)),
    (1.5, "threshold must be in [0, 1]; got 1.5"),
    ("-0.1", "threshold must be in [0, 1]; got -0.1"),
    (float("nan"), "threshold must be in [0, 1]"),
    (None, "unknown threshold None"),
])
def test_resolve_threshold_errors(classifier, threshold, message):
    with pytest.raises(ValueError) as error:
        classifier.resolve_threshold(threshold)
    assert message in str(error.value)


def test_load_from_an_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing metadata.json"):
        FractureClassifier.load(tmp_path)


def test_load_with_the_model_file_missing(trained_model, tmp_path):
    shutil.copy(trained_model.directory / METADATA_FILENAME, tmp_path)
    with pytest.raises(FileNotFoundError, match="fracture_cnn.keras"):
        FractureClassifier.load(tmp_path)


def test_concurrent_predictions_equal_sequential(classifier, folder_dataset):
    paths = sorted(folder_dataset.rglob("*.png"))[::4]  # 14 images of both classes
    sequential = [classifier.classify(path).probability_fractured for path in paths]
    jobs = paths * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        concurrent = list(pool.map(lambda path: classifier.classify(path).probability_fractured, jobs))
    assert concurrent == sequential * 3
    assert len(set(sequential)) > 1  # the check means something only if images differ


def test_verdict_report_follows_the_threshold_rule():
    from core.inference import verdict_report

    report = verdict_report("a.png", 0.3, 0.3, method="gradcam", model_version="v1")
    assert report == {"file_name": "a.png", "probability_fractured": 0.3, "threshold": 0.3,
                      "decision": "fractured", "verdict": "Fracture suspected",
                      "method": "gradcam", "model_version": "v1"}
    assert verdict_report("a.png", 0.29, 0.3, method="gradcam", model_version="v1")["verdict"] == \
        "No fracture detected"


def test_results_csv_quotes_names_and_leaves_unreadable_blank():
    import csv
    import io

    from core.inference import results_csv

    text = results_csv([("a, b.png", 0.25, "Fracture suspected"), ("x.png", None, "unreadable: bad")], 0.2)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["file", "probability_fractured", "verdict", "threshold"],
                    ["a, b.png", "0.250000", "Fracture suspected", "0.200000"],
                    ["x.png", "", "unreadable: bad", "0.200000"]]


def test_warm_up_leaves_predictions_unchanged(classifier, synth):
    batch = np.stack([synth.xray(True, 7)[:32, :32, None], synth.xray(False, 8)[:32, :32, None]])
    before = classifier.predict_batch(batch)
    classifier.warm_up()
    np.testing.assert_array_equal(classifier.predict_batch(batch), before)


def test_warm_up_for_the_app_traces_only_the_explained_pass(trained_model, sample_paths):
    fresh = FractureClassifier.load(trained_model.directory)
    fresh.warm_up(explained_only=True)
    # Private passes, inspected on purpose: the point is which tf.function was traced at load.
    assert fresh._forward_explained.experimental_get_tracing_count() == 1
    assert fresh._forward.experimental_get_tracing_count() == 0
    fresh.classify(sample_paths[0], explain=True)
    assert fresh._forward_explained.experimental_get_tracing_count() == 1  # no retrace on a real image
    fresh.warm_up()
    assert fresh._forward.experimental_get_tracing_count() == 1


def test_one_pass_verdict_and_heatmap_match_the_separate_calls(classifier, sample_paths):
    from core.explain import GradCam

    gradcam = GradCam(classifier.model, classifier.metadata["cam_layer"])
    for path in sample_paths[:3]:
        plain = classifier.classify(path)
        explained = classifier.classify(path, explain=True)
        assert plain.heatmap is None
        assert explained.probability_fractured == pytest.approx(plain.probability_fractured, abs=1e-6)
        assert explained.radiograph_check == plain.radiograph_check or \
            explained.radiograph_check.distance == pytest.approx(plain.radiograph_check.distance, abs=1e-5)
        expected = gradcam(plain.model_input[None])[0]
        assert explained.heatmap.shape == expected.shape
        np.testing.assert_allclose(explained.heatmap, expected, atol=1e-5)
        assert 0.0 <= explained.heatmap.min() and explained.heatmap.max() <= 1.0


def test_explaining_needs_a_cam_layer(classifier, sample_paths):
    metadata = {key: value for key, value in classifier.metadata.items() if key != "cam_layer"}
    without = FractureClassifier(classifier.model, metadata)
    with pytest.raises(ValueError, match="cam_layer"):
        without.classify(sample_paths[0], explain=True)
