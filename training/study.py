"""Model study: trains each candidate configuration and tabulates val AUROC, time and speed.

    python -m training.study --data-dir ../shared/datasets/fracatlas [--only NAME ...]

The candidates are Model v1's (:mod:`training.train_v1`). Each run writes to ``runs/NAME/``; the table (Markdown) goes to stdout and ``runs/study.md``.
Choices are made on val only; the test split is never read here.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from core.classifier import FractureClassifier
from core.config import HISTORY_FILENAME, METADATA_FILENAME
from training.config import DEFAULT_DATA_DIR, RUNS_DIR
from training import train_v1


# name -> (what it changes, train_v1.py arguments). The first row is the original design.
CANDIDATES = {
    "original-64": ("original: stretch, no contrast norm., light aug., constant LR",
                    "--architecture baseline --image-size 64 --aspect stretch --contrast none "
                    "--augment light --schedule constant"),
    "baseline-64-pad-clahe": ("+ aspect-preserving pad, CLAHE",
                              "--architecture baseline --image-size 64 --aspect pad --contrast clahe "
                              "--augment light --schedule constant"),
    "baseline-64-strong": ("+ strong augmentation, cosine LR",
                           "--architecture baseline --image-size 64 --aspect pad --contrast clahe "
                           "--augment strong --schedule cosine"),
    "residual-128": ("residual separable net, strided stem, 128 px",
                     "--architecture residual --image-size 128 --aspect pad --contrast clahe "
                     "--augment strong --schedule cosine"),
    "residual-192": ("residual separable net, strided stem, 192 px",
                     "--architecture residual --image-size 192 --aspect pad --contrast clahe "
                     "--augment strong --schedule cosine"),
    "residual-128-long": ("residual 128 px, 100 epochs",
                          "--architecture residual --image-size 128 --aspect pad --contrast clahe "
                          "--augment strong --schedule cosine --epochs 100"),
    "residual-128-weight-4.7": ("residual 128 px, fracture weight 4.7 (class balance)",
                                "--architecture residual --image-size 128 --aspect pad --contrast clahe "
                                "--augment strong --schedule cosine --fracture-weight 4.7"),
}


def inference_ms(model_dir: Path, repeats: int = 100) -> float:
    """Median time of one single-image compiled forward pass, in milliseconds."""
    classifier = FractureClassifier.load(model_dir)
    size = classifier.preprocess_config.image_size
    image = np.zeros((1, size, size, 1), np.uint8)
    classifier.predict_batch(image)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.predict_batch(image)
        timings.append(time.perf_counter() - started)
    return 1000 * float(np.median(timings))


def _last_epochs_auroc(run_dir: Path, epochs: int = 5) -> float:
    """Mean val AUROC of the last epochs: less flattered by picking the single best epoch."""
    with open(run_dir / HISTORY_FILENAME, newline="") as handle:
        history = list(csv.DictReader(handle))
    return float(np.mean([float(row["val_auroc"]) for row in history[-epochs:]]))


def table(names) -> str:
    lines = ["| run | what changes | input | val AUROC (best epoch) | val AUROC, last 5 epochs | "
             "best epoch | train min (2 CPU) | infer ms |",
             "|---|---|---|---|---|---|---|---|"]
    for name in names:
        metadata_path = RUNS_DIR / name / METADATA_FILENAME
        if not metadata_path.is_file():
            continue
        metadata = json.loads(metadata_path.read_text())
        run = metadata["training"]
        lines.append(
            f"| {name} | {CANDIDATES.get(name, ('',))[0]} | {metadata['input_size']} px | "
            f"{run['best_val_auroc']:.3f} | {_last_epochs_auroc(RUNS_DIR / name):.3f} | "
            f"{run['best_epoch']}/{run['epochs_run']} | "
            f"{run['total_seconds'] / 60:.1f} | {metadata.get('inference_ms', float('nan')):.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.study", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), default=None)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    names = args.only or list(CANDIDATES)
    for name in names if not args.table_only else []:
        output_dir = RUNS_DIR / name
        print(f"== {name}", flush=True)
        # Candidate arguments come last so that a candidate may override --epochs.
        train_v1.main(["--data-dir", str(args.data_dir), "--epochs", str(args.epochs),
                          "--output-dir", str(output_dir)] + CANDIDATES[name][1].split())
        metadata_path = output_dir / METADATA_FILENAME
        metadata = json.loads(metadata_path.read_text())
        metadata["inference_ms"] = round(inference_ms(output_dir), 2)
        metadata_path.write_text(json.dumps(metadata, indent=2) + "\n")
    report = table(list(CANDIDATES))
    RUNS_DIR.mkdir(exist_ok=True)
    (RUNS_DIR / "study.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
