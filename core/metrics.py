"""What the served model needs of its probabilities: calibration and one threshold's counts.

Conventions: label 1 = fractured (positive), 0 = not fractured, and an image is predicted
fractured iff its probability >= threshold. Results are plain Python numbers (or None), so they
go straight into ``json.dumps``. Metrics that judge a model (AUROC, calibration curves, choosing
thresholds) live in :mod:`training.metrics`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

EPS = 1e-7  # keeps logits finite for probabilities of exactly 0 or 1


def as_probabilities(probabilities, name: str = "probabilities") -> np.ndarray:
    try:
        p = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    bad = ~np.isfinite(p)
    if bad.any():
        raise ValueError(f"{name} must be finite; found {int(bad.sum())} NaN/inf value(s), "
                         f"first at index {int(np.flatnonzero(bad)[0])}")
    out = (p < 0.0) | (p > 1.0)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"{name} must lie in [0, 1]; found {int(out.sum())} value(s) outside, "
                         f"e.g. {float(p.flat[i])!r} at index {i}")
    return p


def validate_scores(labels, probabilities, need_both: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns (int64 labels, float64 probabilities); `need_both` names the metric that needs both classes."""
    y_raw = np.asarray(labels)
    p = as_probabilities(probabilities)
    if y_raw.ndim != 1 or p.ndim != 1:
        raise ValueError(f"labels and probabilities must be 1-D; got shapes {y_raw.shape} and {p.shape}")
    if len(y_raw) != len(p):
        raise ValueError(f"labels and probabilities must have the same length; "
                         f"got {len(y_raw)} labels and {len(p)} probabilities")
    if len(p) == 0:
        raise ValueError("need at least one item; got 0 labels and 0 probabilities")
    try:
        yf = y_raw.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"labels must be 0 or 1; got non-numeric dtype {y_raw.dtype}") from None
    bad = (yf != 0.0) & (yf != 1.0)  # NaN fails both comparisons, so it is caught here too
    if bad.any():
        raise ValueError(f"labels must be 0 (not fractured) or 1 (fractured); found {int(bad.sum())} "
                         f"other value(s): {np.unique(yf[bad])[:5].tolist()}")
    y = yf.astype(np.int64)
    n_pos = int(y.sum())
    if need_both and n_pos in (0, len(y)):
        raise ValueError(f"{need_both} needs both classes; got {n_pos} fractured and "
                         f"{len(y) - n_pos} not-fractured labels")
    return y, p


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass(frozen=True)
class OperatingPoint:
    """Confusion-matrix figures at one threshold (fractured iff probability >= threshold).

    A ratio whose denominator is zero (PPV with no predicted positives, sensitivity with no
    fractured images) is None rather than NaN, so :meth:`as_dict` stays valid JSON.
    """

    threshold: float
    sensitivity: float | None
    specificity: float | None
    ppv: float | None
    npv: float | None
    f1: float | None
    accuracy: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n_positive(self) -> int:
        return self.tp + self.fn

    @property
    def n_negative(self) -> int:
        return self.tn + self.fp

    @property
    def predicted_fractured(self) -> int:
        return self.tp + self.fp

    @property
    def predicted_normal(self) -> int:
        return self.tn + self.fn

    def as_dict(self) -> dict:
        """The JSON form ``training.evaluate`` stores in ``metrics.json`` (counts included)."""
        return {**dataclasses.asdict(self), "n_positive": self.n_positive, "n_negative": self.n_negative}

    @classmethod
    def from_counts(cls, threshold: float, tp: int, fp: int, tn: int, fn: int) -> "OperatingPoint":
        return cls(threshold=threshold, sensitivity=_ratio(tp, tp + fn), specificity=_ratio(tn, tn + fp),
                   ppv=_ratio(tp, tp + fp), npv=_ratio(tn, tn + fn), f1=_ratio(2 * tp, 2 * tp + fp + fn),
                   accuracy=(tp + tn) / (tp + fp + tn + fn), tp=tp, fp=fp, tn=tn, fn=fn)


def operating_point(labels, probabilities, threshold: float) -> OperatingPoint:
    """Confusion-matrix metrics at one threshold (fractured iff probability >= threshold).

    Raises:
        ValueError: On invalid inputs or a threshold that is not a finite number in [0, 1].
    """
    y, p = validate_scores(labels, probabilities)
    t = float(threshold)
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise ValueError(f"threshold must be a finite number in [0, 1]; got {threshold!r}")
    predicted, fractured = p >= t, y == 1
    tp = int(np.count_nonzero(predicted & fractured))
    fp = int(np.count_nonzero(predicted & ~fractured))
    fn = int(np.count_nonzero(fractured)) - tp
    return OperatingPoint.from_counts(t, tp, fp, len(y) - tp - fp - fn, fn)


def apply_temperature(probabilities, temperature: float) -> np.ndarray:
    """Returns sigmoid(logit(clip(p)) / T) as a float64 array of the input's shape (clip to [1e-7, 1-1e-7])."""
    p = as_probabilities(probabilities)
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number; got {temperature!r}") from None
    if not (math.isfinite(t) and t > 0.0):
        raise ValueError(f"temperature must be finite and > 0; got {temperature!r}")
    return expit(logit(np.clip(p, EPS, 1.0 - EPS)) / t)
