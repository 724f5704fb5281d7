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

from core import artifacts
from core.config import METADATA_FILENAME, MODELS_DIR
from training.artefacts import write_litert


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
