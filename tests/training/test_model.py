"""Tests for training.model: every architecture builds, has the expected interface and a CAM layer."""

import keras
import numpy as np
import pytest

from training.model import ARCHITECTURES, CAM_LAYER, build_model


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_architecture_builds_with_the_shared_interface(architecture, size):
    model = build_model(architecture, size)
    assert model.input_shape == (None, size, size, 1)
    assert model.output_shape == (None, 2)
    assert model.inputs[0].name == "xray"

    cam = model.get_layer(CAM_LAYER)
    assert len(cam.output.shape) == 4
    assert cam.output.shape[1] >= 1 and cam.output.shape[-1] >= 1

    head = model.get_layer("probabilities")  # core.heatmaps recomputes the logit from this layer
    assert isinstance(head, keras.layers.Dense) and head.units == 2

    images = np.random.default_rng(0).integers(0, 256, (3, size, size, 1)).astype(np.float32)
    probabilities = np.asarray(model(images, training=False))
    assert probabilities.shape == (3, 2)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(ValueError) as error:
        build_model("resnet50", 32)
    message = str(error.value)
    assert "resnet50" in message
    assert all(name in message for name in ARCHITECTURES)
