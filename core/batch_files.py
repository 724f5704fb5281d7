"""The files of a batch run: which files a list of paths stands for, and where their overlays go.

``python -m core.predict`` and the Ray archive job (``python -m serving.archive``) both use this
module, so that a folder is listed the same way by both and an overlay gets the same name from
both. Nothing here parses arguments or prints: a folder that cannot take the output is an
:class:`OutputFolderError`, which each command reports as bad usage in its own words.

Listing (:func:`expand_inputs`): a path that is not a folder is kept as given, whatever its name.
A folder stands for the image files under it, recursively, sorted by path folder by folder. In a
folder, a file counts when its suffix is an image format's (:data:`IMAGE_SUFFIXES`, any case) or
when it has none, as DICOM files often have not (a name of digits and dots, a DICOM UID, counts as
having none); hidden files and folders (".*") and DICOMDIR, a DICOM volume's index, are skipped,
and a folder reached twice (a symbolic link back up the tree) is listed once. A folder with no
image file under it is an :class:`Input` with its error, like an unreadable file.

Overlays: ``<stem>_<method>.png`` (:func:`unique_overlay_name`), written by :func:`write_overlay`,
or by an :class:`OverlayWriter` on worker threads.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core.classifier import FractureClassifier, ImageResult
from core.scoring import ScoredFile, overlay_png

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".dcm", ".dicom"})
SKIPPED_NAMES = frozenset({"DICOMDIR"})
_NAME_MAX_BYTES = 255  # the longest file name ext4, APFS and NTFS take


@dataclass(frozen=True)
class Input:
    """One file to score, or a path that gave none, with why."""

    path: str
    error: str | None = None


def expand_inputs(arguments: list[str]) -> list[Input]:
    """The files ``arguments`` stand for: a file as named, a folder as the image files under it
    (see the module's docstring for which count), in the order given."""
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


class OutputFolderError(ValueError):
    """A folder that cannot take a run's output: ``folder`` as given, and ``reason`` (the system's
    words, or "exists and is not a directory"). A command reports it as bad usage, naming its option."""

    def __init__(self, folder: Path, reason: str):
        super().__init__(f"{folder}: {reason}")
        self.folder, self.reason = folder, reason


def make_output_folder(folder: Path) -> None:
    """Creates ``folder`` and its parents if need be, before any file is scored, so that a path
    that cannot be a folder stops the run at once rather than at the first overlay.

    Raises:
        OutputFolderError: ``folder`` is a file, or cannot be made (a parent that is a file, no
            permission, a read-only disk).
    """
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(folder, "exists and is not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputFolderError(folder, str(error.strerror or error)) from error


def unique_overlay_name(path: str, taken: set[str], method: str) -> str:
    """``<stem>_<method>.png`` (``x_fracturemap.png``), numbered when two inputs share a file name
    (``x_2_fracturemap.png``), and short enough to write: an input named at the length limit would
    otherwise fail with "File name too long". Adds the name to ``taken``."""
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
    """``result``'s heatmap over its image, as the PNG file ``path`` (:func:`core.scoring.overlay_png`)."""
    path.write_bytes(overlay_png(result, classifier.preprocess_config))


class OverlayWriter:
    """Writes each result's overlay into ``folder`` (None: writes nothing) under :func:`unique_overlay_name`,
    named in the order added, blended and encoded on ``workers`` threads (0: at once, on this thread).

    At most ``2 * workers`` overlays are pending, each holding its image at full size: adding one
    more waits for the oldest, whose error (a full disk) is raised then. Leaving the ``with``
    block waits for the rest, unless it is left on an error (Ctrl-C): then only what is running
    finishes.
    """

    def __init__(self, folder: Path | None, classifier: FractureClassifier, workers: int):
        self.folder, self.classifier, self.limit = folder, classifier, 2 * workers
        self.pool = (ThreadPoolExecutor(workers, thread_name_prefix="overlays")
                     if folder is not None and workers else None)
        self.pending: deque = deque()
        self.taken: set[str] = set()

    def add(self, file: ScoredFile) -> None:
        """Writes (or queues) the overlay of ``file``, which must have a result."""
        if self.folder is None:
            return
        path = self.folder / unique_overlay_name(file.path, self.taken, file.result.heatmap_method)
        if self.pool is None:
            write_overlay(path, file.result, self.classifier)
            return
        self.pending.append(self.pool.submit(write_overlay, path, file.result, self.classifier))
        while len(self.pending) > self.limit:
            self.pending.popleft().result()

    def __enter__(self) -> "OverlayWriter":
        return self

    def __exit__(self, error_type, *_) -> None:
        if self.pool is None:
            return
        try:
            while self.pending and error_type is None:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
