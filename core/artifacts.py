"""The one reader of ``models/``: the network, its metadata and thresholds, and the files
``python -m training.evaluate`` and the trainers (``training.train_box``, ``training.train_v1``) write beside it.

Nothing else in the project opens a file under ``models/``. Paths default to the shipped model,
found from the package location so that the app and the CLI work from any directory.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

from core.config import (DETECTOR_FILENAME, HISTORY_FILENAME, METADATA_FILENAME, METRICS_FILENAME, MODELS_DIR,
                         PROBABILITIES_FILENAME, REFERENCE_FILENAME)
from core.evaluation import ModelMetrics
from core.heldout import HeldOutPredictions
from core.metadata import MetadataError, ModelMetadata
from core.radiograph_check import RadiographReference
from core.radiograph_detector import RadiographDetector
from core.thresholds import OperatingThresholds


class UnusableModelError(ValueError):
    """A model folder's files are there but cannot be used (the message names the file and why)."""


def read_metadata_json(model_dir: str | Path = MODELS_DIR) -> dict:
    """``metadata.json`` as stored, for code that rewrites it (training) or passes it on whole.

    Raises:
        FileNotFoundError: if there is no trained model in ``model_dir``.
    """
    path = Path(model_dir) / METADATA_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"no trained model in {model_dir} (missing {METADATA_FILENAME})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MetadataError(f"{path} is not JSON: {error}") from None


def load_metadata(model_dir: str | Path = MODELS_DIR) -> ModelMetadata:
    """``metadata.json``, validated: preprocessing, thresholds, calibration, heatmaps, provenance.

    Raises:
        FileNotFoundError: if there is no trained model in ``model_dir``.
        core.metadata.MetadataError: if a field is missing or of the wrong type (the message names it).
    """
    return ModelMetadata.parse(read_metadata_json(model_dir), where=str(Path(model_dir) / METADATA_FILENAME))


def load_thresholds(model_dir: str | Path = MODELS_DIR) -> OperatingThresholds:
    """The named operating thresholds stored with the model, unrounded."""
    return load_metadata(model_dir).thresholds


def check_network_file(model_dir: str | Path, metadata: ModelMetadata) -> Path:
    """The path of the Keras model file ``metadata`` names, checked without Keras: present, and a
    ``.keras`` archive where it is named so (the LiteRT runtime loads it only for a gradient method,
    and a damaged folder is still refused at load).

    Raises:
        FileNotFoundError: if the model file is missing.
        UnusableModelError: if a ``.keras`` file is not a zip archive.
    """
    metadata_path = Path(model_dir) / METADATA_FILENAME
    model_path = Path(model_dir) / metadata.model_file
    # Keras reports a missing file as ValueError; callers (the CLIs) expect FileNotFoundError.
    if not model_path.is_file():
        raise FileNotFoundError(f"model file {model_path} named in {metadata_path} is missing")
    if model_path.suffix == ".keras" and not zipfile.is_zipfile(model_path):
        raise UnusableModelError(f"model file {model_path} is not a .keras archive (a zip file)")
    return model_path


def load_network(model_dir: str | Path, metadata: ModelMetadata):
    """The Keras model ``metadata`` names, without optimizer state.

    Raises:
        FileNotFoundError: if the model file is missing.
        UnusableModelError: if Keras cannot load it (not a model file, damaged, another format).
    """
    import keras

    import core.layers  # noqa: F401  (registers the custom layers a model file names)

    model_path = check_network_file(model_dir, metadata)
    try:
        return keras.saving.load_model(model_path, compile=False)
    except (ValueError, OSError, TypeError, KeyError) as error:
        # Keras's own messages run to a paragraph about formats; the first line says what is wrong.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnusableModelError(f"model file {model_path} cannot be loaded: {reason}") from None


def load_litert(model_dir: str | Path, metadata: ModelMetadata):
    """The LiteRT forward pass (:class:`core.litert.LiteRTForward`) ``metadata`` names, or None where
    it names none. Imports no TensorFlow.

    Raises:
        FileNotFoundError: if the named ``.tflite`` is missing.
        core.litert.LiteRTError: if its sha256 differs from the recorded one, or it is not a LiteRT
            model with the classifier's outputs.
    """
    if metadata.litert is None:
        return None
    from core.litert import LiteRTForward, read_checked

    path = Path(model_dir) / metadata.litert.file
    return LiteRTForward(read_checked(path, metadata.litert.sha256), len(metadata.class_names), where=str(path))


def load_radiograph_reference(model_dir: str | Path, model_version: str) -> RadiographReference | None:
    """The feature-space reference of the radiograph check, if it was fitted for this model."""
    path = Path(model_dir) / REFERENCE_FILENAME
    if not path.is_file():
        return None
    reference = RadiographReference.load(path)
    # Features of another model mean nothing here; the colour check still runs without it.
    return reference if reference.model_version == model_version else None


def load_radiograph_detector(model_dir: str | Path = MODELS_DIR) -> RadiographDetector | None:
    """Tier 1's radiograph detector, if ``model_dir`` has one (without it only colour is checked).

    Its features are hand-made, not the network's, so it serves any model.

    Raises:
        ValueError: if the file was fitted on features other than the ones the code computes.
    """
    path = Path(model_dir) / DETECTOR_FILENAME
    return RadiographDetector.load(path) if path.is_file() else None


def load_metrics(model_dir: str | Path = MODELS_DIR) -> ModelMetrics:
    """``metrics.json``, validated: AUROC with CI, operating points, calibration and subgroups on val
    and test, and where each measured heatmap method points.

    Raises:
        FileNotFoundError: if ``python -m training.evaluate`` has not written it.
        core.metadata.MetadataError: if a field is missing or of the wrong type (the message names it).
    """
    path = Path(model_dir) / METRICS_FILENAME
    return ModelMetrics.parse(json.loads(path.read_text()), where=str(path))


def load_history(model_dir: str | Path = MODELS_DIR) -> list[dict]:
    """``history.csv`` as a list of {"epoch": int, "loss": float, "val_auroc": float, ...}."""
    with open(Path(model_dir) / HISTORY_FILENAME, newline="") as handle:
        return [{key: int(value) if key == "epoch" else float(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def load_probability_rows(model_dir: str | Path = MODELS_DIR) -> list[dict]:
    """``probabilities.csv`` rows (all values strings): one calibrated P(fractured) per val and test image."""
    path = Path(model_dir) / PROBABILITIES_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run python -m training.evaluate")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def load_held_out(model_dir: str | Path = MODELS_DIR, split: str = "test") -> HeldOutPredictions:
    """The stored probabilities and labels of one held-out split.

    Raises:
        FileNotFoundError: if ``probabilities.csv`` is missing.
        ValueError: if it holds no rows for ``split``.
    """
    return HeldOutPredictions.from_rows(load_probability_rows(model_dir), split)
