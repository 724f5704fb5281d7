"""Example overlays for the model card: three successes and three failures, with the radiologists' boxes.

    python -m training.overlay_examples [--data-dir ../shared/datasets/fracatlas] [--model-dir models]
                                        [--output-dir docs/examples] [--split test]

Scores the split's fractured images that have boxes, and its normal images, with the model's default
heatmap; picks by a fixed rule (no hand-picking, no randomness; ties go to the smaller image id):

* ``hit`` (3): fractures flagged at the stored ``screening`` threshold whose heatmap peaks in a box
  (the pointing game of :mod:`training.localisation`), highest P(fractured) first, taking a body
  region's second only after every region's first;
* ``missed``: the fracture with the lowest P(fractured), if it is below the screening threshold;
* ``off-target``: the flagged fracture whose peak is farthest from its nearest box (share of the long side);
* ``false-alarm``: the normal image with the highest P(fractured), if it is flagged (no boxes to draw).

A kind without a candidate is left out. Each PNG (named from kind and image id only) is the app's
overlay at most 512 px long, boxes outlined 2 px in the app viewer's green, a magenta cross at the
peak; README.md says what each shows, cites FracAtlas (CC BY 4.0) and gives the command.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.classifier import FractureClassifier
from core.config import FRACTURED, MODELS_DIR, PROJECT_DIR
from core.overlay import encode_png, fit_for_display, heatmap_to_image, overlay_on_original
from core.scoring import HeatmapPeak, score_files
from core.thresholds import FRACTURED_DECISION, decide
from core.triage import shown_comparison
from training.config import DEFAULT_DATA_DIR
from training.data import Sample, load_index
from training.localisation import Box, box_mask, load_boxes, score_heatmap
from training.samples import CITATION, DATA_DOI

MAX_SIDE = 512
LINE_PX = 2
BOX_COLOUR = (57, 255, 20)  # the app viewer's box green (ui/viewer.py); no jet colour is this green
PEAK_COLOUR = (255, 0, 255)  # magenta: in no jet colour, and apart from the boxes
SUCCESSES = 3
KIND_CAPTIONS = {
    "hit": "success: flagged, peak inside a box",
    "missed": "failure: missed fracture (lowest P, below screening)",
    "off-target": "failure: flagged, but the peak is the farthest outside every box",
    "false-alarm": "failure: false alarm, the normal image with the highest P (no boxes to draw)",
}
_FILE_SAFE_ID = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class ScoredImage:
    """One image of the split as the selection rule sees it."""

    image_id: str
    path: Path
    region: str
    fractured: bool
    probability_fractured: float
    boxes: tuple[Box, ...]  # the radiologists' boxes; none for a normal image
    peak: HeatmapPeak  # the argmax of the map on the image as read
    peak_in_box: bool
    peak_to_box: float | None  # peak to the nearest box, as a share of the long side; None without boxes


@dataclass(frozen=True)
class Example:
    """One chosen image: its kind (a key of :data:`KIND_CAPTIONS`) and rank within the kind (from 1)."""

    kind: str
    rank: int
    image: ScoredImage

    @property
    def file_name(self) -> str:
        return f"{self.kind}-{self.rank}-{self.image.image_id}.png"


def score_image(sample: Sample, probability_fractured: float, boxes: Sequence[Box],
                image_heatmap: np.ndarray) -> ScoredImage:
    """Where the map on the image as read (H, W) peaks, and whether it peaks in one of ``boxes``.

    Raises:
        ValueError: for an image id that would not make a plain file name.
    """
    if not _FILE_SAFE_ID.fullmatch(sample.image_id):
        raise ValueError(f"image id {sample.image_id!r} cannot name a file; expected letters, digits, '_' or '-'")
    height, width = image_heatmap.shape
    row, column = np.unravel_index(int(np.argmax(image_heatmap)), image_heatmap.shape)
    peak = HeatmapPeak(x=(column + 0.5) / width, y=(row + 0.5) / height)
    hit, distance = False, None
    if boxes:
        hit = score_heatmap(image_heatmap, list(boxes))["hit"]
        outside = (~box_mask(image_heatmap.shape, list(boxes))).astype(np.uint8)
        # The distance transform gives each pixel its distance to the nearest 0: the nearest box pixel.
        distance = float(cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[row, column])
        distance /= max(height, width)
    return ScoredImage(sample.image_id, sample.path, sample.region, sample.label == FRACTURED, probability_fractured,
                       tuple(boxes), peak, hit, distance)


def select_examples(images: Sequence[ScoredImage], screening: float) -> tuple[Example, ...]:
    """The examples of the module's rule, successes first; a kind without a candidate is left out."""
    def flagged(image: ScoredImage) -> bool:
        return decide(image.probability_fractured, screening) == FRACTURED_DECISION

    by_probability = sorted(images, key=lambda image: (-image.probability_fractured, image.image_id))
    fractures = [image for image in by_probability if image.fractured]
    hits = _one_per_region([image for image in fractures if flagged(image) and image.peak_in_box], SUCCESSES)
    failures = {  # each the worst of its kind, or None
        "missed": min((image for image in fractures if not flagged(image)),
                      key=lambda image: (image.probability_fractured, image.image_id), default=None),
        "off-target": min((image for image in fractures if flagged(image) and not image.peak_in_box),
                          key=lambda image: (-image.peak_to_box, image.image_id), default=None),
        "false-alarm": next((image for image in by_probability if not image.fractured and flagged(image)), None),
    }
    return (tuple(Example("hit", rank, image) for rank, image in enumerate(hits, start=1))
            + tuple(Example(kind, 1, image) for kind, image in failures.items() if image is not None))


def _one_per_region(candidates: list[ScoredImage], count: int) -> list[ScoredImage]:
    """The first ``count`` of ``candidates``, in their order, taking a region's second only after
    every region's first (its third after every second, and so on)."""
    repeats = [sum(earlier.region == image.region for earlier in candidates[:position])
               for position, image in enumerate(candidates)]
    picked = sorted(range(len(candidates)), key=lambda position: (repeats[position], position))[:count]
    return [candidates[position] for position in sorted(picked)]


def draw_example(overlay: np.ndarray, boxes: Sequence[Box], peak: HeatmapPeak) -> np.ndarray:
    """A copy of a uint8 RGB overlay with ``boxes`` outlined 2 px just inside their edges (as
    :func:`training.localisation.box_mask` rounds them) and a cross at ``peak``."""
    drawn = overlay.copy()
    shape = overlay.shape[:2]
    strip = np.ones((2 * LINE_PX + 1, 2 * LINE_PX + 1), np.uint8)
    for box in boxes:
        inside = box_mask(shape, [box]).astype(np.uint8)
        # A zero border, so that a box touching the image's edge is outlined there too.
        interior = cv2.erode(inside, strip, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        drawn[inside > interior] = BOX_COLOUR
    height, width = shape
    centre = (min(int(peak.x * width), width - 1), min(int(peak.y * height), height - 1))
    cv2.drawMarker(drawn, centre, PEAK_COLOUR, cv2.MARKER_CROSS, max(9, max(shape) // 25), LINE_PX)
    return drawn


def example_png(classifier: FractureClassifier, example: Example) -> bytes:
    """The example's PNG: its image re-read and overlaid as the app does, at most 512 px, drawn on."""
    result = classifier.classify(example.image.path, heatmap=classifier.default_heatmap)
    overlay = overlay_on_original(fit_for_display(result.image, MAX_SIDE), result.heatmap,
                                  classifier.preprocess_config, source_shape=result.source_shape)
    return encode_png(draw_example(overlay, example.image.boxes, example.image.peak))


def score_split(classifier: FractureClassifier, samples: Sequence[Sample],
                boxes: dict[str, list[Box]]) -> list[ScoredImage]:
    """Every readable sample scored with the model's default heatmap, in their order."""
    scored = score_files(classifier, [sample.path for sample in samples], heatmap=classifier.default_heatmap)
    return [score_image(sample, done.result.probability_fractured, boxes.get(sample.image_id, []),
                        heatmap_to_image(done.result.heatmap, done.result.source_shape, classifier.preprocess_config))
            for sample, done in zip(samples, scored) if done.result is not None]


def readme(examples: Sequence[Example], screening: float, model_version: str, command: str) -> str:
    """``README.md`` of the examples: a table of what each shows, the rule, the citation and the command."""
    lines = ["# Example overlays", "", f"Model `{model_version}`, its default heatmap, verdicts at its screening "
             "threshold, chosen by the fixed rule in `training/overlay_examples.py`. Green: the radiologists' "
             "boxes; magenta cross: the heatmap's peak.", "",
             "| image | image id | region | P(fractured) | verdict at screening | peak in a box | example |",
             "|---|---|---|---|---|---|---|"]
    for example in examples:
        image = example.image
        shown = shown_comparison(image.probability_fractured, screening)
        verdict = decide(image.probability_fractured, screening)
        in_box = ("hit" if image.peak_in_box else "miss") if image.boxes else "no boxes"
        lines.append(f"| [{example.file_name}]({example.file_name}) | {image.image_id} | {image.region} | "
                     f"{shown.probability} | {verdict} ({shown.relation} {shown.threshold}) | {in_box} | "
                     f"{KIND_CAPTIONS[example.kind]} |")
    missing = [kind for kind in KIND_CAPTIONS if kind not in {example.kind for example in examples}]
    if missing:
        lines += ["", f"No candidate for: {', '.join(missing)}."]
    lines += ["", "Images from **FracAtlas**, downscaled and re-encoded, under "
              "[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/):", "", f"> {CITATION}.",
              f"> Data: {DATA_DOI}.", "", f"Made by `{command}`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.overlay_examples", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--output-dir", type=Path, default=PROJECT_DIR / "docs" / "examples")
    parser.add_argument("--split", choices=("val", "test"), default="test")
    args = parser.parse_args(argv)

    classifier = FractureClassifier.load(args.model_dir)
    boxes = load_boxes(args.data_dir)
    samples = [sample for sample in load_index(args.data_dir)
               if sample.split == args.split and (sample.label != FRACTURED or sample.image_id in boxes)]
    images = score_split(classifier, samples, boxes)
    screening = classifier.thresholds.resolve("screening")
    examples = select_examples(images, screening)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for kind in KIND_CAPTIONS:  # a rerun replaces the examples of an earlier one
        for stale in args.output_dir.glob(f"{kind}-[0-9]*-*.png"):
            stale.unlink()
    for example in examples:
        (args.output_dir / example.file_name).write_bytes(example_png(classifier, example))
    command = shlex.join(["python", "-m", "training.overlay_examples", *(sys.argv[1:] if argv is None else argv)])
    readme_text = readme(examples, screening, classifier.version, command)
    (args.output_dir / "README.md").write_text(readme_text, encoding="utf-8")  # the table's "≥", whatever the locale
    print(f"{args.split}: scored {len(images)} of {len(samples)} images; wrote {len(examples)} examples "
          f"and README.md to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
