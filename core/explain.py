"""Grad-CAM heatmaps: compute (a float map in [0, 1]), map back to the image, overlay.

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017) weights the last conv feature maps by the spatially
averaged gradient of the class score and keeps the positive part. The class score is the
pre-softmax logit of "fractured", as in the paper; it is computed from the final dense layer's
weights so the shared model is never modified.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from core.config import FRACTURED
from core.preprocessing import PreprocessConfig, content_box

OUTPUT_LAYER = "probabilities"


def compile_grad_cam_pass(model, cam_layer: str, extra_outputs=()):
    """One compiled pass that classifies and explains: ``images -> (probabilities, heatmaps, *extras)``.

    Args:
        model: a model from :mod:`core.model` (has layers ``cam_layer`` and ``probabilities``).
        cam_layer: name of the feature-map layer to explain.
        extra_outputs: further Keras tensors of ``model``'s graph to return from the same pass
            (the classifier adds the activation summaries of :mod:`core.ood`).

    Returns:
        A ``tf.function`` taking float32 images (N, S, S, 1) in 0..255 and returning softmax
        probabilities (N, 2), Grad-CAM maps (N, S, S) in [0, 1], then the extras.
    """
    import keras
    import tensorflow as tf

    output_layer = model.get_layer(OUTPUT_LAYER)
    feature_model = keras.Model(model.inputs, [model.get_layer(cam_layer).output, output_layer.input,
                                               *extra_outputs])
    kernel, bias = output_layer.kernel, output_layer.bias
    size = model.input_shape[1]

    def classify_and_explain(images):
        with tf.GradientTape() as tape:
            features, penultimate, *extras = feature_model(images, training=False)
            tape.watch(features)
            # Recompute the head so the tape links the features to the pre-softmax score.
            logits = tf.matmul(penultimate, kernel) + bias
            score = logits[:, FRACTURED]
        gradients = tape.gradient(score, features)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cams = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1, keepdims=True))
        cams = tf.image.resize(cams, (size, size), method="bilinear")[..., 0]
        peak = tf.reduce_max(cams, axis=(1, 2), keepdims=True)
        return (tf.nn.softmax(logits), tf.math.divide_no_nan(cams, peak), *extras)

    signature = [tf.TensorSpec((None, size, size, 1), tf.float32)]
    # autograph=False: straight-line code, and AutoGraph would write its generated source to a
    # file in the temporary directory on the first trace.
    return tf.function(classify_and_explain, input_signature=signature, autograph=False)


class GradCam:
    """A compiled Grad-CAM for one model; build once, call from any thread.

    Args:
        model: a model from :mod:`core.model` (has layers ``cam_layer`` and ``probabilities``).
        cam_layer: name of the feature-map layer to explain.
    """

    def __init__(self, model, cam_layer: str):
        self._pass = compile_grad_cam_pass(model, cam_layer)

    def __call__(self, model_inputs: np.ndarray) -> np.ndarray:
        """Heatmaps for preprocessed uint8 images (N, S, S, 1): float32 (N, S, S) in [0, 1]."""
        return self._pass(np.asarray(model_inputs, dtype=np.float32))[1].numpy()


def heatmap_to_image(heatmap: np.ndarray, image_shape: tuple[int, int], config: PreprocessConfig) -> np.ndarray:
    """Maps a model-input heatmap (S, S) back onto the original image (H, W).

    Crops away the letterbox padding, then resizes to the image's shape.
    """
    top, left, height, width = content_box(image_shape, config)
    cropped = heatmap[top : top + height, left : left + width]
    resized = cv2.resize(cropped, (image_shape[1], image_shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, *, opacity: float = 0.4,
                    colormap: str = "jet") -> np.ndarray:
    """Blends a heatmap over a grey image.

    Args:
        image: float (H, W) grey image in [0, 1].
        heatmap: float (H, W) map in [0, 1], same shape as ``image``.
        opacity: weight of the heatmap, in [0, 1].
        colormap: a matplotlib colormap name.

    Returns:
        uint8 RGB array (H, W, 3).

    Raises:
        ValueError: on mismatched shapes, values outside [0, 1] or an unknown colormap.
    """
    if image.shape != heatmap.shape or image.ndim != 2:
        raise ValueError(f"image and heatmap must be 2-D and the same shape; got {image.shape} and {heatmap.shape}")
    for name, values in (("image", image), ("heatmap", heatmap)):
        _check_unit_range(name, values)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1]; got {opacity}")
    table = _colormap_table(colormap)
    # The same arithmetic as blending matplotlib's colours pixel by pixel, so the bytes are
    # identical; looking colours up in the colormap's own table, one channel at a time, is about
    # twice as fast as calling the colormap on every pixel (bench/, docs/performance.md).
    colours = opacity * table
    grey = (1.0 - opacity) * image
    index = _colormap_index(heatmap, len(table))
    blended = np.empty((*image.shape, 3), dtype=np.uint8)
    for channel in range(3):
        values = colours[:, channel].take(index)
        values += grey
        values *= 255.0
        # No clip: every term is in [0, 1], so rounding error cannot leave [0, 255.5).
        blended[..., channel] = np.rint(values, out=values)
    return blended


def _check_unit_range(name: str, values: np.ndarray) -> None:
    if not values.size:
        return
    # min and max propagate NaN and show infinities: two passes instead of an isfinite mask.
    low, high = float(values.min()), float(values.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} values must be finite and in [0, 1]; got NaN or infinity")
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{name} values must be finite and in [0, 1]; got [{low:.3g}, {high:.3g}]")


@functools.lru_cache(maxsize=32)
def _colormap_table(colormap: str) -> np.ndarray:
    """The colormap's N RGB entries as float64 (N, 3), read-only; built once per name."""
    import matplotlib

    if colormap not in matplotlib.colormaps:
        raise ValueError(f"unknown colormap {colormap!r}; try one of: jet, inferno, viridis, magma, turbo")
    lookup = matplotlib.colormaps[colormap]
    table = lookup(np.arange(lookup.N))[:, :3]
    table.setflags(write=False)
    return table


def _colormap_index(heatmap: np.ndarray, entries: int) -> np.ndarray:
    """The table row matplotlib picks for each value in [0, 1]: floor(value × N), 1.0 -> N - 1."""
    index_type = np.uint8 if entries <= 256 else np.intp
    return np.minimum(heatmap * entries, entries - 1).astype(index_type)


def overlay_on_original(image: np.ndarray, model_heatmap: np.ndarray, config: PreprocessConfig, *,
                        opacity: float = 0.4, colormap: str = "jet") -> np.ndarray:
    """A model-input heatmap (S, S) mapped onto the original image and blended: uint8 RGB (H, W, 3)."""
    heatmap = heatmap_to_image(model_heatmap, image.shape, config)
    return overlay_heatmap(image, heatmap, opacity=opacity, colormap=colormap)


DISPLAY_LONG_SIDE = 800


def fit_for_display(image: np.ndarray, max_side: int = DISPLAY_LONG_SIDE) -> np.ndarray:
    """A copy of a grey image no longer than ``max_side`` on its long side.

    A screen column is under 800 px wide; overlaying and encoding a 3,000 px scan at full size
    costs hundreds of milliseconds and shows nothing more.
    """
    height, width = image.shape
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.clip(cv2.resize(image, size, interpolation=cv2.INTER_AREA), 0.0, 1.0)


_PNG_OPTIONS = [
    # zlib level 1 with run-length matching after the "up" row filter: for overlays and
    # radiographs about 2.2x faster than Pillow at level 1 and 3-20 % smaller (bench/,
    # docs/performance.md).
    cv2.IMWRITE_PNG_COMPRESSION, 1,
    cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
]
_TO_OPENCV_ORDER = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image, built in memory (nothing is written to disk).

    Args:
        rgb: uint8 array (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey.

    Raises:
        ValueError: for another dtype or shape.
    """
    if rgb.dtype != np.uint8 or not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[-1] in _TO_OPENCV_ORDER)):
        raise ValueError(f"expected a uint8 (H, W), (H, W, 3) or (H, W, 4) array; got {rgb.dtype} {rgb.shape}")
    if rgb.ndim == 3:
        rgb = cv2.cvtColor(rgb, _TO_OPENCV_ORDER[rgb.shape[-1]])  # OpenCV writes BGR(A)
    encoded, png = cv2.imencode(".png", rgb, _PNG_OPTIONS)
    if not encoded:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} image as PNG")
    return png.tobytes()
