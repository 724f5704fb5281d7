"""Bone fracture detection: read radiographs, classify them, explain the verdict.

The public API is small: read an image, load the classifier, classify, explain.

    >>> from core import FractureClassifier, GradCam
    >>> classifier = FractureClassifier.load()
    >>> result = classifier.classify(open("xray.jpg", "rb").read())
    >>> result.probability_fractured

TensorFlow is imported only when a model is loaded or built, so reading and preprocessing
images stays light.
"""

from core.cam_methods import METHODS as HEATMAP_METHODS, Explainer
from core.explain import GradCam, heatmap_to_image, overlay_heatmap
from core.imaging import SUPPORTED_FORMATS, ImageReadError, read_image
from core.inference import Classification, FractureClassifier, decide
from core.preprocessing import PreprocessConfig, preprocess

__all__ = [
    "Classification",
    "Explainer",
    "FractureClassifier",
    "GradCam",
    "HEATMAP_METHODS",
    "ImageReadError",
    "PreprocessConfig",
    "SUPPORTED_FORMATS",
    "decide",
    "heatmap_to_image",
    "overlay_heatmap",
    "preprocess",
    "read_image",
]
