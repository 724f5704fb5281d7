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
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from core.classifier import FractureClassifier, ImageResult
from core.config import MODELS_DIR
from core.scoring import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS, ScoredFile, overlay_png, score_files
from core.thresholds import DEFAULT_PRESET, PRESET_NAMES

DEFAULT_THRESHOLD = DEFAULT_PRESET
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".dcm", ".dicom"})
SKIPPED_NAMES = frozenset({"DICOMDIR"})


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
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        threshold = classifier.thresholds.resolve(args.threshold)
    except ValueError as error:
        parser.error(terminal_safe(str(error)))
    if args.heatmap_dir is not None:
        make_output_folder(parser, "--heatmap-dir", args.heatmap_dir)

    inputs = expand_inputs(args.images)
    # Verdict, heatmap peak and overlay all come from one pass with the model's default heatmap.
    readable = [item.path for item in inputs if item.error is None]
    failures = 0
    with (closing(score_files(classifier, readable, batch_size=args.batch_size, workers=args.workers)) as scored,
          _Progress(len(inputs), sys.stderr) as progress,
          _OverlayWriter(args.heatmap_dir, classifier, args.workers) as overlays):
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


@dataclass(frozen=True)
class Input:
    """One file to score, or an argument that gave none, with why."""

    path: str
    error: str | None = None


def expand_inputs(arguments: list[str]) -> list[Input]:
    """The command line's paths: a file as named, a folder as the image files under it (see the
    module's docstring for which count), in the order given."""
    inputs = []
    for argument in arguments:
        if not os.path.isdir(argument):
            inputs.append(Input(argument))
            continue
        found = _files_under(argument)
        inputs += found or [Input(argument, "no image files in this folder or below it (looked for "
                                            f"{', '.join(sorted(IMAGE_SUFFIXES))} and files without a suffix)")]
    return inputs


def _files_under(folder: str) -> list[Input]:
    """The image files under ``folder``, and the folders below it that could not be listed, sorted."""
    found, visited = [], set()

    def unlisted(error: OSError) -> None:
        found.append(Input(os.fsdecode(error.filename or folder),
                           f"cannot list this folder: {error.strerror or error}"))

    for parent, folders, files in os.walk(folder, onerror=unlisted, followlinks=True):
        try:
            status = os.stat(parent)
        except OSError as error:  # removed or cut off while being walked
            unlisted(error)
            folders[:] = []
            continue
        if (status.st_dev, status.st_ino) in visited:  # a symbolic link back up the tree: a loop
            folders[:] = []
            continue
        visited.add((status.st_dev, status.st_ino))
        folders[:] = sorted(name for name in folders if not name.startswith("."))  # the first way in names it
        found += [Input(os.path.join(parent, name)) for name in files
                  if _counts_as_image(name) and os.path.isfile(os.path.join(parent, name))]
    return sorted(found, key=lambda item: item.path.split(os.sep))


def _counts_as_image(name: str) -> bool:
    suffix = os.path.splitext(name)[1]
    return (not name.startswith(".") and name not in SKIPPED_NAMES
            and (suffix.lower() in IMAGE_SUFFIXES or suffix == "" or suffix[1:].isdigit()))


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


def make_output_folder(parser: argparse.ArgumentParser, option: str, folder: Path) -> None:
    """Creates the folder given to ``option`` (``--heatmap-dir``, and the archive's output folders);
    a path that cannot be a folder is bad usage (exit 2), not a traceback."""
    if folder.exists() and not folder.is_dir():
        parser.error(f"{option} {terminal_safe(str(folder))}: exists and is not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a parent that is a file, no permission, a read-only disk
        parser.error(f"{option} {terminal_safe(str(folder))}: {error.strerror or error}")


_NAME_MAX_BYTES = 255  # the longest file name ext4, APFS and NTFS take


def unique_overlay_name(path: str, taken: set[str], method: str) -> str:
    """``<stem>_<method>.png`` (``x_fracturemap.png``), numbered when two inputs share a file name
    (``x_2_fracturemap.png``), and short enough to write: an input named at the length limit would
    otherwise fail with "File name too long"."""
    stem, number = Path(path).stem, 1
    name = _fitted(stem, f"_{method}.png")
    while name in taken:
        number += 1
        name = _fitted(stem, f"_{number}_{method}.png")
    taken.add(name)
    return name


def _fitted(stem: str, suffix: str) -> str:
    """``stem + suffix``, the stem cut on a character boundary to keep the name within the limit."""
    budget = _NAME_MAX_BYTES - len(os.fsencode(suffix))
    while len(os.fsencode(stem)) > budget:
        stem = stem[:-1]
    return stem + suffix


def write_overlay(path: Path, result: ImageResult, classifier: FractureClassifier) -> None:
    path.write_bytes(overlay_png(result, classifier.preprocess_config))


class _OverlayWriter:
    """Writes each result's overlay into ``folder`` (None: writes nothing) under :func:`unique_overlay_name`,
    named in input order, blended and encoded on ``workers`` threads (0: at once, on this thread).

    At most ``2 * workers`` overlays are pending, each holding its image at full size: adding one
    more waits for the oldest, whose error (a full disk) is raised then.
    """

    def __init__(self, folder: Path | None, classifier: FractureClassifier, workers: int):
        self.folder, self.classifier, self.limit = folder, classifier, 2 * workers
        self.pool = (ThreadPoolExecutor(workers, thread_name_prefix="overlays")
                     if folder is not None and workers else None)
        self.pending: deque = deque()
        self.taken: set[str] = set()

    def add(self, file: ScoredFile) -> None:
        if self.folder is None:
            return
        path = self.folder / unique_overlay_name(file.path, self.taken, file.result.heatmap_method)
        if self.pool is None:
            write_overlay(path, file.result, self.classifier)
            return
        self.pending.append(self.pool.submit(write_overlay, path, file.result, self.classifier))
        while len(self.pending) > self.limit:
            self.pending.popleft().result()

    def __enter__(self) -> "_OverlayWriter":
        return self

    def __exit__(self, error_type, *_) -> None:
        if self.pool is None:
            return
        try:
            while self.pending and error_type is None:  # after an error (Ctrl-C), only what is running finishes
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


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
