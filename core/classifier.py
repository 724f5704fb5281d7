"""The shipped CNN as a classifier: load once, classify an image, explain its verdict.

:class:`FractureClassifier` is created once per process (the app caches it) and is safe to
share between threads: it holds no per-call state, a ``tf.function`` may be called
concurrently, and the LiteRT pass gives each thread an interpreter of its own. Every call
returns an :class:`ImageResult`.

Two runtimes (issue 22). :meth:`FractureClassifier.load` serves a model whose ``metadata.json``
names a ``.tflite`` (:mod:`core.litert`) and whose default heatmap needs no gradients (the fracture
map) on LiteRT: the verdict, that heatmap and the radiograph check's features come without
importing TensorFlow, and the Keras model with its :class:`~core.heatmaps.HeatmapExplainer` loads
the first time another heatmap method is asked for. Any other model runs on TensorFlow as
before, and the log says so once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from core import artifacts
from core.config import FRACTURED, MODELS_DIR
from core.heatmaps import (FROM_FORWARD_PASS, FROM_GRADCAM_PASS, HeatmapExplainer, check_method, drawable_methods,
                           fracture_cells, has_fracture_map, maps_from_cells, method_info)
from core.imaging import decode_image
from core.metadata import ModelMetadata
from core.metrics import apply_temperature
from core.overlay import fit_for_display
from core.preprocessing import PreprocessConfig, preprocess
from core.radiograph_check import (RadiographCheck, RadiographReference, activation_summary_outputs,
                                   thumbnail_colourfulness)
from core.radiograph_detector import RadiographDetector
from core.thresholds import OperatingThresholds, decide

log = logging.getLogger(__name__)

BATCH_SIZE = 128
# TensorFlow's CPU kernels (oneDNN) compute a batch of one image in another order than a batch of
# two or more, which agree with each other bit for bit whatever their size or the number of
# threads (P(fractured) moves by up to 3e-7 between the two). The batch path therefore never runs
# a batch of one: an image's answer does not depend on the batch it happened to be scored in.
# LiteRT (XNNPACK) computes each row the same way in a batch of any size, one included (checked
# bit for bit on the shipped model, tests/core/test_litert_parity.py), so its passes are not padded:
# a single upload runs one row (about 6 ms here, against 12 ms for two).
MIN_BATCH_ROWS = 2
# ``heatmap`` of warm_up and core.scoring.score_files when the caller names none: the model's own
# ``default_heatmap`` (None already means "no heatmap", so the model's default needs a name of its own).
MODEL_DEFAULT = "model-default"
# FractureClassifier.load's runtimes.
AUTO = "auto"
LITERT = "litert"
TENSORFLOW = "tensorflow"
_SAID: set[str] = set()  # the fallback messages this process has logged


def _say_once(message: str) -> None:
    if message not in _SAID:
        _SAID.add(message)
        log.warning(message)


@dataclass(frozen=True)
class ImageResult:
    """What the classifier says about one image."""

    probability_fractured: float  # calibrated
    radiograph_check: RadiographCheck  # does it look like a radiograph at all?
    model_input: np.ndarray  # uint8 (S, S, 1), what the network saw
    image: np.ndarray  # float32 (H, W) in [0, 1]: the image as read, or a display copy of it
    source_shape: tuple[int, int]  # (H, W) of the image as read; places the heatmap on any copy
    heatmap: np.ndarray | None = None  # float32 (S, S) in [0, 1], if one was asked for
    heatmap_method: str | None = None  # a key of core.heatmaps.REGISTRY

    def decision(self, threshold: float) -> str:
        """``"fractured"`` or ``"not_fractured"`` at ``threshold`` (see :func:`core.thresholds.decide`)."""
        return decide(self.probability_fractured, threshold)

    def for_display(self) -> "ImageResult":
        """The same result with the image shrunk for a screen (a 3,000 px scan shows nothing more
        in an 800 px column, and costs hundreds of milliseconds to blend and encode)."""
        return dataclasses.replace(self, image=fit_for_display(self.image))


@dataclass(frozen=True)
class PreparedImage:
    """One image read and made ready for the network: everything :meth:`FractureClassifier.classify`
    takes from the file without the network (the batch path makes these on worker threads)."""

    image: np.ndarray  # float32 (H, W) in [0, 1], as read
    model_input: np.ndarray  # uint8 (S, S, 1)
    colourfulness: float  # of the reader's colour thumbnail; 0 for a grey file
    radiograph_score: float | None  # the radiograph detector's P(radiograph); None without a detector


@runtime_checkable
class Explainer(Protocol):
    """What the pages and the reports ask of a classifier's heatmaps, in process or served."""

    methods: tuple[str, ...]  # the keys of core.heatmaps.REGISTRY the model can draw, in that order

    def explain(self, model_inputs: np.ndarray, method: str | None = None,
                class_index: int = FRACTURED) -> np.ndarray:
        """float32 (N, S, S) maps in [0, 1] of the evidence for ``class_index``; ``method`` None:
        the model's default heatmap."""


@runtime_checkable
class Classifier(Protocol):
    """The interface the app uses, met by :class:`FractureClassifier` (in process) and
    :class:`core.remote.RemoteClassifier` (a Serve deployment)."""

    metadata: ModelMetadata
    preprocess_config: PreprocessConfig
    thresholds: OperatingThresholds
    default_heatmap: str
    explainer: Explainer | None

    @property
    def version(self) -> str: ...

    def warm_up(self, heatmap: str | None = ...) -> None: ...

    def classify(self, source, *, heatmap: str | None = None, class_index: int = FRACTURED) -> ImageResult: ...


class FractureClassifier:
    """The trained CNN with its preprocessing, calibration, thresholds and radiograph check.

    Use :meth:`load`; the constructor takes an already-built model, its metadata (a
    :class:`~core.metadata.ModelMetadata`, or the dict of ``metadata.json``, validated here) and, optionally,
    the train-split reference of :mod:`core.radiograph_check` (without it tier 2 does not run) and
    the radiograph detector of :mod:`core.radiograph_detector` (without it tier 1 checks colour alone).
    """

    def __init__(self, model, metadata: ModelMetadata | dict, reference: RadiographReference | None = None,
                 detector: RadiographDetector | None = None, *, litert=None, model_loader=None):
        """``litert``: a :class:`core.litert.LiteRTForward` of the model, which then runs the forward
        pass; ``model`` may then be None, and ``model_loader()`` gives the Keras model the first
        time a method of the explainer needs it."""
        self.metadata = ModelMetadata.parse(metadata)
        self.preprocess_config = self.metadata.preprocessing
        self.temperature = self.metadata.temperature
        self.thresholds = self.metadata.thresholds
        self.reference = reference
        self.detector = detector
        cam_layer = self.metadata.cam_layer
        self.default_heatmap = check_method(self.metadata.default_heatmap)
        self._model, self._model_loader, self._model_lock = model, model_loader, threading.Lock()
        if litert is not None:
            self.runtime = LITERT
            self._has_map = litert.has_map
            self._forward = litert
            self.explainer = None if cam_layer is None else LazyExplainer(self, cam_layer)
            return
        self.runtime = TENSORFLOW
        extras = pass_extras(model)
        self._has_map = has_fracture_map(model)
        self._forward = compile_forward(model, extras)
        self.explainer = None if cam_layer is None else HeatmapExplainer(model, cam_layer, extras[:1],
                                                                         default_method=self.default_heatmap)

    @property
    def model(self):
        """The Keras model; on the LiteRT runtime loaded (with TensorFlow) on first use."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    if self._model_loader is None:
                        raise ValueError("this classifier was built without its Keras model")
                    log.info("loading TensorFlow and the Keras model for a heatmap the LiteRT pass does not draw")
                    self._model = self._model_loader()
        return self._model

    @classmethod
    def load(cls, model_dir: str | Path = MODELS_DIR, runtime: str = AUTO) -> "FractureClassifier":
        """The model in ``model_dir`` (by default the shipped one), read by :mod:`core.artifacts`.

        Args:
            runtime: :data:`AUTO` (LiteRT where the model ships a ``.tflite`` and its default
                heatmap needs no gradients, else TensorFlow), :data:`LITERT` or :data:`TENSORFLOW`.

        Raises:
            FileNotFoundError: if the metadata, model or named ``.tflite`` file is missing.
            ValueError: if the metadata is not valid (:class:`core.metadata.MetadataError`), the
                model file cannot be loaded (:class:`core.artifacts.UnusableModelError`) or the
                ``.tflite`` is corrupt or not the one recorded (:class:`core.litert.LiteRTError`).
        """
        if runtime not in (AUTO, LITERT, TENSORFLOW):
            raise ValueError(f"unknown runtime {runtime!r}; valid: {AUTO}, {LITERT}, {TENSORFLOW}")
        metadata = artifacts.load_metadata(model_dir)
        reference = artifacts.load_radiograph_reference(model_dir, metadata.model_version)
        detector = artifacts.load_radiograph_detector(model_dir)
        if runtime == AUTO:
            runtime = _choose_runtime(metadata, model_dir)
        if runtime == LITERT:
            if metadata.litert is None:
                raise FileNotFoundError(f"the metadata.json in {model_dir} names no .tflite; "
                                        "run python -m training.litert_export")
            artifacts.check_network_file(model_dir, metadata)  # a damaged folder is refused now, not at first Grad-CAM
            return cls(None, metadata, reference, detector, litert=artifacts.load_litert(model_dir, metadata),
                       model_loader=lambda: artifacts.load_network(model_dir, metadata))
        return cls(artifacts.load_network(model_dir, metadata), metadata, reference, detector)

    @property
    def version(self) -> str:
        return self.metadata.model_version

    def warm_up(self, heatmap: str | None = MODEL_DEFAULT) -> None:
        """Traces the pass that ``classify(..., heatmap=heatmap)`` runs (by default the model's
        :attr:`default_heatmap`, which the app and the CLI ask for; None: the verdict alone), so
        that the first user does not wait for it."""
        heatmap = self.default_heatmap if heatmap == MODEL_DEFAULT else heatmap
        size = self.preprocess_config.image_size
        blank = np.zeros((1, size, size, 1), np.uint8)
        if heatmap is not None and method_info(heatmap).source == FROM_GRADCAM_PASS and self.explainer is not None:
            self.explainer.grad_cam_pass(blank)
        else:
            self.predict_batch(blank)

    def classify(self, source, *, heatmap: str | None = None,
                 class_index: int = FRACTURED) -> ImageResult:
        """Reads, preprocesses and classifies one image, and explains it with ``heatmap``.

        Args:
            source: file bytes or a path.
            heatmap: a key of :data:`core.heatmaps.REGISTRY`, or None for the verdict alone.
                Its ``source`` decides the pass: the fracture map comes with the verdict's own
                forward pass, Grad-CAM from one compiled pass that also gives the verdict, the
                others from a separate call after it.
            class_index: the class the heatmap explains (1 = fractured).

        Raises:
            core.imaging.ImageReadError: if the source is not a readable image.
            ValueError: for an unknown method, or a heatmap asked of a model whose metadata
                names no ``cam_layer``.
        """
        self._check_heatmap(heatmap)
        # Padded as the batch path is where TensorFlow runs (MIN_BATCH_ROWS): the app, the CLI, an
        # archive job and the Serve deployment give an image the same answer, bit for bit.
        return self._classify_rows([self.prepare(source)], heatmap, class_index)[0]

    def prepare(self, source) -> PreparedImage:
        """Reads and preprocesses one image and measures what tier 1 of the radiograph check needs:
        all of :meth:`classify` that does not need the network. Safe to call from many threads.

        Raises:
            core.imaging.ImageReadError: if the source is not a readable image.
        """
        decoded = decode_image(source)
        return PreparedImage(decoded.grey, preprocess(decoded.grey, self.preprocess_config),
                             thumbnail_colourfulness(decoded.colour_thumbnail), self._radiograph_score(decoded.grey))

    def classify_prepared(self, images: Sequence[PreparedImage], *, heatmap: str | None = None,
                          class_index: int = FRACTURED) -> list[ImageResult]:
        """:meth:`classify` for a batch of images already read by :meth:`prepare`: one network pass.

        An image's result is the same bit for bit in any batch of any size, one image included:
        on TensorFlow a lone image is scored with a blank one beside it (see :data:`MIN_BATCH_ROWS`), as
        :meth:`classify` scores it.

        Raises:
            ValueError: as :meth:`classify` for ``heatmap``.
        """
        self._check_heatmap(heatmap)
        return self._classify_rows(images, heatmap, class_index) if images else []

    def _check_heatmap(self, heatmap: str | None) -> None:
        if heatmap is not None:
            check_method(heatmap)
            if self.metadata.cam_layer is None:
                raise ValueError("this model's metadata names no cam_layer, so it cannot be explained")

    def _classify_rows(self, images: Sequence[PreparedImage], heatmap: str | None,
                       class_index: int) -> list[ImageResult]:
        """The results of one pass over ``images`` (padded to :data:`MIN_BATCH_ROWS` where TensorFlow
        computes any of it)."""
        count = len(images)
        batch = np.stack([image.model_input for image in images])
        source = None if heatmap is None else method_info(heatmap).source
        if self.runtime == TENSORFLOW or source not in (None, FROM_FORWARD_PASS):
            batch = padded_batch(batch)
        if source == FROM_GRADCAM_PASS and self.runtime == LITERT:
            # The verdict from LiteRT whatever the heatmap: an image's P does not depend on the method.
            raw, summaries, _ = self._forward_rows(batch)
            heatmaps = self.explainer.grad_cam_pass(batch, class_index).heatmaps
        elif source == FROM_GRADCAM_PASS:
            fused = self.explainer.grad_cam_pass(batch, class_index)
            raw, summaries, heatmaps = fused.probabilities[:, FRACTURED], fused.extras[0], fused.heatmaps
        elif source == FROM_FORWARD_PASS and self._has_map:
            raw, summaries, cells = self._forward_rows(batch)
            heatmaps = maps_from_cells(cells, self.preprocess_config.image_size, class_index)
        else:
            raw, summaries = self._raw_and_summaries(batch)
            heatmaps = None if heatmap is None else self.explainer.explain(batch, heatmap, class_index)
        probabilities = apply_temperature(raw[:count].astype(np.float64), self.temperature)
        return [ImageResult(float(probability),
                            self._radiograph_check(image.colourfulness, image.radiograph_score, summary),
                            image.model_input, image.image, image.image.shape,
                            None if heatmaps is None else heatmaps[row], heatmap)
                for row, (image, probability, summary) in enumerate(zip(images, probabilities, summaries))]

    def predict_batch(self, model_inputs: np.ndarray) -> np.ndarray:
        """Calibrated P(fractured) for preprocessed uint8 images (N, S, S, 1)."""
        raw, _ = self._raw_and_summaries(model_inputs)
        return apply_temperature(raw, self.temperature) if len(raw) else raw

    def summarise_batch(self, model_inputs: np.ndarray) -> np.ndarray:
        """Activation summaries (N, D) of preprocessed images: the radiograph check's features."""
        return self._raw_and_summaries(model_inputs)[1]

    def _radiograph_score(self, grey: np.ndarray) -> float | None:
        return None if self.detector is None else self.detector.score(grey)

    def _radiograph_check(self, colourfulness: float, radiograph_score: float | None,
                          summary: np.ndarray) -> RadiographCheck:
        distance = None if self.reference is None else float(self.reference.distances(summary[np.newaxis])[0])
        threshold = None if self.reference is None else self.reference.threshold
        return RadiographCheck(colourfulness, distance, threshold, radiograph_score,
                               None if self.detector is None else self.detector.threshold)

    def _raw_and_summaries(self, model_inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated P(fractured) (N,) and activation summaries (N, D), in batches."""
        raw, summaries, _ = self._forward_rows(model_inputs)
        return raw, summaries

    def _forward_rows(self, model_inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Uncalibrated P(fractured) (N,), activation summaries (N, D) and, for a model with a map
        of its own, its cell logits (N, g, g, 1), in batches."""
        outputs = [[], [], []]
        for start in range(0, len(model_inputs), BATCH_SIZE):
            chunk = model_inputs[start : start + BATCH_SIZE]
            rows = padded_batch(chunk) if self.runtime == TENSORFLOW else chunk
            probabilities, *extras = self._forward(np.asarray(rows, np.float32))
            outputs[0].append(np.asarray(probabilities)[: len(chunk), FRACTURED])
            for kept, extra in zip(outputs[1:], extras):
                kept.append(np.asarray(extra)[: len(chunk)])
        if not outputs[0]:
            return np.zeros(0), np.zeros((0, 0)), None
        cells = np.concatenate(outputs[2]) if outputs[2] else None
        return np.concatenate(outputs[0]).astype(np.float64), np.concatenate(outputs[1]), cells


def _choose_runtime(metadata: ModelMetadata, model_dir) -> str:
    """LiteRT where ``metadata`` records a ``.tflite`` and its default heatmap needs no gradients;
    else TensorFlow, said once in the log."""
    if metadata.litert is None:
        _say_once(f"{model_dir}: no .tflite recorded in metadata.json, so the forward pass runs on TensorFlow "
                  "(python -m training.litert_export writes one)")
        return TENSORFLOW
    if method_info(metadata.default_heatmap).needs_gradients:
        _say_once(f"{model_dir}: the default heatmap {metadata.default_heatmap!r} needs gradients, so the model "
                  "runs on TensorFlow, not on its .tflite")
        return TENSORFLOW
    return LITERT


class LazyExplainer:
    """The :class:`~core.heatmaps.HeatmapExplainer` of a classifier on LiteRT, built (with TensorFlow)
    the first time a method that needs it is asked for. The fracture map and :attr:`methods` come
    from the LiteRT pass and the registry, without TensorFlow."""

    def __init__(self, classifier: "FractureClassifier", cam_layer: str):
        self._classifier = classifier
        self.cam_layer = cam_layer
        self.size = classifier.preprocess_config.image_size
        self.default_method = classifier.default_heatmap
        self._explainer: HeatmapExplainer | None = None
        self._lock = threading.Lock()

    @property
    def methods(self) -> tuple[str, ...]:
        """The keys of :data:`~core.heatmaps.REGISTRY` the model can draw, as HeatmapExplainer's."""
        return drawable_methods(self._classifier._has_map)

    @property
    def loaded(self) -> bool:
        """Whether TensorFlow and the Keras model have been loaded for a heatmap method."""
        return self._explainer is not None

    def tensorflow_explainer(self) -> HeatmapExplainer:
        """The explainer on the Keras model, built on first use (loads TensorFlow)."""
        if self._explainer is None:
            with self._lock:
                if self._explainer is None:
                    model = self._classifier.model
                    self._explainer = HeatmapExplainer(model, self.cam_layer, pass_extras(model)[:1],
                                                       default_method=self.default_method)
        return self._explainer

    @property
    def model(self):
        return self._classifier.model

    def explain(self, model_inputs: np.ndarray, method: str | None = None,
                class_index: int = FRACTURED) -> np.ndarray:
        """:meth:`core.heatmaps.HeatmapExplainer.explain`; the fracture map from the LiteRT pass."""
        if method_info(method or self.default_method).source == FROM_FORWARD_PASS:
            return self.fracture_map(model_inputs, class_index)
        return self.tensorflow_explainer().explain(model_inputs, method, class_index)

    def fracture_map(self, model_inputs: np.ndarray, class_index: int = FRACTURED) -> np.ndarray:
        """The model's own map (see :func:`core.heatmaps.maps_from_cells`), from the LiteRT pass."""
        if not self._classifier._has_map:
            raise ValueError(f"this model draws no fracture map of its own; use one of: {', '.join(self.methods)}")
        _, _, cells = self._classifier._forward_rows(np.asarray(model_inputs))
        return maps_from_cells(cells, self.size, class_index)

    def grad_cam_pass(self, model_inputs: np.ndarray, class_index: int = FRACTURED):
        return self.tensorflow_explainer().grad_cam_pass(model_inputs, class_index)


def padded_batch(model_inputs: np.ndarray) -> np.ndarray:
    """``model_inputs`` with blank rows added to make at least :data:`MIN_BATCH_ROWS` (the caller
    keeps the first ``len(model_inputs)`` rows of what the network returns)."""
    missing = MIN_BATCH_ROWS - len(model_inputs)
    if missing <= 0:
        return model_inputs
    return np.concatenate([model_inputs, np.zeros((missing, *model_inputs.shape[1:]), model_inputs.dtype)])


def pass_extras(model) -> list:
    """The Keras tensors the classifier's pass returns beside the probabilities: the radiograph
    check's activation summary (N, D), then, for a model with a map of its own, its cell logits
    (N, g, g, 1), so that its heatmap comes free with the verdict."""
    import keras

    summary = keras.ops.concatenate(activation_summary_outputs(model), axis=-1)
    return [summary, fracture_cells(model)] if has_fracture_map(model) else [summary]


def compile_forward(model, extra_outputs=()):
    """``images -> (probabilities (N, 2), *extras)`` as one ``tf.function``; training scores val
    with it too, so there is one compiled forward pass in the project.

    ``model.predict`` builds a data pipeline on every call (about 60 ms per image here); a traced
    function runs the graph directly (about 3 ms).

    Args:
        model: a functional Keras model taking (N, S, S, 1) float32 images in 0..255.
        extra_outputs: further Keras tensors of ``model``'s graph to return from the same pass.
    """
    import keras
    import tensorflow as tf

    both = keras.Model(model.inputs, [model.output, *extra_outputs])
    size = model.input_shape[1]
    signature = [tf.TensorSpec((None, size, size, 1), tf.float32)]
    # autograph=False: no Python control flow to convert, and AutoGraph would write its generated
    # source to a file in the temporary directory on the first trace.
    def forward(images):
        outputs = both(images, training=False)
        # Keras returns a lone tensor, not a one-element list, for a model with one output.
        return tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs,)

    return tf.function(forward, input_signature=signature, autograph=False)
