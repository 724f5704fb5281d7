"""Box-supervised heads on frozen pretrained backbones: a first study for Model v2 (issue 11).

    python -m training.box_study [--backbone mobilenet_v2] [--size 320] [--layer stride16]
                                 [--variants box control] [--shift-views 0]

For one backbone, input size and feature map, preprocesses train and val with the ONE
preprocessing path (:func:`core.preprocessing.preprocess`, letterbox + CLAHE as the shipped
model), runs the frozen backbone once and caches the map (:func:`training.box_features.extract_features`), and
also caches val under :func:`training.radiograph_shift.strong_shift` (fixed seed) to estimate the
shift to other sources. It then trains a :mod:`training.box_head` head with box supervision
(``box``) and without (``control``, image BCE only) and reports on val: AUROC with 95% CI, the
pointing game of the head's own map on val fractures and its mass inside the boxes, val AUROC
under simulated shift, train seconds and backbone ms/image. One JSON row per head is appended to
``runs/box_study.jsonl``; the table of every row there is printed (Markdown).

Fit on train, read val; the test split is never loaded. Timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from core.overlay import heatmap_to_image
from core.preprocessing import PreprocessConfig
from training.box_features import (LAYERS, SHIFT_SEED, VAL_SHIFT, CachedFeatures, View, cell_masks, extract_features,
                                   shipped_preprocessing)
from training.box_head import HeadConfig, HeadOutput, predict_head, train_head
from training.config import BOX_STUDY_RESULTS, DEFAULT_DATA_DIR
from training.data import load_index
from training.localisation import Box, load_boxes, pointing_figures, score_heatmap
from training.metrics import auroc_with_ci
from training.pretrained import BACKBONES


def pointing_game(output: HeadOutput, cached: CachedFeatures, boxes: dict[str, list[Box]],
                  config: PreprocessConfig) -> dict:
    """The head's own map, on each fractured image with boxes, scored as ``training.localisation``
    scores Grad-CAM: cells → model input (bilinear) → original image → peak and mass in the boxes."""
    side = config.image_size
    scores = []
    for index, image_id in enumerate(cached.image_ids):
        if cached.labels[index] != 1 or str(image_id) not in boxes:
            continue
        on_input = cv2.resize(output.cell_probability[index], (side, side), interpolation=cv2.INTER_LINEAR)
        heatmap = heatmap_to_image(on_input, tuple(cached.source_shapes[index]), config)
        scores.append(score_heatmap(heatmap, boxes[str(image_id)]))
    return pointing_figures(scores)


def study_row(args, variant: str, head_config: HeadConfig, train: tuple[np.ndarray, np.ndarray, np.ndarray],
              val: CachedFeatures, val_shift: CachedFeatures, boxes, config: PreprocessConfig) -> dict:
    """Trains one head on ``train`` (features, labels, cell masks) and measures it on val and on
    val under shift."""
    train_features, train_labels, train_masks = train
    head = train_head(train_features, train_labels, train_masks, head_config,
                      validation=(val.features, val.labels))
    output = predict_head(head.model, val.features, head_config.sharpness)
    shifted = predict_head(head.model, val_shift.features, head_config.sharpness)
    return {
        "backbone": args.backbone, "size": args.size, "layer": args.layer, "grid": int(val.features.shape[1]),
        "variant": variant, "shift_views": args.shift_views, "head": asdict(head_config),
        "n_train": int(len(train_labels)), "n_val": int(len(val.labels)),
        "val_auroc": auroc_with_ci(val.labels, output.probability_fractured),
        "val_pointing": pointing_game(output, val, boxes, config),
        "val_shift_auroc": auroc_with_ci(val_shift.labels, shifted.probability_fractured),
        "epoch_val_auroc": [round(value, 4) for value in head.epoch_val_auroc],
        "head_train_seconds": round(head.train_seconds, 1),
        "backbone_ms_per_image": round(val.backbone_ms_per_image, 1),
        "timing_note": f"machine shared (load average {os.getloadavg()[0]:.1f} at the end)",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _with_ci(auroc: dict) -> str:
    return f"{auroc['auroc']:.3f} ({auroc['ci_low']:.3f}–{auroc['ci_high']:.3f})"


def table(rows: list[dict]) -> str:
    """Markdown table of study rows."""
    lines = ["| backbone | px | map | variant | shift views | seed | val AUROC (95% CI) | pointing game (val) | "
             "mass in boxes (box area) | val AUROC, simulated shift | head train s | backbone ms/img |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        auc, shift, pointing = row["val_auroc"], row["val_shift_auroc"], row["val_pointing"]
        hits, count = pointing["peak_inside_box"], pointing["n_images"]
        lines.append(
            f"| {row['backbone']} | {row['size']} | {row['layer']} {row['grid']}×{row['grid']} | {row['variant']} | "
            f"{row['shift_views']} | {row['head']['seed']} | {_with_ci(auc)} | {hits}/{count} ({hits / count:.0%}) | "
            f"{pointing['mean_mass_inside']:.1%} ({pointing['mean_box_area']:.1%}) | {_with_ci(shift)} | "
            f"{row['head_train_seconds']:.0f} | {row['backbone_ms_per_image']:.0f} |")
    return "\n".join(lines)


def _train_with_shift_views(args, train_samples, plain: CachedFeatures, plain_masks: np.ndarray):
    """Train features plus ``--shift-views`` views through ``strong_shift``; a shifted view keeps its
    image label and, for a normal image, every cell's 'no fracture', but no box (its geometry moved)."""
    features, labels, masks = [plain.features], [plain.labels], [plain_masks]
    for view in range(args.shift_views):
        shifted = extract_features(train_samples, args.backbone, args.size, args.layer,
                                   View("shift", SHIFT_SEED + 1 + view))
        features.append(shifted.features)
        labels.append(shifted.labels)
        masks.append(np.zeros_like(plain_masks))
    return np.concatenate(features), np.concatenate(labels), np.concatenate(masks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.box_study", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--backbone", choices=tuple(BACKBONES), default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=320, help="input side in px, a multiple of 32")
    parser.add_argument("--layer", choices=tuple(LAYERS), default="stride16")
    parser.add_argument("--variants", nargs="+", choices=("box", "control"), default=["box", "control"])
    parser.add_argument("--box-weight", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=HeadConfig.epochs)
    parser.add_argument("--hidden", type=int, default=HeadConfig.hidden)
    parser.add_argument("--seed", type=int, default=HeadConfig.seed, help="seeds the head (weights, dropout, order)")
    parser.add_argument("--shift-views", type=int, default=0,
                        help="extra train views through strong_shift (each costs a backbone pass over train)")
    parser.add_argument("--table-only", action="store_true", help="print the table of runs/box_study.jsonl")
    args = parser.parse_args(argv)
    if args.table_only:
        print(table([json.loads(line) for line in BOX_STUDY_RESULTS.read_text().splitlines() if line.strip()]))
        return 0
    if args.size % 32 or args.size < 64:
        parser.error(f"--size must be a multiple of 32 of at least 64; got {args.size}")

    config = shipped_preprocessing(args.size)
    samples = load_index(args.data_dir)
    boxes = load_boxes(args.data_dir)
    train_samples = [s for s in samples if s.split == "train"]
    val_samples = [s for s in samples if s.split == "val"]
    started = time.perf_counter()
    train = extract_features(train_samples, args.backbone, args.size, args.layer)
    val = extract_features(val_samples, args.backbone, args.size, args.layer)
    val_shift = extract_features(val_samples, args.backbone, args.size, args.layer, VAL_SHIFT)
    print(f"features ready in {time.perf_counter() - started:.0f} s: train {train.features.shape}, "
          f"val {val.features.shape}", file=sys.stderr)
    training = _train_with_shift_views(args, train_samples, train, cell_masks(train, boxes, config))

    rows = []
    for variant in args.variants:
        head_config = HeadConfig(hidden=args.hidden, epochs=args.epochs, seed=args.seed,
                                 box_weight=args.box_weight if variant == "box" else 0.0)
        row = study_row(args, variant, head_config, training, val, val_shift, boxes, config)
        rows.append(row)
        BOX_STUDY_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(BOX_STUDY_RESULTS, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(table([row]).splitlines()[-1], file=sys.stderr)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
