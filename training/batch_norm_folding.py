"""Batch norm folded into the convolution before it: the same function in fewer layers.

In inference a BatchNormalization after a convolution is a fixed scale and shift per channel.
Keras runs it as elementwise ops of its own, which TensorFlow's CPU graph does not fuse; folded
into the convolution's kernel and bias, convolution, bias and ReLU6 run as one fused oneDNN op.
On the shipped MobileNetV2 model the compiled forward pass of two images went from 18.5 to
12.3 ms, and the network lost 40 of its 128 layers (so it also loads and traces faster).

``python -m training.batch_norm_folding`` folds the network in ``models/`` in place, after
checking on val that the folded network gives the same outputs (:func:`main`);
:func:`training.model.build_box_model` folds every network it builds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import keras
import numpy as np

FOLDABLE_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)  # Conv2D covers none else here
# The largest change of an output, relative to its size, that the command accepts before it writes:
# float rounding (a fused bias is added in another order) moves outputs by about 1e-6 of their size.
MAX_RELATIVE_CHANGE = 1e-5


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """A copy of the functional ``model`` with every foldable BatchNormalization folded.

    A batch norm is foldable when it normalises the last axis of the output of a Conv2D or
    DepthwiseConv2D that has no activation of its own, no groups, and no other consumer. That
    convolution gets a bias (``kernel · s``, ``(bias − mean) · s + beta`` with
    ``s = gamma / sqrt(variance + epsilon)``) and the batch norm goes. Every other layer keeps its
    name, configuration, trainable flag and weights.
    """
    norms_by_conv = _foldable_norms(model)
    folded_norms = {norm.name for norm in norms_by_conv.values()}

    def clone_layer(layer):
        config = layer.get_config()
        if layer.name in norms_by_conv:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    def call_layer(layer, *args, **kwargs):
        return args[0] if layer.name in folded_norms else layer(*args, **kwargs)

    folded = keras.models.clone_model(model, clone_function=clone_layer, call_function=call_layer)
    for layer in folded.layers:
        if not layer.weights:  # an unnamed input is renamed by the clone
            continue
        source = model.get_layer(layer.name)
        if layer.name in norms_by_conv:
            layer.set_weights(folded_weights(source, norms_by_conv[layer.name]))
        else:
            layer.set_weights(source.get_weights())
    return folded


def _foldable_norms(model: keras.Model) -> dict[str, keras.layers.BatchNormalization]:
    """``{conv layer name: the batch norm to fold into it}``."""
    producers = {id(layer.output): layer for layer in model.layers}
    consumers: dict[int, int] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.input):
            consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1
    for output in keras.tree.flatten(model.outputs):
        consumers[id(output)] = consumers.get(id(output), 0) + 1

    norms = {}
    for norm in model.layers:
        if not isinstance(norm, keras.layers.BatchNormalization) or norm.axis not in (-1, len(norm.input.shape) - 1):
            continue
        conv = producers.get(id(norm.input))
        if (isinstance(conv, FOLDABLE_CONVS) and consumers.get(id(conv.output)) == 1
                and conv.activation is keras.activations.linear and getattr(conv, "groups", 1) == 1):
            norms[conv.name] = norm
    return norms


def folded_weights(conv, norm: keras.layers.BatchNormalization) -> list[np.ndarray]:
    """``[kernel, bias]`` of ``conv`` with ``norm`` folded in."""
    variance = np.asarray(norm.moving_variance, np.float64)
    mean = np.asarray(norm.moving_mean, np.float64)
    gamma = np.ones_like(mean) if norm.gamma is None else np.asarray(norm.gamma, np.float64)
    beta = np.zeros_like(mean) if norm.beta is None else np.asarray(norm.beta, np.float64)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    kernel = np.asarray(conv.kernel, np.float64)
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        # Output channel c·m + k comes from input channel c and multiplier k.
        kernel = kernel * scale.reshape(1, 1, kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else np.zeros_like(mean)
    return [kernel.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]


def count_batch_norms(model: keras.Model) -> int:
    return sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


# --- folding the network in models/ -----------------------------------------------------------------

def largest_output_changes(model: keras.Model, folded: keras.Model, images: np.ndarray) -> dict[str, float]:
    """How far the folded network's outputs moved over ``images``: ``probability``, the largest
    absolute change of P(fractured); ``relative``, the largest absolute change of any output (the
    probabilities, the radiograph check's activation summaries, a box model's fracture map cells)
    divided by that output's largest magnitude."""
    from core.classifier import compile_forward, pass_extras
    from core.config import FRACTURED

    def outputs(network):
        forward = compile_forward(network, pass_extras(network))
        batches = [forward(images[start:start + 16]) for start in range(0, len(images), 16)]
        return [np.concatenate([batch[index].numpy() for batch in batches]) for index in range(len(batches[0]))]

    before, after = outputs(model), outputs(folded)
    relative = max(float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12)) for a, b in zip(before, after))
    return {"probability": float(np.abs(before[0][:, FRACTURED] - after[0][:, FRACTURED]).max()),
            "relative": relative}


def _val_images(data_dir: Path, config) -> np.ndarray:
    from training.data import load_arrays, load_index

    images, _ = load_arrays([sample for sample in load_index(data_dir) if sample.split == "val"], config)
    return images.astype(np.float32)


def main(argv=None) -> int:
    from core import artifacts
    from core.config import METADATA_FILENAME, MODELS_DIR
    from core.preprocessing import PreprocessConfig
    from training.config import DEFAULT_DATA_DIR

    parser = argparse.ArgumentParser(prog="python -m training.batch_norm_folding", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="FracAtlas (its val split is the check)")
    args = parser.parse_args(argv)

    metadata = artifacts.read_metadata_json(args.model_dir)
    model = artifacts.load_network(args.model_dir, artifacts.load_metadata(args.model_dir))
    norms = count_batch_norms(model)
    if norms == 0:
        print(f"{args.model_dir}: no batch norm left to fold")
        return 0
    folded = fold_batch_norms(model)
    images = _val_images(args.data_dir, PreprocessConfig.from_dict(metadata["preprocessing"]))
    changes = largest_output_changes(model, folded, images)
    print(f"folded {norms - count_batch_norms(folded)} of {norms} batch norms; {len(model.layers)} -> "
          f"{len(folded.layers)} layers; on {len(images)} val images the outputs moved by at most "
          f"{changes['relative']:.2g} of their size, P(fractured) by at most {changes['probability']:.2g}")
    if changes["relative"] > MAX_RELATIVE_CHANGE:
        print(f"not written: an output moved by more than {MAX_RELATIVE_CHANGE} of its size", file=sys.stderr)
        return 1
    folded.save(args.model_dir / metadata["model_file"])
    metadata.setdefault("lineage", {})["batch_norms_folded"] = {
        "folded": norms - count_batch_norms(folded), "val_images": len(images), **{
            f"max_{key}_change": value for key, value in changes.items()}}
    if "litert" in metadata:  # the .tflite was converted from the unfolded model: convert the folded one
        from training.litert_export import write_litert

        metadata = write_litert(args.model_dir, folded, metadata)
    (args.model_dir / METADATA_FILENAME).write_text(json.dumps(metadata, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
