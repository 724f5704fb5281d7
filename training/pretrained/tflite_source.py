"""Reads the quantised MobileNetV2 TFLite file: its convolutions' weights as floats, and its
ImageNet logits for the conversion check.

The file's weights are int8 with one scale per output channel, its biases int32 with one scale
per channel, and batch norm is already folded into each bias. ``tf.lite.Interpreter`` lists the
ops in graph order with their (input, weight, bias) tensors, which is what the mapping onto
Keras needs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


@dataclass(frozen=True)
class FoldedConv:
    """One convolution of the TFLite graph, dequantised and laid out for Keras.

    Attributes:
        name: The weight tensor's name in the TFLite file (for error messages).
        depthwise: Whether it is a DEPTHWISE_CONV_2D.
        kernel: ``[kh, kw, in, out]`` for a conv, ``[kh, kw, channels, 1]`` for a depthwise conv.
        bias: The folded batch norm's shift, one per output channel.
    """

    name: str
    depthwise: bool
    kernel: np.ndarray
    bias: np.ndarray


def _interpreter(path: Path, *, keep_intermediates: bool = False):
    import tensorflow as tf

    with warnings.catch_warnings():
        # tf.lite.Interpreter warns that it will move to ai_edge_litert, which is not installed here.
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
        interpreter = tf.lite.Interpreter(
            model_path=str(path), experimental_preserve_all_tensors=keep_intermediates,
            # Without delegates every op stays a separate node, so the op list is the graph itself.
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def _dequantised(interpreter, tensor_index: int) -> np.ndarray:
    details = interpreter._get_tensor_details(tensor_index, 0)
    quantisation = details["quantization_parameters"]
    values = interpreter.get_tensor(tensor_index).astype(np.float32)
    scales, zero_points = quantisation["scales"], quantisation["zero_points"]
    if scales.size == 0:
        raise ValueError(f"tensor {details['name']!r} is not quantised; expected int8 weights with scales")
    axis = quantisation["quantized_dimension"]
    broadcast = [1] * values.ndim
    broadcast[axis] = scales.size if scales.size > 1 else 1
    return (values - zero_points.reshape(broadcast)) * scales.reshape(broadcast).astype(np.float32)


def read_folded_convs(path: str | Path) -> tuple[FoldedConv, ...]:
    """Every CONV_2D and DEPTHWISE_CONV_2D of a quantised TFLite graph, in graph order.

    Args:
        path: The ``.tflite`` file (verified by the caller).

    Returns:
        One :class:`FoldedConv` per op; TFLite's ``[out, kh, kw, in]`` (and the depthwise
        ``[1, kh, kw, channels]``) become Keras's ``[kh, kw, in, out]`` (``[kh, kw, channels, 1]``).
    """
    interpreter = _interpreter(Path(path))
    # _get_ops_details is the interpreter's only listing of ops with their tensors.
    convs = []
    for op in interpreter._get_ops_details():
        if op["op_name"] not in _CONV_OPS:
            continue
        _, weight_index, bias_index = op["inputs"]
        weight = _dequantised(interpreter, weight_index)
        # One transpose serves both: a depthwise weight's leading axis has size 1.
        kernel = np.ascontiguousarray(weight.transpose(1, 2, 3, 0))
        convs.append(FoldedConv(interpreter._get_tensor_details(weight_index, 0)["name"],
                                op["op_name"] == "DEPTHWISE_CONV_2D", kernel, _dequantised(interpreter, bias_index)))
    return tuple(convs)


def reference_logits(path: str | Path, images: np.ndarray) -> np.ndarray:
    """The TFLite model's own ImageNet logits (its softmax's input, dequantised).

    Args:
        path: The ``.tflite`` file.
        images: ``(n, 224, 224, 3)`` uint8 RGB.

    Returns:
        ``(n, 1001)`` float32; index 0 is "background".
    """
    interpreter = _interpreter(Path(path), keep_intermediates=True)
    (input_details,) = interpreter.get_input_details()
    expected = tuple(input_details["shape"][1:])
    if images.dtype != np.uint8 or images.shape[1:] != expected:
        raise ValueError(f"the TFLite model takes uint8 images of shape (n, {', '.join(map(str, expected))}), "
                         f"got {images.dtype} {images.shape}")
    (softmax,) = [op for op in interpreter._get_ops_details() if op["op_name"] == "SOFTMAX"]
    logits = []
    for image in images:
        interpreter.set_tensor(input_details["index"], image[None])
        interpreter.invoke()
        logits.append(_dequantised(interpreter, softmax["inputs"][0])[0])
    return np.stack(logits)
