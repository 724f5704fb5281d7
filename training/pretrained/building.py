"""What the converted backbones share: the input they take, the layers worth tapping, and a
weight loader that checks every shape.

Both backbones take images in 0..255 and scale them inside the graph, as the project's own
models do, so no caller can feed them the wrong range. A grey input (one channel) is accepted
too: the stem's kernel is summed over its three colour channels, which gives exactly the output
of the same grey image repeated into RGB, at a third of the stem's cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

MIN_SIDE = 32  # both backbones reduce the input 32-fold


@dataclass(frozen=True)
class FeatureLayers:
    """Names of a backbone's layers whose outputs are feature maps at a given stride.

    Attributes:
        stride_8: A map 1/8 of the input's side.
        stride_16: A map 1/16 of the input's side.
        stride_32: The last feature map, 1/32 of the input's side.
    """

    stride_8: str
    stride_16: str
    stride_32: str

    def by_stride(self) -> dict[int, str]:
        return {8: self.stride_8, 16: self.stride_16, 32: self.stride_32}


def validate_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(height, width, channels)`` as ints, checked.

    Raises:
        ValueError: Not three dimensions, a side that is not an int of at least 32, or a channel
            count other than 1 (grey) or 3 (RGB).
    """
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {shape}")
    height, width, channels = shape
    for side_name, side in (("height", height), ("width", width)):
        # A fixed size keeps stride-2 padding the same as in the source network (a None side would not).
        if not isinstance(side, (int, np.integer)) or side < MIN_SIDE:
            raise ValueError(f"input {side_name} must be an int of at least {MIN_SIDE} px, got {side!r}")
    if channels not in (1, 3):
        raise ValueError(f"input channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    return int(height), int(width), int(channels)


def scaled_input(input_shape: tuple[int, int, int], *, scale: float, offset: float, name: str = "image"):
    """``(inputs, scaled)``: a 0..255 image input and ``inputs * scale + offset`` inside the graph."""
    inputs = keras.Input(input_shape, name=name)
    return inputs, keras.layers.Rescaling(scale, offset, name="imagenet_scaling")(inputs)


def stem_kernel_for(kernel: np.ndarray, channels: int) -> np.ndarray:
    """An RGB stem kernel ``[kh, kw, 3, out]``, summed over colour for a grey input."""
    return kernel.sum(axis=2, keepdims=True) if channels == 1 else kernel


def assign(model: keras.Model, layer_name: str, arrays: Sequence[np.ndarray]) -> None:
    """Sets one layer's weights, after checking each array's shape against the layer's.

    Raises:
        ValueError: The layer has a different number of weights, or a shape differs.
    """
    layer = model.get_layer(layer_name)
    expected = [tuple(weight.shape) for weight in layer.weights]
    given = [tuple(np.shape(array)) for array in arrays]
    if expected != given:
        raise ValueError(f"layer {layer_name!r} takes weights of shapes {expected}, the source gives {given}")
    layer.set_weights([np.asarray(array, dtype=np.float32) for array in arrays])


def folded_batch_norm(bias: np.ndarray, epsilon: float) -> list[np.ndarray]:
    """Weights for a BatchNormalization that adds ``bias`` and changes nothing else.

    A converter that folded batch norm into the conv leaves only a bias; with gamma 1, mean 0
    and variance ``1 - epsilon`` the layer's scale ``gamma / sqrt(variance + epsilon)`` is 1.
    """
    ones = np.ones_like(bias, dtype=np.float32)
    return [ones, bias.astype(np.float32), np.zeros_like(ones), ones * (1.0 - epsilon)]
