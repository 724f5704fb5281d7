"""Does Grad-CAM point at the fracture? Checked against FracAtlas's radiologist boxes.

    python -m training.localisation [--data-dir ../shared/datasets/fracatlas] [--split test]

For each fractured image with boxes: the *pointing game* (is the heatmap's peak inside a box?)
and the share of heatmap mass inside the boxes next to the share of the image the boxes cover
(what a heatmap spread evenly would score). Reads ``boxes.csv`` (normalised
``x_min, y_min, x_max, y_max``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from core.classifier import FractureClassifier
from core.config import MODELS_DIR
from core.overlay import heatmap_to_image
from training.config import DEFAULT_DATA_DIR
from training.data import load_index

Box = tuple[float, float, float, float]


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.localisation", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--split", choices=("val", "test"), default="test")
    args = parser.parse_args(argv)

    classifier = FractureClassifier.load(args.model_dir)
    boxes = load_boxes(args.data_dir)
    samples = [s for s in load_index(args.data_dir)
               if s.split == args.split and s.label == 1 and s.image_id in boxes]
    scores = []
    for sample in samples:
        result = classifier.classify(sample.path, heatmap="gradcam")
        heatmap = heatmap_to_image(result.heatmap, result.source_shape, classifier.preprocess_config)
        scores.append(score_heatmap(heatmap, boxes[sample.image_id]))
    hits = sum(score["hit"] for score in scores)
    print(f"{args.split}: {len(scores)} fractured images with boxes")
    print(f"  pointing game: peak inside a box in {hits}/{len(scores)} ({hits / len(scores):.1%})")
    print(f"  heatmap mass inside boxes: mean {np.mean([s['mass_inside'] for s in scores]):.1%}; "
          f"boxes cover {np.mean([s['area_inside'] for s in scores]):.1%} of the image on average "
          "(what an even heatmap would score)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
