"""core.export: the SavedModel, reloaded with ``tf.saved_model.load``, gives the classifier's
calibrated P(fractured) (to 1e-6) and its default heatmap (to 1e-5: the shipped model's own
fracture map, or Grad-CAM for a model without one); it carries its preprocessing contract; and the
CLI refuses, with the reason, what it cannot or should not write.

The shipped model is exported once for the module, through the CLI. Synthetic images need no
data set; the FracAtlas check reads ../shared and is skipped, saying why, where it is absent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from core import artifacts
from core.classifier import FractureClassifier
from core.config import CLASS_NAMES, MODELS_DIR
from core.export import (CONTRACT_FILENAME, HEATMAP, INPUT, PROBABILITY, README_FILENAME, SIGNATURE,
                         UINT8_SIGNATURE, ExportError, export_saved_model, main)
from core.heatmaps import METHODS
from core.preprocessing import PreprocessConfig, preprocess
from tests.box_model_fixture import box_classifier, box_model_dir  # noqa: F401
from tests.threads import synthetic_image
from training.config import DEFAULT_DATA_DIR

PROBABILITY_TOLERANCE = 1e-6
HEATMAP_TOLERANCE = 1e-5
FRACATLAS_PER_CLASS = 4


@dataclass(frozen=True)
class ExportRun:
    directory: Path
    exit_code: int
    stdout: str


@pytest.fixture(scope="module")
def export_run(shipped_classifier, tmp_path_factory) -> ExportRun:
    """``python -m core.export --force`` into a folder holding a stale export file and a file of
    the user's own: the one export of the module."""
    directory = tmp_path_factory.mktemp("export") / "fracture" / "1"
    (directory / "variables").mkdir(parents=True)
    (directory / "variables" / "stale.index").write_text("a previous export")
    (directory / "notes.txt").write_text("the user's own file")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exit_code = main(["--output", str(directory), "--force"])
    return ExportRun(directory, exit_code, stdout.getvalue())


@pytest.fixture(scope="module")
def serving(export_run):
    import tensorflow as tf

    assert export_run.exit_code == 0, "the export failed"
    return tf.saved_model.load(str(export_run.directory))


def serve(serving, model_inputs: np.ndarray, signature: str = SIGNATURE) -> dict[str, np.ndarray]:
    import tensorflow as tf

    dtype = tf.uint8 if signature == UINT8_SIGNATURE else tf.float32
    outputs = serving.signatures[signature](**{INPUT: tf.constant(model_inputs, dtype)})
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def assert_same_numbers_as_the_classifier(classifier: FractureClassifier, serving, sources: list[bytes], *,
                                          some_evidence: bool = True) -> None:
    """Each image classified one at a time, as the app and the CLI do, against the SavedModel
    fed the same preprocessed input; with ``some_evidence``, at least one map must not be empty."""
    peaks = []
    for index, source in enumerate(sources):
        result = classifier.classify(source, heatmap=classifier.default_heatmap)
        outputs = serve(serving, result.model_input[np.newaxis])
        assert abs(float(outputs[PROBABILITY][0]) - result.probability_fractured) <= PROBABILITY_TOLERANCE, index
        np.testing.assert_allclose(outputs[HEATMAP][0], result.heatmap, rtol=0, atol=HEATMAP_TOLERANCE,
                                   err_msg=f"image {index}")
        peaks.append(float(result.heatmap.max()))
    if some_evidence:
        assert max(peaks) == pytest.approx(1.0), "every map is empty, so comparing them shows nothing"


def fracatlas_test_images(per_class: int) -> list[bytes]:
    with open(DEFAULT_DATA_DIR / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    chosen = [row for label in CLASS_NAMES for row in [r for r in rows if r["label"] == label][:per_class]]
    return [(DEFAULT_DATA_DIR / row["path"]).read_bytes() for row in chosen]


# --- the numbers ---------------------------------------------------------------------------

def test_saved_model_gives_the_classifiers_probability_and_heatmap_on_synthetic_images(
        shipped_classifier, serving):
    images = [synthetic_image(index) for index in range(4)]
    assert_same_numbers_as_the_classifier(shipped_classifier, serving, images)


@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "labels.csv").is_file(),
                    reason=f"FracAtlas not found at {DEFAULT_DATA_DIR}; this check needs real test radiographs")
def test_saved_model_gives_the_classifiers_probability_and_heatmap_on_fracatlas_test_images(
        shipped_classifier, serving):
    images = fracatlas_test_images(FRACATLAS_PER_CLASS)
    assert_same_numbers_as_the_classifier(shipped_classifier, serving, images)


def test_a_batch_gives_the_in_process_batch_answers(shipped_classifier, serving):
    batch = np.stack([shipped_classifier.classify(synthetic_image(index)).model_input for index in range(4, 10)])
    outputs = serve(serving, batch)
    np.testing.assert_allclose(outputs[PROBABILITY], shipped_classifier.predict_batch(batch), rtol=0,
                               atol=PROBABILITY_TOLERANCE)
    expected_maps = shipped_classifier.explainer.explain(batch, shipped_classifier.default_heatmap)
    np.testing.assert_allclose(outputs[HEATMAP], expected_maps, rtol=0, atol=HEATMAP_TOLERANCE)


def export_and_load(classifier: FractureClassifier, directory: Path):
    import tensorflow as tf

    export_saved_model(classifier, directory)
    return tf.saved_model.load(str(directory)), json.loads((directory / CONTRACT_FILENAME).read_text())


def test_the_export_carries_the_models_default_heatmap_grad_cam_or_its_own_map(
        classifier, box_classifier, tmp_path):
    for name, model in (("gradcam", classifier), ("fracturemap", box_classifier)):
        assert model.default_heatmap == name  # the tiny trained CNN and the tiny box model
        exported, contract = export_and_load(model, tmp_path / name)
        images = [synthetic_image(index) for index in range(3)]
        assert_same_numbers_as_the_classifier(model, exported, images)
        assert contract["signatures"]["outputs"][HEATMAP]["method"] == name
        assert METHODS[name] in (tmp_path / name / README_FILENAME).read_text()


def test_a_default_heatmap_the_export_cannot_trace_is_refused_before_anything_is_written(box_classifier, tmp_path):
    metadata = {**box_classifier.metadata.raw, "default_heatmap": "layercam"}
    with pytest.raises(ValueError, match="'layercam' cannot be exported"):
        export_saved_model(FractureClassifier(box_classifier.model, metadata), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_uint8_float_and_serving_default_signatures_give_the_same_outputs(shipped_classifier, serving):
    batch = np.stack([shipped_classifier.classify(synthetic_image(index)).model_input for index in range(2)])
    as_float = serve(serving, batch)
    for signature in (UINT8_SIGNATURE, "serving_default"):
        outputs = serve(serving, batch, signature)
        for name in (PROBABILITY, HEATMAP):
            np.testing.assert_array_equal(outputs[name], as_float[name], err_msg=f"{signature}: {name}")


def test_signatures_name_their_input_and_outputs(serving, shipped_classifier):
    import tensorflow as tf

    size = shipped_classifier.preprocess_config.image_size
    assert {SIGNATURE, UINT8_SIGNATURE, "serving_default"} <= set(serving.signatures)
    for signature, dtype in ((SIGNATURE, tf.float32), (UINT8_SIGNATURE, tf.uint8)):
        function = serving.signatures[signature]
        _, inputs = function.structured_input_signature
        assert set(inputs) == {INPUT}
        assert inputs[INPUT].dtype == dtype and inputs[INPUT].shape.as_list() == [None, size, size, 1]
        outputs = function.structured_outputs
        assert set(outputs) == {PROBABILITY, HEATMAP}
        assert outputs[PROBABILITY].shape.as_list() == [None] and outputs[PROBABILITY].dtype == tf.float32
        assert outputs[HEATMAP].shape.as_list() == [None, size, size] and outputs[HEATMAP].dtype == tf.float32


@pytest.mark.parametrize("value", [256.0, -1.0, float("nan")])
def test_an_input_outside_the_pixel_range_is_refused_with_the_contract_named(serving, value):
    import tensorflow as tf

    size = serving.signatures[SIGNATURE].structured_input_signature[1][INPUT].shape[1]
    model_input = np.full((1, size, size, 1), 128.0, np.float32)
    model_input[0, 0, 0, 0] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 255\].*preprocessing\.json"):
        serve(serving, model_input)


# --- what travels with it ------------------------------------------------------------------

def test_preprocessing_json_carries_the_shipped_metadata_unrounded(export_run, shipped_classifier):
    contract = json.loads((export_run.directory / CONTRACT_FILENAME).read_text())
    metadata = artifacts.read_metadata_json(MODELS_DIR)
    assert contract["model_version"] == metadata["model_version"]
    assert contract["class_names"] == metadata["class_names"] == list(CLASS_NAMES)
    assert contract["temperature"] == metadata["temperature"]
    assert contract["thresholds"] == metadata["thresholds"]
    assert PreprocessConfig.from_dict(contract["preprocessing"]) == shipped_classifier.preprocess_config
    assert contract["signatures"]["input"]["name"] == INPUT
    assert set(contract["signatures"]["outputs"]) == {PROBABILITY, HEATMAP}


def test_readme_names_the_signature_outputs_thresholds_and_preprocessing(export_run, shipped_classifier):
    readme = (export_run.directory / README_FILENAME).read_text()
    for text in (SIGNATURE, UINT8_SIGNATURE, INPUT, PROBABILITY, HEATMAP, shipped_classifier.version,
                 repr(shipped_classifier.thresholds.resolve("screening")), "CLAHE", "Letterbox"):
        assert text in readme, text


# --- the command line ----------------------------------------------------------------------

def test_cli_with_force_replaces_a_previous_export_and_keeps_other_files(export_run):
    assert export_run.exit_code == 0
    assert (export_run.directory / "saved_model.pb").is_file()
    assert not (export_run.directory / "variables" / "stale.index").exists()
    assert (export_run.directory / "notes.txt").read_text() == "the user's own file"
    assert [path.name for path in export_run.directory.parent.iterdir()] == ["1"]  # no staging folder left
    assert all(name in export_run.stdout for name in (SIGNATURE, PROBABILITY, HEATMAP))


def run_cli(argv, capsys) -> tuple[int, str]:
    exit_code = main([str(arg) for arg in argv])
    return exit_code, capsys.readouterr().err


def test_cli_refuses_a_missing_model_dir_and_creates_nothing(tmp_path, capsys):
    exit_code, error = run_cli(["--model-dir", tmp_path / "no-model", "--output", tmp_path / "out"], capsys)
    assert exit_code == 2
    assert "no-model" in error and "no such directory" in error
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_model_dir_without_a_trained_model(tmp_path, capsys):
    (tmp_path / "empty-model").mkdir()
    exit_code, error = run_cli(["--model-dir", tmp_path / "empty-model", "--output", tmp_path / "out"], capsys)
    assert exit_code == 2 and "metadata.json" in error


def test_cli_refuses_a_non_empty_output_without_force_and_leaves_it_alone(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    exit_code, error = run_cli(["--output", tmp_path / "out"], capsys)
    assert exit_code == 2
    assert "not empty" in error and "keep.txt" in error and "--force" in error
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_cli_refuses_an_output_that_is_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    exit_code, error = run_cli(["--output", tmp_path / "taken"], capsys)
    assert exit_code == 2 and "is not a directory" in error


def test_cli_refuses_an_output_below_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    exit_code, error = run_cli(["--output", tmp_path / "taken" / "fracture" / "1"], capsys)
    assert exit_code == 2 and "cannot be created" in error and "taken" in error


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into read-only folders, so there is nothing to refuse")
def test_cli_refuses_an_unwritable_output(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        exit_code, error = run_cli(["--output", locked / "out"], capsys)
    finally:
        locked.chmod(0o700)
    assert exit_code == 2 and "not writable" in error


def test_a_model_without_a_cam_layer_is_refused_before_anything_is_written(shipped_classifier, tmp_path):
    metadata = {key: value for key, value in shipped_classifier.metadata.raw.items() if key != "cam_layer"}
    without_cam = FractureClassifier(shipped_classifier.model, metadata)
    with pytest.raises(ValueError, match="cam_layer"):
        export_saved_model(without_cam, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_output_check_is_a_typed_error(shipped_classifier, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_saved_model(shipped_classifier, tmp_path / "out")


def readme_recipe(grey: np.ndarray, contract: dict) -> np.ndarray:
    """Steps 2-5 of the exported README, written from it and ``preprocessing.json`` alone: the
    oracle that the documented contract is the code's."""
    import cv2

    settings, constants = contract["preprocessing"], contract["preprocessing_constants"]
    size, long_side = settings["image_size"], constants["working_long_side"]

    def resized(image, height, width):
        smaller = height * width < image.shape[0] * image.shape[1]
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if smaller else cv2.INTER_LINEAR)

    u8 = np.round(grey * 255).astype(np.uint8)
    if max(u8.shape) > long_side:
        scale = long_side / max(u8.shape)
        u8 = cv2.resize(u8, (max(1, round(u8.shape[1] * scale)), max(1, round(u8.shape[0] * scale))),
                        interpolation=cv2.INTER_AREA)
    if settings["contrast"] == "clahe":
        low, high = np.percentile(u8, constants["stretch_percentiles"])
        if high > low:
            u8 = np.clip((u8.astype(np.float32) - low) * (255 / (high - low)), 0, 255).astype(np.uint8)
        u8 = cv2.createCLAHE(constants["clahe_clip_limit"], tuple(constants["clahe_tiles"])).apply(u8)
    assert settings["aspect"] == "pad", "this oracle covers the shipped letterbox only"
    scale = size / max(u8.shape)
    new_height, new_width = (max(1, round(side * scale)) for side in u8.shape)
    square = np.zeros((size, size), np.uint8)
    top, left = (size - new_height) // 2, (size - new_width) // 2
    square[top : top + new_height, left : left + new_width] = resized(u8, new_height, new_width)
    return square[:, :, np.newaxis]


@pytest.mark.parametrize("shape", [(454, 373), (1280, 905), (300, 1100), (90, 60)])
def test_the_readme_recipe_reproduces_the_model_input_bit_for_bit(export_run, shipped_classifier, shape):
    contract = json.loads((export_run.directory / CONTRACT_FILENAME).read_text())
    rng = np.random.default_rng(sum(shape))
    grey = (rng.random(shape, np.float32) * 0.4 + np.linspace(0.1, 0.5, shape[1], dtype=np.float32)).clip(0, 1)
    expected = preprocess(grey, shipped_classifier.preprocess_config)
    np.testing.assert_array_equal(readme_recipe(grey, contract), expected)
