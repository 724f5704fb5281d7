"""Custom Keras layers of the shipped networks, importable wherever a model file is loaded.

A ``.keras`` file names its custom layers by their registered names; :mod:`core.artifacts`
imports this module before loading, so the app, the CLIs and training all read the same classes.
"""

from __future__ import annotations

import math

import keras


def log_mean_exp(cell_logits, sharpness: float = 1.0):
    """Image logits (N,) from cell logits (N, g, g, 1) or (N, g, g): ``log(mean(exp(r·z))) / r``.

    A fracture fills a few cells of the map: mean pooling would drown it in normal bone, max
    pooling sends the whole gradient to one cell. Log-mean-exp lies between them (``r → 0`` is the
    mean, ``r → ∞`` the max), and subtracting ``log(cells)`` keeps one scale at every grid size.
    """
    logits = cell_logits[..., 0] if len(cell_logits.shape) == 4 else cell_logits
    cells = logits.shape[1] * logits.shape[2]
    return (keras.ops.logsumexp(sharpness * logits, axis=(1, 2)) - math.log(cells)) / sharpness


@keras.saving.register_keras_serializable(package="fracture")
class LogMeanExpPooling(keras.layers.Layer):
    """(N, g, g, 1) cell logits → (N, 1) image logit by :func:`log_mean_exp`."""

    def __init__(self, sharpness: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if sharpness <= 0:
            raise ValueError(f"sharpness must be > 0; got {sharpness}")
        self.sharpness = float(sharpness)

    def call(self, cell_logits):
        return log_mean_exp(cell_logits, self.sharpness)[:, None]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "sharpness": self.sharpness}
