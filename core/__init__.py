"""Bone fracture detection, as served: read a radiograph, classify it, explain the verdict.

The public API is small: load, classify, decide, draw.

    >>> from core import FractureClassifier
    >>> classifier = FractureClassifier.load()               # the model shipped in models/
    >>> result = classifier.classify(open("xray.jpg", "rb").read(), heatmap=classifier.default_heatmap)
    >>> result.probability_fractured, result.decision(classifier.thresholds["screening"])

``core`` never imports ``training``, ``pages`` or streamlit. TensorFlow is imported only when a
model is loaded, so reading and preprocessing images stays light.
"""

from core.classifier import FractureClassifier, ImageResult
from core.heatmaps import METHODS, HeatmapExplainer
from core.imaging import SUPPORTED_FORMATS, DecodedImage, ImageReadError, decode_image, read_image
from core.overlay import encode_png, heatmap_to_image, overlay_heatmap, overlay_on_original
from core.preprocessing import PreprocessConfig, preprocess
from core.thresholds import PRESETS, OperatingThresholds, decide

__all__ = [
    "FractureClassifier",
    "HeatmapExplainer",
    "DecodedImage",
    "ImageReadError",
    "ImageResult",
    "METHODS",
    "OperatingThresholds",
    "PRESETS",
    "PreprocessConfig",
    "SUPPORTED_FORMATS",
    "decide",
    "decode_image",
    "encode_png",
    "heatmap_to_image",
    "overlay_heatmap",
    "overlay_on_original",
    "preprocess",
    "read_image",
]
