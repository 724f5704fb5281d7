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

METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "scorecam": "Score-CAM",  # the "Faster Score-CAM" variant; still among the slow methods here
    "layercam": "Layer-CAM",
    "smoothgrad": "SmoothGrad saliency",
    "fracturemap": "Fracture map (the model's own)",
}
DEFAULT_METHOD = "gradcam"

# Measured on the shipped 192 px model, one image, shared 2-core CPU, after warm-up: Grad-CAM 4 ms,
# Grad-CAM++ 55 ms, Layer-CAM 50 ms, Score-CAM (max_N=10) 190 ms, SmoothGrad (20 samples) 1.1 s.
SLOW_METHODS = frozenset({"scorecam", "smoothgrad"})

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
    """``method`` if it is a key of :data:`METHODS`.

    Raises:
        ValueError: for an unknown method (the message lists the valid keys).
    """
    if method not in METHODS:
        raise ValueError(f"unknown heatmap method {method!r}; valid: {', '.join(METHODS)}")
    return method


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
    """

    def __init__(self, model, cam_layer: str, extra_outputs=()):
        self.model = model
        self.cam_layer = cam_layer
        self.size = int(model.input_shape[1])
        self._grad_cam = _compile_grad_cam_pass(model, cam_layer, extra_outputs)
        self._fracture_cells = _compile_fracture_cells(model) if has_fracture_map(model) else None
        self._visualisers: dict[str, object] = {}
        # One lock per method: building one visualiser must not block the others, and calls
        # are serialised per visualiser because Score-CAM goes through ``model.predict``, whose
        # lazily built predict function is not safe to create from two threads at once.
        self._locks = {name: threading.Lock() for name in METHODS}

    def explain(self, model_inputs: np.ndarray, method: str = DEFAULT_METHOD,
                class_index: int = FRACTURED) -> np.ndarray:
        """Heatmaps of the evidence for ``class_index``.

        Args:
            model_inputs: uint8 (N, S, S, 1) preprocessed images (the model rescales them itself,
                so they are fed as float32 of the 0..255 values).
            method: a key of :data:`METHODS`.
            class_index: the output to explain (1 = fractured, 0 = not fractured).

        Returns:
            float32 (N, S, S) in [0, 1], each map normalised to its own peak (an all-zero map,
            no evidence at all, stays zero).

        Raises:
            ValueError: for an unknown method.
        """
        check_method(method)
        if method == "gradcam":
            return self.grad_cam_pass(model_inputs, class_index).heatmaps
        if method == "fracturemap":
            return self.fracture_map(model_inputs, class_index)
        return _normalise(self._tf_keras_vis(np.asarray(model_inputs, np.float32), method, class_index))

    @property
    def methods(self) -> tuple[str, ...]:
        """The keys of :data:`METHODS` this model can draw."""
        return tuple(name for name in METHODS if name != "fracturemap" or self._fracture_cells is not None)

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
            cams = visualiser(score, images, **options)
        return self._to_input_size(cams)

    def _visualiser(self, method: str):
        """The tf-keras-vis object for ``method``; the caller holds ``self._locks[method]``."""
        if method not in self._visualisers:
            from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
            from tf_keras_vis.layercam import Layercam
            from tf_keras_vis.saliency import Saliency
            from tf_keras_vis.scorecam import Scorecam
            from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

            kinds = {"gradcam++": GradcamPlusPlus, "scorecam": Scorecam, "layercam": Layercam,
                     "smoothgrad": Saliency}
            # ReplaceToLinear: gradients of a softmax output mix in the other class and vanish
            # when the model is confident; the linear output is the logit the papers use.
            visualiser = kinds[method](self.model, model_modifier=ReplaceToLinear(), clone=True)
            # Score-CAM calls ``predict`` without ``verbose``: silence the progress bar on the
            # clone only (the shared model and Keras's global logging are left alone).
            visualiser.model.predict = functools.partial(visualiser.model.predict, verbose=0)
            self._visualisers[method] = visualiser
        return self._visualisers[method]

    def _to_input_size(self, cams) -> np.ndarray:
        import tensorflow as tf

        cams = tf.convert_to_tensor(np.asarray(cams, np.float32))[..., tf.newaxis]
        return tf.image.resize(cams, (self.size, self.size), method="bilinear")[..., 0].numpy()


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
        cams = tf.image.resize(cams, (size, size), method="bilinear")[..., 0]
        peak = tf.reduce_max(cams, axis=(1, 2), keepdims=True)
        return (tf.nn.softmax(logits), tf.math.divide_no_nan(cams, peak), *extras)

    return classify_and_explain


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
    import cv2

    sign = 1.0 if class_index == FRACTURED else -1.0
    logits = np.asarray(cell_logits, np.float32)[..., 0]
    # float32 sigmoid; e^x may overflow to inf for a very negative logit, which gives 0 as it should.
    with np.errstate(over="ignore"):
        probabilities = (1.0 / (1.0 + np.exp(-sign * logits))).astype(np.float32)
    # OpenCV's bilinear resize samples at half-pixel centres, as tf.image.resize does (equal to
    # about 1e-7), without eager TensorFlow ops: about 1.3 ms less per upload.
    resized = [cv2.resize(cells, (size, size), interpolation=cv2.INTER_LINEAR) for cells in probabilities]
    return _normalise(np.stack(resized) if resized else np.zeros((0, size, size), np.float32))


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
        maps = tf.image.resize(tf.sigmoid(sign * cell_logits), (size, size), method="bilinear")[..., 0]
        peak = tf.reduce_max(maps, axis=(1, 2), keepdims=True)
        return probabilities, tf.math.divide_no_nan(maps, peak)

    return classify_and_explain


def _compile_fracture_cells(model):
    """``images -> cell logits`` as one ``tf.function``."""
    import keras
    import tensorflow as tf

    size = model.input_shape[1]
    cells = keras.Model(model.inputs, fracture_cells(model))
    signature = [tf.TensorSpec((None, size, size, 1), tf.float32)]
    return tf.function(lambda images: cells(images, training=False), input_signature=signature, autograph=False)


def _normalise(maps) -> np.ndarray:
    """float32 (N, S, S): NaN/inf -> 0, negatives -> 0, each map divided by its own peak."""
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    maps = np.maximum(maps, 0.0)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    # An all-zero map (no evidence for the class) stays zero instead of dividing by zero.
    maps = np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)
    return np.clip(maps, 0.0, 1.0)
