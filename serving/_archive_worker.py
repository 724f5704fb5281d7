"""The archive job's worker: one per Ray actor, the model loaded once, a batch of files in, rows out.

Each row is the CLI's ``--json`` answer for one file (:meth:`core.scoring.ScoredFile.record`),
flattened into columns. The worker reads each file itself, from its path, through
:func:`core.scoring.score_files`: a file that is missing by then (moved or deleted after the
listing), is not an image, or is too large comes back as a row with its error, and only the
path, never the file's bytes, travels through Ray's object store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from core.batch_files import write_overlay
from core.classifier import FractureClassifier
from core.scoring import ScoredFile, score_files

logger = logging.getLogger(__name__)

# What a worker returns: the row's place in the job's sorted list of files, then the CLI's answer.
# The job adds the path itself (it holds the list), so a row that went missing cannot go unseen.
SCORED_SCHEMA = pa.schema([
    ("index", pa.int64()),
    # The heatmap drawn (the model's default): the job names the overlays after it, as the CLI
    # does, and leaves it out of the rows (the CLI's JSON does not carry it).
    ("heatmap_method", pa.string()),
    ("probability_fractured", pa.float64()),
    ("decision", pa.string()),
    ("threshold", pa.float64()),
    ("looks_like_radiograph", pa.bool_()),
    ("unlike_training_data", pa.bool_()),
    ("heatmap_peak_x", pa.float64()),
    ("heatmap_peak_y", pa.float64()),
    ("error", pa.string()),
])


def overlay_staging_name(index: int) -> str:
    """The file a worker writes the overlay of the job's ``index``-th file to, before the job
    gives it the CLI's name (which depends on every file before it, so only the job can)."""
    return f"{index}.png"


class ArchiveWorker:
    """Scores batches of files on one Ray actor (a callable class for ``Dataset.map_batches``).

    Args:
        model_dir: the model to load, once, when the actor starts.
        threshold: the decision threshold, already resolved from its name.
        overlay_staging: a folder to write each readable file's overlay (of the model's default
            heatmap) to, or None.
        tensorflow_threads: threads TensorFlow may use in this process (None: its default, one
            per core of the machine). Set to the actor's CPUs: N actors on an N-core node would
            otherwise run N × N threads. The answers do not depend on it.
    """

    def __init__(self, model_dir: str, threshold: float, overlay_staging: str | None = None,
                 tensorflow_threads: int | None = None):
        if tensorflow_threads is not None:
            _limit_tensorflow_threads(tensorflow_threads)
        self.classifier = FractureClassifier.load(model_dir)
        self.threshold = threshold
        self.overlay_staging = None if overlay_staging is None else Path(overlay_staging)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        """``batch``: ``index`` (int) and ``location`` (the absolute path, as file-system bytes)."""
        locations = [os.fsdecode(location) for location in batch["location"]]
        rows = []
        # One result at a time: each holds its image at full size, and a batch may be of large scans.
        for index, file in zip(batch["index"].tolist(), self._scored(locations)):
            if self.overlay_staging is not None and file.result is not None:
                file = self._with_overlay(file, index)
            method = None if file.result is None else file.result.heatmap_method
            rows.append({"index": index, "heatmap_method": method, **scored_columns(file.record(self.threshold))})
        return pa.Table.from_pylist(rows, schema=SCORED_SCHEMA)

    def _with_overlay(self, file: ScoredFile, index: int) -> ScoredFile:
        """``file``, its overlay written; or, where the overlay cannot be drawn, ``file`` as an error row
        (no overlay is then named): one such file costs its own row, not the whole job."""
        try:
            write_overlay(self.overlay_staging / overlay_staging_name(index), file.result, self.classifier)
        except ValueError as error:  # not OSError: a full disk or a lost folder is the job's, not the file's
            logger.warning("could not draw the overlay of %s: %s", Path(file.path).name, error)
            return ScoredFile(file.path, error=f"its overlay could not be drawn: {error}")
        return file

    def _scored(self, locations: list[str]) -> Iterator[ScoredFile]:
        """:func:`score_files` on ``locations``, and if it fails, the rest of them one by one."""
        done = 0
        try:
            for file in score_files(self.classifier, locations):
                done += 1
                yield file
        except Exception:  # noqa: BLE001 - isolated below, file by file; never hidden
            # Read errors come back as ScoredFile.error; this is a file that breaks scoring itself.
            # Scoring the files not yet answered one by one finds it, keeps the others' answers,
            # and gives it an error row: one such file costs its own row, not the whole job.
            rest = locations[done:]
            logger.warning("scoring failed among %d files; scoring them one by one: %s",
                           len(rest), ", ".join(Path(location).name for location in rest))
            for location in rest:
                yield self._score_alone(location)

    def _score_alone(self, location: str) -> ScoredFile:
        try:
            return next(score_files(self.classifier, [location]))
        except Exception as error:  # noqa: BLE001 - reported in the row's error and logged
            logger.exception("could not score %s", Path(location).name)
            return ScoredFile(location, error=f"could not be scored: {type(error).__name__}: {error}")


def _limit_tensorflow_threads(threads: int) -> None:
    """Must run before TensorFlow's first operation in the process (before the model is loaded)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def scored_columns(record: dict) -> dict:
    """The columns of one ``--json`` record (:meth:`core.scoring.ScoredFile.record`)."""
    if "error" in record:
        return {"error": record["error"]}
    peak_x, peak_y = record["heatmap_peak"]
    return {"probability_fractured": record["probability_fractured"], "decision": record["decision"],
            "threshold": record["threshold"], "looks_like_radiograph": record["looks_like_radiograph"],
            "unlike_training_data": record["unlike_training_data"], "heatmap_peak_x": peak_x,
            "heatmap_peak_y": peak_y}
