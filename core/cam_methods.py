"""Heatmap methods for the "fractured" output, built once per model and shared between threads.

Every method explains class index :data:`core.config.FRACTURED` of the softmax layer
``probabilities`` and returns one map per image at the model's input size, in [0, 1].

* Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391): our compiled
  :class:`core.explain.GradCam`, the fast path.
* Grad-CAM++ (Chattopadhay et al., WACV 2018, arXiv:1710.11063).
* Score-CAM (Wang et al., CVPR Workshops 2020, arXiv:1910.01279), in its "Faster Score-CAM"
  form that keeps only the highest-variance feature maps (tabayashi0117/Score-CAM).
* Layer-CAM (Jiang et al., IEEE TIP 2021, doi:10.1109/TIP.2021.3089943).
* SmoothGrad (Smilkov et al., 2017, arXiv:1706.03825) on vanilla gradient saliency
  (Simonyan et al., 2014, arXiv:1312.6034).

All but Grad-CAM come from tf-keras-vis (Kubota, https://github.com/keisen/tf-keras-vis).
"""

from __future__ import annotations

import functools
import threading
import warnings

import numpy as np

from core.config import FRACTURED

METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "scorecam": "Score-CAM (faster)",
    "layercam": "Layer-CAM",
    "smoothgrad": "SmoothGrad saliency",
}

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


# tf-keras-vis passes inputs to Keras 3 functional models as a one-element list; Keras warns on
# every call although the result is the same. Only that message, only from Keras, is silenced.
warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match",
                        category=UserWarning, module="keras")


def _normalise(maps) -> np.ndarray:
    """float32 (N, S, S): NaN/inf -> 0, negatives -> 0, each map divided by its own peak."""
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    maps = np.maximum(maps, 0.0)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    # An all-zero map (no evidence for a fracture) stays zero instead of dividing by zero.
    maps = np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)
    return np.clip(maps, 0.0, 1.0)


class Explainer:
    """Builds every visualiser ONCE for a model (the app caches one per process and shares it
    between threads).

    The tf-keras-vis visualisers are built lazily on first use, each under its own lock, with
    ``clone=True`` so that :class:`~tf_keras_vis.utils.model_modifiers.ReplaceToLinear` edits a
    copy: the shared ``model`` keeps its softmax.

    Args:
        model: a model from :mod:`core.model` (layers ``cam_layer`` and ``probabilities``).
        cam_layer: name of the last spatial feature-map layer (``metadata["cam_layer"]``).
    """

    def __init__(self, model, cam_layer: str):
        from core.explain import GradCam

        self.model = model
        self.cam_layer = cam_layer
        self.size = int(model.input_shape[1])
        self._gradcam = GradCam(model, cam_layer)
        self._visualisers: dict[str, object] = {}
        # One lock per method: building one visualiser must not block the others, and calls
        # are serialised per visualiser because Score-CAM goes through ``model.predict``, whose
        # lazily built predict function is not safe to create from two threads at once.
        self._locks = {name: threading.Lock() for name in (*METHODS, "tfkv-gradcam")}

    def _visualiser(self, method: str):
        """The tf-keras-vis object for ``method``; caller holds ``self._locks[method]``."""
        if method not in self._visualisers:
            from tf_keras_vis.gradcam import Gradcam
            from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
            from tf_keras_vis.layercam import Layercam
            from tf_keras_vis.saliency import Saliency
            from tf_keras_vis.scorecam import Scorecam
            from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

            kinds = {"tfkv-gradcam": Gradcam, "gradcam++": GradcamPlusPlus, "scorecam": Scorecam,
                     "layercam": Layercam, "smoothgrad": Saliency}
            # ReplaceToLinear: gradients of a softmax output mix in the other class and vanish
            # when the model is confident; the linear output is the logit the papers use.
            visualiser = kinds[method](self.model, model_modifier=ReplaceToLinear(), clone=True)
            # Score-CAM calls ``predict`` without ``verbose``: silence the progress bar on the
            # clone only (the shared model and Keras's global logging are left alone).
            visualiser.model.predict = functools.partial(visualiser.model.predict, verbose=0)
            self._visualisers[method] = visualiser
        return self._visualisers[method]

    def build_all(self) -> None:
        """Builds every visualiser now (e.g. at app start-up) instead of on first use."""
        for method in ("gradcam++", "scorecam", "layercam", "smoothgrad"):
            with self._locks[method]:
                self._visualiser(method)

    def explain(self, model_inputs: np.ndarray, method: str = "gradcam") -> np.ndarray:
        """Heatmaps of the evidence for "fractured".

        Args:
            model_inputs: uint8 (N, S, S, 1) preprocessed images (the model rescales them itself,
                so they are fed as float32 of the 0..255 values).
            method: a key of :data:`METHODS`.

        Returns:
            float32 (N, S, S) in [0, 1], each map normalised to its own max (an all-zero map
            stays zero).

        Raises:
            ValueError: for an unknown method (the message lists the valid keys).
        """
        if method not in METHODS:
            raise ValueError(f"unknown heatmap method {method!r}; valid: {', '.join(METHODS)}")
        images = np.asarray(model_inputs, dtype=np.float32)
        if method == "gradcam":
            return _normalise(self._gradcam(images))
        return _normalise(self._tf_keras_vis(images, method))

    def tf_keras_vis_gradcam(self, model_inputs: np.ndarray) -> np.ndarray:
        """tf-keras-vis's own Grad-CAM, to check the compiled fast path against (tests)."""
        return _normalise(self._tf_keras_vis(np.asarray(model_inputs, np.float32), "tfkv-gradcam"))

    def _tf_keras_vis(self, images: np.ndarray, method: str) -> np.ndarray:
        from tf_keras_vis.utils.scores import CategoricalScore

        score = CategoricalScore(FRACTURED)
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

    def _to_input_size(self, cams) -> np.ndarray:
        import tensorflow as tf

        cams = tf.convert_to_tensor(np.asarray(cams, np.float32))[..., tf.newaxis]
        return tf.image.resize(cams, (self.size, self.size), method="bilinear")[..., 0].numpy()
