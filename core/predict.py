"""Prediction CLI: classify radiographs with the shipped model.

    python -m core.predict IMAGE [IMAGE ...] [--threshold T|screening|balanced|specific]
                           [--json] [--heatmap-dir DIR] [--model-dir DIR]

With ``--json``, one JSON object per line in input order:
``{"path", "probability_fractured", "decision", "threshold", "looks_like_radiograph",
"unlike_training_data"}`` (plus ``"unreliable_because"`` when either tier flags it: tier 1, not a
radiograph at all; tier 2, a radiograph unlike the training images), or ``{"path", "error"}`` for a
file that cannot be read (the run goes on). Exit status: 0 when every file was read, 1 when any
failed, 2 on bad usage.

Without ``--json``, file names and error messages are printed with control characters escaped,
as ``ls -b`` does (a newline shows as ``\\n``, ESC as ``\\x1b``): a file name stays on its own line
and can neither forge a verdict line nor send escape sequences to the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from pathlib import Path

from core.classifier import FractureClassifier, ImageResult
from core.config import MODELS_DIR
from core.reports import radiograph_fields
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
        parser.error(terminal_safe(str(error)))
    heatmap = None
    if args.heatmap_dir is not None:
        _make_heatmap_dir(parser, args.heatmap_dir)
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
                      "decision": decision, "threshold": round(threshold, 6), **radiograph_fields(check)}
            print(json.dumps(record), flush=True)
        else:
            warning = f" [{check.notice()}]" if check.notice() else ""
            print(f"{terminal_safe(path)}: P(fractured) = {result.probability_fractured:.3f} -> {decision} "
                  f"(threshold {threshold:.3f}){warning}", flush=True)
    return 1 if failures else 0


def _report_error(path: str, error: Exception, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"path": path, "error": str(error)}), flush=True)
    else:
        print(f"{terminal_safe(path)}: error: {terminal_safe(str(error))}", file=sys.stderr, flush=True)


# Characters a terminal acts on instead of showing: C0 and C1 controls and DEL (category Cc:
# newline, CR, ESC of ANSI/OSC sequences, BEL), line and paragraph separators, lone surrogates
# (Cs: unprintable), and the bidirectional overrides that reorder how the rest of a line reads
# ("Trojan Source").
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def terminal_safe(text: str) -> str:
    """``text`` for a terminal, every character it would act on written as an escape.

    As ``ls -b`` does: ``\\n``, ``\\r``, ``\\t``, ``\\xNN`` for other controls and for the bytes of a
    file name that is not valid UTF-8 (Python holds them as lone surrogates, which printing
    would refuse), ``\\uNNNN`` for separators and bidi controls. Backslashes are left alone,
    unlike ``ls -b``: a Windows path prints as typed, and a name that spells ``\\n`` still
    cannot break the line.
    """
    return "".join(_escaped(character) for character in text)


def _escaped(character: str) -> str:
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(character) in _UNSAFE_CATEGORIES or character in _BIDI_CONTROLS:
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
    return character


def _make_heatmap_dir(parser: argparse.ArgumentParser, folder: Path) -> None:
    """Creates ``--heatmap-dir``; a path that cannot be a folder is bad usage (exit 2), not a traceback."""
    if folder.exists() and not folder.is_dir():
        parser.error(f"--heatmap-dir {terminal_safe(str(folder))}: exists and is not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a parent that is a file, no permission, a read-only disk
        parser.error(f"--heatmap-dir {terminal_safe(str(folder))}: {error.strerror or error}")


_NAME_MAX_BYTES = 255  # the longest file name ext4, APFS and NTFS take


def _unique_name(path: str, taken: set[str]) -> str:
    """``<stem>_gradcam.png``, numbered when two inputs share a file name, and short enough to
    write: an input named at the length limit would otherwise fail with "File name too long"."""
    stem, number = Path(path).stem, 1
    name = _fitted(stem, "_gradcam.png")
    while name in taken:
        number += 1
        name = _fitted(stem, f"_{number}_gradcam.png")
    taken.add(name)
    return name


def _fitted(stem: str, suffix: str) -> str:
    """``stem + suffix``, the stem cut on a character boundary to keep the name within the limit."""
    budget = _NAME_MAX_BYTES - len(os.fsencode(suffix))
    while len(os.fsencode(stem)) > budget:
        stem = stem[:-1]
    return stem + suffix


def _write_overlay(path: Path, result: ImageResult, classifier: FractureClassifier) -> None:
    overlay = overlay_on_original(result.image, result.heatmap, classifier.preprocess_config)
    path.write_bytes(encode_png(overlay))


if __name__ == "__main__":
    sys.exit(main())
