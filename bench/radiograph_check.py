"""What the radiograph check's tier 1 adds per image, timed against the classifier's own pass.

    python -m bench.radiograph_check [--n 60]

On typical FracAtlas test radiographs (generated stand-ins without the data) and on a 12 MP image
(the most the reader returns), it times, taking turns image by image (bench.timing): the detector
(features + trees, on the reader's grey image), the colour measure, tier 2's distance, and the
whole ``classify`` (decode, preprocess, network, both tiers; no heatmap). The issue's budget is
2 ms at p50 for the detector.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from bench.data import bench_images
from bench.timing import summary, time_interleaved
from core.classifier import FractureClassifier
from core.imaging import decode_image
from core.radiograph_check import thumbnail_colourfulness
from training.config import DEFAULT_DATA_DIR

WARMUP = 3


def measure(n: int) -> dict[str, dict]:
    """p50/p95 milliseconds of each part, on ``n`` typical images and on one 12 MP image."""
    classifier = FractureClassifier.load()
    if classifier.detector is None:
        raise SystemExit("the shipped model has no radiograph detector; run python -m training.radiograph_detector")
    images = bench_images(DEFAULT_DATA_DIR, n + WARMUP)
    print(images.source)
    decoded = [decode_image(data) for data in images.files]
    summaries = classifier.summarise_batch(np.stack([classifier.classify(data).model_input for data in images.files]))
    calls = {
        "detector (features + trees)": lambda i: classifier.detector.score(decoded[i].grey),
        "colour": lambda i: thumbnail_colourfulness(decoded[i].colour_thumbnail),
        "tier 2 distance": lambda i: classifier.reference.distances(summaries[i:i + 1]),
        "classify (no heatmap)": lambda i: classifier.classify(images.files[i]),
    }
    samples = time_interleaved(calls, range(WARMUP, n + WARMUP), warmup=range(WARMUP))
    results = {name: summary(values) for name, values in samples.items()}
    large = np.random.default_rng(0).random((3000, 4000), dtype=np.float32)
    results["detector on a 12 MP image"] = summary(time_interleaved(
        {"large": lambda _: classifier.detector.score(large)}, range(max(5, n // 4)), warmup=[0])["large"])
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.radiograph_check", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="images timed (after a few untimed ones)")
    args = parser.parse_args(argv)
    results = measure(args.n)
    whole = results["classify (no heatmap)"]["p50"]
    print(f"{'part':32s} {'p50 ms':>8s} {'p95 ms':>8s} {'p50 / classify':>15s}")
    for name, figures in results.items():
        print(f"{name:32s} {figures['p50']:8.3f} {figures['p95'] or float('nan'):8.3f} {figures['p50'] / whole:15.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
