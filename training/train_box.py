"""Model v2: a box-supervised fracture head on a frozen pretrained backbone, from data to ``models/``.

    python -m training.train_box [--data-dir ../shared/datasets/fracatlas] [--output-dir models]
                                 [--backbone mobilenet_v2] [--size 224] [--photometric-views 3]
                                 [--shift-views 2]

1. Train and val go through the ONE preprocessing path (:func:`core.preprocessing.preprocess`) and
   the frozen ImageNet backbone (:mod:`training.pretrained`) once per *view*; the stride-16 maps are
   cached (:func:`training.box_features.extract_features`). Train is seen as read, mirrored, through
   :func:`~training.radiograph_shift.photometric_shift` (other exposure, processing, inversion,
   burned-in marks, size, noise, JPEG; the radiologists' boxes still hold) and through
   :func:`~training.radiograph_shift.strong_shift` (crops and rotations too; boxes lost).
2. The head (:mod:`training.box_head`) is fitted on those maps with the box loss, for a fixed
   number of epochs (nothing is chosen on val).
3. The head goes into the full network (:func:`training.model.build_box_model`), which is
   checked against the head on val, calibrated (temperature) and given its thresholds on val.
4. On val: AUROC with CI, AUROC under simulated shift (:data:`training.box_features.VAL_SHIFT`, a
   seeded :func:`strong_shift` of every val image, never trained on), and the pointing game of
   Grad-CAM and of the model's own map through the app's explainer
   (:func:`training.localisation.heatmap_pointing`). The better pointer becomes
   ``metadata["default_heatmap"]``.
5. Writes the model, ``metadata.json`` (with the backbone's source and sha256), ``history.csv`` and
   the radiograph check's reference, and appends a row to ``runs/box_study.jsonl``.

The test split is never loaded: ``python -m training.evaluate`` and
``python -m training.localisation`` report on it.
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

import numpy as np

from core.classifier import compile_forward
from core.config import CLASS_NAMES, MODEL_FILENAME, MODELS_DIR
from core.heatmaps import HeatmapExplainer
from core.metrics import apply_temperature
from core.preprocessing import PreprocessConfig
from training.artefacts import (calibrate, git_commit, predict_fracture_probabilities, refit_radiograph_check,
                                write_artefacts)
from training.box_features import PLAIN, VAL_SHIFT, View, cell_masks, extract_features, shipped_preprocessing
from training.box_head import HeadConfig, predict_head, train_head
from training.cli import run_training_cli
from training.config import BOX_STUDY_RESULTS, DEFAULT_DATA_DIR
from training.data import load_arrays, load_index, split_hash
from training.localisation import HEATMAP_PREFERENCE, heatmap_pointing, load_boxes
from training.metrics import auroc_with_ci, choose_thresholds
from training.model import CAM_LAYER, FRACTURE_MAP_LAYER, build_box_model, copy_head_weights
from training.pretrained import BACKBONES

LAYER = "stride16"
PHOTOMETRIC_SEED = 21  # train views; val's simulated shift is seeded 11, strong_shift train views 12, 13, ...


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train_box", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--output-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--backbone", choices=tuple(BACKBONES), default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=224, help="input side in px, a multiple of 32")
    parser.add_argument("--photometric-views", type=int, default=3,
                        help="train views through photometric_shift (boxes kept); every other one mirrored")
    parser.add_argument("--shift-views", type=int, default=2, help="train views through strong_shift (boxes lost)")
    parser.add_argument("--no-mirror", action="store_true", help="leave out the mirrored copy of train")
    parser.add_argument("--epochs", type=int, default=HeadConfig.epochs)
    parser.add_argument("--hidden", type=int, default=HeadConfig.hidden)
    parser.add_argument("--kernel", type=int, default=3, help="side of the head's hidden conv (the study's 1×1: 1)")
    parser.add_argument("--box-weight", type=float, default=HeadConfig.box_weight)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.size % 32 or args.size < 64:
        parser.error(f"--size must be a multiple of 32 of at least 64; got {args.size}")
    if min(args.photometric_views, args.shift_views, args.epochs - 1, args.hidden - 1) < 0:
        parser.error("view counts must be >= 0, --epochs and --hidden >= 1")
    return args


def train_views(args) -> list[View]:
    """The views of train the head is fitted on, the images as read first."""
    views = [PLAIN] + ([] if args.no_mirror else [View(flip=True)])
    views += [View("photometric", PHOTOMETRIC_SEED + index, flip=index % 2 == 1)
              for index in range(args.photometric_views)]
    views += [View("shift", VAL_SHIFT.seed + 1 + index) for index in range(args.shift_views)]
    return views


def _train_features(args, samples, boxes, config: PreprocessConfig):
    features, labels, masks = [], [], []
    for view in train_views(args):
        started = time.perf_counter()
        cached = extract_features(samples, args.backbone, args.size, LAYER, view)
        features.append(cached.features)
        labels.append(cached.labels)
        masks.append(cell_masks(cached, boxes, config, view))
        print(f"train view {view.name}: {len(cached.labels)} maps in {time.perf_counter() - started:.0f} s",
              flush=True)
    return np.concatenate(features), np.concatenate(labels), np.concatenate(masks)


def best_pointer(pointing: dict[str, dict]) -> str:
    """The method whose peak lands in a box most often; ties go by :data:`HEATMAP_PREFERENCE`."""
    return max(HEATMAP_PREFERENCE, key=lambda method: (pointing[method]["peak_inside_box"],
                                                       -HEATMAP_PREFERENCE.index(method)))


def train(args: argparse.Namespace) -> dict:
    import keras
    import tensorflow as tf

    started = time.perf_counter()
    config = shipped_preprocessing(args.size)
    samples = load_index(args.data_dir)
    boxes = load_boxes(args.data_dir)
    train_samples = [s for s in samples if s.split == "train"]
    val_samples = [s for s in samples if s.split == "val"]
    features, labels, masks = _train_features(args, train_samples, boxes, config)
    val = extract_features(val_samples, args.backbone, args.size, LAYER)
    val_shift = extract_features(val_samples, args.backbone, args.size, LAYER, VAL_SHIFT)
    print(f"features ready in {(time.perf_counter() - started) / 60:.1f} min: train {features.shape}", flush=True)

    head_config = HeadConfig(hidden=args.hidden, kernel=args.kernel, epochs=args.epochs, box_weight=args.box_weight,
                             seed=args.seed)
    head = train_head(features, labels, masks, head_config, validation=(val.features, val.labels), verbose=2)
    del features
    head_output = predict_head(head.model, val.features, head_config.sharpness)
    shifted = predict_head(head.model, val_shift.features, head_config.sharpness)

    model = build_box_model(args.backbone, args.size, hidden=head_config.hidden, kernel=head_config.kernel,
                            dropout=head_config.dropout, sharpness=head_config.sharpness)
    copy_head_weights(head.model, model)
    val_images, val_labels = load_arrays(val_samples, config)
    raw_val = predict_fracture_probabilities(compile_forward(model), val_images)
    # The head saw float16 features; the network computes them in float32.
    gap = float(np.max(np.abs(raw_val - head_output.probability_fractured)))
    if gap > 0.02:
        raise RuntimeError(f"the assembled network disagrees with its head on val by {gap:.4f}")
    temperature, ece_before, ece_after = calibrate(val_labels, raw_val)
    thresholds = choose_thresholds(val_labels, apply_temperature(raw_val, temperature))

    fractured = [index for index, sample in enumerate(val_samples) if sample.label == 1 and sample.image_id in boxes]
    pointing = heatmap_pointing(HeatmapExplainer(model, CAM_LAYER), val_images[fractured],
                                val.source_shapes[fractured], [boxes[val_samples[i].image_id] for i in fractured],
                                config)
    default_heatmap = best_pointer(pointing)
    study = {"val_auroc": auroc_with_ci(val_labels, raw_val),
             "val_shift_auroc": auroc_with_ci(val_shift.labels, shifted.probability_fractured),
             "val_pointing": pointing, "assembled_vs_head_max_difference": gap}

    created = datetime.now(timezone.utc)
    backbone = BACKBONES[args.backbone]
    metadata = {
        "model_file": MODEL_FILENAME,
        "model_version": f"box-{args.backbone}-{args.size}px-{created:%Y%m%d}",
        "architecture": "box_head",
        "input_size": args.size,
        "class_names": list(CLASS_NAMES),
        "preprocessing": config.to_dict(),
        "cam_layer": CAM_LAYER,
        "fracture_map_layer": FRACTURE_MAP_LAYER,
        "default_heatmap": default_heatmap,
        "thresholds": thresholds,
        "temperature": temperature,
        "val_ece_before_temperature": ece_before,
        "val_ece_after_temperature": ece_after,
        "lineage": {"backbone": args.backbone, "feature_layer": backbone.layers.by_stride()[16],
                    "source": backbone.source.lineage(), "frozen": True},
        "data": {"directory": Path(args.data_dir).name, "split_hash": split_hash(samples),
                 "n_train": len(train_samples), "n_val": len(val_samples)},
        "training": {"views": [view.name for view in train_views(args)], "head": asdict(head_config),
                     "n_train_maps": int(len(labels)), "epochs": head_config.epochs,
                     "head_seconds": round(head.train_seconds, 1),
                     "total_seconds": round(time.perf_counter() - started, 1)},
        "study": study,
        "created": created.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    history = [{"epoch": epoch + 1, "loss": round(loss, 5), "val_auroc": round(auroc, 5)}
               for epoch, (loss, auroc) in enumerate(zip(head.epoch_loss, head.epoch_val_auroc))]
    write_artefacts(args.output_dir, model, metadata, history)
    train_images, _ = load_arrays(train_samples, config)
    refit_radiograph_check(args.output_dir, model, metadata, train_images, val_images)
    metadata["training"]["total_seconds"] = round(time.perf_counter() - started, 1)
    write_artefacts(args.output_dir, model, metadata, history)
    _append_study_row(args, metadata, head, val, pointing)
    print(json.dumps({key: metadata[key] for key in ("model_version", "default_heatmap", "thresholds", "temperature")}
                     | {"study": study, "minutes": metadata["training"]["total_seconds"] / 60}, indent=1), flush=True)
    return metadata


def _append_study_row(args, metadata: dict, head, val, pointing: dict) -> None:
    """The run as a row of the study table (``python -m training.box_study --table-only``)."""
    study = metadata["study"]
    row = {"backbone": args.backbone, "size": args.size, "layer": LAYER, "grid": int(val.features.shape[1]),
           "variant": "box, shipped trainer", "shift_views": "+".join(metadata["training"]["views"][1:]) or "0",
           "head": metadata["training"]["head"], "n_train": metadata["training"]["n_train_maps"],
           "n_val": len(val.labels), "val_auroc": study["val_auroc"], "val_pointing": pointing["fracturemap"],
           "val_pointing_gradcam": pointing["gradcam"], "val_shift_auroc": study["val_shift_auroc"],
           "epoch_val_auroc": [round(value, 4) for value in head.epoch_val_auroc],
           "head_train_seconds": round(head.train_seconds, 1),
           "backbone_ms_per_image": round(val.backbone_ms_per_image, 1),
           "total_minutes": round(metadata["training"]["total_seconds"] / 60, 1),
           "timing_note": f"load average {os.getloadavg()[0]:.1f} at the end",
           "created": metadata["created"]}
    BOX_STUDY_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(BOX_STUDY_RESULTS, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def main(argv=None) -> int:
    return run_training_cli(train, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
