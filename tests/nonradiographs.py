"""Generated and library-shipped images that are not radiographs, to measure tier 1 of the radiograph check.

Every image is built in memory from a fixed seed (nothing binary is committed), as encoded file
bytes, the way an upload arrives: photographs from scikit-learn's two bundled samples
(``china.jpg``, ``flower.jpg``) as random crops in colour and in grey, and the families of
:mod:`training.nonradiographs` (documents, charts, noise, patterns, line drawings, screenshots),
drawn from seeds the detector's fitting never used. One family is **held out**: handwritten digits
(scikit-learn's ``digits``) play no part in fitting the detector or choosing its threshold.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.nonradiographs import FAMILIES, encode

# REPORT_SEED is the draw the tests use; it and SELECTION_SEEDS were looked at while the detector's
# settings were chosen. Seeds 4001-4010 measured a first, slower (128 px) detector once; FINAL_SEEDS
# were drawn only once, with the shipped detector, for the figures in docs/robustness.md.
REPORT_SEED = 2027
SELECTION_SEEDS = (2027, 3001, 3002)
FINAL_SEEDS = range(5001, 5011)
HELD_OUT_FAMILY = "handwritten digit"
COUNTS = {"document": 30, "chart": 16, "noise": 25, "pattern": 25, "drawing": 20, "screenshot": 20}


def _photo_crops(rng, count_per_photo: int, grey: bool):
    from sklearn.datasets import load_sample_image

    for photo_name in ("china.jpg", "flower.jpg"):
        photo = load_sample_image(photo_name)
        for index in range(count_per_photo):
            height = int(rng.integers(160, photo.shape[0] + 1))
            width = int(rng.integers(160, photo.shape[1] + 1))
            top = int(rng.integers(0, photo.shape[0] - height + 1))
            left = int(rng.integers(0, photo.shape[1] - width + 1))
            crop = np.ascontiguousarray(photo[top:top + height, left:left + width])
            if grey:
                crop = np.asarray(Image.fromarray(crop).convert("L"))
            yield f"{photo_name}-crop{index}", encode(crop, "JPEG")


def _digits(rng, count: int):
    from sklearn.datasets import load_digits

    digits = load_digits().images
    for index in rng.choice(len(digits), count, replace=False):
        grey = np.round(digits[index] / 16.0 * 255).astype(np.uint8)
        size = int(rng.integers(64, 256))
        yield f"digit{index}", encode(np.asarray(Image.fromarray(grey).resize((size, size), Image.NEAREST)))


def non_radiographs(seed: int = REPORT_SEED) -> list[tuple[str, str, bytes]]:
    """``(category, name, file bytes)`` for every generated non-radiograph (232 of them)."""
    rng = np.random.default_rng(seed)
    cases = [("colour photo", name, data) for name, data in _photo_crops(rng, 20, grey=False)]
    cases += [("grey photo", name, data) for name, data in _photo_crops(rng, 20, grey=True)]
    cases += [(HELD_OUT_FAMILY, name, data) for name, data in _digits(rng, 16)]
    for family, count in COUNTS.items():
        for index in range(count):
            pixels = FAMILIES[family](rng, index)
            cases.append((family, f"{family}{index}", encode(pixels, "JPEG" if index % 2 and pixels.ndim == 2 else "PNG")))
    return cases


def measure(seeds) -> None:
    """Prints how many non-radiographs of each draw the shipped check calls "not a radiograph"."""
    from core.classifier import FractureClassifier

    classifier = FractureClassifier.load()
    warned_by_category: dict[str, list[int]] = {}
    for seed in seeds:
        warned_here = 0
        cases = non_radiographs(seed)
        for category, _, data in cases:
            warned = not classifier.classify(data).radiograph_check.looks_like_radiograph
            warned_here += warned
            warned_by_category.setdefault(category, []).append(warned)
        print(f"seed {seed}: {warned_here} of {len(cases)} warned ({warned_here / len(cases):.1%})", flush=True)
    flags = [flag for category_flags in warned_by_category.values() for flag in category_flags]
    print(f"pooled: {sum(flags)} of {len(flags)} warned ({sum(flags) / len(flags):.1%})")
    for category, category_flags in warned_by_category.items():
        held_out = " (held out)" if category == HELD_OUT_FAMILY else ""
        print(f"  {category}{held_out}: {sum(category_flags)} of {len(category_flags)} "
              f"({sum(category_flags) / len(category_flags):.1%})")


if __name__ == "__main__":
    # .venv/bin/python -m tests.nonradiographs [seed ...]   (default: FINAL_SEEDS)
    import sys

    measure([int(seed) for seed in sys.argv[1:]] or FINAL_SEEDS)
