"""MobileNetV2 1.0 with ImageNet weights, converted from the quantised TFLite file in
``../shared/pretrained`` onto ``keras.applications.MobileNetV2``.

The TFLite graph's 53 convolutions map in order onto Keras's 52 conv layers and its classifier:
each kernel is dequantised, and each folded bias becomes the beta of the BatchNormalization that
follows the Keras conv (see :func:`~training.pretrained.building.folded_batch_norm`). The
weights do not depend on the input size, so the network can be built at any size.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import keras

from training.pretrained.building import (FeatureLayers, assign, folded_batch_norm, scaled_input, stem_kernel_for,
                                          validate_input_shape)
from training.pretrained.sources import MOBILENET_V2_SOURCE, BackboneSource
from training.pretrained.tflite_source import FoldedConv, read_folded_convs

MOBILENET_V2_LAYERS = FeatureLayers(stride_8="block_6_expand_relu", stride_16="block_13_expand_relu",
                                    stride_32="out_relu")
MOBILENET_V2_CLASSES = 1001  # index 0 is "background": ImageNet class k is logit k + 1
_CLASSIFIER = "predictions"


def mobilenet_v2(input_shape: Sequence[int] = (224, 224, 3), include_top: bool = True, *,
                 source: BackboneSource = MOBILENET_V2_SOURCE) -> keras.Model:
    """MobileNetV2 1.0 (alpha 1.0) with ImageNet weights.

    Args:
        input_shape: ``(height, width, channels)``; any fixed size of at least 32 px, 3 channels
            for RGB or 1 for grey (treated as the grey image repeated into RGB).
        include_top: With the ImageNet classifier, the output is 1001 logits (index 0 is
            "background"); without it, the last feature map ``out_relu`` (1280 channels, 1/32 of
            the input's side). :data:`MOBILENET_V2_LAYERS` names the maps at strides 8, 16, 32.
        source: The TFLite file to convert (its SHA-256 is checked).

    Returns:
        An uncompiled functional ``keras.Model`` taking images in 0..255 (scaled to [-1, 1]
        inside), with the layer names of ``keras.applications.MobileNetV2``.

    Raises:
        FileNotFoundError: The source file is missing.
        SourceChecksumError: The source file is not the pinned one.
        ValueError: An unusable ``input_shape``.
    """
    height, width, channels = validate_input_shape(input_shape)
    convs = _converted_convs(source)
    inputs, scaled = scaled_input((height, width, channels), scale=1 / 127.5, offset=-1.0)
    application = keras.applications.MobileNetV2(
        input_tensor=scaled, alpha=1.0, include_top=include_top, weights=None, classes=MOBILENET_V2_CLASSES,
        classifier_activation=None)
    # The application takes its inputs as a list; one flat model over the same layers takes a tensor.
    model = keras.Model(inputs, application.output, name=f"mobilenet_v2_imagenet_{height}x{width}")
    _load(model, convs, channels, include_top)
    return model


@functools.lru_cache(maxsize=2)
def _converted_convs(source: BackboneSource) -> tuple[FoldedConv, ...]:
    # Read once per process: every input size takes the same weights.
    return read_folded_convs(source.verified_path())


def _load(model: keras.Model, convs: tuple[FoldedConv, ...], channels: int, include_top: bool) -> None:
    conv_layers = [layer for layer in model.layers
                   if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    if len(convs) != len(conv_layers) + 1:
        raise ValueError(f"the TFLite file has {len(convs)} convolutions; MobileNetV2 needs "
                         f"{len(conv_layers)} and a classifier")
    for index, (layer, conv) in enumerate(zip(conv_layers, convs)):
        if conv.depthwise != isinstance(layer, keras.layers.DepthwiseConv2D):
            raise ValueError(f"convolution {index} ({conv.name}) does not match the kind of Keras layer {layer.name}")
        kernel = stem_kernel_for(conv.kernel, channels) if index == 0 else conv.kernel
        assign(model, layer.name, [kernel])
        batch_norm = _batch_norm_after(model, layer)
        assign(model, batch_norm.name, folded_batch_norm(conv.bias, batch_norm.epsilon))
    if include_top:
        classifier = convs[-1]  # a 1×1 conv over the pooled features, i.e. a dense layer
        assign(model, _CLASSIFIER, [classifier.kernel.reshape(-1, MOBILENET_V2_CLASSES), classifier.bias])


def _batch_norm_after(model: keras.Model, conv_layer) -> keras.layers.BatchNormalization:
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.input is conv_layer.output:
            return layer
    raise ValueError(f"no BatchNormalization follows {conv_layer.name}")

