"""Prediction CLI: classify radiographs with the shipped model.

    python -m core.predict PATH [PATH ...] [--threshold T|screening|balanced|specific]
                           [--json] [--heatmap-dir DIR] [--batch-size N] [--workers N] [--model-dir DIR]

A PATH is an image file, or a folder: the image files under it, recursively, sorted by path
folder by folder. In a folder, a file counts when its suffix is an image format's (.png, .jpg,
.jpeg, .bmp, .tif, .tiff, .webp, .gif, .dcm, .dicom, any case) or when it has none, as DICOM files
often have not (a name of digits and dots, a DICOM UID, counts as having none); hidden files and
folders (".*") and DICOMDIR, a DICOM volume's index, are skipped, and a folder reached twice (a
symbolic link back up the tree) is listed once. A file named on the command line is scored
whatever its name. A folder with no image file under it is reported like an unreadable file.

With ``--json``, one JSON object per line in input order:
``{"path", "probability_fractured", "decision", "threshold", "heatmap_peak", "looks_like_radiograph",
"unlike_training_data"}`` (plus ``"unreliable_because"`` when either tier flags it: tier 1, not a
radiograph at all; tier 2, a radiograph unlike the training images), or ``{"path", "error"}`` for a
file that cannot be read (the run goes on). ``heatmap_peak`` is ``[x, y]``, where the model's default
heatmap peaks (``default_heatmap`` in its metadata, else Grad-CAM; a box-supervised model's is its own
fracture map, from the verdict's pass), as fractions of the image's width and height (0-1,
from the top left). ``--heatmap-dir`` gets that heatmap's overlay as ``<stem>_<method>.png``
(``x_fracturemap.png``, ``x_gradcam.png``).
Exit status: 0 when every file was read, 1 when any failed, 2 on bad usage.

Images are read and overlays written on ``--workers`` threads while the network scores
``--batch-size`` images per pass; the output is the same bit for bit at any batch size or number
of workers (``--batch-size 1 --workers 0``: one image at a time on one thread). A progress line
is drawn on stderr when stderr is a terminal, never otherwise.

Without ``--json``, file names and error messages are printed with control characters escaped,
as ``ls -b`` does (a newline shows as ``\\n``, ESC as ``\\x1b``): a file name stays on its own line
and can neither forge a verdict line nor send escape sequences to the terminal.

This module is the command line only (its arguments, the progress line, the output): the listing
of folders, the overlays' names and their writing are :mod:`core.batch_files`, shared with the Ray
archive job so that both name and order files alike, and the escaping is :mod:`core.terminal_text`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import closing
from pathlib import Path

from core.batch_files import OutputFolderError, OverlayWriter, expand_inputs, make_output_folder
from core.classifier import FractureClassifier
from core.config import MODELS_DIR
from core.scoring import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS, ScoredFile, score_files
from core.terminal_text import terminal_safe
from core.thresholds import DEFAULT_PRESET, PRESET_NAMES

DEFAULT_THRESHOLD = DEFAULT_PRESET


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m core.predict", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", metavar="PATH",
                        help="image files (PNG, JPEG, BMP, TIFF, WebP, GIF or DICOM) or folders of them")
    parser.add_argument("--threshold", default=DEFAULT_THRESHOLD,
                        help=f"a number in [0, 1] or one of {', '.join(PRESET_NAMES)} "
                             f"(default: {DEFAULT_THRESHOLD})")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--heatmap-dir", type=Path,
                        help="write an overlay PNG of the model's default heatmap per image here (<stem>_<method>.png)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"images per network pass; 1 = one at a time (default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help="threads that read images and write overlays; 0 = all on the main thread "
                             f"(default: {DEFAULT_WORKERS})")
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1; got {args.batch_size}")
    if args.workers < 0:
        parser.error(f"--workers must be 0 or more; got {args.workers}")
    return parser, args


def main(argv=None) -> int:
    parser, args = _parse_args(argv)
    try:
        classifier = FractureClassifier.load(args.model_dir)
    except (FileNotFoundError, ValueError) as error:  # ValueError: metadata or model file unusable
        print(f"error: {terminal_safe(str(error))}", file=sys.stderr)
        return 2
    try:
        threshold = classifier.thresholds.resolve(args.threshold)
    except ValueError as error:
        parser.error(terminal_safe(str(error)))
    if args.heatmap_dir is not None:
        try:
            make_output_folder(args.heatmap_dir)
        except OutputFolderError as error:
            parser.error(f"--heatmap-dir {terminal_safe(str(error.folder))}: {error.reason}")

    inputs = expand_inputs(args.images)
    # Verdict, heatmap peak and overlay all come from one pass with the model's default heatmap.
    readable = [item.path for item in inputs if item.error is None]
    failures = 0
    with (closing(score_files(classifier, readable, batch_size=args.batch_size, workers=args.workers)) as scored,
          _Progress(len(inputs), sys.stderr) as progress,
          OverlayWriter(args.heatmap_dir, classifier, args.workers) as overlays):
        for item in inputs:
            file = next(scored) if item.error is None else ScoredFile(item.path, error=item.error)
            failures += file.result is None
            _report(file, threshold, progress, as_json=args.json)
            if file.result is not None:
                overlays.add(file)
            progress.advance()
    return 1 if failures else 0


def _report(file: ScoredFile, threshold: float, progress: "_Progress", *, as_json: bool) -> None:
    if as_json:
        progress.write_line(json.dumps(file.record(threshold)), sys.stdout)
    elif file.result is None:
        progress.write_line(f"{terminal_safe(file.path)}: error: {terminal_safe(file.error)}", sys.stderr)
    else:
        result, notice = file.result, file.result.radiograph_check.notice()
        warning = f" [{notice}]" if notice else ""
        progress.write_line(f"{terminal_safe(file.path)}: P(fractured) = {result.probability_fractured:.3f} -> "
                            f"{result.decision(threshold)} (threshold {threshold:.3f}){warning}", sys.stdout)


class _Progress:
    """``scored 120/500 files (24%), 35.2 files/s, about 11 s left`` on one line of ``stream``,
    redrawn at most every :attr:`REFRESH_S` and erased at the end; drawn only when ``stream`` is a
    terminal. Every line of output goes through :meth:`write_line`, which erases the bar first."""

    REFRESH_S = 0.1

    def __init__(self, total: int, stream):
        self.total, self.stream, self.done = total, stream, 0
        self.enabled = stream.isatty()
        self.started = self.drawn_at = time.monotonic()
        self.visible = False

    def write_line(self, line: str, stream) -> None:
        if self.visible and (stream is self.stream or stream.isatty()):
            self._erase()
        print(line, file=stream, flush=True)

    def advance(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.enabled and (now - self.drawn_at >= self.REFRESH_S or self.done == self.total):
            self.drawn_at, rate = now, self.done / max(now - self.started, 1e-6)
            self.stream.write(f"\r\x1b[Kscored {self.done}/{self.total} files ({self.done / self.total:.0%}), "
                              f"{rate:.1f} files/s, about {(self.total - self.done) / rate:.0f} s left")
            self.stream.flush()
            self.visible = True

    def _erase(self) -> None:
        self.stream.write("\r\x1b[K")  # back to the line's start, and clear it
        self.stream.flush()
        self.visible = False

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.visible:
            self._erase()


if __name__ == "__main__":
    sys.exit(main())
