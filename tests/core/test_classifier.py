"""core.classifier with the tiny trained model: inputs, typed results, loading, heatmaps, threads."""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core.config import METADATA_FILENAME
from core.imaging import ImageReadError, read_image
from core.classifier import FractureClassifier
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
    assert result.source_shape == image.shape
    np.testing.assert_array_equal(result.model_input, preprocess(image, classifier.preprocess_config))
    assert result.model_input.dtype == np.uint8


def test_classify_agrees_with_predict_batch(classifier, sample_paths):
    stack = np.stack([classifier.classify(path).model_input for path in sample_paths])
    batch = classifier.predict_batch(stack)
    single = [classifier.classify(path).probability_fractured for path in sample_paths]
    np.testing.assert_allclose(single, batch, atol=1e-6)
    assert classifier.predict_batch(stack[:0]).shape == (0,)


def test_unreadable_input_raises_image_read_error(classifier, tmp_path):
    with pytest.raises(ImageReadError):
        classifier.classify(b"%PDF-1.4 definitely not an x-ray")
    with pytest.raises(ImageReadError, match="does not exist"):
        classifier.classify(tmp_path / "missing.png")


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


def test_warm_up_leaves_predictions_unchanged(classifier, synth):
    batch = np.stack([synth.xray(True, 7)[:32, :32, None], synth.xray(False, 8)[:32, :32, None]])
    before = classifier.predict_batch(batch)
    classifier.warm_up()
    np.testing.assert_array_equal(classifier.predict_batch(batch), before)


def test_warm_up_traces_only_the_pass_it_is_asked_for(trained_model, sample_paths):
    fresh = FractureClassifier.load(trained_model.directory)
    fresh.warm_up(heatmap="gradcam")
    # Private passes, inspected on purpose: the point is which tf.function was traced at load.
    assert fresh.explainer._grad_cam.experimental_get_tracing_count() == 1
    assert fresh._forward.experimental_get_tracing_count() == 0
    fresh.classify(sample_paths[0], heatmap="gradcam")
    assert fresh.explainer._grad_cam.experimental_get_tracing_count() == 1  # no retrace on a real image
    fresh.classify(sample_paths[0], heatmap="gradcam", class_index=0)
    assert fresh.explainer._grad_cam.experimental_get_tracing_count() == 1  # the class is an input, not a retrace
    fresh.warm_up(heatmap=None)
    assert fresh._forward.experimental_get_tracing_count() == 1


def test_one_pass_verdict_and_heatmap_match_the_separate_calls(classifier, sample_paths):
    for path in sample_paths[:3]:
        plain = classifier.classify(path)
        explained = classifier.classify(path, heatmap="gradcam")
        assert plain.heatmap is None and plain.heatmap_method is None
        assert explained.heatmap_method == "gradcam"
        assert explained.probability_fractured == pytest.approx(plain.probability_fractured, abs=1e-6)
        assert explained.radiograph_check.distance == pytest.approx(plain.radiograph_check.distance, abs=1e-5)
        expected = classifier.explainer.explain(plain.model_input[None], "gradcam")[0]
        assert explained.heatmap.shape == expected.shape
        np.testing.assert_allclose(explained.heatmap, expected, atol=1e-5)
        assert 0.0 <= explained.heatmap.min() and explained.heatmap.max() <= 1.0


def test_classify_with_another_method_runs_that_method(classifier, sample_paths):
    result = classifier.classify(sample_paths[0], heatmap="layercam")
    expected = classifier.explainer.explain(result.model_input[None], "layercam")[0]
    assert result.heatmap_method == "layercam"
    np.testing.assert_allclose(result.heatmap, expected, atol=1e-6)


def test_explaining_the_other_class_gives_another_map(classifier, sample_paths):
    fractured = classifier.classify(sample_paths[0], heatmap="gradcam")
    normal = classifier.classify(sample_paths[0], heatmap="gradcam", class_index=0)
    assert normal.probability_fractured == fractured.probability_fractured
    assert not np.allclose(normal.heatmap, fractured.heatmap)


def test_unknown_heatmap_method_is_rejected_before_reading(classifier):
    with pytest.raises(ValueError, match="unknown heatmap method 'occlusion'"):
        classifier.classify(b"not even an image", heatmap="occlusion")


def test_result_decides_with_the_threshold_rule(classifier, sample_paths):
    result = classifier.classify(sample_paths[0])
    p = result.probability_fractured
    assert result.decision(p) == "fractured"
    assert result.decision(np.nextafter(p, 1.0)) == "not_fractured"


def test_display_copy_keeps_the_source_shape(classifier, synth, tmp_path):
    path = synth.write_png(tmp_path / "wide.png", np.tile(synth.xray(True, 3), (20, 40)))
    result = classifier.classify(path, heatmap="gradcam")
    shown = result.for_display()
    assert max(shown.image.shape) == 800 and shown.source_shape == result.source_shape == (960, 1920)
    assert shown.probability_fractured == result.probability_fractured


def test_explaining_needs_a_cam_layer(classifier, sample_paths):
    metadata = {key: value for key, value in classifier.metadata.raw.items() if key != "cam_layer"}
    without = FractureClassifier(classifier.model, metadata)
    with pytest.raises(ValueError, match="cam_layer"):
        without.classify(sample_paths[0], heatmap="gradcam")


# --- A box-supervised model: its own map is the default heatmap, from the verdict's own pass ----

def bar_classifier(classifier, default_heatmap: str | None) -> FractureClassifier:
    from tests.core.test_heatmaps import SIZE, bar_box_model

    metadata = {**classifier.metadata.raw, "preprocessing": {"image_size": SIZE, "aspect": "pad", "contrast": "none"}}
    if default_heatmap is None:
        metadata.pop("default_heatmap", None)
    else:
        metadata["default_heatmap"] = default_heatmap
    return FractureClassifier(bar_box_model(), metadata)


def bar_png(synth, tmp_path, top: int, left: int):
    image = np.full((64, 64), 20, np.uint8)
    image[2 * top : 2 * top + 4, 2 * left : 2 * left + 16] = 255
    return synth.write_png(tmp_path / f"bar-{top}-{left}.png", image)


def test_the_default_heatmap_comes_from_the_models_metadata(classifier):
    assert bar_classifier(classifier, "fracturemap").default_heatmap == "fracturemap"
    assert bar_classifier(classifier, None).default_heatmap == "gradcam"  # models trained before the map
    with pytest.raises(ValueError, match="unknown heatmap method 'peak'"):
        bar_classifier(classifier, "peak")


def test_the_own_map_from_the_verdicts_pass_equals_the_explainers(classifier, synth, tmp_path):
    boxed = bar_classifier(classifier, "fracturemap")
    path = bar_png(synth, tmp_path, 4, 20)
    plain = boxed.classify(path)
    mapped = boxed.classify(path, heatmap="fracturemap")
    assert mapped.heatmap_method == "fracturemap"
    assert mapped.probability_fractured == plain.probability_fractured > 0.5
    np.testing.assert_allclose(mapped.heatmap, boxed.explainer.explain(plain.model_input[None], "fracturemap")[0],
                               atol=1e-6)
    row, col = np.unravel_index(np.argmax(mapped.heatmap), mapped.heatmap.shape)
    assert 4 <= row < 6 and 20 <= col < 28  # the bar, on the 32 px model input
    against = boxed.classify(path, heatmap="fracturemap", class_index=0).heatmap
    assert against[4:6, 22:26].max() < 0.5 * against.max()  # the bar argues against "not fractured"


def test_warm_up_without_a_method_traces_the_models_default(classifier):
    boxed = bar_classifier(classifier, "fracturemap")
    boxed.warm_up()
    assert boxed._forward.experimental_get_tracing_count() == 1  # the map comes from the verdict's pass
    assert boxed.explainer._grad_cam.experimental_get_tracing_count() == 0
