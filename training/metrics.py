"""Metrics that judge a model: AUROC with its CI, thresholds, calibration, ROC.

Conventions: label 1 = fractured (positive), 0 = not fractured, and an image is
predicted fractured iff its probability >= threshold. Every function returns
plain Python numbers (or None) so results go straight into ``json.dumps``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy.special import logit

from core.metrics import EPS, operating_point, validate_scores

# scikit-learn and scipy.optimize are imported inside the functions that need them: the app's
# first answer (threshold sidebar, calibration) must not wait about 0.7 s for them.

def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def _auc_from_counts(counts: np.ndarray, y_sorted: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC per row of multiplicities `counts` (items sorted by score, ties grouped at `starts`).

    Returns NaN for rows lacking a class.
    """
    pos = np.add.reduceat(counts * y_sorted, starts, axis=1).astype(np.float64)
    neg = np.add.reduceat(counts * (1 - y_sorted), starts, axis=1).astype(np.float64)
    neg_below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def auroc_with_ci(labels, probabilities, *, n_bootstrap: int = 2000, confidence: float = 0.95,
                  seed: int = 0) -> dict:
    """AUROC with a percentile-bootstrap confidence interval over images.

    Args:
        labels: 0/1 labels (1 = fractured); both classes required.
        probabilities: P(fractured) per image, in [0, 1].
        n_bootstrap: Number of valid resamples; resamples lacking a class are redrawn.
        confidence: Two-sided interval coverage in (0, 1).
        seed: Seed for numpy's default_rng, making the interval reproducible.

    Returns:
        {"auroc", "ci_low", "ci_high", "n_bootstrap"}.

    Raises:
        ValueError: On invalid inputs or a single class.
    """
    y, p = validate_scores(labels, probabilities, need_both="AUROC")
    _check_int("n_bootstrap", n_bootstrap, 1)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}")
    n = len(y)
    order = np.argsort(p, kind="stable")
    y_sorted, p_sorted = y[order], p[order]
    starts = np.flatnonzero(np.r_[True, p_sorted[1:] != p_sorted[:-1]])
    rng = np.random.default_rng(seed)
    rows_per_chunk = max(1, 2_000_000 // n)  # bounds memory to a few tens of MB for any n
    aucs: list[np.ndarray] = []
    have = 0
    # Terminates quickly: with both classes present a resample is valid with probability >= 1 - 2/e.
    while have < n_bootstrap:
        rows = min(rows_per_chunk, n_bootstrap - have)
        # Resampling sorted positions uniformly is the same as resampling images; bincount gives multiplicities.
        idx = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n)
        chunk = _auc_from_counts(counts, y_sorted, starts)
        aucs.append(chunk[np.isfinite(chunk)][: n_bootstrap - have])
        have += len(aucs[-1])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.concatenate(aucs), [alpha, 1.0 - alpha])
    from sklearn.metrics import roc_auc_score

    return {"auroc": float(roc_auc_score(y, p)), "ci_low": float(low), "ci_high": float(high),
            "n_bootstrap": int(n_bootstrap)}


def _pick(mask: np.ndarray, primary: np.ndarray, secondary: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    best = idx[primary[idx] == primary[idx].max()]
    return int(best[np.argmax(secondary[best])])


def choose_thresholds(labels, probabilities, *, min_sensitivity: float = 0.90,
                      min_specificity: float = 0.95) -> dict:
    """Picks the three clinical operating thresholds from the ROC candidates.

    - screening: highest specificity with sensitivity >= min_sensitivity (ties: higher sensitivity).
    - balanced: highest Youden's J (ties: higher sensitivity, since a missed fracture costs more).
    - specific: highest sensitivity with specificity >= min_specificity (ties: higher specificity).

    Each threshold sits midway between the chosen score and the next lower distinct score (0 below the
    lowest), so under the >= rule it reproduces the chosen operating point exactly without resting on
    one image's score. "Flag nothing" is a candidate only if representable (max score < 1).

    Returns:
        {"screening": float, "balanced": float, "specific": float}, each in [0, 1].

    Raises:
        ValueError: On invalid inputs, a single class, or an unattainable min_specificity.
    """
    y, p = validate_scores(labels, probabilities, need_both="choose_thresholds")
    for name, v in (("min_sensitivity", min_sensitivity), ("min_specificity", min_specificity)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]; got {v!r}")
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    # Integer counts make the comparisons bit-identical to operating_point's tp / (tp + fn).
    tp = np.rint(tpr * n_pos).astype(np.int64)
    tn = n_neg - np.rint(fpr * n_neg).astype(np.int64)
    sens, spec = tp / n_pos, tn / n_neg
    youden = tp * n_neg + tn * n_pos  # (J + 1) * n_pos * n_neg, exact so ties are real ties
    scores = thr[1:]  # thr[0] is sklearn's +inf "flag nothing" point
    hi, lo = np.r_[1.0, scores], np.r_[scores, 0.0]
    mid = 0.5 * (hi + lo)
    # Adjacent floats can make the midpoint round onto the lower score; the chosen score itself is then exact.
    placed = np.where((lo < mid) & (mid <= hi), mid, hi)
    feasible = np.ones(len(thr), dtype=bool)
    feasible[0] = scores[0] < 1.0
    picks = {
        "screening": _pick(feasible & (sens >= min_sensitivity), spec, sens),
        "balanced": _pick(feasible, youden, sens),
        "specific": _pick(feasible & (spec >= min_specificity), sens, spec),
    }
    if picks["specific"] is None:
        raise ValueError(f"no threshold in [0, 1] reaches specificity >= {min_specificity}: the highest "
                         f"score is 1.0 and {n_neg - int(tn[1])} of {n_neg} negatives have it")
    return {name: float(placed[i]) for name, i in picks.items()}


def _bins(labels, probabilities, n_bins: int):
    y, p = validate_scores(labels, probabilities)
    _check_int("n_bins", n_bins, 1)
    edges = np.arange(n_bins + 1) / n_bins  # exact edges like 0.6, unlike linspace's 0.6000000000000001
    # Bin i is [edges[i], edges[i+1]); searchsorted on the interior edges puts p == 1.0 in the last bin.
    idx = np.searchsorted(edges[1:-1], p, side="right")
    count = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    return edges, count, sum_p, sum_y


def expected_calibration_error(labels, probabilities, *, n_bins: int = 10) -> float:
    """Count-weighted mean |mean P(fractured) - fraction fractured| over equal-width bins on [0, 1]."""
    _, count, sum_p, sum_y = _bins(labels, probabilities, n_bins)
    # count * |mean_p - frac| == |sum_p - sum_y|, and empty bins contribute 0.
    return float(np.abs(sum_p - sum_y).sum() / count.sum())


def reliability_curve(labels, probabilities, *, n_bins: int = 10) -> list[dict]:
    """Per non-empty equal-width bin: {"bin_low", "bin_high", "mean_predicted", "fraction_positive", "count"}."""
    edges, count, sum_p, sum_y = _bins(labels, probabilities, n_bins)
    return [{"bin_low": float(edges[i]), "bin_high": float(edges[i + 1]),
             "mean_predicted": float(sum_p[i] / count[i]), "fraction_positive": float(sum_y[i] / count[i]),
             "count": int(count[i])} for i in np.flatnonzero(count)]


def fit_temperature(labels, probabilities) -> float:
    """Fits temperature T > 0 so sigmoid(logit(p) / T) minimises the negative log-likelihood.

    Optimised on log T within [0.05, 20]; NLL is convex in 1/T, so a bounded scalar search finds
    the global optimum. Returns 1.0 when every probability is 0.5 (T has no effect).

    Raises:
        ValueError: On invalid inputs or a single class (T would run off to a bound).
    """
    y, p = validate_scores(labels, probabilities, need_both="fit_temperature")
    z = logit(np.clip(p, EPS, 1.0 - EPS))
    if not np.any(z):
        return 1.0
    signed = (2.0 * y - 1.0) * z

    def nll(log_t: float) -> float:
        return float(np.mean(np.logaddexp(0.0, -signed * math.exp(-log_t))))  # stable -log sigmoid

    from scipy.optimize import minimize_scalar

    res = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded",
                          options={"xatol": 1e-6})
    return float(math.exp(res.x))


def roc_points(labels, probabilities, *, max_points: int = 200) -> dict:
    """ROC curve as JSON-ready lists, subsampled evenly to <= max_points keeping first and last points.

    sklearn's leading +inf threshold is reported as 1.0.
    """
    y, p = validate_scores(labels, probabilities, need_both="ROC curve")
    _check_int("max_points", max_points, 2)
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y, p)
    keep = np.unique(np.rint(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr)))).astype(np.int64))
    thr = np.where(np.isfinite(thr), thr, 1.0)
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "thresholds": thr[keep].tolist()}


def summarise(labels, probabilities, thresholds: Mapping[str, float], *, n_bootstrap: int = 2000,
              seed: int = 0) -> dict:
    """Full evaluation summary for one data set or subgroup.

    A subgroup with one class (e.g. no fractures) gets "auroc": None and "roc": None instead of an error.

    Returns:
        {"n", "n_positive", "auroc", "operating_points", "ece", "reliability", "roc"}.
    """
    y, p = validate_scores(labels, probabilities)
    if not isinstance(thresholds, Mapping):
        raise ValueError(f"thresholds must map names to thresholds; got {type(thresholds).__name__}")
    n_pos = int(y.sum())
    both = 0 < n_pos < len(y)
    return {
        "n": len(y), "n_positive": n_pos,
        "auroc": auroc_with_ci(y, p, n_bootstrap=n_bootstrap, seed=seed) if both else None,
        "operating_points": {str(k): operating_point(y, p, t).as_dict() for k, t in thresholds.items()},
        "ece": expected_calibration_error(y, p), "reliability": reliability_curve(y, p),
        "roc": roc_points(y, p) if both else None,
    }
