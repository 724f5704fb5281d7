"""Heatmaps of the evidence for a class: one front door, :meth:`HeatmapExplainer.explain`.

Every method explains one class of the softmax layer ``probabilities`` (``class_index``, by
default :data:`core.config.FRACTURED`) and returns one map per image at the model's input size,
each divided by its own peak, in [0, 1].

* Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391): weights the last conv feature maps
  by the spatially averaged gradient of the class's pre-softmax logit and keeps the positive
  part. Compiled here, fused with the verdict in one pass: the fast path.
* Grad-CAM++ (Chattopadhay et al., WACV 2018, arXiv:1710.11063).
* Score-CAM (Wang et al., CVPR Workshops 2020, arXiv:1910.01279), in its "Faster Score-CAM"
  form that keeps only the highest-variance feature maps (tabayashi0117/Score-CAM).
* Layer-CAM (Jiang et al., IEEE TIP 2021, doi:10.1109/TIP.2021.3089943).
* SmoothGrad (Smilkov et al., 2017, arXiv:1706.03825) on vanilla gradient saliency
  (Simonyan et al., 2014, arXiv:1312.6034).
* The fracture map: a box-supervised model's own per-cell fracture probabilities (the layer
  :data:`FRACTURE_MAP_LAYER`), from which its verdict is pooled. No gradient; only models that
  have the layer offer it.

All but Grad-CAM come from tf-keras-vis (Kubota, https://github.com/keisen/tf-keras-vis).
"""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from core.config import FRACTURED


@dataclass(frozen=True)
class HeatmapMethod:
    """One heatmap method, declared once: the app, the CLI, the export and Serve read it here.

    ``source`` says where its map comes from, which decides its cost: from the verdict's own
    forward pass (no gradients), from the compiled Grad-CAM pass that also gives the verdict, or
    from a separate tf-keras-vis call after the verdict.
    """

    key: str
    label: str
    cost: str  # what it adds per image beside the verdict, measured on a shared 2-core CPU
    slow: bool  # worth a spinner with the time shown
    needs_gradients: bool  # needs TensorFlow's autodiff, not only a forward pass
    source: str  # FROM_FORWARD_PASS, FROM_GRADCAM_PASS or SEPARATE_CALL
    visualiser: str | None = None  # the tf-keras-vis class that computes a SEPARATE_CALL method


FROM_FORWARD_PASS = "forward pass"
FROM_GRADCAM_PASS = "Grad-CAM pass"
SEPARATE_CALL = "separate call"

# Costs measured on the shipped model, one image, shared 2-core CPU, after warm-up: Grad-CAM 4 ms,
# Grad-CAM++ 55 ms, Layer-CAM 50 ms, Score-CAM (max_N=10) 190 ms, SmoothGrad (20 samples) 1.1 s;
# the fracture map is a by-product of the verdict's pass.
REGISTRY: dict[str, HeatmapMethod] = {method.key: method for method in (
    HeatmapMethod("gradcam", "Grad-CAM", "a few ms", False, True, FROM_GRADCAM_PASS),
    HeatmapMethod("gradcam++", "Grad-CAM++", "about 0.05 s", False, True, SEPARATE_CALL,
                  "tf_keras_vis.gradcam_plus_plus.GradcamPlusPlus"),
    # The "Faster Score-CAM" variant: gradient-free, but one forward pass per kept feature map.
    HeatmapMethod("scorecam", "Score-CAM", "about 0.2 s (its faster variant)", True, False, SEPARATE_CALL,
                  "tf_keras_vis.scorecam.Scorecam"),
    HeatmapMethod("layercam", "Layer-CAM", "about 0.05 s", False, True, SEPARATE_CALL, "tf_keras_vis.layercam.Layercam"),
    HeatmapMethod("smoothgrad", "SmoothGrad saliency", "about 1 s", True, True, SEPARATE_CALL,
                  "tf_keras_vis.saliency.Saliency"),
    HeatmapMethod("fracturemap", "Fracture map (the model's own)", "a few ms", False, False, FROM_FORWARD_PASS),
)}
METHODS: dict[str, str] = {key: method.label for key, method in REGISTRY.items()}  # key -> label
# Those computed in one TensorFlow graph with the verdict, which a SavedModel can carry.
TRACEABLE_METHODS = tuple(key for key, method in REGISTRY.items() if method.source != SEPARATE_CALL)
DEFAULT_METHOD = "gradcam"  # of a model whose metadata names no default heatmap
SLOW_METHODS = frozenset(key for key, method in REGISTRY.items() if method.slow)

# Faster Score-CAM: one masked forward pass per kept feature map. The shipped model's last stage
# has 256 channels; 10 high-variance maps keep the call in the same range as the gradient methods
# while keeping the maps that carry spatial structure (low-variance maps are near-uniform masks
# that add little to the weighted sum).
SCORECAM_MAX_N = 10
SMOOTH_SAMPLES = 20  # the SmoothGrad paper finds maps stop sharpening beyond ~50; 20 is close
SMOOTH_NOISE = 0.20  # noise s.d. as a fraction of each image's value range (paper: 10-20 %)

OUTPUT_LAYER = "probabilities"
FRACTURE_MAP_LAYER = "fracture_map"  # per-cell fracture logits (N, g, g, 1), in box-supervised models

# tf-keras-vis passes inputs to Keras 3 functional models as a one-element list; Keras warns on
# every call although the result is the same. Only that message, only from Keras, is silenced.
warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match",
                        category=UserWarning, module="keras")


@dataclass(frozen=True)
class GradCamPass:
    """What one compiled Grad-CAM pass returns for a batch."""

    probabilities: np.ndarray  # float32 (N, classes), softmax
    heatmaps: np.ndarray  # float32 (N, S, S) in [0, 1]
    extras: tuple  # the extra outputs asked for, as numpy arrays


def check_method(method: str) -> str:
    """``method`` if it is a key of :data:`REGISTRY`.

    Raises:
        ValueError: for an unknown method (the message lists the valid keys).
    """
    if method not in REGISTRY:
        raise ValueError(f"unknown heatmap method {method!r}; valid: {', '.join(REGISTRY)}")
    return method


def drawable_methods(has_fracture_map: bool) -> tuple[str, ...]:
    """The keys of :data:`REGISTRY` a model can draw, in order: a map from the forward pass needs a
    model with a fracture map of its own."""
    return tuple(key for key, method in REGISTRY.items() if method.source != FROM_FORWARD_PASS or has_fracture_map)


def method_info(method: str) -> HeatmapMethod:
    """The declaration of ``method``.

    Raises:
        ValueError: for an unknown method.
    """
    return REGISTRY[check_method(method)]


class HeatmapExplainer:
    """Every heatmap method for one model, built once and shared between threads.

    Grad-CAM is traced at construction; the tf-keras-vis visualisers are built on first use,
    each under its own lock, with ``clone=True`` so that
    :class:`~tf_keras_vis.utils.model_modifiers.ReplaceToLinear` edits a copy: the shared
    ``model`` keeps its softmax.

    Args:
        model: a functional Keras model with layers ``cam_layer`` and ``probabilities``.
        cam_layer: name of the last spatial feature-map layer (``metadata["cam_layer"]``).
        extra_outputs: further Keras tensors of ``model``'s graph that the Grad-CAM pass also
            returns (the classifier adds the radiograph check's activation summaries).
        default_method: what :meth:`explain` draws when no method is named (the classifier passes
            its metadata's ``default_heatmap``); by default the model's own fracture map where it
            has one, else Grad-CAM.
    """

    def __init__(self, model, cam_layer: str, extra_outputs=(), default_method: str | None = None):
        self.model = model
        self.cam_layer = cam_layer
        self.size = int(model.input_shape[1])
        self._grad_cam = _compile_grad_cam_pass(model, cam_layer, extra_outputs)
        self._fracture_cells = _compile_fracture_cells(model) if has_fracture_map(model) else None
        fallback = "fracturemap" if self._fracture_cells is not None else DEFAULT_METHOD
        self.default_method = check_method(default_method or fallback)
        self._visualisers: dict[str, object] = {}
        # One lock per method: building one visualiser must not block the others, and calls
        # are serialised per visualiser because Score-CAM goes through ``model.predict``, whose
        # lazily built predict function is not safe to create from two threads at once.
        self._locks = {name: threading.Lock() for name in METHODS}

    def explain(self, model_inputs: np.ndarray, method: str | None = None,
                class_index: int = FRACTURED) -> np.ndarray:
        """Heatmaps of the evidence for ``class_index``.

        Args:
            model_inputs: uint8 (N, S, S, 1) preprocessed images (the model rescales them itself,
                so they are fed as float32 of the 0..255 values).
            method: a key of :data:`REGISTRY`; None: :attr:`default_method`.
            class_index: the output to explain (1 = fractured, 0 = not fractured).

        Returns:
            float32 (N, S, S) in [0, 1], each map normalised to its own peak (an all-zero map,
            no evidence at all, stays zero).

        Raises:
            ValueError: for an unknown method.
        """
        source = method_info(method or self.default_method).source
        if source == FROM_GRADCAM_PASS:
            return self.grad_cam_pass(model_inputs, class_index).heatmaps
        if source == FROM_FORWARD_PASS:
            return self.fracture_map(model_inputs, class_index)
        return finish_maps(self._tf_keras_vis(np.asarray(model_inputs, np.float32), method or self.default_method,
                                              class_index), self.size)

    @property
    def methods(self) -> tuple[str, ...]:
        """The keys of :data:`REGISTRY` this model can draw (a map from the forward pass needs a
        model with a fracture map of its own)."""
        return drawable_methods(self._fracture_cells is not None)

    def fracture_map(self, model_inputs: np.ndarray, class_index: int = FRACTURED) -> np.ndarray:
        """The model's own map (see :func:`maps_from_cells`).

        Raises:
            ValueError: if the model has no :data:`FRACTURE_MAP_LAYER`.
        """
        if self._fracture_cells is None:
            raise ValueError(f"this model draws no fracture map of its own (no layer {FRACTURE_MAP_LAYER!r}); "
                             f"use one of: {', '.join(self.methods)}")
        cell_logits = self._fracture_cells(np.asarray(model_inputs, np.float32))
        return maps_from_cells(cell_logits.numpy(), self.size, class_index)

    def grad_cam_pass(self, model_inputs: np.ndarray, class_index: int = FRACTURED) -> GradCamPass:
        """Softmax probabilities, Grad-CAM maps and the extra outputs, from one forward pass."""
        import tensorflow as tf

        images = np.asarray(model_inputs, dtype=np.float32)
        probabilities, heatmaps, *extras = self._grad_cam(images, tf.constant(class_index, tf.int32))
        return GradCamPass(probabilities.numpy(), heatmaps.numpy(), tuple(extra.numpy() for extra in extras))

    def _tf_keras_vis(self, images: np.ndarray, method: str, class_index: int) -> np.ndarray:
        from tf_keras_vis.utils.scores import CategoricalScore

        score = CategoricalScore(class_index)
        with self._locks[method]:
            visualiser = self._visualiser(method)
            if method == "smoothgrad":
                # Saliency is already at input size; max |gradient| over the single channel.
                return visualiser(score, images, smooth_samples=SMOOTH_SAMPLES,
                                  smooth_noise=SMOOTH_NOISE, normalize_map=False)
            # seek_penultimate_conv_layer=False: the CAM layer is an Activation (after Add/BN),
            # and tf-keras-vis would otherwise walk back to an earlier Conv layer.
            # normalize_cam=False: tf-keras-vis min-max normalises (its minimum becomes 0 even
            # where there is evidence); we divide by the peak, as the compiled Grad-CAM does.
            # expand_cam=False: tf-keras-vis upsamples with scipy's corner-aligned zoom, which
            # shifts cells by up to half a cell (8 px at 192 px) from the pixels they see and
            # disagrees with the compiled Grad-CAM; we resize the same way Grad-CAM does.
            options = dict(penultimate_layer=self.cam_layer, seek_penultimate_conv_layer=False,
                           expand_cam=False, normalize_cam=False)
            if method == "scorecam":
                channels = self.model.get_layer(self.cam_layer).output.shape[-1]
                options["max_N"] = min(SCORECAM_MAX_N, channels)  # tf-keras-vis rejects more
            return visualiser(score, images, **options)

    def _visualiser(self, method: str):
        """The tf-keras-vis object for ``method``; the caller holds ``self._locks[method]``."""
        if method not in self._visualisers:
            import importlib

            from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

            module, _, name = REGISTRY[method].visualiser.rpartition(".")
            kind = getattr(importlib.import_module(module), name)
            # ReplaceToLinear: gradients of a softmax output mix in the other class and vanish
            # when the model is confident; the linear output is the logit the papers use.
            visualiser = kind(self.model, model_modifier=ReplaceToLinear(), clone=True)
            # Score-CAM calls ``predict`` without ``verbose``: silence the progress bar on the
            # clone only (the shared model and Keras's global logging are left alone).
            visualiser.model.predict = functools.partial(visualiser.model.predict, verbose=0)
            self._visualisers[method] = visualiser
        return self._visualisers[method]


def grad_cam_function(model, cam_layer: str, extra_outputs=()):
    """``(images, class_index) -> (probabilities, heatmaps, *extras)``, uncompiled.

    The one definition of the compiled Grad-CAM: :class:`HeatmapExplainer` compiles it for
    in-process use, and :mod:`core.export` traces it into a SavedModel, so both compute the
    same graph.

    The class score is the pre-softmax logit, as in the paper; it is recomputed from the output
    layer's weights so that the shared model is never modified.

    Args:
        model: a functional Keras model with layers ``cam_layer`` and ``probabilities``.
        cam_layer: name of the last spatial feature-map layer.
        extra_outputs: further Keras tensors of ``model``'s graph to return from the same pass.

    Returns:
        A function of float32 images (N, S, S, 1) in 0..255 and an int32 class index, returning
        softmax probabilities (N, classes), maps float32 (N, S, S) in [0, 1] each divided by its
        own peak, and the extras.
    """
    import keras
    import tensorflow as tf

    output_layer = model.get_layer(OUTPUT_LAYER)
    feature_model = keras.Model(model.inputs, [model.get_layer(cam_layer).output, output_layer.input,
                                               *extra_outputs])
    kernel, bias = output_layer.kernel, output_layer.bias
    size = model.input_shape[1]

    def classify_and_explain(images, class_index):
        with tf.GradientTape() as tape:
            features, penultimate, *extras = feature_model(images, training=False)
            tape.watch(features)
            # Recompute the head so the tape links the features to the pre-softmax score.
            logits = tf.matmul(penultimate, kernel) + bias
            score = tf.gather(logits, class_index, axis=1)
        gradients = tape.gradient(score, features)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cams = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1, keepdims=True))
        return (tf.nn.softmax(logits), finish_maps_in_graph(cams, size), *extras)

    return classify_and_explain


def graph_function(method: str, model, cam_layer: str | None):
    """``(images, class_index) -> (probabilities, heatmaps)``, uncompiled, for a method of
    :data:`TRACEABLE_METHODS`: what :mod:`core.export` traces into a SavedModel.

    Raises:
        ValueError: for a method computed outside one graph (tf-keras-vis's), or Grad-CAM without a
            CAM layer.
    """
    source = method_info(method).source
    if source == FROM_FORWARD_PASS:
        return fracture_map_function(model)
    if source == FROM_GRADCAM_PASS and cam_layer is not None:
        return grad_cam_function(model, cam_layer)
    raise ValueError(f"{METHODS[method]} cannot be traced into one graph; only "
                     f"{' and '.join(METHODS[key] for key in TRACEABLE_METHODS)} can")


def _compile_grad_cam_pass(model, cam_layer: str, extra_outputs=()):
    """:func:`grad_cam_function` as one ``tf.function``; ``class_index`` is a traced input, so
    one trace serves every class."""
    import tensorflow as tf

    size = model.input_shape[1]
    signature = [tf.TensorSpec((None, size, size, 1), tf.float32), tf.TensorSpec((), tf.int32)]
    # autograph=False: straight-line code, and AutoGraph would write its generated source to a
    # file in the temporary directory on the first trace.
    return tf.function(grad_cam_function(model, cam_layer, extra_outputs), input_signature=signature,
                       autograph=False)


def has_fracture_map(model) -> bool:
    """Whether ``model`` has a map of its own (a :data:`FRACTURE_MAP_LAYER` layer)."""
    return any(layer.name == FRACTURE_MAP_LAYER for layer in model.layers)


def fracture_cells(model):
    """The Keras tensor of ``model``'s per-cell fracture logits (N, g, g, 1)."""
    return model.get_layer(FRACTURE_MAP_LAYER).output


def maps_from_cells(cell_logits: np.ndarray, size: int, class_index: int = FRACTURED) -> np.ndarray:
    """Heatmaps (N, size, size) from cell logits (N, g, g, 1): each cell's P(fractured)
    (P(not fractured) for class 0), resized bilinearly to the input as Grad-CAM is, divided by
    its own peak. The one definition: the classifier's fused pass and the explainer both use it."""
    sign = 1.0 if class_index == FRACTURED else -1.0
    logits = np.asarray(cell_logits, np.float32)[..., 0]
    # float32 sigmoid; e^x may overflow to inf for a very negative logit, which gives 0 as it should.
    with np.errstate(over="ignore"):
        probabilities = (1.0 / (1.0 + np.exp(-sign * logits))).astype(np.float32)
    return finish_maps(probabilities, size)


def fracture_map_function(model):
    """``(images, class_index) -> (probabilities, heatmaps)`` in TensorFlow, uncompiled: the model's
    own map as :func:`maps_from_cells` draws it (sigmoid of the signed cell logits, resized
    bilinearly, each map divided by its peak), for :mod:`core.export` to trace into a SavedModel.

    In process the map comes from the verdict's own pass and :func:`maps_from_cells`, without
    eager TensorFlow ops; the export's tests hold the two to 1e-5.
    """
    import keras
    import tensorflow as tf

    both = keras.Model(model.inputs, [model.output, fracture_cells(model)])
    size = model.input_shape[1]

    def classify_and_explain(images, class_index):
        probabilities, cell_logits = both(images, training=False)
        sign = tf.where(tf.equal(class_index, FRACTURED), 1.0, -1.0)
        return probabilities, finish_maps_in_graph(tf.sigmoid(sign * cell_logits), size)

    return classify_and_explain


def _compile_fracture_cells(model):
    """``images -> cell logits`` as one ``tf.function``."""
    import keras
    import tensorflow as tf

    size = model.input_shape[1]
    cells = keras.Model(model.inputs, fracture_cells(model))
    signature = [tf.TensorSpec((None, size, size, 1), tf.float32)]
    return tf.function(lambda images: cells(images, training=False), input_signature=signature, autograph=False)


def finish_maps(maps, size: int) -> np.ndarray:
    """The one post-processing step of every map computed outside a TensorFlow graph: float32
    (N, size, size), resized bilinearly to the model input where it is coarser, NaN/inf and
    negatives set to 0, each map divided by its own peak (an all-zero map stays zero).

    :func:`finish_maps_in_graph` is the same step for the compiled and exported graphs.
    """
    import cv2

    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if maps.shape[1:] != (size, size):
        # OpenCV's bilinear resize samples at half-pixel centres, as tf.image.resize does (equal to
        # about 1e-7), without eager TensorFlow ops: about 1.3 ms less per upload.
        resized = [cv2.resize(one, (size, size), interpolation=cv2.INTER_LINEAR) for one in maps]
        maps = np.stack(resized) if resized else np.zeros((0, size, size), np.float32)
    return _normalise(maps)


def finish_maps_in_graph(maps, size: int):
    """:func:`finish_maps` in TensorFlow, for maps (N, g, g, 1) already non-negative: resized
    bilinearly to (N, size, size) and each divided by its own peak."""
    import tensorflow as tf

    maps = tf.image.resize(maps, (size, size), method="bilinear")[..., 0]
    return tf.math.divide_no_nan(maps, tf.reduce_max(maps, axis=(1, 2), keepdims=True))


def _normalise(maps: np.ndarray) -> np.ndarray:
    """float32 (N, S, S): negatives -> 0, each map divided by its own peak."""
    maps = np.maximum(maps, 0.0)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    # An all-zero map (no evidence for the class) stays zero instead of dividing by zero.
    maps = np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)
    return np.clip(maps, 0.0, 1.0)
