"""Fitting tier 1 of the radiograph check (training.radiograph_detector), the perturbations that stand in
for radiographs from elsewhere (training.radiograph_shift) and the generated non-radiographs
(training.nonradiographs)."""

import numpy as np
import pytest

from core.radiograph_detector import FEATURE_NAMES
from training import radiograph_detector
from training.nonradiographs import FAMILIES, generate
from training.radiograph_shift import strong_shift


def _rows(rng, centre: float, count: int) -> np.ndarray:
    return rng.normal(centre, 1.0, (count, len(FEATURE_NAMES)))


def test_fitted_trees_separate_the_classes_and_flag_the_asked_share_of_shifted_val():
    rng = np.random.default_rng(0)
    detector = radiograph_detector.fit(_rows(rng, 1.0, 400), _rows(rng, -1.0, 400), _rows(rng, 0.8, 500),
                                       flagged=0.04, trees=30)
    assert np.mean(detector.scores(_rows(rng, 0.8, 500)) < detector.threshold) == pytest.approx(0.04, abs=0.03)
    assert np.mean(detector.scores(_rows(rng, -1.0, 300)) < detector.threshold) > 0.9


def test_stored_trees_give_exactly_what_scikit_learn_gives():
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(1)
    features = np.concatenate([_rows(rng, 0.5, 200), _rows(rng, -0.5, 200)])
    labels = np.r_[np.ones(200), np.zeros(200)]
    model = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(features, labels)
    detector = radiograph_detector.trees_to_detector(model, 0.5, features)
    probe = _rows(rng, 0.0, 100)
    assert detector.scores(probe) == pytest.approx(model.predict_proba(probe)[:, 1], abs=1e-6)


def test_strong_shift_gives_a_grey_image_in_range_and_differs_by_seed():
    radiograph = np.random.default_rng(2).random((300, 240), dtype=np.float32)
    shifted = [strong_shift(radiograph, np.random.default_rng(seed)) for seed in range(8)]
    for image in shifted:
        assert image.ndim == 2 and image.dtype == np.float32 and min(image.shape) >= 8
        assert 0.0 <= image.min() and image.max() <= 1.0
    assert len({image.shape for image in shifted}) > 1


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_is_drawn_the_same_from_the_same_seed(family):
    first, second = generate(family, 3, seed=5), generate(family, 3, seed=5)
    for one, other in zip(first, second):
        assert one.dtype == np.uint8 and one.ndim in (2, 3) and min(one.shape[:2]) >= 32
        assert np.array_equal(one, other)


def test_feature_rows_of_non_radiographs_name_their_families():
    rows, families = radiograph_detector.non_radiograph_rows(2, seed=7)
    assert rows.shape == (len(FAMILIES) * 3, len(FEATURE_NAMES))  # 2 drawn + 1 perturbed per family
    assert families[:3] == [next(iter(FAMILIES))] * 2 + [f"{next(iter(FAMILIES))}, perturbed"]
    assert {family.split(",")[0] for family in families} == set(FAMILIES)
