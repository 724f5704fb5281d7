"""Fits the radiograph check's feature-space reference (see :mod:`core.radiograph_check`).

    python -m training.radiograph_reference [--data-dir ../shared/datasets/fracatlas] [--model-dir models]

PCA and the nearest-neighbour points come from the train split; the distance that counts as far
is a quantile of the val split's distances. The test split is never read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from core.classifier import FractureClassifier
from core.config import MODELS_DIR, REFERENCE_FILENAME
from core.radiograph_check import RadiographReference, normalise_summaries
from training.config import DEFAULT_DATA_DIR
from training.data import load_arrays, load_index

VAL_QUANTILE = 0.985
COMPONENTS = 64


def fit(train_summaries: np.ndarray, val_summaries: np.ndarray, *, quantile: float = VAL_QUANTILE,
        components: int = COMPONENTS, model_version: str = "") -> RadiographReference:
    """PCA and nearest-neighbour reference on train; the threshold is ``quantile`` of val."""
    normalised = normalise_summaries(train_summaries)
    mean = normalised.mean(axis=0)
    # Principal axes from the SVD of the centred data (what scikit-learn's PCA does).
    _, _, axes = np.linalg.svd(normalised - mean, full_matrices=False)
    kept = axes[:components]
    unthresholded = RadiographReference(mean, kept, (normalised - mean) @ kept.T, threshold=np.inf)
    threshold = float(np.quantile(unthresholded.distances(val_summaries), quantile))
    return RadiographReference(mean, kept, unthresholded.train_points, threshold, model_version)


def fit_reference(classifier: FractureClassifier, data_dir) -> RadiographReference:
    """Fits the reference for ``classifier`` on the train split and its threshold on val."""
    samples = load_index(data_dir)
    images = {split: load_arrays([sample for sample in samples if sample.split == split],
                                 classifier.preprocess_config)[0] for split in ("train", "val")}
    return fit_reference_on_images(classifier, images["train"], images["val"])


def fit_reference_on_images(classifier: FractureClassifier, train_images: np.ndarray,
                            val_images: np.ndarray) -> RadiographReference:
    """:func:`fit_reference` on already preprocessed train and val images (N, S, S, 1)."""
    return fit(classifier.summarise_batch(train_images), classifier.summarise_batch(val_images),
               model_version=classifier.version)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.radiograph_reference",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args(argv)
    reference = fit_reference(FractureClassifier.load(args.model_dir), args.data_dir)
    reference.save(args.model_dir / REFERENCE_FILENAME)
    print(f"wrote {args.model_dir / REFERENCE_FILENAME}: {len(reference.train_points)} train images, "
          f"threshold {reference.threshold:.4f} (val {VAL_QUANTILE:.1%} quantile)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
