"""Scoring many files: the one path that the CLI, the Ray archive job and the Ray Serve
deployment share, so that all three give the same answer for the same file.

:func:`score_files` reads, classifies and explains each file (verdict and Grad-CAM from one
pass) and yields a :class:`ScoredFile` per input, in input order; a file that cannot be read
becomes a :class:`ScoredFile` with its error, and the run goes on. :meth:`ScoredFile.record`
is the JSON object ``python -m core.predict --json`` prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from core.classifier import FractureClassifier, ImageResult
from core.heatmaps import DEFAULT_METHOD
from core.imaging import ImageReadError
from core.preprocessing import PreprocessConfig, content_box
from core.reports import radiograph_fields

PEAK_DECIMALS = 4  # 1/10,000 of the side: finer than a pixel of any radiograph we read


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
    top, left, height, width = content_box(source_shape, config)
    inside = np.asarray(heatmap)[top : top + height, left : left + width]
    row, column = np.unravel_index(int(np.argmax(inside)), inside.shape)
    return HeatmapPeak(x=float((column + 0.5) / width), y=float((row + 0.5) / height))


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
                heatmap: str | None = DEFAULT_METHOD) -> Iterator[ScoredFile]:
    """Classifies each source, in input order.

    Args:
        classifier: the loaded model.
        sources: image files (any format :mod:`core.imaging` reads), or :class:`ImageBytes`.
        heatmap: the heatmap method whose peak is reported (None: the verdict alone).
    """
    for source in sources:
        name, data = (source.name, source.data) if isinstance(source, ImageBytes) else (os.fsdecode(source), source)
        try:
            result = classifier.classify(data, heatmap=heatmap)
        except ImageReadError as error:
            yield ScoredFile(name, error=str(error))
            continue
        peak = None if result.heatmap is None else heatmap_peak(result.heatmap, result.source_shape,
                                                                classifier.preprocess_config)
        yield ScoredFile(name, result, peak)
