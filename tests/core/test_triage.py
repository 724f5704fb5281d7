"""core.triage: three bands from two val-chosen edges."""

import pytest

from core import artifacts
from core.triage import DOUBT_BAND, FRACTURE_BAND, NO_FRACTURE_BAND, TriageBands, shown_comparison


def test_each_probability_falls_in_one_band_with_edges_inclusive_from_below():
    bands = TriageBands(0.1, 0.5)
    assert [bands.band(p) for p in (0.0, 0.0999, 0.1, 0.4999, 0.5, 1.0)] == [
        NO_FRACTURE_BAND, NO_FRACTURE_BAND, DOUBT_BAND, DOUBT_BAND, FRACTURE_BAND, FRACTURE_BAND]


@pytest.mark.parametrize("edges", [(0.6, 0.5), (-0.1, 0.5), (0.1, 1.5)])
def test_edges_out_of_order_or_range_are_refused(edges):
    with pytest.raises(ValueError, match="band edges"):
        TriageBands(*edges)


def test_the_shipped_edges_are_the_stored_screening_and_specific_thresholds():
    thresholds = artifacts.load_thresholds()
    bands = TriageBands.from_thresholds(thresholds)
    assert (bands.doubt_from, bands.fracture_from) == (thresholds["screening"], thresholds["specific"])


@pytest.mark.parametrize("probability, threshold, expected", [
    (0.99996, 1.0, "0.99996 < 1.00000"),  # at 3 decimals both read 1.000
    (0.5039996, 0.504, "0.5039996 < 0.5040000"),
    (0.183, 0.504, "0.183 < 0.504"),
    (1.0, 1.0, "1.000 ≥ 1.000"),  # equal is "fractured" under P ≥ t, and reads true
    (0.50004, 0.50001, "0.500 ≥ 0.500"),
    (0.0, 0.0, "0.000 ≥ 0.000"),
    (0.12345678, 0.2, "0.123 < 0.200"),
])
def test_the_shown_numbers_keep_the_decision_visibly_true(probability, threshold, expected):
    assert str(shown_comparison(probability, threshold)) == expected


def test_a_gap_of_one_ulp_is_still_shown_the_right_way_round():
    import math

    threshold = 0.3
    below = math.nextafter(threshold, 0.0)
    shown = shown_comparison(below, threshold)
    assert shown.relation == "<" and float(shown.probability) < float(shown.threshold)


@pytest.mark.parametrize("seed", range(3))
def test_random_pairs_never_read_against_their_decision(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    for probability, threshold in rng.random((2000, 2)):
        threshold = round(threshold, int(rng.integers(1, 7)))  # slider and preset values
        probability = threshold + float(rng.normal(0, 1e-4)) if rng.random() < 0.5 else probability
        probability = min(max(probability, 0.0), 1.0)
        shown = shown_comparison(probability, threshold)
        fractured = probability >= threshold
        assert shown.relation == ("≥" if fractured else "<")
        assert (float(shown.probability) >= float(shown.threshold)) == fractured
        assert len(shown.probability.split(".")[1]) >= 3


def test_one_precision_keeps_the_threshold_and_both_band_edges_visibly_true():
    from core.triage import shown_decimals

    bands = TriageBands(0.2, 0.504)
    probability = 0.50396  # just under the upper edge: "doubt", not "fracture"
    decimals = shown_decimals(probability, 0.3, bands.doubt_from, bands.fracture_from)
    assert decimals == 5  # at 3 or 4 decimals P would read as the edge itself (0.504, 0.5040)
    assert float(f"{probability:.{decimals}f}") < float(f"{bands.fracture_from:.{decimals}f}")
    shown = shown_comparison(probability, 0.3, decimals=decimals)
    assert str(shown) == "0.50396 ≥ 0.30000"
