"""The naive ways the fast path is compared against, run in the same process on the same inputs.

* ``model.predict`` for one image (builds a data pipeline on every call);
* tf-keras-vis visualisers rebuilt for every call (``clone=True`` copies the model each time),
  called with the same options as :class:`core.heatmaps.HeatmapExplainer`, so that rebuilding is
  the only difference from ours;
* tf-keras-vis's own Grad-CAM built once (:class:`TfKerasVisGradcam`): the library the compiled
  Grad-CAM replaces, for its speed and for the agreement of the maps (bench/agreement.py);
* the overlay as the app drew it before this work (matplotlib colormap on every pixel, float64
  blend) and Pillow's PNG encoder (level 1 as the app used; level 6 is Pillow's default).
"""

from __future__ import annotations

import functools
import io

import cv2
import numpy as np

from core.config import FRACTURED
from core.heatmaps import SCORECAM_MAX_N, SMOOTH_NOISE, SMOOTH_SAMPLES
from core.imaging import read_image
from core.overlay import heatmap_to_image
from core.preprocessing import preprocess


def predict_probability(model, model_input: np.ndarray) -> float:
    """Uncalibrated P(fractured) of one preprocessed image through ``model.predict``."""
    return float(model.predict(model_input[np.newaxis].astype(np.float32), verbose=0)[0, FRACTURED])


def build_visualiser(model, method: str):
    """A new tf-keras-vis visualiser for ``method``, built as the style guide prescribes."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.layercam import Layercam
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    kinds = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus, "layercam": Layercam,
             "scorecam": Scorecam, "smoothgrad": Saliency}
    visualiser = kinds[method](model, model_modifier=ReplaceToLinear(), clone=True)
    visualiser.model.predict = functools.partial(visualiser.model.predict, verbose=0)  # Score-CAM's bar
    return visualiser


def visualiser_maps(visualiser, method: str, images: np.ndarray, cam_layer: str) -> np.ndarray:
    """Maps (N, S, S) from a tf-keras-vis visualiser, with the options core.heatmaps uses (so the
    rebuilt Score-CAM and SmoothGrad do the same work as ours)."""
    from tf_keras_vis.utils.scores import CategoricalScore

    score = CategoricalScore(FRACTURED)
    images = np.asarray(images, np.float32)
    if method == "smoothgrad":
        return np.asarray(visualiser(score, images, smooth_samples=SMOOTH_SAMPLES,
                                     smooth_noise=SMOOTH_NOISE, normalize_map=False))
    options = dict(penultimate_layer=cam_layer, seek_penultimate_conv_layer=False,
                   expand_cam=False, normalize_cam=False)
    if method == "scorecam":
        channels = visualiser.model.get_layer(cam_layer).output.shape[-1]
        options["max_N"] = min(SCORECAM_MAX_N, channels)
    cams = np.asarray(visualiser(score, images, **options), np.float32)
    size = images.shape[1]
    return np.stack([cv2.resize(cam, (size, size), interpolation=cv2.INTER_LINEAR) for cam in cams])


def rebuilt_maps(model, method: str, images: np.ndarray, cam_layer: str) -> np.ndarray:
    """What a page that builds its visualiser per request pays: build, then call once."""
    return visualiser_maps(build_visualiser(model, method), method, images, cam_layer)


class TfKerasVisGradcam:
    """tf-keras-vis's Grad-CAM, built once and reused: ``(N, S, S, 1)`` inputs -> unit maps (N, S, S).

    Called with the options core.heatmaps gives the other tf-keras-vis methods (the CAM layer
    named, no min-max normalisation, bilinear resize to the input size) and normalised like the
    compiled Grad-CAM, so the maps compare pixel for pixel.
    """

    def __init__(self, model, cam_layer: str):
        self.cam_layer = cam_layer
        self.visualiser = build_visualiser(model, "gradcam")

    def __call__(self, model_inputs: np.ndarray) -> np.ndarray:
        return unit_maps(visualiser_maps(self.visualiser, "gradcam", model_inputs, self.cam_layer))


def unit_maps(maps: np.ndarray) -> np.ndarray:
    """Negatives to zero, each map divided by its peak (as core.heatmaps normalises)."""
    maps = np.maximum(np.nan_to_num(maps), 0.0)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)


def matplotlib_overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.4,
                       colormap: str = "jet") -> np.ndarray:
    """core.overlay.overlay_heatmap as it was before the colour table, checks included (verbatim)."""
    import matplotlib

    if image.shape != heatmap.shape or image.ndim != 2:
        raise ValueError(f"image and heatmap must be 2-D and the same shape; got {image.shape} and {heatmap.shape}")
    for name, values in (("image", image), ("heatmap", heatmap)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} values must be finite and in [0, 1]; got NaN or infinity")
        if values.size and (values.min() < 0.0 or values.max() > 1.0):
            raise ValueError(f"{name} values must be finite and in [0, 1]; got [{values.min():.3g}, {values.max():.3g}]")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1]; got {opacity}")
    if colormap not in matplotlib.colormaps:
        raise ValueError(f"unknown colormap {colormap!r}; try one of: jet, inferno, viridis, magma, turbo")
    coloured = matplotlib.colormaps[colormap](heatmap)[..., :3]
    grey = np.repeat(image[..., np.newaxis], 3, axis=-1)
    blended = (1.0 - opacity) * grey + opacity * coloured
    return np.round(np.clip(blended, 0.0, 1.0) * 255.0).astype(np.uint8)


def pillow_png(rgb: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes through Pillow; level 1 is what core.overlay.encode_png used before, 6 the default."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def naive_whole_path(model, config, cam_layer: str, threshold: float, data: bytes) -> tuple[str, bytes]:
    """Bytes -> verdict -> Grad-CAM -> overlay PNG the way peers do it: ``model.predict``, a
    tf-keras-vis Gradcam rebuilt per request, a matplotlib overlay and Pillow's default PNG."""
    image = read_image(data)
    model_input = preprocess(image, config)
    probability = predict_probability(model, model_input)
    verdict = "fractured" if probability >= threshold else "not_fractured"
    heatmap = unit_maps(rebuilt_maps(model, "gradcam", model_input[np.newaxis], cam_layer))[0]
    overlay = matplotlib_overlay(image, heatmap_to_image(heatmap, image.shape, config))
    return verdict, pillow_png(overlay)
