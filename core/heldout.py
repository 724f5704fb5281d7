"""What a threshold does on held-out data, from the probabilities ``core.evaluate`` stored.

The app shows these figures beside its threshold slider: moving the slider re-counts stored
probabilities and never runs the network.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import MODELS_DIR, PROBABILITIES_FILENAME
from core.metrics import operating_point


@dataclass(frozen=True)
class HeldOutPredictions:
    """Calibrated P(fractured) and true labels of one held-out split."""

    split: str
    labels: np.ndarray
    probabilities: np.ndarray

    @classmethod
    def load(cls, model_dir: str | Path = MODELS_DIR, split: str = "test") -> "HeldOutPredictions":
        """Reads ``probabilities.csv`` written by ``python -m core.evaluate``.

        Raises:
            FileNotFoundError: if the file is missing.
            ValueError: if it holds no rows for ``split``.
        """
        path = Path(model_dir) / PROBABILITIES_FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; run python -m core.evaluate")
        with open(path, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["split"] == split]
        if not rows:
            raise ValueError(f"{path} has no rows for split {split!r}")
        return cls(split,
                   np.array([int(row["label"]) for row in rows]),
                   np.array([float(row["probability_fractured"]) for row in rows]))

    def at_threshold(self, threshold: float) -> dict:
        """Sensitivity, specificity, PPV, NPV and counts at ``threshold`` (see core.metrics)."""
        return operating_point(self.labels, self.probabilities, threshold)


def describe_costs(point: dict) -> str:
    """A threshold's cost in words, e.g. "catches 98 of 111 fractures; 181 false alarms in 506 normals"."""
    alarms = "false alarm" if point["fp"] == 1 else "false alarms"
    return (f"catches {point['tp']} of {point['n_positive']} fractures; "
            f"{point['fp']} {alarms} in {point['n_negative']} normals")
