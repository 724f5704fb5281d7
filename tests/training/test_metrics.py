"""Tests for training.metrics: agreement with scikit-learn, hand-computed values, and threshold
definitions. The served part (one operating point, temperature) is tested in tests/core/test_metrics.py."""

import json

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score

from core import metrics as served
from training import metrics as m

# Hand case: 4 fractured, 6 not. The fractured 0.2 ties two negatives (tests mid-rank AUROC).
Y_HAND = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
P_HAND = [0.9, 0.8, 0.6, 0.2, 0.7, 0.4, 0.2, 0.2, 0.1, 0.05]


def _imbalanced(n_pos=120, ratio=4.7, seed=0, decimals=None):
    """Realistic 1:4.7 fractured:not data with overlapping score distributions."""
    rng = np.random.default_rng(seed)
    n_neg = int(round(n_pos * ratio))
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    p = np.r_[rng.beta(5, 2, n_pos), rng.beta(2, 5, n_neg)]
    if decimals is not None:
        p = np.round(p, decimals)  # heavy ties
    return y, p


def _sens_spec_all(y, p, thresholds):
    """Independent (numpy-only) sensitivity/specificity for each threshold under the >= rule."""
    pred = p[None, :] >= np.asarray(thresholds)[:, None]
    return pred[:, y == 1].mean(axis=1), (~pred[:, y == 0]).mean(axis=1)


def test_auroc_matches_hand_count_and_sklearn():
    # By hand over 24 pairs: 6 + 6 + 5 + (2 + 0.5 * 2 ties) = 20.
    res = m.auroc_with_ci(Y_HAND, P_HAND, n_bootstrap=200)
    assert res["auroc"] == pytest.approx(20 / 24)
    assert res["auroc"] == pytest.approx(roc_auc_score(Y_HAND, P_HAND))
    assert res["ci_low"] <= res["auroc"] <= res["ci_high"] and res["n_bootstrap"] == 200


def test_vectorised_bootstrap_auc_matches_sklearn_on_resamples():
    y, p = _imbalanced(n_pos=30, decimals=1)
    order = np.argsort(p, kind="stable")
    ys, ps = y[order], p[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    rng = np.random.default_rng(1)
    counts = np.stack([np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)) for _ in range(20)])
    got = m._auc_from_counts(counts, ys, starts)
    want = [roc_auc_score(ys, ps, sample_weight=c) for c in counts]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bootstrap_ci_reproducible_and_narrower_with_more_data():
    y, p = _imbalanced(n_pos=105)  # ~600 images
    a = m.auroc_with_ci(y, p, n_bootstrap=2000, seed=3)
    assert a == m.auroc_with_ci(y, p, n_bootstrap=2000, seed=3)
    assert a != m.auroc_with_ci(y, p, n_bootstrap=2000, seed=4)
    assert a["ci_low"] < a["auroc"] < a["ci_high"] and a["n_bootstrap"] == 2000
    small = m.auroc_with_ci(*_imbalanced(n_pos=15), n_bootstrap=500)
    large = m.auroc_with_ci(*_imbalanced(n_pos=500), n_bootstrap=500)
    assert large["ci_high"] - large["ci_low"] < 0.5 * (small["ci_high"] - small["ci_low"])
    assert m.auroc_with_ci(y, p, n_bootstrap=500, confidence=0.5)["ci_high"] < a["ci_high"]


def test_bootstrap_redraws_resamples_lacking_a_class():
    res = m.auroc_with_ci([1, 0, 0, 0, 0, 0], [0.9, 0.1, 0.2, 0.3, 0.4, 0.5], n_bootstrap=300)
    assert res["auroc"] == 1.0 and res["ci_low"] == res["ci_high"] == 1.0


@pytest.mark.parametrize("decimals", [None, 1, 2], ids=["continuous", "ties-1dp", "ties-2dp"])
@pytest.mark.parametrize("seed", [0, 1])
def test_chosen_thresholds_meet_their_definitions(decimals, seed):
    y, p = _imbalanced(seed=seed, decimals=decimals)
    assert (y == 0).sum() / (y == 1).sum() == pytest.approx(4.7)
    chosen = m.choose_thresholds(y, p)
    # Every threshold in [0, 1] behaves like one of these: each distinct score, or above all scores.
    cands = np.r_[np.unique(p), 1.0]
    sens, spec = _sens_spec_all(y, p, cands)
    for name, t in chosen.items():
        assert isinstance(t, float) and 0.0 <= t <= 1.0
        assert t not in set(p.tolist()) or t == p.min(), f"{name} threshold sits on an image's score"
    ops = {name: served.operating_point(y, p, t) for name, t in chosen.items()}

    s = ops["screening"]
    assert s.sensitivity >= 0.9
    assert s.specificity >= spec[sens >= 0.9].max()
    c = ops["specific"]
    assert c.specificity >= 0.95
    assert c.sensitivity >= sens[spec >= 0.95].max()
    b = ops["balanced"]
    assert b.sensitivity + b.specificity - 1 >= (sens + spec - 1).max() - 1e-12


def test_thresholds_midpoints_and_custom_targets():
    # Scores 0.9(+) 0.8(+) 0.7(-) 0.6(+) 0.3(-) 0.2(-). J = 2/3 both at score 0.8 (sens 2/3, spec 1) and
    # at 0.6 (sens 1, spec 2/3); the tie goes to higher sensitivity -> midpoint of 0.6 and 0.3.
    y, p = [1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.3, 0.2]
    chosen = m.choose_thresholds(y, p, min_sensitivity=0.7, min_specificity=1.0)
    assert chosen["balanced"] == pytest.approx(0.45)
    assert chosen["screening"] == pytest.approx(0.45)  # only scores <= 0.6 reach sensitivity 1 > 0.7
    assert chosen["specific"] == pytest.approx(0.75)  # sens 2/3 at spec 1
    # Flag-nothing candidate: midpoint between the top score and 1.0.
    assert m.choose_thresholds([0, 1, 0], [0.8, 0.5, 0.2], min_specificity=1.0)["specific"] == pytest.approx(0.9)
    # All-positive candidate: midpoint between the lowest score and 0.
    assert m.choose_thresholds([1, 0, 1], [0.8, 0.5, 0.2], min_sensitivity=1.0)["screening"] == pytest.approx(0.1)
    # Adjacent floats have no midpoint strictly between them: the chosen score itself is returned.
    y, p = [1, 0], [0.5, np.nextafter(0.5, 0.0)]
    assert m.choose_thresholds(y, p) == {"screening": 0.5, "balanced": 0.5, "specific": 0.5}
    assert served.operating_point(y, p, 0.5).fp == 0


def test_temperature_of_undecided_probabilities_is_one():
    assert m.fit_temperature([1, 0], [0.5, 0.5]) == 1.0


def test_ece_and_reliability():
    # Perfectly calibrated bins: 1 of 4 fractured at 0.25, 3 of 4 at 0.75.
    assert m.expected_calibration_error([1, 0, 0, 0, 1, 1, 1, 0], [0.25] * 4 + [0.75] * 4) == pytest.approx(0)
    # Hand case: bin 0 |0.05 - 1/4| * 4/10 = 0.08; bin 9 |0.95 - 5/6| * 6/10 = 0.07.
    y = [0, 0, 0, 1, 1, 1, 1, 1, 1, 0]
    p = [0.05] * 4 + [0.95] * 6
    assert m.expected_calibration_error(y, p) == pytest.approx(0.15)
    curve = m.reliability_curve(y, p)
    assert [(b["bin_low"], b["bin_high"], b["count"]) for b in curve] == [(0.0, 0.1, 4), (0.9, 1.0, 6)]
    assert curve[1]["fraction_positive"] == pytest.approx(5 / 6) and curve[1]["mean_predicted"] == pytest.approx(0.95)
    # p == 1.0 belongs to the last bin; 0.5 opens bin [0.5, 0.75) with 4 bins.
    curve = m.reliability_curve([1, 0], [1.0, 0.5], n_bins=4)
    assert [(b["bin_low"], b["count"]) for b in curve] == [(0.5, 1), (0.75, 1)]


def _nll(y, p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_temperature_recovers_sharpening_and_lowers_nll():
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.5, 20_000)
    y = (rng.random(z.size) < expit(z)).astype(int)  # labels drawn from calibrated probabilities
    over = expit(3.0 * z)  # over-confident model
    t = m.fit_temperature(y, over)
    assert t == pytest.approx(3.0, rel=0.10)
    calibrated = served.apply_temperature(over, t)
    assert _nll(y, calibrated) < _nll(y, over)
    assert m.expected_calibration_error(y, calibrated) < m.expected_calibration_error(y, over)
    assert m.fit_temperature(y, expit(z)) == pytest.approx(1.0, rel=0.10)


def test_roc_points_are_json_ready_and_subsampled():
    y, p = _imbalanced(n_pos=300)
    roc = m.roc_points(y, p, max_points=50)
    full = m.roc_points(y, p, max_points=10_000)
    assert len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"]) <= 50
    for key in roc:
        assert roc[key][0] == full[key][0] and roc[key][-1] == full[key][-1]
    assert roc["thresholds"][0] == 1.0 and all(np.isfinite(roc["thresholds"]))
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    json.dumps(roc, allow_nan=False)


def test_summarise_is_json_ready_and_handles_one_class_subgroup():
    y, p = _imbalanced(n_pos=40)
    thresholds = m.choose_thresholds(y, p)
    out = m.summarise(y, p, thresholds, n_bootstrap=200)
    assert (out["n"], out["n_positive"]) == (len(y), 40)
    assert set(out["operating_points"]) == {"screening", "balanced", "specific"}
    assert out["auroc"]["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert out["ece"] == pytest.approx(m.expected_calibration_error(y, p))
    json.dumps(out, allow_nan=False)

    shoulder = m.summarise([0, 0, 0, 0], [0.1, 0.3, 0.7, 0.2], thresholds, n_bootstrap=200)
    assert shoulder["auroc"] is None and shoulder["roc"] is None and shoulder["n_positive"] == 0
    assert shoulder["operating_points"]["balanced"]["sensitivity"] is None
    json.dumps(shoulder, allow_nan=False)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: served.operating_point([0, 2, 1], [0.1, 0.2, 0.3], 0.5), r"labels must be 0.*or 1.*\[2\.0\]"),
        (lambda: served.operating_point([0, 1], [0.1, 1.5], 0.5), r"\[0, 1\].*1\.5 at index 1"),
        (lambda: m.expected_calibration_error([0, 1], [np.nan, 0.5]), r"finite.*1 NaN/inf.*index 0"),
        (lambda: m.auroc_with_ci([0, 1, 1], [0.1, 0.2]), r"same length; got 3 labels and 2 probabilities"),
        (lambda: m.auroc_with_ci([1, 1, 1], [0.1, 0.2, 0.3]), r"AUROC needs both classes; got 3 fractured and 0"),
        (lambda: m.choose_thresholds([0, 0], [0.1, 0.2]), r"both classes; got 0 fractured and 2"),
        (lambda: m.fit_temperature([1, 1], [0.9, 0.8]), r"fit_temperature needs both classes"),
        (lambda: m.roc_points([0], [0.1]), r"ROC curve needs both classes"),
        (lambda: served.operating_point([0, 1], [0.1, 0.2], 1.2), r"threshold must be .*\[0, 1\]; got 1\.2"),
        (lambda: served.apply_temperature([0.5], 0.0), r"temperature must be finite and > 0; got 0\.0"),
        (lambda: m.auroc_with_ci([0, 1], [0.1, 0.2], n_bootstrap=0), r"n_bootstrap must be an integer >= 1; got 0"),
        (lambda: m.auroc_with_ci([0, 1], [0.1, 0.2], confidence=1.0), r"confidence must be in \(0, 1\)"),
        (lambda: m.reliability_curve([0, 1], [0.1, 0.2], n_bins=0), r"n_bins must be an integer >= 1; got 0"),
        (lambda: served.operating_point([], [], 0.5), r"at least one item"),
        (lambda: m.choose_thresholds([0, 1], [0.1, 0.2], min_sensitivity=1.1), r"min_sensitivity must be in"),
        (lambda: m.choose_thresholds([0, 0, 1], [1.0, 0.2, 0.9]), r"specificity >= 0.95.*1 of 2 negatives"),
    ],
)
def test_invalid_inputs_raise_helpful_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
