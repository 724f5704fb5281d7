"""What a threshold does on held-out data, from the probabilities ``training.evaluate`` stored.

The app shows these figures beside its threshold slider: moving the slider re-counts stored
probabilities and never runs the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.metrics import OperatingPoint, operating_point


@dataclass(frozen=True)
class HeldOutPredictions:
    """Calibrated P(fractured) and true labels of one held-out split."""

    split: str
    labels: np.ndarray
    probabilities: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[dict], split: str) -> "HeldOutPredictions":
        """From ``probabilities.csv`` rows (see :func:`core.artifacts.load_probability_rows`).

        Raises:
            ValueError: if no row belongs to ``split``.
        """
        members = [row for row in rows if row["split"] == split]
        if not members:
            raise ValueError(f"the stored probabilities hold no rows for split {split!r}")
        return cls(split, np.array([int(row["label"]) for row in members]),
                   np.array([float(row["probability_fractured"]) for row in members]))

    def at_threshold(self, threshold: float) -> OperatingPoint:
        """Sensitivity, specificity, PPV, NPV and counts at ``threshold`` (see core.metrics)."""
        return operating_point(self.labels, self.probabilities, threshold)


def percent(value: float | None, missing: str = "–") -> str:
    """"88.3%"; ``missing`` where the figure is undefined (no case to count it on)."""
    return missing if value is None else f"{100 * value:.1f}%"


def describe_costs(point: OperatingPoint) -> str:
    """A threshold's cost in words, e.g. "catches 96 of 111 fractures; 128 false alarms in 506 normals"."""
    alarms = "false alarm" if point.fp == 1 else "false alarms"
    return (f"catches {point.tp} of {point.n_positive} fractures; "
            f"{point.fp} {alarms} in {point.n_negative} normals")


def region_group(region: str) -> str:
    """The body-region subgroup reported for an image.

    Multi-region images ("hand+hip+mixed") come in a dozen rare combinations; one "mixed" group
    keeps each reported row large enough to mean something.
    """
    return "mixed" if "+" in region else region
