"""core.triage: three bands from two val-chosen edges."""

import pytest

from core import artifacts
from core.triage import DOUBT_BAND, FRACTURE_BAND, NO_FRACTURE_BAND, TriageBands


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
