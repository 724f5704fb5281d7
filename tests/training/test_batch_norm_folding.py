"""training.batch_norm_folding: the folded network computes what the original did, in fewer layers."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core.config import METADATA_FILENAME, MODEL_FILENAME  # noqa: E402
from training.batch_norm_folding import count_batch_norms, fold_batch_norms, main  # noqa: E402


def _randomise_norm(layer, rng) -> None:
    """Statistics far from the identity, so that a wrong fold shows."""
    channels = layer.gamma.shape[0]
    layer.set_weights([rng.uniform(0.5, 2.0, channels), rng.normal(0, 0.5, channels),
                       rng.normal(0, 0.5, channels), rng.uniform(0.2, 3.0, channels)])


def _network_with_every_case(rng):
    """Conv → BN (folded), depthwise ×2 → BN (folded), a conv whose output a BN and an Add both
    read (kept: folding would change the Add's input), a BN after an Add (kept: no conv before it)."""
    from keras import layers

    inputs = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", use_bias=True, name="stem")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False, name="depthwise")(x)
    x = layers.BatchNormalization(name="depthwise_bn")(x)
    shared = layers.Conv2D(16, 1, use_bias=False, name="shared")(x)
    normalised = layers.BatchNormalization(name="shared_bn")(shared)
    added = layers.Add(name="add")([shared, normalised])
    after_add = layers.BatchNormalization(name="after_add_bn")(added)
    outputs = layers.Activation("relu", name="out_relu")(after_add)
    model = keras.Model(inputs, outputs)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            _randomise_norm(layer, rng)
        elif isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            layer.set_weights([rng.normal(0, 0.3, weight.shape) for weight in layer.get_weights()])
    model.get_layer("stem").trainable = False
    return model


def test_folded_network_gives_the_same_outputs_without_the_foldable_batch_norms(tmp_path):
    rng = np.random.default_rng(0)
    model = _network_with_every_case(rng)
    folded = fold_batch_norms(model)
    images = rng.uniform(0, 1, (4, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(folded(images).numpy(), model(images).numpy(), rtol=1e-4, atol=1e-4)
    names = {layer.name for layer in folded.layers}
    assert {"stem_bn", "depthwise_bn"}.isdisjoint(names)
    assert {"shared_bn", "after_add_bn", "stem", "depthwise", "shared", "add", "out_relu"} <= names
    assert count_batch_norms(folded) == 2
    assert folded.get_layer("depthwise").use_bias and not folded.get_layer("shared").use_bias
    assert not folded.get_layer("stem").trainable and folded.get_layer("depthwise").trainable
    folded.save(tmp_path / "folded.keras")
    reloaded = keras.saving.load_model(tmp_path / "folded.keras", compile=False)
    np.testing.assert_array_equal(reloaded(images).numpy(), folded(images).numpy())


def test_a_conv_with_an_activation_of_its_own_keeps_its_batch_norm():
    from keras import layers

    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, layers.BatchNormalization(name="bn")(x))
    assert count_batch_norms(fold_batch_norms(model)) == 1


def _box_model_with_batch_norms(size: int):
    """A small box-kind network (the layer names the project reads) with batch norms to fold."""
    from keras import layers

    from core.layers import LogMeanExpPooling

    rng = np.random.default_rng(1)
    inputs = keras.Input((size, size, 1), name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False, name="conv")(x)
    x = layers.BatchNormalization(name="conv_bn")(x)
    x = layers.ReLU(6.0, name="conv_relu")(x)
    x = layers.Conv2D(4, 1, name="cell_hidden")(x)
    x = layers.Activation("relu", name="cam_features")(x)
    cells = layers.Conv2D(1, 1, name="fracture_map")(x)
    output = layers.Dense(2, activation="softmax", name="probabilities")
    model = keras.Model(inputs, output(LogMeanExpPooling(name="image_logit")(cells)))
    _randomise_norm(model.get_layer("conv_bn"), rng)
    output.set_weights([np.array([[-0.5, 0.5]], np.float32), np.zeros(2, np.float32)])
    return model


def test_the_command_folds_a_model_directory_in_place_after_checking_on_val(tmp_path, capsys):
    from tests.box_model_fixture import tiny_metadata

    size = 32
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    model = _box_model_with_batch_norms(size)
    model.save(model_dir / MODEL_FILENAME)
    (model_dir / METADATA_FILENAME).write_text(json.dumps(tiny_metadata(size)))
    data_dir = tmp_path / "data"
    rng = np.random.default_rng(2)
    for label in ("fractured", "not_fractured"):
        (data_dir / "val" / label).mkdir(parents=True)
        for index in range(3):
            cv2.imwrite(str(data_dir / "val" / label / f"{index}.png"), rng.integers(0, 256, (40, 48), np.uint8))

    assert main(["--model-dir", str(model_dir), "--data-dir", str(data_dir)]) == 0
    assert "folded 1 of 1 batch norms" in capsys.readouterr().out
    import core.layers  # noqa: F401  (registers the pooling layer for loading)

    reloaded = keras.saving.load_model(model_dir / MODEL_FILENAME, compile=False)
    assert count_batch_norms(reloaded) == 0
    images = rng.uniform(0, 255, (2, size, size, 1)).astype(np.float32)
    np.testing.assert_allclose(reloaded(images).numpy(), model(images).numpy(), atol=1e-5)
    folding = json.loads((model_dir / METADATA_FILENAME).read_text())["lineage"]["batch_norms_folded"]
    assert folding["folded"] == 1 and folding["val_images"] == 6 and folding["max_relative_change"] < 1e-5

    assert main(["--model-dir", str(model_dir), "--data-dir", str(data_dir)]) == 0  # nothing left to do
    assert "no batch norm left to fold" in capsys.readouterr().out
