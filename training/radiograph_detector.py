"""Fits tier 1 of the radiograph check, "is this a radiograph at all?" (see :mod:`core.radiograph_detector`).

    python -m training.radiograph_detector [--data-dir ../shared/datasets/fracatlas] [--model-dir models]
    python -m training.radiograph_detector --evaluate   # the shipped check on val and test, as read and perturbed

Radiographs: FracAtlas train images, each as read and twice under strong perturbations
(:mod:`training.radiograph_shift`). Non-radiographs: the generated families of
:mod:`training.nonradiographs`, as drawn and, half of them, perturbed the same way (an inverted or
rotated photo is still a photo). The threshold is the score below which ``FLAGGED_SHIFTED_VAL`` of
strongly perturbed val radiographs fall, i.e. the share of X-rays from elsewhere told "not a
radiograph" if they differ from FracAtlas the way the perturbations do. The test split is never
read. The features are hand-made, not the network's, so the detector does not change with the model.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from core.config import DETECTOR_FILENAME, MODELS_DIR
from core.imaging import read_image
from core.radiograph_detector import RadiographDetector, grey_thumbnail, radiograph_features
from training.config import CACHE_DIR, DEFAULT_DATA_DIR
from training.data import load_index
from training.nonradiographs import FAMILIES, generate
from training.radiograph_shift import strong_shift

FIT_SEED, CALIBRATION_SEED = 1, 2  # tests/nonradiographs.py draws its pictures from other seeds
EVALUATION_SEED = 3  # perturbations for --evaluate, never used in fitting or choosing
SHIFTS_PER_TRAIN_IMAGE = 2
NON_RADIOGRAPHS_PER_FAMILY = 400
FLAGGED_SHIFTED_VAL = 0.03  # below the 5 %, leaving room for shifts we did not simulate
CACHED_SIDE = 512
TREES, DEPTH, LEARNING_RATE = 200, 4, 0.1


def to_grey(pixels: np.ndarray) -> np.ndarray:
    """float32 grey in [0, 1] of a uint8 picture, converted as the reader converts colour (ITU-R 601)."""
    if pixels.ndim == 3:
        pixels = np.asarray(Image.fromarray(pixels).convert("L"))
    return pixels.astype(np.float32) / 255


def load_radiographs(samples, cache_dir: Path | None = CACHE_DIR) -> list[np.ndarray]:
    """Each sample read by the app's reader and shrunk to ``CACHED_SIDE`` px (uint8), cached."""
    key = hashlib.sha256("\n".join(str(sample.path) for sample in samples).encode()).hexdigest()[:16]
    cache_path = None if cache_dir is None else Path(cache_dir) / f"radiographs-{CACHED_SIDE}px-{key}.npz"
    if cache_path is not None and cache_path.is_file():
        with np.load(cache_path) as stored:
            return [stored[f"image{index}"] for index in range(len(samples))]

    def shrink(sample):
        return (np.clip(grey_thumbnail(read_image(sample.path), CACHED_SIDE), 0, 1) * 255 + 0.5).astype(np.uint8)

    with ThreadPoolExecutor(max_workers=2) as pool:  # decoding releases the GIL
        images = list(pool.map(shrink, samples))
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache_path, **{f"image{index}": image for index, image in enumerate(images)})
    return images


def radiograph_rows(images, *, shifts: int, seed: int, include_plain: bool = True) -> np.ndarray:
    """Feature rows of radiographs (uint8): each as it is (if asked) and ``shifts`` times perturbed."""
    rng = np.random.default_rng(seed)
    rows = [radiograph_features(image.astype(np.float32) / 255) for image in images] if include_plain else []
    for _ in range(shifts):
        rows += [radiograph_features(strong_shift(image.astype(np.float32) / 255, rng)) for image in images]
    return np.array(rows)


def non_radiograph_rows(count_per_family: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Feature rows of generated non-radiographs, half of each family also perturbed, and their
    families (``"chart"``, ``"chart, perturbed"``, ...)."""
    rng = np.random.default_rng(seed + 1000)
    rows, families = [], []
    for family_index, family in enumerate(FAMILIES):
        pictures = [to_grey(pixels) for pixels in generate(family, count_per_family, seed * 100 + family_index)]
        pictures += [strong_shift(picture, rng) for picture in pictures[: count_per_family // 2]]
        rows += [radiograph_features(picture) for picture in pictures]
        families += [family] * count_per_family + [f"{family}, perturbed"] * (count_per_family // 2)
    return np.array(rows), families


def trees_to_detector(model, threshold: float, reference_rows: np.ndarray) -> RadiographDetector:
    """A :class:`RadiographDetector` holding a fitted scikit-learn GradientBoostingClassifier."""
    trees = [estimator.tree_ for estimator in model.estimators_[:, 0]]
    nodes = max(tree.node_count for tree in trees)

    def stacked(attribute, fill, scale=1.0):
        table = np.full((len(trees), nodes), fill, dtype=np.float64)
        for index, tree in enumerate(trees):
            values = getattr(tree, attribute) if attribute != "value" else tree.value[:, 0, 0]
            table[index, : tree.node_count] = np.asarray(values, dtype=np.float64) * scale
        return table

    # The model starts from the log-odds of its (weighted) class prior, kept by its init_ estimator.
    prior = float(model.init_.predict_proba(reference_rows[:1])[0, 1])
    return RadiographDetector(
        feature=np.maximum(stacked("feature", 0), 0).astype(np.int64), split=stacked("threshold", 0.0),
        left=stacked("children_left", -1).astype(np.int64), right=stacked("children_right", -1).astype(np.int64),
        value=stacked("value", 0.0, model.learning_rate), offset=float(np.log(prior / (1 - prior))),
        threshold=threshold)


def fit(radiographs: np.ndarray, non_radiographs: np.ndarray, shifted_val: np.ndarray, *,
        flagged: float = FLAGGED_SHIFTED_VAL, trees: int = TREES, seed: int = 0) -> RadiographDetector:
    """Boosted trees on radiograph vs non-radiograph rows; the threshold flags ``flagged`` of ``shifted_val``."""
    from sklearn.ensemble import GradientBoostingClassifier

    features = np.concatenate([radiographs, non_radiographs])
    labels = np.r_[np.ones(len(radiographs)), np.zeros(len(non_radiographs))]
    # Both classes weigh the same in the loss, however many rows each has.
    weights = np.where(labels == 1, len(labels) / (2 * len(radiographs)), len(labels) / (2 * len(non_radiographs)))
    model = GradientBoostingClassifier(n_estimators=trees, max_depth=DEPTH, learning_rate=LEARNING_RATE,
                                       subsample=0.8, random_state=seed)
    model.fit(features, labels, sample_weight=weights)
    unthresholded = trees_to_detector(model, 0.0, features[:200])
    threshold = float(np.quantile(unthresholded.scores(shifted_val), flagged))
    return RadiographDetector(unthresholded.feature, unthresholded.split, unthresholded.left, unthresholded.right,
                              unthresholded.value, unthresholded.offset, threshold)


def fit_detector(data_dir) -> tuple[RadiographDetector, dict]:
    """Fits on FracAtlas train and generated pictures; the threshold on perturbed val. Returns the
    detector and its rates on the calibration draw (val radiographs, fresh non-radiographs)."""
    samples = load_index(data_dir)
    train = load_radiographs([sample for sample in samples if sample.split == "train"])
    val = load_radiographs([sample for sample in samples if sample.split == "val"])
    radiographs = radiograph_rows(train, shifts=SHIFTS_PER_TRAIN_IMAGE, seed=FIT_SEED)
    non_radiographs, _ = non_radiograph_rows(NON_RADIOGRAPHS_PER_FAMILY, FIT_SEED)
    shifted_val = radiograph_rows(val, shifts=1, seed=CALIBRATION_SEED, include_plain=False)
    detector = fit(radiographs, non_radiographs, shifted_val)
    plain_val = radiograph_rows(val, shifts=0, seed=CALIBRATION_SEED)
    fresh, families = non_radiograph_rows(NON_RADIOGRAPHS_PER_FAMILY // 4, CALIBRATION_SEED)
    caught = detector.scores(fresh) < detector.threshold
    rates = {"val radiographs told not a radiograph": float(np.mean(detector.scores(plain_val) < detector.threshold)),
             "perturbed val radiographs told not a radiograph": float(np.mean(detector.scores(shifted_val) < detector.threshold))}
    for family in dict.fromkeys(families):
        rates[f"{family} caught"] = float(np.mean(caught[np.array(families) == family]))
    return detector, rates


def evaluate_check(model_dir, data_dir, seed: int = EVALUATION_SEED) -> dict[str, dict[str, float]]:
    """Both tiers of the whole check (the classifier, from encoded files) on val and test radiographs,
    as read and under fresh strong perturbations: the share told "not a radiograph" (tier 1) and
    the share cautioned "unlike the training images" (tier 2). Reports only; nothing is chosen here."""
    from core.classifier import FractureClassifier
    from training.nonradiographs import encode

    classifier = FractureClassifier.load(model_dir)
    samples = load_index(data_dir)
    rng = np.random.default_rng(seed)
    rates = {}
    for split in ("val", "test"):
        images = load_radiographs([sample for sample in samples if sample.split == split])
        for kind in ("as read", "perturbed"):
            checks = []
            for image in images:
                pixels = image if kind == "as read" else (strong_shift(image.astype(np.float32) / 255, rng) * 255 + 0.5).astype(np.uint8)
                checks.append(classifier.classify(encode(pixels)).radiograph_check)
            rates[f"{split} {kind}"] = {
                "not a radiograph": float(np.mean([not check.looks_like_radiograph for check in checks])),
                "unlike the training images": float(np.mean([check.unlike_training_data for check in checks])),
                "count": len(checks)}
    return rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.radiograph_detector", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--evaluate", action="store_true", help="measure the shipped check instead of fitting")
    args = parser.parse_args(argv)
    if args.evaluate:
        for name, figures in evaluate_check(args.model_dir, args.data_dir).items():
            print(f"{name} ({figures['count']}): not a radiograph {figures['not a radiograph']:.1%}, "
                  f"unlike the training images {figures['unlike the training images']:.1%}")
        return 0
    detector, rates = fit_detector(args.data_dir)
    detector.save(args.model_dir / DETECTOR_FILENAME)
    print(f"wrote {args.model_dir / DETECTOR_FILENAME}: {detector.feature.shape[0]} trees, "
          f"threshold {detector.threshold:.4f}")
    for name, rate in rates.items():
        print(f"  {name}: {rate:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
