"""Fitting the radiograph check's reference (training.radiograph_reference) and its file format."""

import numpy as np
import pytest

from core.radiograph_check import RadiographReference
from training import radiograph_reference


def test_reference_flags_points_far_from_train_at_the_val_quantile():
    rng = np.random.default_rng(1)
    centre = rng.uniform(1, 2, 100)
    train = centre + rng.normal(0, 0.05, (300, 100))
    val = centre + rng.normal(0, 0.05, (200, 100))
    reference = radiograph_reference.fit(train, val, quantile=0.95, model_version="m1")
    assert np.mean(reference.distances(val) > reference.threshold) == pytest.approx(0.05, abs=0.011)
    far = rng.uniform(0, 3, (20, 100))
    assert (reference.distances(far) > reference.threshold).all()
    assert reference.distances(train[:5]) == pytest.approx(np.zeros(5), abs=1e-6)


def test_reference_round_trips_through_a_file(tmp_path):
    rng = np.random.default_rng(2)
    reference = radiograph_reference.fit(rng.random((80, 70)), rng.random((20, 70)), model_version="v9")
    reference.save(tmp_path / "reference.npz")
    loaded = RadiographReference.load(tmp_path / "reference.npz")
    points = rng.random((5, 70))
    assert loaded.model_version == "v9" and loaded.threshold == pytest.approx(reference.threshold)
    assert loaded.distances(points) == pytest.approx(reference.distances(points), rel=1e-5)
