"""CNN architectures (Keras 3 functional API).

Every model takes a (size, size, 1) uint8-range grey image, rescales it to [0, 1] inside the
graph, and ends in a 2-unit softmax ordered as :data:`core.config.CLASS_NAMES`. The layer named
:data:`CAM_LAYER` is the last spatial feature map, the one Grad-CAM explains.
"""

from __future__ import annotations

import keras
from keras import layers

CAM_LAYER = "cam_features"


def _grey_input(image_size: int):
    """The shared input: a (size, size, 1) image in 0..255, rescaled to [0, 1] inside the graph."""
    inputs = keras.Input((image_size, image_size, 1), name="xray")
    return inputs, layers.Rescaling(1.0 / 255.0)(inputs)


def build_baseline_cnn(image_size: int = 64, *, l2: float = 1e-4, dropout: float = 0.5) -> keras.Model:
    """The original design: four conv blocks 32→64→128→256, each with batch norm and max pooling,
    global average pooling, dense 256 + batch norm + dropout, softmax.

    Args:
        image_size: side of the square input.
        l2: L2 weight penalty on conv and dense kernels.
        dropout: dropout rate before the classifier.

    Returns:
        An uncompiled ``keras.Model``.
    """
    regulariser = keras.regularizers.L2(l2)
    inputs, x = _grey_input(image_size)
    for index, filters in enumerate((32, 64, 128, 256)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=regulariser)(x)
        x = layers.BatchNormalization()(x)
        is_last = index == 3
        x = layers.Activation("relu", name=CAM_LAYER if is_last else None)(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, use_bias=False, kernel_regularizer=regulariser)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(2, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="baseline_cnn")


def build_residual_cnn(
    image_size: int = 128, *, width: int = 32, l2: float = 1e-4, dropout: float = 0.3
) -> keras.Model:
    """A small residual network of depthwise-separable blocks behind a strided stem.

    The stride-2 stem and early pooling let the network see a larger input cheaply (at 128 px it
    trains in about 1.7× the time of the baseline at 64 px); separable convolutions keep the
    parameter count low (0.18 M) for a data set of a few thousand images.

    Args:
        image_size: side of the square input (a multiple of 16; features are 1/16 of it).
        width: channels after the stem; stages use width × (2, 4, 8).
        l2: L2 weight penalty on kernels.
        dropout: dropout rate before the classifier.

    Returns:
        An uncompiled ``keras.Model``.
    """
    regulariser = keras.regularizers.L2(l2)
    inputs, x = _grey_input(image_size)
    x = layers.Conv2D(width, 5, strides=2, padding="same", use_bias=False, kernel_regularizer=regulariser)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    # Pooling straight after the stem: full-resolution separable convolutions are slow on CPU.
    x = layers.MaxPooling2D()(x)
    stages = (2 * width, 4 * width, 8 * width)
    for index, filters in enumerate(stages):
        x = _residual_block(x, filters, regulariser, name=CAM_LAYER if index == len(stages) - 1 else None)
        if index < len(stages) - 1:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(2, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="residual_cnn")


def _residual_block(x, filters, regulariser, name=None):
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, kernel_regularizer=regulariser)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    for step in range(2):
        x = layers.SeparableConv2D(
            filters, 3, padding="same", use_bias=False,
            depthwise_regularizer=regulariser, pointwise_regularizer=regulariser,
        )(x)
        x = layers.BatchNormalization()(x)
        if step == 0:
            x = layers.Activation("relu")(x)
    x = layers.Add()([x, shortcut])
    return layers.Activation("relu", name=name)(x)


ARCHITECTURES = {"baseline": build_baseline_cnn, "residual": build_residual_cnn}


def build_model(architecture: str, image_size: int) -> keras.Model:
    """Builds a named architecture.

    Raises:
        ValueError: for an unknown architecture name.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; valid: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](image_size)


# The box-supervised model (issue 11): layers the training copies the head into, and the app reads.
FRACTURE_MAP_LAYER = "fracture_map"  # per-cell fracture logits: the model's own map
BACKBONE_FEATURES_LAYER = "backbone_features"


def build_box_model(backbone_name: str, image_size: int, *, hidden: int = 64, kernel: int = 1,
                    dropout: float = 0.3, sharpness: float = 1.0) -> keras.Model:
    """A pretrained backbone's stride-16 map under a fully convolutional fracture head.

    (size, size, 1) grey image in 0..255 → the backbone (ImageNet weights, converted offline by
    :mod:`training.pretrained`; it scales the image itself; its batch norms folded into its convs by
    :func:`training.batch_norm_folding.fold_batch_norms`) → its stride-16 feature map →
    ``kernel``-wide conv → ReLU (:data:`CAM_LAYER`) → 1×1 conv to one fracture logit per cell
    (:data:`FRACTURE_MAP_LAYER`) → log-mean-exp pooling (:class:`core.layers.LogMeanExpPooling`) →
    ``probabilities``, a fixed 2-unit softmax whose fractured output is the sigmoid of the pooled
    logit. The verdict is pooled from the very map the model draws.

    The head's weights are those of :func:`training.box_head.build_head` (see
    :func:`copy_head_weights`); the backbone stays as converted (frozen in training).

    Args:
        backbone_name: A key of :data:`training.pretrained.BACKBONES`.
        image_size: Side of the square input, a multiple of 32.
        hidden, kernel, dropout, sharpness: As :class:`training.box_head.HeadConfig`.
    """
    import numpy as np

    from core.layers import LogMeanExpPooling
    from training.batch_norm_folding import fold_batch_norms
    from training.pretrained import BACKBONES

    backbone = BACKBONES[backbone_name]
    # Frozen, so its batch norms are fixed affine maps: folded into the convs, they cost nothing.
    network = fold_batch_norms(backbone.build((image_size, image_size, 1), include_top=False))
    stride_16 = network.get_layer(backbone.layers.by_stride()[16]).output
    # An Activation layer, so that the radiograph check's summary (the channel means of every
    # Activation) sees the backbone's features, not only the head's 64 channels.
    x = layers.Activation("linear", name=BACKBONE_FEATURES_LAYER)(stride_16)
    x = layers.SpatialDropout2D(dropout)(x)
    x = layers.Conv2D(hidden, kernel, padding="same", name="cell_hidden")(x)
    x = layers.Activation("relu", name=CAM_LAYER)(x)
    x = layers.SpatialDropout2D(dropout)(x)
    cell_logits = layers.Conv2D(1, 1, name=FRACTURE_MAP_LAYER)(x)
    image_logit = LogMeanExpPooling(sharpness, name="image_logit")(cell_logits)
    # softmax([-z/2, z/2]) = [1 - sigmoid(z), sigmoid(z)]: the two-class output every part of the
    # app reads, and a pre-softmax score (z/2) for Grad-CAM, with no weight to learn.
    output = layers.Dense(2, activation="softmax", name="probabilities", trainable=False)
    probabilities = output(image_logit)
    output.set_weights([np.array([[-0.5, 0.5]], np.float32), np.zeros(2, np.float32)])
    for layer in network.layers:
        layer.trainable = False
    return keras.Model(network.input, probabilities, name=f"{backbone_name}_box_head")


def copy_head_weights(head: keras.Model, model: keras.Model) -> None:
    """Puts a trained :func:`training.box_head.build_head` head into :func:`build_box_model`'s model."""
    model.get_layer("cell_hidden").set_weights(head.get_layer("cell_hidden").get_weights())
    model.get_layer(FRACTURE_MAP_LAYER).set_weights(head.get_layer("cell_logits").get_weights())
