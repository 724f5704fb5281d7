"""Three-band triage of P(fractured): fracture, doubt, no fracture.

Commercial fracture tools answer in three bands, not yes/no: a probability just above a threshold
and one of 1.000 do not deserve the same red banner. The two band edges are thresholds the model
already stores, both chosen on the val split (never on test):

* below the ``screening`` threshold (val sensitivity ≥ 0.90) the model rules a fracture out;
* at or above the ``specific`` threshold (val specificity ≥ 0.95) it rules one in;
* in between is doubt: a reader should look.

The session's decision threshold (the slider) is separate: it makes the yes/no call that the
sensitivity, the specificity, the exports and the batch counts are about.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.thresholds import OperatingThresholds

FRACTURE_BAND = "fracture"
DOUBT_BAND = "doubt"
NO_FRACTURE_BAND = "no_fracture"
BANDS = (NO_FRACTURE_BAND, DOUBT_BAND, FRACTURE_BAND)  # in order of rising probability
BAND_TEXT = {FRACTURE_BAND: "Fracture", DOUBT_BAND: "Doubt", NO_FRACTURE_BAND: "No fracture"}
BAND_MEANING = {
    FRACTURE_BAND: "the model is confident: few normals on val score this high",
    DOUBT_BAND: "between the band edges: a reader should look closely",
    NO_FRACTURE_BAND: "below the edge that caught 90% of val fractures",
}
BAND_COLOURS = {NO_FRACTURE_BAND: "#2e7d32", DOUBT_BAND: "#ef8f00", FRACTURE_BAND: "#c62828"}  # sidebar strip, PDF
LOWER_EDGE_PRESET = "screening"
UPPER_EDGE_PRESET = "specific"


@dataclass(frozen=True)
class TriageBands:
    """The two band edges, as stored with the model (unrounded)."""

    doubt_from: float  # P(fractured) below this: no fracture
    fracture_from: float  # P(fractured) at or above this: fracture

    def __post_init__(self):
        if not 0.0 <= self.doubt_from <= self.fracture_from <= 1.0:
            raise ValueError(f"band edges must satisfy 0 <= doubt_from <= fracture_from <= 1; got "
                             f"{self.doubt_from} and {self.fracture_from}")

    @classmethod
    def from_thresholds(cls, thresholds: OperatingThresholds) -> "TriageBands":
        return cls(thresholds[LOWER_EDGE_PRESET], thresholds[UPPER_EDGE_PRESET])

    def band(self, probability_fractured: float) -> str:
        """:data:`FRACTURE_BAND`, :data:`DOUBT_BAND` or :data:`NO_FRACTURE_BAND`."""
        if probability_fractured >= self.fracture_from:
            return FRACTURE_BAND
        if probability_fractured >= self.doubt_from:
            return DOUBT_BAND
        return NO_FRACTURE_BAND


MIN_DECIMALS = 3
MAX_DECIMALS = 17  # two distinct doubles in [0, 1] always differ within 17 decimals


@dataclass(frozen=True)
class ShownComparison:
    """P(fractured) and the threshold as shown to a person, with the sign between them.

    The rounded numbers never contradict the decision: ``probability relation threshold`` reads
    true as written ("0.99996 < 1.00000", never "1.000 < 1.000" or a bare "1.000 vs 1.000").
    """

    probability: str
    threshold: str
    relation: str  # "≥" when the decision is fractured (P ≥ t), else "<"

    def __str__(self) -> str:
        return f"{self.probability} {self.relation} {self.threshold}"


def shown_decimals(probability_fractured: float, *limits: float) -> int:
    """The fewest decimals (at least 3) with which ``probability_fractured`` and every one of
    ``limits`` (a threshold, the band edges) compare as they do unrounded under "at or above".

    Rounding is monotone, so P ≥ limit always shows as ≥ (equal strings included); P < limit
    needs as many decimals as it takes for the shown P to be smaller than the shown limit.
    """
    for decimals in range(MIN_DECIMALS, MAX_DECIMALS + 1):
        if all(probability_fractured >= limit or _shown(probability_fractured, decimals) < _shown(limit, decimals)
               for limit in limits):
            return decimals
    return MAX_DECIMALS


def _shown(value: float, decimals: int) -> float:
    return float(f"{value:.{decimals}f}")


def shown_comparison(probability_fractured: float, threshold: float, *,
                     decimals: int | None = None) -> ShownComparison:
    """``probability_fractured`` and ``threshold`` as shown, never contradicting "fractured iff P ≥ t".

    Args:
        decimals: at least :func:`shown_decimals` of the two (the page passes the band edges to
            :func:`shown_decimals` too, so that one precision serves every number it shows).
    """
    decimals = max(decimals or 0, shown_decimals(probability_fractured, threshold))
    relation = "≥" if probability_fractured >= threshold else "<"
    return ShownComparison(f"{probability_fractured:.{decimals}f}", f"{threshold:.{decimals}f}", relation)
