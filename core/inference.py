"""Loading the shipped model and classifying images through a compiled forward pass.

:class:`FractureClassifier` is created once per process (the app caches it) and is safe to
share between threads: it holds no per-call state, and a ``tf.function`` may be called
concurrently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import FRACTURED, METADATA_FILENAME, MODELS_DIR, THRESHOLD_NAMES
from core.imaging import read_image
from core.metrics import apply_temperature
from core.ood import REFERENCE_FILENAME, RadiographCheck, RadiographReference, activation_summary_outputs, colourfulness
from core.preprocessing import PreprocessConfig, preprocess

BATCH_SIZE = 128


def compile_forward(model):
    """Wraps ``model`` in a ``tf.function`` with a fixed input signature.

    ``model.predict`` builds a data pipeline on every call (about 60 ms per image here);
    a traced function runs the graph directly (about 3 ms).
    """
    import tensorflow as tf

    size = model.input_shape[1]
    signature = [tf.TensorSpec((None, size, size, 1), tf.float32)]
    # autograph=False: no Python control flow to convert, and AutoGraph would write its generated
    # source to a file in the temporary directory on the first trace (and warn about the lambda).
    return tf.function(lambda images: model(images, training=False), input_signature=signature,
                       autograph=False)


def predict_fracture_probabilities(forward, images: np.ndarray) -> np.ndarray:
    """Uncalibrated P(fractured) for a stack of preprocessed uint8 images (N, S, S, 1)."""
    outputs = [
        forward(images[start : start + BATCH_SIZE].astype(np.float32)).numpy()[:, FRACTURED]
        for start in range(0, len(images), BATCH_SIZE)
    ]
    return np.concatenate(outputs).astype(np.float64) if outputs else np.zeros(0)


def keras_summary(model):
    """The Keras tensor of :mod:`core.ood`'s activation summary (N, D) in ``model``'s graph."""
    import keras

    return keras.ops.concatenate(activation_summary_outputs(model), axis=-1)


def compile_forward_with_summary(model):
    """Like :func:`compile_forward`, but also returns each image's activation summary (see
    :mod:`core.ood`) from the same pass: ``images -> (probabilities (N, 2), summaries (N, D))``."""
    import keras
    import tensorflow as tf

    both = keras.Model(model.inputs, [model.output, keras_summary(model)])
    size = model.input_shape[1]
    signature = [tf.TensorSpec((None, size, size, 1), tf.float32)]
    return tf.function(lambda images: both(images, training=False), input_signature=signature,
                       autograph=False)  # as in compile_forward


def decide(probability_fractured: float, threshold: float) -> str:
    """The verdict under the project's rule: ``"fractured"`` iff probability >= threshold."""
    return "fractured" if probability_fractured >= threshold else "not_fractured"


VERDICT_TEXT = {"fractured": "Fracture suspected", "not_fractured": "No fracture detected"}


def verdict_report(file_name: str, probability_fractured: float, threshold: float, *,
                   method: str, model_version: str, radiograph_check: RadiographCheck | None = None) -> dict:
    """The JSON report the app offers per image (no pixel data, no patient data)."""
    decision = decide(probability_fractured, threshold)
    report = {"file_name": file_name, "probability_fractured": round(float(probability_fractured), 6),
              "threshold": round(float(threshold), 6), "decision": decision,
              "verdict": VERDICT_TEXT[decision], "method": method, "model_version": model_version}
    if radiograph_check is not None:
        report["looks_like_radiograph"] = radiograph_check.looks_like_radiograph
        report["unreliable_because"] = list(radiograph_check.reasons)
    return report


def results_csv(results: list[tuple[str, float | None, str]], threshold: float) -> str:
    """CSV text of ``(file name, P(fractured) or None, verdict or error)`` rows at ``threshold``."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "probability_fractured", "verdict", "threshold"])
    for name, probability, verdict in results:
        writer.writerow([name, "" if probability is None else f"{probability:.6f}", verdict, f"{threshold:.6f}"])
    return buffer.getvalue()


@dataclass(frozen=True)
class Classification:
    """What the classifier says about one image."""

    probability_fractured: float
    model_input: np.ndarray  # uint8 (S, S, 1), what the network saw
    image: np.ndarray  # float32 (H, W) in [0, 1], the image as read
    radiograph_check: RadiographCheck  # does it look like a radiograph at all?
    heatmap: np.ndarray | None = None  # Grad-CAM for "fractured", float32 (S, S) in [0, 1], if asked for


class FractureClassifier:
    """The trained CNN with its preprocessing, calibration and thresholds.

    Use :meth:`load`; the constructor takes an already-built model, its metadata and, optionally,
    the train-split reference of :mod:`core.ood` (without it only the colour check runs).
    """

    def __init__(self, model, metadata: dict, reference: RadiographReference | None = None):
        self.model = model
        self.metadata = metadata
        self.preprocess_config = PreprocessConfig.from_dict(metadata["preprocessing"])
        self.temperature = float(metadata.get("temperature", 1.0))
        self.thresholds = {name: float(value) for name, value in metadata["thresholds"].items()}
        self.reference = reference
        self._forward = compile_forward_with_summary(model)
        self._forward_explained = None
        if "cam_layer" in metadata:
            from core.explain import compile_grad_cam_pass

            summary = keras_summary(model)
            self._forward_explained = compile_grad_cam_pass(model, metadata["cam_layer"], [summary])

    @classmethod
    def load(cls, model_dir: str | Path = MODELS_DIR) -> "FractureClassifier":
        """Loads ``metadata.json`` and the model it names from ``model_dir``.

        Raises:
            FileNotFoundError: if the metadata or model file is missing.
        """
        import keras

        model_dir = Path(model_dir)
        metadata_path = model_dir / METADATA_FILENAME
        if not metadata_path.is_file():
            raise FileNotFoundError(f"no trained model in {model_dir} (missing {METADATA_FILENAME})")
        metadata = json.loads(metadata_path.read_text())
        model_path = model_dir / metadata["model_file"]
        # Keras reports a missing file as ValueError; callers (the CLIs) expect FileNotFoundError.
        if not model_path.is_file():
            raise FileNotFoundError(f"model file {model_path} named in {metadata_path} is missing")
        model = keras.saving.load_model(model_path, compile=False)
        reference_path = model_dir / REFERENCE_FILENAME
        reference = RadiographReference.load(reference_path) if reference_path.is_file() else None
        if reference is not None and reference.model_version != metadata.get("model_version"):
            # Features of another model mean nothing here; the colour check still runs.
            reference = None
        return cls(model, metadata, reference)

    def warm_up(self, *, explained_only: bool = False) -> None:
        """Traces the compiled passes now, so the first user does not wait for them.

        Args:
            explained_only: trace only the pass of ``classify(..., explain=True)`` (all the app
                uses), which saves the other trace's 0.1–0.2 s at start-up.
        """
        size = self.preprocess_config.image_size
        blank = np.zeros((1, size, size, 1), np.uint8)
        explainable = self._forward_explained is not None
        if explainable:
            self._forward_explained(blank.astype(np.float32))
        if not (explainable and explained_only):
            self.predict_batch(blank)

    @property
    def version(self) -> str:
        return self.metadata.get("model_version", "unknown")

    def predict_batch(self, model_inputs: np.ndarray) -> np.ndarray:
        """Calibrated P(fractured) for preprocessed uint8 images (N, S, S, 1)."""
        return self._predict_and_summarise(model_inputs)[0]

    def summarise_batch(self, model_inputs: np.ndarray) -> np.ndarray:
        """Activation summaries (N, D) of preprocessed images, the features :mod:`core.ood` uses."""
        return self._predict_and_summarise(model_inputs)[1]

    def _predict_and_summarise(self, model_inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probabilities, summaries = [], []
        for start in range(0, len(model_inputs), BATCH_SIZE):
            batch_probabilities, batch_summaries = self._forward(model_inputs[start : start + BATCH_SIZE].astype(np.float32))
            probabilities.append(batch_probabilities.numpy()[:, FRACTURED])
            summaries.append(batch_summaries.numpy())
        if not probabilities:
            return np.zeros(0), np.zeros((0, 0))
        raw = np.concatenate(probabilities).astype(np.float64)
        return apply_temperature(raw, self.temperature), np.concatenate(summaries)

    def check_radiograph(self, source, summary: np.ndarray) -> RadiographCheck:
        """Colour and feature-space checks of one image (see :mod:`core.ood`)."""
        distance = None if self.reference is None else float(self.reference.distances(summary[np.newaxis])[0])
        threshold = None if self.reference is None else self.reference.threshold
        return RadiographCheck(colourfulness(source), distance, threshold)

    def prepare(self, source) -> tuple[np.ndarray, np.ndarray]:
        """Reads ``source`` (bytes or path) and returns ``(image, model_input)``.

        Raises:
            core.imaging.ImageReadError: if the source is not a readable image.
        """
        image = read_image(source)
        return image, preprocess(image, self.preprocess_config)

    def classify(self, source, *, explain: bool = False) -> Classification:
        """Reads, preprocesses and classifies one image (bytes or path).

        Args:
            source: file bytes or a path.
            explain: also compute the Grad-CAM heatmap, in the same compiled pass as the verdict
                (one forward pass instead of two; needs ``cam_layer`` in the metadata).

        Raises:
            core.imaging.ImageReadError: if the source is not a readable image.
            ValueError: if ``explain`` is asked of a model whose metadata names no ``cam_layer``.
        """
        image, model_input = self.prepare(source)
        batch = model_input[np.newaxis]
        if not explain:
            probabilities, summaries = self._predict_and_summarise(batch)
            return Classification(float(probabilities[0]), model_input, image,
                                  self.check_radiograph(source, summaries[0]))
        if self._forward_explained is None:
            raise ValueError("this model's metadata names no cam_layer, so it cannot be explained")
        raw, heatmaps, summaries = self._forward_explained(batch.astype(np.float32))
        probability = apply_temperature(raw.numpy()[:, FRACTURED].astype(np.float64), self.temperature)[0]
        return Classification(float(probability), model_input, image,
                              self.check_radiograph(source, summaries.numpy()[0]), heatmaps.numpy()[0])

    def resolve_threshold(self, threshold: str | float) -> float:
        """Turns a preset name or a number into a threshold in [0, 1].

        Raises:
            ValueError: for an unknown preset or a number outside [0, 1].
        """
        if isinstance(threshold, str) and threshold in self.thresholds:
            return self.thresholds[threshold]
        try:
            value = float(threshold)
        except (TypeError, ValueError):
            raise ValueError(
                f"unknown threshold {threshold!r}; valid: a number in [0, 1] or one of "
                f"{', '.join(THRESHOLD_NAMES)}"
            ) from None
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold must be in [0, 1]; got {value}")
        return value
