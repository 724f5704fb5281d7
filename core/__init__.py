"""Bone fracture detection, as served: read a radiograph, classify it, explain the verdict.

The public API is small: load, classify, decide, draw.

    >>> from core import FractureClassifier
    >>> classifier = FractureClassifier.load()               # the model shipped in models/
    >>> result = classifier.classify(open("xray.jpg", "rb").read(), heatmap=classifier.default_heatmap)
    >>> result.probability_fractured, result.decision(classifier.thresholds["screening"])

``core`` never imports ``training``, ``pages`` or streamlit. TensorFlow is imported only when a
model is loaded, so reading and preprocessing images stays light.
"""

import importlib

# Public name -> the module that defines it. Loaded on first use (PEP 562), so that importing a
# light module such as ``core.config`` does not import the classifier, NumPy's stack and Keras.
_EXPORTS = {
    "FractureClassifier": "core.classifier",
    "ImageResult": "core.classifier",
    "Classifier": "core.classifier",
    "HeatmapExplainer": "core.heatmaps",
    "METHODS": "core.heatmaps",
    "REGISTRY": "core.heatmaps",
    "SUPPORTED_FORMATS": "core.imaging",
    "DecodedImage": "core.imaging",
    "ImageReadError": "core.imaging",
    "decode_image": "core.imaging",
    "read_image": "core.imaging",
    "encode_png": "core.overlay",
    "heatmap_to_image": "core.overlay",
    "overlay_heatmap": "core.overlay",
    "overlay_on_original": "core.overlay",
    "PreprocessConfig": "core.preprocessing",
    "preprocess": "core.preprocessing",
    "PRESETS": "core.thresholds",
    "OperatingThresholds": "core.thresholds",
    "decide": "core.thresholds",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
