"""Markdown tables for the model card, rendered from ``models/metrics.json``.

    python -m training.report [--model-dir models]

The model card's figures are pasted from this output, so they are never typed by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.config import METADATA_FILENAME, METRICS_FILENAME, MODELS_DIR


def _figure(value, digits=3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _auroc(report: dict) -> str:
    auroc = report["auroc"]
    if auroc is None:
        return "– (one class only)"
    return f"{auroc['auroc']:.3f} ({auroc['ci_low']:.3f}–{auroc['ci_high']:.3f})"


def overall_table(metrics: dict) -> str:
    lines = ["| split | images (fractured) | AUROC (95% CI) | ECE |", "|---|---|---|---|"]
    for split, report in metrics["splits"].items():
        lines.append(f"| {split} | {report['n']} ({report['n_positive']}) | {_auroc(report)} | "
                     f"{_figure(report['ece'])} |")
    return "\n".join(lines)


def operating_table(metrics: dict, split: str) -> str:
    lines = ["| threshold | value | sensitivity | specificity | PPV | NPV | F1 | accuracy | TP | FN | FP | TN |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, point in metrics["splits"][split]["operating_points"].items():
        figures = " | ".join(_figure(point[key]) for key in
                             ("sensitivity", "specificity", "ppv", "npv", "f1", "accuracy"))
        counts = " | ".join(str(point[key]) for key in ("tp", "fn", "fp", "tn"))
        lines.append(f"| {name} | {point['threshold']:.3f} | {figures} | {counts} |")
    return "\n".join(lines)


def subgroup_table(metrics: dict, split: str, threshold_name: str = "balanced") -> str:
    lines = [f"| subgroup | images (fractured) | AUROC (95% CI) | sensitivity @ {threshold_name} | "
             f"specificity @ {threshold_name} |", "|---|---|---|---|---|"]
    for name, report in metrics["splits"][split]["subgroups"].items():
        point = report["operating_points"][threshold_name]
        lines.append(f"| {name} | {report['n']} ({report['n_positive']}) | {_auroc(report)} | "
                     f"{_figure(point['sensitivity'])} | {_figure(point['specificity'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.report", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args(argv)
    metrics = json.loads((args.model_dir / METRICS_FILENAME).read_text())
    metadata = json.loads((args.model_dir / METADATA_FILENAME).read_text())
    print(f"Model {metrics['model_version']}; temperature {metadata['temperature']:.3f}\n")
    print(overall_table(metrics), end="\n\n")
    for split in metrics["splits"]:
        print(f"Operating points on {split}:\n\n{operating_table(metrics, split)}\n")
    print(f"Subgroups on test:\n\n{subgroup_table(metrics, 'test')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
