"""Box-supervised heads on frozen pretrained backbones: a first study for Model v2 (issue 11).

    python -m training.box_study [--backbone mobilenet_v2] [--size 320] [--layer stride16]
                                 [--variants box control] [--shift-views 0]

For one backbone, input size and feature map, preprocesses train and val with the ONE
preprocessing path (:func:`core.preprocessing.preprocess`, letterbox + CLAHE as the shipped
model), runs the frozen backbone once and caches the map (float16, ``runs/box_study_cache/``), and
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
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from core.imaging import read_image
from core.overlay import heatmap_to_image
from core.preprocessing import PreprocessConfig, preprocess
from training.box_head import HeadConfig, HeadOutput, box_cell_mask, predict_head, train_head
from training.config import DEFAULT_DATA_DIR, RUNS_DIR
from training.data import Sample, load_index, split_hash
from training.localisation import Box, load_boxes, pointing_figures, score_heatmap
from training.metrics import auroc_with_ci
from training.pretrained import BACKBONES
from training.radiograph_shift import photometric_shift, strong_shift

CACHE_DIR = RUNS_DIR / "box_study_cache"
RESULTS_FILE = RUNS_DIR / "box_study.jsonl"
LAYERS = {"stride8": 8, "stride16": 16, "stride32": 32}
SHIFT_SEED = 11  # val under simulated shift is the same images, perturbed the same way, every run
BATCH_SIZE = 16
# Aspect and contrast of the shipped model (models/metadata.json); only the size is studied.
ASPECT, CONTRAST = "pad", "clahe"


@dataclass(frozen=True)
class CachedFeatures:
    """One split's feature maps under one view, as cached.

    Attributes:
        features: (N, g, g, C) float16.
        labels: (N,) 0/1.
        image_ids: (N,) the samples' ids, in index order.
        source_shapes: (N, 2) (H, W) of each image as read, before preprocessing (the view's own
            shape for a shifted view).
        backbone_ms_per_image: Backbone wall time over the split / N, at batch 16, when the cache
            was written.
    """

    features: np.ndarray
    labels: np.ndarray
    image_ids: np.ndarray
    source_shapes: np.ndarray
    backbone_ms_per_image: float


@dataclass(frozen=True)
class View:
    """One way of showing the training or val images to the backbone.

    Attributes:
        kind: ``"plain"`` (as read), ``"shift"`` (:func:`strong_shift`: crops and rotations move
            the anatomy, so the view's boxes are lost) or ``"photometric"``
            (:func:`photometric_shift`: the anatomy stays where it was, the boxes hold).
        seed: Seeds the perturbation; image ``i`` gets the generator ``(seed, i)``, so a view is
            the same whatever the threading.
        flip: Mirror left-right first (the boxes are mirrored with it).
    """

    kind: str = "plain"
    seed: int = 0
    flip: bool = False

    def __post_init__(self):
        if self.kind not in ("plain", "shift", "photometric"):
            raise ValueError(f"unknown view kind {self.kind!r}")

    @property
    def name(self) -> str:
        return ("plain" if self.kind == "plain" else f"{'shift' if self.kind == 'shift' else 'photo'}{self.seed}") + (
            "flip" if self.flip else "")

    @property
    def keeps_boxes(self) -> bool:
        return self.kind != "shift"

    def apply(self, image: np.ndarray, index: int) -> np.ndarray:
        if self.flip:
            image = np.ascontiguousarray(image[:, ::-1])
        if self.kind == "plain":
            return image
        perturb = strong_shift if self.kind == "shift" else photometric_shift
        return perturb(image, np.random.default_rng([self.seed, index]))

    def boxes(self, boxes: list[Box]) -> list[Box]:
        """``boxes`` as they lie on this view (empty where the view moved the anatomy)."""
        if not self.keeps_boxes:
            return []
        return [(1 - x_max, y_min, 1 - x_min, y_max) for x_min, y_min, x_max, y_max in boxes] if self.flip else boxes


PLAIN = View()
VAL_SHIFT = View("shift", SHIFT_SEED)


def load_view_input(sample: Sample, index: int, config: PreprocessConfig, view: View):
    image = view.apply(read_image(sample.path), index)
    return preprocess(image, config), image.shape


def extract_features(samples: list[Sample], backbone_name: str, size: int, layer: str,
                     view: View = PLAIN, *, cache_dir: Path = CACHE_DIR) -> CachedFeatures:
    """The frozen backbone's map for each sample, from the cache or computed and cached.

    Args:
        samples: One split, in index order.
        backbone_name: A key of :data:`training.pretrained.BACKBONES`.
        size: Input side in pixels.
        layer: A key of :data:`LAYERS`.
        view: How the images are shown (as read, or perturbed).
        cache_dir: Where ``.npz`` caches live.
    """
    config = PreprocessConfig(size, ASPECT, CONTRAST)
    key = json.dumps([split_hash(samples), [s.image_id for s in samples], config.to_dict(), view.name])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{backbone_name}-{size}px-{layer}-{samples[0].split}-{view.name}-{digest}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return CachedFeatures(stored["features"], stored["labels"], stored["image_ids"],
                                  stored["source_shapes"], float(stored["backbone_ms_per_image"]))
    extractor = _feature_extractor(backbone_name, size, layer)
    features, shapes, backbone_seconds = [], [], 0.0
    with ThreadPoolExecutor(max_workers=2) as pool:  # decoding and OpenCV release the GIL
        for start in range(0, len(samples), BATCH_SIZE):
            chunk = list(enumerate(samples[start:start + BATCH_SIZE], start=start))
            loaded = list(pool.map(lambda item: load_view_input(item[1], item[0], config, view), chunk))
            batch = np.stack([pixels for pixels, _ in loaded]).astype(np.float32)
            if start == 0:
                extractor.predict_on_batch(batch)  # the first call traces the graph: not timed
            started = time.perf_counter()
            features.append(np.asarray(extractor.predict_on_batch(batch), dtype=np.float16))
            backbone_seconds += time.perf_counter() - started
            shapes.extend(shape for _, shape in loaded)
    cached = CachedFeatures(np.concatenate(features), np.array([s.label for s in samples]),
                            np.array([s.image_id for s in samples]), np.array(shapes),
                            1000 * backbone_seconds / len(samples))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, **asdict(cached))
    temporary.replace(path)
    return cached


def _feature_extractor(backbone_name: str, size: int, layer: str):
    import keras

    backbone = BACKBONES[backbone_name]
    network = backbone.build((size, size, 1), include_top=False)
    tap = network.get_layer(backbone.layers.by_stride()[LAYERS[layer]]).output
    return keras.Model(network.input, tap, name=f"{backbone_name}_{layer}")


def cell_masks(cached: CachedFeatures, boxes: dict[str, list[Box]], config: PreprocessConfig,
               view: View = PLAIN) -> np.ndarray:
    """(N, g, g) cells under each image's boxes as ``view`` shows them (none for normal or unboxed
    images, nor for a view that moved the anatomy)."""
    grid = cached.features.shape[1]
    return np.stack([box_cell_mask(tuple(shape), view.boxes(boxes.get(str(image_id), [])), config, grid)
                     for image_id, shape in zip(cached.image_ids, cached.source_shapes)])


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
        print(table([json.loads(line) for line in RESULTS_FILE.read_text().splitlines() if line.strip()]))
        return 0
    if args.size % 32 or args.size < 64:
        parser.error(f"--size must be a multiple of 32 of at least 64; got {args.size}")

    config = PreprocessConfig(args.size, ASPECT, CONTRAST)
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
        RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS_FILE, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(table([row]).splitlines()[-1], file=sys.stderr)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
