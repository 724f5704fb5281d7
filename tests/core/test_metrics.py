"""core.metrics: one threshold's counts and ratios, and temperature calibration, as served."""

import json

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from core import metrics as m

# Hand case: 4 fractured, 6 not. The fractured 0.2 ties two negatives.
Y_HAND = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
P_HAND = [0.9, 0.8, 0.6, 0.2, 0.7, 0.4, 0.2, 0.2, 0.1, 0.05]


def test_operating_point_matches_hand_values_and_sklearn():
    op = m.operating_point(Y_HAND, P_HAND, 0.5)
    # By hand: predicted fractured = {0.9, 0.8, 0.6 (fractured), 0.7 (not)}.
    assert (op.tp, op.fp, op.tn, op.fn) == (3, 1, 5, 1)
    assert op.sensitivity == pytest.approx(0.75) and op.specificity == pytest.approx(5 / 6)
    assert op.ppv == pytest.approx(0.75) and op.npv == pytest.approx(5 / 6)
    assert op.f1 == pytest.approx(0.75) and op.accuracy == pytest.approx(0.8)
    assert (op.n_positive, op.n_negative, op.threshold) == (4, 6, 0.5)
    pred = (np.array(P_HAND) >= 0.5).astype(int)
    assert [[op.tn, op.fp], [op.fn, op.tp]] == confusion_matrix(Y_HAND, pred).tolist()
    assert op.sensitivity == pytest.approx(recall_score(Y_HAND, pred))
    assert op.ppv == pytest.approx(precision_score(Y_HAND, pred))
    assert op.f1 == pytest.approx(f1_score(Y_HAND, pred))
    assert op.specificity == pytest.approx(recall_score(Y_HAND, pred, pos_label=0))
    assert all(type(v) in (int, float) for v in op.as_dict().values())  # plain JSON numbers


def test_operating_point_undefined_ratios_are_none():
    op = m.operating_point(Y_HAND, P_HAND, 1.0)  # nothing flagged
    assert op.ppv is None and op.tp == op.fp == 0 and op.npv == pytest.approx(0.6)
    op = m.operating_point([0, 0, 0], [0.1, 0.6, 0.3], 0.5)  # no fractures at all
    assert op.sensitivity is None and op.f1 == 0.0 and op.specificity == pytest.approx(2 / 3)
    op = m.operating_point([0, 0], [0.1, 0.2], 0.5)
    assert op.f1 is None and op.ppv is None
    json.dumps(op.as_dict())


def test_apply_temperature_identity_shape_and_dtype():
    p = np.linspace(0.01, 0.99, 12, dtype=np.float32).reshape(3, 4)
    out = m.apply_temperature(p, 1.0)
    assert out.dtype == np.float64 and out.shape == (3, 4)
    np.testing.assert_allclose(out, p.astype(np.float64), rtol=1e-9)
    np.testing.assert_allclose(m.apply_temperature([0.0, 1.0], 1.0), [1e-7, 1 - 1e-7])
    np.testing.assert_allclose(m.apply_temperature([0.8], 2.0), expit(logit(0.8) / 2))
