"""training.train_box and what it builds on: the views of train, the photometric shift that keeps
the boxes, the choice of the default heatmap, and the assembled network (which needs the
MobileNetV2 source in ../shared, and skips, saying why, without it). The views themselves:
test_box_features.py."""

import numpy as np
import pytest

from training.box_features import VAL_SHIFT
from training.radiograph_shift import photometric_shift
from training.train_box import best_pointer, parse_args, train_views


def test_the_default_views_are_plain_mirrored_three_photometric_and_two_strong_shifts():
    names = [view.name for view in train_views(parse_args([]))]
    assert names == ["plain", "plainflip", "photo21", "photo22flip", "photo23", "shift12", "shift13"]
    assert VAL_SHIFT.name == "shift11" and VAL_SHIFT not in train_views(parse_args([]))  # val's shift is held out
    assert [view.name for view in train_views(parse_args(["--no-mirror", "--photometric-views", "0",
                                                          "--shift-views", "0"]))] == ["plain"]


def test_the_photometric_shift_keeps_the_anatomy_where_a_box_says_it_is():
    # A bright square at a known place must stay at the same fractions of the (resized) image.
    image = np.full((200, 300), 0.2, np.float32)
    image[80:120, 150:210] = 0.9
    for seed in range(12):
        shifted = photometric_shift(image, np.random.default_rng(seed))
        height, width = shifted.shape
        assert abs(height / width - 200 / 300) < 0.03  # resized, never cropped or framed
        inside = shifted[int(0.45 * height):int(0.55 * height), int(0.55 * width):int(0.65 * width)].mean()
        outside = shifted[:int(0.3 * height), :int(0.3 * width)].mean()
        assert abs(inside - outside) > 0.1, seed  # the square is still there (or inverted), and apart


def test_the_default_heatmap_is_the_better_pointer_and_on_a_tie_the_models_own_map():
    def pointing(fracture_map, gradcam):
        return {"fracturemap": {"peak_inside_box": fracture_map}, "gradcam": {"peak_inside_box": gradcam}}

    assert best_pointer(pointing(30, 30)) == "fracturemap"
    assert best_pointer(pointing(30, 31)) == "gradcam"
    assert best_pointer(pointing(32, 31)) == "fracturemap"


def test_bad_arguments_are_refused_with_a_message(capsys):
    for argv in (["--size", "200"], ["--shift-views", "-1"], ["--epochs", "0"]):
        with pytest.raises(SystemExit):
            parse_args(argv)
    assert "multiple of 32" in capsys.readouterr().err


def test_the_assembled_network_is_its_head_on_the_backbones_map_and_reloads(tmp_path):
    import keras

    import core.layers  # noqa: F401  (registers the pooling layer for loading)
    from training.box_head import HeadConfig, build_head, predict_head
    from training.model import build_box_model, copy_head_weights

    try:
        model = build_box_model("mobilenet_v2", 64, hidden=8)
    except FileNotFoundError as missing:
        pytest.skip(f"MobileNetV2 source absent: {missing}")
    head = build_head((4, 4, 576), HeadConfig(hidden=8))
    for layer in head.layers:  # non-zero weights everywhere, so a wrong copy shows
        layer.set_weights([np.random.default_rng(3).normal(0, 0.05, w.shape).astype(np.float32)
                           for w in layer.get_weights()])
    copy_head_weights(head, model)
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 1)).astype(np.float32)
    features = keras.Model(model.input, model.get_layer("backbone_features").output)(images).numpy()
    expected = predict_head(head, features, 1.0).probability_fractured
    np.testing.assert_allclose(model(images).numpy()[:, 1], expected, atol=1e-5)
    assert all(not layer.trainable for layer in model.layers if layer.name.startswith(("block_", "Conv1")))
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)  # folded
    model.save(tmp_path / "box.keras")
    reloaded = keras.saving.load_model(tmp_path / "box.keras", compile=False)
    np.testing.assert_allclose(reloaded(images).numpy(), model(images).numpy(), atol=1e-6)
