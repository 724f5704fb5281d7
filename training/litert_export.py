"""``python -m training.litert_export [MODEL_DIR]``: writes the LiteRT ``.tflite`` of an existing
model's forward pass beside its ``.keras`` and records its file name and sha256 in ``metadata.json``.

The trainers write it for the models they make; this command is for a model trained before, or
rewritten in place (``python -m training.batch_norm_folding``). The file is converted from the
Keras model and checked against it (P within 1e-5, the fracture map within 1e-4) before it is
written: see :mod:`core.litert`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core import artifacts
from core.classifier import compile_forward, pass_extras
from core.config import METADATA_FILENAME, MODEL_FILENAME, MODELS_DIR
from core.litert import LITERT_SUFFIX, LiteRTForward, check_parity, sha256_of


def convert(model) -> bytes:
    """The ``.tflite`` bytes of the classifier's forward pass of the Keras ``model``, checked against
    Keras on random and blank images (needs TensorFlow).

    Raises:
        core.litert.LiteRTError: if the converted pass disagrees with Keras beyond
            :data:`core.litert.PARITY_PROBABILITY` in P or :data:`core.litert.PARITY_MAP` in the
            fracture map (the weightless-file trap among others).
    """
    import keras
    import tensorflow as tf

    extras = pass_extras(model)
    both = keras.Model(model.inputs, [model.output, *extras])
    converter = tf.lite.TFLiteConverter.from_keras_model(both)
    content = converter.convert()
    size = int(model.input_shape[1])
    rng = np.random.default_rng(0)
    images = np.concatenate([rng.integers(0, 256, (3, size, size, 1)), np.zeros((1, size, size, 1))]).astype(np.float32)
    expected = [output.numpy() for output in compile_forward(model, extras)(images)]
    found = LiteRTForward(content, int(model.output.shape[-1]), where="the converted model")(images)
    check_parity(expected, found, size)
    return content


def write_litert(output_dir: Path, model, metadata: dict) -> dict:
    """Converts ``model``'s forward pass to LiteRT (checked against Keras), writes it beside the
    model file, and returns ``metadata`` with its record (``"litert": {"file", "sha256"}``)."""
    content = convert(model)
    name = Path(metadata.get("model_file", MODEL_FILENAME)).with_suffix(LITERT_SUFFIX).name
    (Path(output_dir) / name).write_bytes(content)
    return {**metadata, "litert": {"file": name, "sha256": sha256_of(content)}}


def export_litert(model_dir: str | Path = MODELS_DIR) -> dict:
    """Converts the model in ``model_dir``, writes the ``.tflite`` and rewrites ``metadata.json``;
    returns the new ``litert`` record."""
    model_dir = Path(model_dir)
    stored = artifacts.read_metadata_json(model_dir)
    model = artifacts.load_network(model_dir, artifacts.load_metadata(model_dir))
    metadata = write_litert(model_dir, model, stored)
    (model_dir / METADATA_FILENAME).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata["litert"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.litert_export", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", type=Path, default=MODELS_DIR, help="default: the shipped model")
    args = parser.parse_args(argv)
    record = export_litert(args.model_dir)
    print(f"wrote {args.model_dir / record['file']} (sha256 {record['sha256']}); recorded in "
          f"{args.model_dir / METADATA_FILENAME}")


if __name__ == "__main__":
    main()
