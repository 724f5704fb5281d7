"""What every trainer leaves in its output folder, and the val figures it calibrates on.

Shared by the v1 trainer (:mod:`training.train_v1`) and Model v2's (:mod:`training.train_box`):
uncalibrated val probabilities through the served pass, the temperature (kept only where it lowers
the ECE), the checked-out commit for the metadata, the model file with its LiteRT twin
(:mod:`core.litert`), ``metadata.json`` and ``history.csv``, and the radiograph check's
feature-space reference refitted for the new model.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np

from core.classifier import FractureClassifier
from core.config import FRACTURED, HISTORY_FILENAME, METADATA_FILENAME, MODEL_FILENAME, PROJECT_DIR, REFERENCE_FILENAME
from core.metrics import apply_temperature
from training.metrics import expected_calibration_error, fit_temperature
from training.litert_export import write_litert
from training.radiograph_reference import fit_reference_on_images

PREDICT_BATCH = 128


def predict_fracture_probabilities(forward, images: np.ndarray) -> np.ndarray:
    """Uncalibrated P(fractured) for a stack of preprocessed uint8 images (N, S, S, 1), through a
    :func:`core.classifier.compile_forward` pass."""
    outputs = [forward(images[start : start + PREDICT_BATCH].astype(np.float32))[0].numpy()[:, FRACTURED]
               for start in range(0, len(images), PREDICT_BATCH)]
    return np.concatenate(outputs).astype(np.float64) if outputs else np.zeros(0)


def git_commit() -> str | None:
    """The project's checked-out commit, for the metadata; None outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True,
                                text=True, timeout=10)
        return result.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def calibrate(val_labels, raw_probabilities):
    """Fits a temperature on val and keeps it only where it lowers the ECE."""
    temperature = fit_temperature(val_labels, raw_probabilities)
    before = expected_calibration_error(val_labels, raw_probabilities)
    after = expected_calibration_error(val_labels, apply_temperature(raw_probabilities, temperature))
    return (temperature, before, after) if after < before else (1.0, before, before)


def write_artefacts(output_dir: Path, model, metadata: dict, history: list[dict]) -> None:
    """The model file and its ``.tflite``, ``metadata.json`` and ``history.csv`` (train_v1 and
    train_box write the same four)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save(output_dir / MODEL_FILENAME)
    metadata = write_litert(output_dir, model, metadata)
    (output_dir / METADATA_FILENAME).write_text(json.dumps(metadata, indent=2) + "\n")
    with open(output_dir / HISTORY_FILENAME, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def refit_radiograph_check(output_dir: Path, model, metadata: dict, train_images, val_images) -> None:
    """Tier 2 of the radiograph check lives in this model's feature space, so a new model gets a new
    reference. Tier 1's detector uses hand-made features, not the network's, so it is not refitted:
    it serves any model (``python -m training.radiograph_detector`` writes it)."""
    reference = fit_reference_on_images(FractureClassifier(model, metadata), train_images, val_images)
    reference.save(Path(output_dir) / REFERENCE_FILENAME)
