"""Prediction CLI: classify radiographs with the shipped model.

    python -m core.predict IMAGE [IMAGE ...] [--threshold T|screening|balanced|specific]
                           [--json] [--heatmap-dir DIR] [--model-dir DIR]

With ``--json``, one JSON object per line in input order:
``{"path", "probability_fractured", "decision", "threshold", "looks_like_radiograph"}`` (plus
``"unreliable_because"`` when it does not), or ``{"path", "error"}`` for a
file that cannot be read (the run goes on). Exit status: 0 when every file was read, 1 when any
failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.classifier import FractureClassifier, ImageResult
from core.config import MODELS_DIR
from core.imaging import ImageReadError
from core.overlay import encode_png, overlay_on_original
from core.thresholds import DEFAULT_PRESET, PRESET_NAMES

DEFAULT_THRESHOLD = DEFAULT_PRESET


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m core.predict", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="image files: PNG, JPEG, BMP, TIFF, WebP, GIF or DICOM")
    parser.add_argument("--threshold", default=DEFAULT_THRESHOLD,
                        help=f"a number in [0, 1] or one of {', '.join(PRESET_NAMES)} "
                             f"(default: {DEFAULT_THRESHOLD})")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--heatmap-dir", type=Path, help="write a Grad-CAM overlay PNG per image here")
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    return parser, parser.parse_args(argv)


def main(argv=None) -> int:
    parser, args = _parse_args(argv)
    try:
        classifier = FractureClassifier.load(args.model_dir)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        threshold = classifier.thresholds.resolve(args.threshold)
    except ValueError as error:
        parser.error(str(error))
    heatmap = None
    if args.heatmap_dir is not None:
        args.heatmap_dir.mkdir(parents=True, exist_ok=True)
        heatmap = "gradcam"  # from the same pass as the verdict

    failures, overlay_names = 0, set()
    for path in args.images:
        try:
            result = classifier.classify(Path(path), heatmap=heatmap)
        except ImageReadError as error:
            failures += 1
            _report_error(path, error, as_json=args.json)
            continue
        decision = result.decision(threshold)
        if heatmap is not None:
            _write_overlay(args.heatmap_dir / _unique_name(path, overlay_names), result, classifier)
        check = result.radiograph_check
        if args.json:
            record = {"path": path, "probability_fractured": round(result.probability_fractured, 6),
                      "decision": decision, "threshold": round(threshold, 6),
                      "looks_like_radiograph": check.looks_like_radiograph}
            if not check.looks_like_radiograph:
                record["unreliable_because"] = list(check.reasons)
            print(json.dumps(record), flush=True)
        else:
            warning = "" if check.looks_like_radiograph else f" [{check.warning()}]"
            print(f"{path}: P(fractured) = {result.probability_fractured:.3f} -> {decision} "
                  f"(threshold {threshold:.3f}){warning}", flush=True)
    return 1 if failures else 0


def _report_error(path: str, error: Exception, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"path": path, "error": str(error)}), flush=True)
    else:
        print(f"{path}: error: {error}", file=sys.stderr, flush=True)


def _unique_name(path: str, taken: set[str]) -> str:
    """``<stem>_gradcam.png``, numbered when two inputs share a file name."""
    stem, number = Path(path).stem, 1
    name = f"{stem}_gradcam.png"
    while name in taken:
        number += 1
        name = f"{stem}_{number}_gradcam.png"
    taken.add(name)
    return name


def _write_overlay(path: Path, result: ImageResult, classifier: FractureClassifier) -> None:
    overlay = overlay_on_original(result.image, result.heatmap, classifier.preprocess_config)
    path.write_bytes(encode_png(overlay))


if __name__ == "__main__":
    sys.exit(main())
