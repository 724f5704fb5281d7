"""Training time per epoch: training.train_v1 at the shipped configuration on a bounded subset."""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from pathlib import Path

from core.config import HISTORY_FILENAME
from training.data import load_index


def epoch_seconds(data_dir: Path, shipped: dict, per_class: int) -> dict:
    """Runs ``training.train_v1`` for two epochs on ``per_class`` train (and val) images per class,
    with the shipped model's architecture, size, batch and augmentation, into a temporary
    folder (models/ is never written). Epoch 1 includes tracing; epoch 2 is the steady figure.
    """
    from training import train_v1

    training, preprocessing = shipped["training"], shipped["preprocessing"]
    with tempfile.TemporaryDirectory(prefix="bench-train-") as output:
        args = train_v1.parse_args([
            "--data-dir", str(data_dir), "--output-dir", output, "--epochs", "2",
            "--max-per-class", str(per_class), "--architecture", shipped["architecture"],
            "--image-size", str(preprocessing["image_size"]), "--aspect", preprocessing["aspect"],
            "--contrast", preprocessing["contrast"], "--batch-size", str(training["batch_size"]),
            "--augment", training["augment"], "--seed", str(training["seed"]),
        ])
        with contextlib.redirect_stdout(io.StringIO()):  # train_v1 prints one line per epoch
            metadata = train_v1.train(args)
        with open(Path(output) / HISTORY_FILENAME, newline="") as handle:
            history = list(csv.DictReader(handle))
    n_train = metadata["data"]["n_train"]
    full_train = sum(1 for sample in load_index(data_dir) if sample.split == "train")
    steady = float(history[1]["seconds"])
    return {"n_train": n_train, "n_val": metadata["data"]["n_val"], "full_train": full_train,
            "first_epoch_s": float(history[0]["seconds"]), "steady_epoch_s": steady,
            "extrapolated_full_epoch_s": steady * full_train / n_train,
            "shipped_s_per_epoch": training["fit_seconds"] / training["epochs_run"]}
