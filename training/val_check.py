"""Any trained model judged on val alone, as the Model v2 study judges candidates.

    python -m training.val_check [--model-dir models] [--data-dir ../shared/datasets/fracatlas]

Through the app's own path (:class:`core.classifier.FractureClassifier`): val AUROC with its 95% CI,
val AUROC under the simulated shift (:data:`training.box_features.VAL_SHIFT`: every val image through
a seeded :func:`training.radiograph_shift.strong_shift`, the same images every run), and the
pointing game on val fractures of each heatmap the model can draw of Grad-CAM and its own map.
Prints one JSON object. Used to put the shipped model and a candidate side by side on val, never
on test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from core.classifier import FractureClassifier
from core.config import MODELS_DIR
from core.imaging import read_image
from training.box_features import VAL_SHIFT, load_view_input
from training.config import DEFAULT_DATA_DIR
from training.data import load_arrays, load_index
from training.localisation import HEATMAP_PREFERENCE, heatmap_pointing, load_boxes
from training.metrics import auroc_with_ci


def val_check(classifier: FractureClassifier, data_dir: Path) -> dict:
    config = classifier.preprocess_config
    samples = [s for s in load_index(data_dir) if s.split == "val"]
    boxes = load_boxes(data_dir)
    images, labels = load_arrays(samples, config)
    shifted = np.stack([load_view_input(sample, index, config, VAL_SHIFT)[0] for index, sample in enumerate(samples)])
    fractured = [index for index, sample in enumerate(samples) if sample.label == 1 and sample.image_id in boxes]
    shapes = [read_image(samples[index].path).shape for index in fractured]
    methods = [method for method in HEATMAP_PREFERENCE if method in classifier.explainer.methods]
    return {
        "model_version": classifier.version,
        "val_auroc": auroc_with_ci(labels, classifier.predict_batch(images)),
        "val_shift_auroc": auroc_with_ci(labels, classifier.predict_batch(shifted)),
        "val_pointing": heatmap_pointing(classifier.explainer, images[fractured], shapes,
                                         [boxes[samples[index].image_id] for index in fractured], config, methods),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.val_check", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    try:
        report = val_check(FractureClassifier.load(args.model_dir), args.data_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
