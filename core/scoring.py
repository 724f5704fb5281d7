"""Scoring many files: the one path that the CLI, the Ray archive job and the Ray Serve
deployment share, so that all three give the same answer for the same file.

:func:`score_files` reads, classifies and explains each file (verdict and, by default, the
model's own default heatmap) and yields a :class:`ScoredFile` per input, in input order; a file
that cannot be read becomes a :class:`ScoredFile` with its error, and the run goes on. :meth:`ScoredFile.record`
is the JSON object ``python -m core.predict --json`` prints.

Files are read, preprocessed and measured for the radiograph check on worker threads (Pillow,
OpenCV and NumPy release the interpreter lock), while the network scores the batch before them
in one compiled pass. An image's answer is the same bit for bit in a batch of any size (see
:meth:`FractureClassifier.classify_prepared`), so the batch size changes the speed only.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.classifier import MODEL_DEFAULT, FractureClassifier, ImageResult, PreparedImage
from core.imaging import ImageReadError
from core.overlay import encode_png, fit_for_png, overlay_on_original
from core.preprocessing import PreprocessConfig, content_box
from core.reports import radiograph_fields

PEAK_DECIMALS = 4  # 1/10,000 of the side: finer than a pixel of any radiograph we read
# Images per network pass. On 2 cores a pass costs 4.8 ms per image alone, 2.1 ms in 16 and
# 1.8 ms in 32 (shipped 192 px model, shared machine); 16 keeps most of the gain while two
# batches of large scans (the most held at once) stay a few hundred MB.
DEFAULT_BATCH_SIZE = 16
# Threads that read and prepare files while the network runs: one per core of the 2-core
# machines this runs on; more only queue for the same cores.
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class HeatmapPeak:
    """Where a heatmap is highest, as fractions (0-1) of the original image's width and height."""

    x: float
    y: float

    def as_list(self) -> list[float]:
        return [round(self.x, PEAK_DECIMALS), round(self.y, PEAK_DECIMALS)]


def heatmap_peak(heatmap: np.ndarray, source_shape: tuple[int, int], config: PreprocessConfig) -> HeatmapPeak:
    """The centre of the hottest model-input pixel of ``heatmap``, on the original image.

    Args:
        heatmap: float (S, S) at the model's input size.
        source_shape: (H, W) of the image as read (places the letterbox as preprocessing did).
        config: the preprocessing that made the model input.

    The peak is searched inside the image's own part of the square input only: the letterbox
    is not the image. Ties go to the first pixel in row-major order.
    """
    box = content_box(source_shape, config)
    inside = box.crop(np.asarray(heatmap))
    row, column = np.unravel_index(int(np.argmax(inside)), inside.shape)
    return HeatmapPeak(x=float((column + 0.5) / box.width), y=float((row + 0.5) / box.height))


def overlay_png(result: ImageResult, config: PreprocessConfig) -> bytes:
    """``result``'s heatmap over its image, at the image's size, as PNG: the file
    ``--heatmap-dir`` and the archive write and the Serve deployment's ``overlay=png`` answer.

    An image of an extreme aspect (2,000,000 x 1 px reads) is drawn at the most a PNG can hold
    (:func:`core.overlay.fit_for_png`: a long side of 1,000,000 px), its aspect kept."""
    image = fit_for_png(result.image)
    return encode_png(overlay_on_original(image, result.heatmap, config, source_shape=result.image.shape))


@dataclass(frozen=True)
class ImageBytes:
    """An image already in memory (an upload, an HTTP body, a row of a Ray dataset), with the
    name it is reported under."""

    name: str
    data: bytes


@dataclass(frozen=True)
class ScoredFile:
    """One input of a run: its result, or why it could not be read."""

    path: str
    result: ImageResult | None = None
    peak: HeatmapPeak | None = None
    error: str | None = None

    def record(self, threshold: float) -> dict:
        """The ``--json`` object of :mod:`core.predict` for this file at ``threshold``."""
        if self.result is None:
            return {"path": self.path, "error": self.error}
        record = {"path": self.path, "probability_fractured": round(self.result.probability_fractured, 6),
                  "decision": self.result.decision(threshold), "threshold": round(threshold, 6)}
        if self.peak is not None:
            record["heatmap_peak"] = self.peak.as_list()
        record.update(radiograph_fields(self.result.radiograph_check))
        return record


def score_files(classifier: FractureClassifier, sources: Iterable[str | os.PathLike | ImageBytes], *,
                heatmap: str | None = MODEL_DEFAULT, batch_size: int = DEFAULT_BATCH_SIZE,
                workers: int = DEFAULT_WORKERS) -> Iterator[ScoredFile]:
    """Classifies each source, in input order, ``batch_size`` images per network pass.

    ``sources`` is consumed lazily, and at most two batches of images are held at a time: the
    one being scored and the next, which the workers read meanwhile. The answers do not depend
    on ``batch_size`` or ``workers``.

    Args:
        classifier: the loaded model.
        sources: image files (any format :mod:`core.imaging` reads), or :class:`ImageBytes`.
        heatmap: the heatmap method whose peak is reported: by default (:data:`MODEL_DEFAULT`) the
            classifier's ``default_heatmap``; a key of :data:`core.heatmaps.METHODS`; or None for
            the verdict alone.
        batch_size: images per network pass (1: one at a time).
        workers: threads that read and prepare the files (0: the calling thread, file by file).

    Raises:
        ValueError: for a batch size under 1 or a negative number of workers, at the call; for
            ``heatmap``, as :meth:`FractureClassifier.classify_prepared` does.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    if workers < 0:
        raise ValueError(f"workers must be 0 (the calling thread) or more; got {workers}")
    method = classifier.default_heatmap if heatmap == MODEL_DEFAULT else heatmap
    return _scored(classifier, sources, method, batch_size, workers)


def _scored(classifier: FractureClassifier, sources, heatmap: str | None, batch_size: int,
            workers: int) -> Iterator[ScoredFile]:
    batches = _prepared_batches(classifier, sources, batch_size, workers)
    try:
        for batch in batches:
            readable = [prepared for _, prepared in batch if isinstance(prepared, PreparedImage)]
            results = iter(classifier.classify_prepared(readable, heatmap=heatmap))
            for name, prepared in batch:
                if isinstance(prepared, ImageReadError):
                    yield ScoredFile(name, error=str(prepared))
                    continue
                result = next(results)
                peak = None if result.heatmap is None else heatmap_peak(result.heatmap, result.source_shape,
                                                                        classifier.preprocess_config)
                yield ScoredFile(name, result, peak)
    finally:  # the caller stopped early, or scoring failed: stop the workers now, not at garbage collection
        batches.close()


def _prepared_batches(classifier: FractureClassifier, sources, batch_size: int, workers: int):
    """Lists of ``(name, PreparedImage or the ImageReadError it raised)``, ``batch_size`` long (the
    last may be shorter), in input order. The next batch is read while the caller scores one."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix="score-files") if workers else _CallingThread()
    ahead: deque[tuple[str, Future]] = deque()
    try:
        for source in sources:
            name, readable = (source.name, source.data) if isinstance(source, ImageBytes) else (os.fsdecode(source),
                                                                                               source)
            ahead.append((name, pool.submit(classifier.prepare, readable)))
            if len(ahead) == 2 * batch_size:
                yield _resolved(ahead, batch_size)
        while ahead:
            yield _resolved(ahead, batch_size)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _resolved(ahead: deque, count: int) -> list[tuple[str, PreparedImage | ImageReadError]]:
    """The first ``count`` of ``ahead``, waited for; an unreadable file keeps its error in its place."""
    batch = []
    for _ in range(min(count, len(ahead))):
        name, future = ahead.popleft()
        try:
            batch.append((name, future.result()))
        except ImageReadError as error:
            batch.append((name, error))
    return batch


class _CallingThread:
    """The part of an executor that :func:`_prepared_batches` uses, running each call at once on the
    calling thread (``workers=0``)."""

    @staticmethod
    def submit(function, *args) -> Future:
        future = Future()
        try:
            future.set_result(function(*args))
        except Exception as error:  # noqa: BLE001 - handed on: Future.result() raises it again
            future.set_exception(error)
        return future

    @staticmethod
    def shutdown(wait: bool = True, cancel_futures: bool = False) -> None:
        """Nothing runs in the background."""
