"""Tests for training.train_v1 (Model v1): a one-epoch run on tiny synthetic data sets and its artefacts."""

import csv
import json
from pathlib import Path
import math

import numpy as np
import pytest

from training import train_v1
from core.config import CLASS_NAMES, HISTORY_FILENAME, METADATA_FILENAME, MODEL_FILENAME, REFERENCE_FILENAME
from training.data import load_arrays, load_index, split_hash
from core.classifier import FractureClassifier
from training.metrics import choose_thresholds
from core.litert import LITERT_SUFFIX
from training.model import CAM_LAYER
from core.thresholds import PRESET_NAMES


@pytest.fixture(scope="module")
def metadata(trained_model):
    assert trained_model.returncode == 0
    return json.loads((trained_model.directory / METADATA_FILENAME).read_text())


def test_training_succeeds_and_writes_the_model_files(trained_model, synth):
    assert trained_model.returncode == 0
    litert_file = Path(MODEL_FILENAME).with_suffix(LITERT_SUFFIX).name  # the serving twin of the .keras
    assert trained_model.files_written == tuple(sorted([HISTORY_FILENAME, METADATA_FILENAME, MODEL_FILENAME,
                                                        REFERENCE_FILENAME, litert_file]))


def test_written_model_loads_and_predicts(trained_model, synth):
    classifier = FractureClassifier.load(trained_model.directory)
    size = synth.model_px
    assert classifier.model.input_shape == (None, size, size, 1)
    samples = [s for s in load_index(trained_model.data_dir) if s.split == "test"]
    images, _ = load_arrays(samples, classifier.preprocess_config)
    probabilities = classifier.predict_batch(images)
    assert probabilities.shape == (len(samples),)
    assert np.isfinite(probabilities).all()
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_metadata(trained_model, metadata, synth):
    counts = synth.folder_counts
    assert metadata["input_size"] == synth.model_px
    assert metadata["class_names"] == list(CLASS_NAMES)
    assert metadata["preprocessing"] == {"image_size": synth.model_px, "aspect": "pad", "contrast": "clahe"}
    assert metadata["model_file"] == MODEL_FILENAME
    assert metadata["cam_layer"] == CAM_LAYER
    assert set(metadata["thresholds"]) == set(PRESET_NAMES)
    assert all(0.0 <= value <= 1.0 for value in metadata["thresholds"].values())
    assert math.isfinite(metadata["temperature"]) and metadata["temperature"] > 0
    assert metadata["data"]["split_hash"] == split_hash(load_index(trained_model.data_dir))
    assert metadata["data"]["n_train"] == 2 * counts["train"]
    assert metadata["data"]["n_val"] == 2 * counts["val"]
    training = metadata["training"]
    assert training["epochs"] == 1 and training["epochs_run"] == 1 and training["best_epoch"] == 1
    assert 0.0 <= training["best_val_auroc"] <= 1.0
    assert 0.0 < training["fit_seconds"] <= training["total_seconds"] <= trained_model.seconds + 1


def test_thresholds_were_chosen_on_calibrated_val_probabilities(trained_model, metadata):
    classifier = FractureClassifier.load(trained_model.directory)
    val = [s for s in load_index(trained_model.data_dir) if s.split == "val"]
    images, labels = load_arrays(val, classifier.preprocess_config)
    expected = choose_thresholds(labels, classifier.predict_batch(images))
    assert metadata["thresholds"] == pytest.approx(expected, abs=1e-5)


def test_history_has_one_row_per_epoch(trained_model, metadata):
    with open(trained_model.directory / HISTORY_FILENAME, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == {"epoch", "loss", "val_auroc", "seconds"}
    assert int(row["epoch"]) == 1
    assert math.isfinite(float(row["loss"])) and float(row["loss"]) > 0
    assert float(row["val_auroc"]) == pytest.approx(metadata["training"]["best_val_auroc"], abs=1e-5)


@pytest.mark.parametrize("flag", ["--epochs", "--batch-size"])
def test_non_positive_epochs_or_batch_size_is_a_usage_error(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as exit_info:
        train_v1.main(["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), flag, "0"])
    assert exit_info.value.code == 2
    assert "--epochs and --batch-size must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_data_directory_is_reported(tmp_path, capsys):
    code = train_v1.main(["--data-dir", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "out")])
    assert code == 2
    assert "data directory not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_csv_layout_with_max_per_class(tmp_path, synth):
    data_dir = synth.csv_dataset(tmp_path / "data", {"train": 6, "val": 5, "test": 2})
    out = tmp_path / "model"
    code = train_v1.main(["--data-dir", str(data_dir), "--output-dir", str(out), "--epochs", "1",
                          "--image-size", "16", "--batch-size", "8", "--max-per-class", "4",
                          "--augment", "strong", "--contrast", "none", "--aspect", "stretch"])
    assert code == 0
    metadata = json.loads((out / METADATA_FILENAME).read_text())
    assert metadata["data"]["n_train"] == 8 and metadata["data"]["n_val"] == 8
    assert metadata["training"]["max_per_class"] == 4
    assert metadata["preprocessing"] == {"image_size": 16, "aspect": "stretch", "contrast": "none"}
    # The hash covers exactly the images used: the first 4 per (split, class) in index order.
    kept = []
    for split in ("train", "val", "test"):
        for label in (0, 1):
            kept += [s for s in load_index(data_dir) if s.split == split and s.label == label][:4]
    assert metadata["data"]["split_hash"] == split_hash(kept)
    assert metadata["data"]["split_hash"] != split_hash(load_index(data_dir))
    classifier = FractureClassifier.load(out)
    probabilities = classifier.predict_batch(np.zeros((2, 16, 16, 1), np.uint8))
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
