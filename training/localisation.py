"""Does the heatmap point at the fracture? Checked against FracAtlas's radiologist boxes.

    python -m training.localisation [--data-dir ../shared/datasets/fracatlas] [--split test]
                                    [--method gradcam]

The heatmap is the model's default (``metadata["default_heatmap"]``: Grad-CAM, or a box model's
own fracture map) unless ``--method`` names another.

For each fractured image with boxes: the *pointing game* (is the heatmap's peak inside a box?)
and the share of heatmap mass inside the boxes next to the share of the image the boxes cover
(what a heatmap spread evenly would score). Reads ``boxes.csv`` (normalised
``x_min, y_min, x_max, y_max``).

The figures are also stored in the model's ``metrics.json`` under ``"localisation"`` (the rest of
the file is kept as it is), where the app reads them for the caption under its heatmap.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.classifier import FractureClassifier
from core.config import METRICS_FILENAME, MODELS_DIR
from core.heatmaps import METHODS, HeatmapExplainer
from core.preprocessing import PreprocessConfig
from core.overlay import heatmap_to_image
from training.config import DEFAULT_DATA_DIR
from training.data import load_index

Box = tuple[float, float, float, float]
# The maps a box model is judged by, and on a pointing tie the one preferred: its own fracture map,
# the map the verdict is pooled from.
HEATMAP_PREFERENCE = ("fracturemap", "gradcam")


def load_boxes(data_dir: Path) -> dict[str, list[Box]]:
    """``image_id -> [(x_min, y_min, x_max, y_max), ...]`` in [0, 1] image coordinates."""
    boxes = defaultdict(list)
    with open(Path(data_dir) / "boxes.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            boxes[row["image_id"]].append(
                tuple(float(row[key]) for key in ("x_min", "y_min", "x_max", "y_max")))
    return dict(boxes)


def box_mask(shape: tuple[int, int], boxes: list[Box]) -> np.ndarray:
    """Boolean (H, W) mask that is True inside any of the boxes."""
    height, width = shape
    mask = np.zeros(shape, dtype=bool)
    for x_min, y_min, x_max, y_max in boxes:
        top, bottom = int(np.floor(y_min * height)), int(np.ceil(y_max * height))
        left, right = int(np.floor(x_min * width)), int(np.ceil(x_max * width))
        mask[top:max(bottom, top + 1), left:max(right, left + 1)] = True
    return mask


def score_heatmap(heatmap: np.ndarray, boxes: list[Box]) -> dict:
    """Pointing-game hit, heatmap mass inside the boxes, and the boxes' area share."""
    mask = box_mask(heatmap.shape, boxes)
    peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    total = float(heatmap.sum())
    return {"hit": bool(mask[peak]) and total > 0,
            "mass_inside": float(heatmap[mask].sum()) / total if total > 0 else 0.0,
            "area_inside": float(mask.mean())}


def pointing_figures(scores: list[dict]) -> dict:
    """Of :func:`score_heatmap` results: how many fractured images were scored, in how many the peak
    fell inside a box, and the mean mass and box area shares (None without scores)."""
    count = len(scores)
    return {
        "n_images": count,
        "peak_inside_box": sum(score["hit"] for score in scores),
        "mean_mass_inside": float(np.mean([s["mass_inside"] for s in scores])) if count else None,
        "mean_box_area": float(np.mean([s["area_inside"] for s in scores])) if count else None,
    }


def heatmap_pointing(explainer: HeatmapExplainer, images: np.ndarray, source_shapes, image_boxes,
                     config: PreprocessConfig, methods=HEATMAP_PREFERENCE) -> dict[str, dict]:
    """Pointing game and mass in the boxes of each method, through the app's explainer.

    Args:
        images: uint8 (N, S, S, 1) model inputs of fractured images.
        source_shapes: (H, W) of each image as read.
        image_boxes: each image's boxes, normalised to the image as read.
    """
    results = {}
    for method in methods:
        scores = []
        for start in range(0, len(images), 32):
            maps = explainer.explain(images[start:start + 32], method)
            for heatmap, shape, boxes in zip(maps, source_shapes[start:start + 32], image_boxes[start:start + 32]):
                scores.append(score_heatmap(heatmap_to_image(heatmap, tuple(shape), config), boxes))
        results[method] = pointing_figures(scores)
    return results


def summarise_scores(scores: list[dict], *, split: str, model_version: str, method: str = "gradcam") -> dict:
    """The figures stored under ``metrics.json["localisation"]``: which heatmap, split and model, and
    :func:`pointing_figures`."""
    return {"method": method, "split": split, "model_version": model_version, **pointing_figures(scores),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def localisation_by_method(stored: dict | None, model_version: str) -> dict:
    """The ``"localisation"`` entries of ``metrics.json`` about ``model_version``, by method (older
    files hold one method's figures at the top level; figures of another model are dropped)."""
    if not stored:
        return {}
    entries = {stored["method"]: stored} if "method" in stored else stored.get("methods", {})
    return {method: entry for method, entry in entries.items() if entry.get("model_version") == model_version}


def store_summary(model_dir: Path, summary: dict) -> None:
    """Stores ``summary`` in ``metrics.json`` under ``"localisation"`` → ``"methods"`` → its method,
    keeping the other methods measured on the same model and every other key.

    Raises:
        FileNotFoundError: if the model has no ``metrics.json`` yet (run ``training.evaluate`` first).
    """
    path = Path(model_dir) / METRICS_FILENAME
    metrics = json.loads(path.read_text())
    methods = localisation_by_method(metrics.get("localisation"), summary["model_version"])
    metrics["localisation"] = {"methods": {**methods, summary["method"]: summary}}
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.localisation", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--split", choices=("val", "test"), default="test")
    parser.add_argument("--method", choices=tuple(METHODS), default=None,
                        help="the heatmap to score (default: the model's default heatmap)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave metrics.json as it is")
    args = parser.parse_args(argv)

    classifier = FractureClassifier.load(args.model_dir)
    method = args.method or classifier.default_heatmap
    boxes = load_boxes(args.data_dir)
    samples = [s for s in load_index(args.data_dir)
               if s.split == args.split and s.label == 1 and s.image_id in boxes]
    scores = []
    for sample in samples:
        result = classifier.classify(sample.path, heatmap=method)
        heatmap = heatmap_to_image(result.heatmap, result.source_shape, classifier.preprocess_config)
        scores.append(score_heatmap(heatmap, boxes[sample.image_id]))
    if not scores:
        print(f"error: no fractured {args.split} images with boxes in {args.data_dir}", file=sys.stderr)
        return 2
    summary = summarise_scores(scores, split=args.split, model_version=classifier.version, method=method)
    hits, count = summary["peak_inside_box"], summary["n_images"]
    print(f"{args.split}: {count} fractured images with boxes; heatmap: {METHODS[method]}")
    print(f"  pointing game: peak inside a box in {hits}/{count} ({hits / count:.1%})")
    print(f"  heatmap mass inside boxes: mean {summary['mean_mass_inside']:.1%}; "
          f"boxes cover {summary['mean_box_area']:.1%} of the image on average "
          "(what an even heatmap would score)")
    if not args.no_write:
        store_summary(args.model_dir, summary)
        print(f"  stored under \"localisation\" for {method} in {Path(args.model_dir) / METRICS_FILENAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
