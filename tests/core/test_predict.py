"""Tests for the prediction CLI (core.predict) with the tiny trained model."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from core.config import METADATA_FILENAME
from core.predict import main

RESULT_KEYS = {"path", "probability_fractured", "decision", "threshold", "looks_like_radiograph"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_paths, synth):
    """Two readable images (one square, one wide) and one garbage file, as strings."""
    folder = tmp_path_factory.mktemp("predict-inputs")
    square = shutil.copy(sample_paths[0], folder / "square.png")
    wide = synth.write_png(folder / "wide.png", synth.xray(True, seed=7, shape=(30, 70)))
    garbage = folder / "garbage.png"
    garbage.write_bytes(b"<html>not an image</html>")
    return str(square), str(garbage), str(wide)


@pytest.fixture(scope="module")
def metadata(trained_model):
    return json.loads((trained_model.directory / METADATA_FILENAME).read_text())


def run_json(capsys, argv):
    code = main(argv + ["--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, [json.loads(line) for line in lines]


def test_json_lines_in_input_order_with_errors(capsys, trained_model, classifier, inputs, metadata):
    square, garbage, wide = inputs
    code, results = run_json(capsys, [square, garbage, wide, "--model-dir", str(trained_model.directory)])
    assert code == 1
    assert [result["path"] for result in results] == [square, garbage, wide]
    assert set(results[1]) == {"path", "error"}
    assert "expected an image file" in results[1]["error"]
    for result, path in ((results[0], square), (results[2], wide)):
        assert set(result) == RESULT_KEYS
        assert result["threshold"] == round(metadata["thresholds"]["balanced"], 6)  # the default
        probability = result["probability_fractured"]
        assert probability == pytest.approx(classifier.classify(path).probability_fractured, abs=1e-6)
        assert result["decision"] == ("fractured" if probability >= result["threshold"] else "not_fractured")


def test_all_readable_exits_zero(capsys, trained_model, inputs):
    square, _, wide = inputs
    code, results = run_json(capsys, [wide, square, "--model-dir", str(trained_model.directory)])
    assert code == 0
    assert [result["path"] for result in results] == [wide, square]
    assert all(set(result) == RESULT_KEYS for result in results)


@pytest.mark.parametrize("preset", ["screening", "specific"])
def test_named_threshold_uses_the_metadata_value(capsys, trained_model, inputs, metadata, preset):
    code, results = run_json(capsys, [inputs[0], "--threshold", preset,
                                      "--model-dir", str(trained_model.directory)])
    assert code == 0
    assert results[0]["threshold"] == round(metadata["thresholds"][preset], 6)


@pytest.mark.parametrize("threshold, decision", [("0", "fractured"), ("1", "not_fractured")])
def test_numeric_threshold(capsys, trained_model, inputs, threshold, decision):
    code, results = run_json(capsys, [inputs[0], "--threshold", threshold,
                                      "--model-dir", str(trained_model.directory)])
    assert code == 0
    assert results[0]["threshold"] == float(threshold)
    # P(fractured) is strictly between 0 and 1 for this model, so the extremes decide the verdict.
    assert 0.0 < results[0]["probability_fractured"] < 1.0
    assert results[0]["decision"] == decision


@pytest.mark.parametrize("threshold", ["2", "-0.5", "lenient"])
def test_bad_threshold_is_a_usage_error(capsys, trained_model, inputs, threshold):
    with pytest.raises(SystemExit) as exit_info:
        main([inputs[0], "--threshold", threshold, "--model-dir", str(trained_model.directory)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "threshold" in captured.err and captured.out == ""


def test_plain_text_output_and_errors_on_stderr(capsys, trained_model, inputs):
    square, garbage, _ = inputs
    code = main([square, garbage, "--model-dir", str(trained_model.directory)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith(f"{square}: P(fractured) = ") and "->" in captured.out
    assert garbage not in captured.out
    assert captured.err.startswith(f"{garbage}: error: expected an image file")


def test_heatmap_dir_gets_one_overlay_per_readable_image(capsys, tmp_path, trained_model, inputs):
    square, garbage, wide = inputs
    out = tmp_path / "heatmaps"
    code = main([square, garbage, wide, "--heatmap-dir", str(out), "--json",
                 "--model-dir", str(trained_model.directory)])
    capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["square_gradcam.png", "wide_gradcam.png"]
    for name, (width, height) in (("square", Image.open(square).size), ("wide", (70, 30))):
        with Image.open(out / f"{name}_gradcam.png") as overlay:
            assert overlay.mode == "RGB" and overlay.size == (width, height)
            assert np.asarray(overlay).std() > 0


def test_missing_model_is_reported(capsys, tmp_path, trained_model, inputs):
    assert main([inputs[0], "--model-dir", str(tmp_path)]) == 2
    assert "no trained model" in capsys.readouterr().err
    shutil.copy(trained_model.directory / METADATA_FILENAME, tmp_path)  # metadata without the model
    assert main([inputs[0], "--model-dir", str(tmp_path)]) == 2
    assert "fracture_cnn.keras" in capsys.readouterr().err


def test_heatmap_dir_runs_one_pass_per_image_and_keeps_the_json(capsys, tmp_path, trained_model, inputs,
                                                                monkeypatch):
    from core.classifier import FractureClassifier
    from core.heatmaps import HeatmapExplainer

    square, _, wide = inputs
    argv = [square, wide, "--model-dir", str(trained_model.directory)]
    _, plain = run_json(capsys, argv)
    passes = []
    for owner, name in ((FractureClassifier, "_raw_and_summaries"), (HeatmapExplainer, "grad_cam_pass")):
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda self, *args, _original=original, _name=name, **kwargs:
                            passes.append(_name) or _original(self, *args, **kwargs))
    _, explained = run_json(capsys, argv + ["--heatmap-dir", str(tmp_path / "maps")])
    assert passes == ["grad_cam_pass", "grad_cam_pass"]  # one network pass per image, verdict and map
    for before, after in zip(plain, explained):
        assert after["decision"] == before["decision"] and after["threshold"] == before["threshold"]
        assert after["probability_fractured"] == pytest.approx(before["probability_fractured"], abs=2e-6)


def test_heatmap_png_is_the_overlay_of_the_classify_result(capsys, tmp_path, trained_model, classifier, inputs):
    from core.overlay import overlay_on_original

    wide = inputs[2]
    assert main([wide, "--heatmap-dir", str(tmp_path), "--model-dir", str(trained_model.directory)]) == 0
    capsys.readouterr()
    result = classifier.classify(wide, heatmap="gradcam")
    expected = overlay_on_original(result.image, result.heatmap, classifier.preprocess_config)
    written = np.asarray(Image.open(tmp_path / "wide_gradcam.png"))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_heatmaps_of_same_named_files_do_not_overwrite(capsys, tmp_path, trained_model, inputs):
    square = inputs[0]
    other = tmp_path / "elsewhere" / "square.png"
    other.parent.mkdir()
    shutil.copy(square, other)
    out = tmp_path / "heatmaps"
    assert main([square, str(other), "--heatmap-dir", str(out),
                 "--model-dir", str(trained_model.directory)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["square_2_gradcam.png", "square_gradcam.png"]


def test_a_colour_photo_is_marked_unreliable_with_the_shipped_model(capsys, tmp_path):
    from sklearn.datasets import load_sample_image
    from PIL import Image

    photo = tmp_path / "holiday.jpg"
    Image.fromarray(load_sample_image("china.jpg")).save(photo)
    code, results = run_json(capsys, [str(photo)])
    assert code == 0
    assert results[0]["looks_like_radiograph"] is False
    assert any("colour image" in reason for reason in results[0]["unreliable_because"])
    assert main([str(photo)]) == 0
    assert "does not look like a radiograph" in capsys.readouterr().out
