"""Evaluation CLI: the shipped model on val and test, overall and by subgroup.

    python -m training.evaluate [--data-dir ../shared/datasets/fracatlas] [--model-dir models]

Thresholds and temperature come from the model's metadata (chosen on val at training time);
nothing is fitted here. Writes ``metrics.json`` and ``probabilities.csv`` (one calibrated
probability per val and test image, so the app can show what any threshold does on held-out
data) next to the model, and prints the test figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.classifier import FractureClassifier
from core.config import METRICS_FILENAME, MODELS_DIR, PROBABILITIES_FILENAME
from core.heldout import region_group
from training.config import DEFAULT_DATA_DIR
from training.data import load_arrays, load_index, split_hash
from training.metrics import summarise
from training.localisation import localisation_by_method

REPORTED_SPLITS = ("val", "test")
SUBGROUP_BOOTSTRAP = 500


def evaluate(classifier: FractureClassifier, samples, *, n_bootstrap: int = 2000) -> tuple[dict, list[dict]]:
    """Scores val and test samples.

    Returns:
        ``(metrics, rows)``: the metrics report and one row per image for ``probabilities.csv``.
    """
    metrics = {
        "model_version": classifier.version,
        "split_hash": split_hash(samples),
        "thresholds": dict(classifier.thresholds.values),
        "temperature": classifier.temperature,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "splits": {},
    }
    rows = []
    for split in REPORTED_SPLITS:
        members = [sample for sample in samples if sample.split == split]
        if not members:
            continue
        images, labels = load_arrays(members, classifier.preprocess_config)
        probabilities = classifier.predict_batch(images)
        metrics["splits"][split] = _split_report(members, labels, probabilities,
                                                 classifier.thresholds.values, n_bootstrap)
        rows += [{"image_id": sample.image_id, "split": split, "label": int(label),
                  "region": sample.region, "hardware": "" if sample.hardware is None else sample.hardware,
                  "probability_fractured": f"{probability:.6f}"}
                 for sample, label, probability in zip(members, labels, probabilities)]
    return metrics, rows


def _split_report(members, labels, probabilities, thresholds, n_bootstrap) -> dict:
    report = summarise(labels, probabilities, thresholds, n_bootstrap=n_bootstrap)
    subgroups = {}
    regions = np.array([region_group(sample.region) for sample in members])
    for region in sorted(set(regions)):
        mask = regions == region
        subgroups[f"region={region}"] = summarise(labels[mask], probabilities[mask], thresholds,
                                                  n_bootstrap=SUBGROUP_BOOTSTRAP)
    hardware = np.array([-1 if sample.hardware is None else sample.hardware for sample in members])
    for value, name in ((1, "with"), (0, "without")):
        mask = hardware == value
        if mask.any():
            subgroups[f"hardware={name}"] = summarise(labels[mask], probabilities[mask], thresholds,
                                                      n_bootstrap=SUBGROUP_BOOTSTRAP)
    report["subgroups"] = subgroups
    return report


def write_report(model_dir: Path, metrics: dict, rows: list[dict]) -> None:
    """Writes ``metrics.json`` and ``probabilities.csv``, keeping the ``"localisation"`` figures of
    ``python -m training.localisation`` while they are about the same model (evaluate does not
    recompute them; a stale figure for another model is dropped)."""
    path = Path(model_dir) / METRICS_FILENAME
    previous = json.loads(path.read_text()) if path.exists() else {}
    kept = localisation_by_method(previous.get("localisation"), metrics.get("model_version"))
    if kept and "localisation" not in metrics:
        metrics = {**metrics, "localisation": {"methods": kept}}
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    with open(Path(model_dir) / PROBABILITIES_FILENAME, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def format_report(metrics: dict, split: str) -> str:
    """A short human-readable table of one split's figures."""
    report = metrics["splits"][split]
    auroc = report["auroc"]
    lines = [f"{split}: n={report['n']} ({report['n_positive']} fractured)  "
             f"AUROC {auroc['auroc']:.3f} (95% CI {auroc['ci_low']:.3f}–{auroc['ci_high']:.3f})  "
             f"ECE {report['ece']:.3f}"]
    lines.append(f"  {'threshold':<10} {'value':>6} {'sens':>6} {'spec':>6} {'PPV':>6} {'NPV':>6} {'F1':>6}")
    for name, point in report["operating_points"].items():
        figures = " ".join(f"{point[key]:6.3f}" if point[key] is not None else f"{'-':>6}"
                           for key in ("sensitivity", "specificity", "ppv", "npv", "f1"))
        lines.append(f"  {name:<10} {point['threshold']:6.3f} {figures}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--n-bootstrap", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave metrics files as they are")
    args = parser.parse_args(argv)
    try:
        classifier = FractureClassifier.load(args.model_dir)
        samples = load_index(args.data_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    expected_hash = classifier.metadata.split_hash
    if expected_hash and expected_hash != split_hash(samples):
        print("warning: this data set's split differs from the one the model was trained on",
              file=sys.stderr)
    metrics, rows = evaluate(classifier, samples, n_bootstrap=args.n_bootstrap)
    if not args.no_write:
        write_report(args.model_dir, metrics, rows)
    for split in metrics["splits"]:
        print(format_report(metrics, split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
