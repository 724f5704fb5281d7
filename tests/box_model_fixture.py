"""A model of the box-supervised kind (a fracture map of its own, ``default_heatmap: "fracturemap"``)
for the tests of the app, the CLI and the deployment: a tiny one built here by hand with the layer
names of :func:`training.model.build_box_model`, so that no data or pretrained weights are needed.

Import the fixtures into a test module (``from tests.box_model_fixture import box_model_dir,
box_classifier  # noqa: F401``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.config import METADATA_FILENAME, MODEL_FILENAME

TINY_SIZE = 32  # input side; the map has TINY_SIZE / CELL_PX cells a side
CELL_PX = 4
TINY_THRESHOLDS = {"screening": 0.3, "balanced": 0.5, "specific": 0.7}


def build_tiny_box_model(size: int = TINY_SIZE):
    """A box model with set weights: each cell's fracture logit rises with the cell's mean brightness
    (``8 · mean / 255 - 4``), so the map peaks on the brightest part of the image.

    The layers the project reads are named as :func:`training.model.build_box_model` names them:
    ``cam_features`` (an Activation, the CAM layer and the radiograph check's summary),
    ``fracture_map`` (a 1×1 conv to one logit per cell), :class:`core.layers.LogMeanExpPooling`
    and ``probabilities`` (the fixed 2-unit softmax of the pooled logit).
    """
    import keras
    from keras import layers

    from core.layers import LogMeanExpPooling

    inputs = keras.Input((size, size, 1))
    brightness = layers.AveragePooling2D(CELL_PX, name="cell_brightness")(inputs)  # 0..255 per cell
    scaled = layers.Conv2D(1, 1, name="cell_hidden")(brightness)
    features = layers.Activation("relu", name="cam_features")(scaled)
    cell_logits = layers.Conv2D(1, 1, name="fracture_map")(features)
    image_logit = LogMeanExpPooling(name="image_logit")(cell_logits)
    output = layers.Dense(2, activation="softmax", name="probabilities")
    probabilities = output(image_logit)
    model = keras.Model(inputs, probabilities, name="tiny_box_head")
    model.get_layer("cell_hidden").set_weights([np.full((1, 1, 1, 1), 1 / 255, np.float32), np.zeros(1, np.float32)])
    model.get_layer("fracture_map").set_weights([np.full((1, 1, 1, 1), 8.0, np.float32),
                                                 np.full(1, -4.0, np.float32)])
    output.set_weights([np.array([[-0.5, 0.5]], np.float32), np.zeros(2, np.float32)])
    return model


def tiny_metadata(size: int = TINY_SIZE) -> dict:
    """metadata.json as the box trainer writes it, for the tiny model."""
    return {"model_file": MODEL_FILENAME, "model_version": "tiny-box-test", "architecture": "box_head",
            "input_size": size, "class_names": ["not_fractured", "fractured"],
            "preprocessing": {"image_size": size, "aspect": "pad", "contrast": "none"},
            "cam_layer": "cam_features", "fracture_map_layer": "fracture_map", "default_heatmap": "fracturemap",
            "thresholds": TINY_THRESHOLDS, "temperature": 1.0}


def write_tiny_box_model(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    build_tiny_box_model().save(directory / MODEL_FILENAME)
    (directory / METADATA_FILENAME).write_text(json.dumps(tiny_metadata(), indent=2))
    return directory


@pytest.fixture(scope="module")
def box_model_dir(tmp_path_factory) -> Path:
    """A folder holding the tiny box model and its metadata."""
    return write_tiny_box_model(tmp_path_factory.mktemp("box-model") / "model")


@pytest.fixture(scope="module")
def box_classifier(box_model_dir):
    """The box model loaded once per module and model."""
    from core.classifier import FractureClassifier

    return FractureClassifier.load(box_model_dir)
