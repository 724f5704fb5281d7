"""core.layers: the log-mean-exp pooling the box model pools its map with, and its round trip
through a saved model file."""

import keras
import numpy as np
import pytest

from core.layers import LogMeanExpPooling, log_mean_exp


def test_log_mean_exp_lies_between_the_mean_and_the_max_and_nears_them_at_the_extremes():
    logits = np.random.default_rng(0).normal(size=(4, 6, 6, 1)).astype(np.float32)
    mean, peak = logits.mean(axis=(1, 2, 3)), logits.max(axis=(1, 2, 3))
    for sharpness in (0.5, 1.0, 4.0):
        pooled = np.asarray(log_mean_exp(logits, sharpness))
        assert np.all(mean - 1e-5 <= pooled) and np.all(pooled <= peak + 1e-5)
    np.testing.assert_allclose(np.asarray(log_mean_exp(logits, 1e-3)), mean, atol=1e-2)
    np.testing.assert_allclose(np.asarray(log_mean_exp(logits, 200.0)), peak, atol=2e-2)


def test_one_hot_cell_among_equal_cells_moves_the_pooled_logit_by_log_of_its_share():
    logits = np.zeros((1, 4, 4, 1), np.float32)
    logits[0, 1, 2, 0] = np.log(17.0)  # exp: one cell 17, fifteen cells 1 -> mean 2
    assert float(log_mean_exp(logits)[0]) == pytest.approx(np.log(2.0), abs=1e-6)


def test_the_pooling_layer_survives_a_saved_model_file(tmp_path):
    inputs = keras.Input((5, 5, 1))
    model = keras.Model(inputs, LogMeanExpPooling(2.0, name="image_logit")(inputs))
    logits = np.random.default_rng(1).normal(size=(3, 5, 5, 1)).astype(np.float32)
    model.save(tmp_path / "pool.keras")
    loaded = keras.saving.load_model(tmp_path / "pool.keras", compile=False)
    assert loaded.get_layer("image_logit").sharpness == 2.0
    np.testing.assert_allclose(loaded(logits).numpy(), model(logits).numpy(), atol=1e-6)
    assert loaded(logits).shape == (3, 1)


def test_a_sharpness_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="sharpness must be > 0"):
        LogMeanExpPooling(0.0)
