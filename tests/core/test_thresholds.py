"""core.thresholds: the decision rule and the named thresholds stored with the model, never rounded."""

import json

import pytest

from core.config import METADATA_FILENAME
from core.thresholds import PRESET_NAMES, PRESETS, OperatingThresholds, decide


def test_resolve_threshold_presets_and_numbers(classifier, trained_model):
    metadata = json.loads((trained_model.directory / METADATA_FILENAME).read_text())
    for name in PRESET_NAMES:
        assert classifier.thresholds.resolve(name) == metadata["thresholds"][name]
    assert classifier.thresholds.resolve(0.3) == 0.3
    assert classifier.thresholds.resolve("0.25") == 0.25
    assert classifier.thresholds.resolve(0) == 0.0
    assert classifier.thresholds.resolve("1") == 1.0


@pytest.mark.parametrize("threshold, message", [
    ("nonsense", "unknown threshold 'nonsense'; valid: a number in [0, 1] or one of "
                 + ", ".join(PRESET_NAMES)),
    (1.5, "threshold must be in [0, 1]; got 1.5"),
    ("-0.1", "threshold must be in [0, 1]; got -0.1"),
    (float("nan"), "threshold must be in [0, 1]"),
    (None, "unknown threshold None"),
])
def test_resolve_threshold_errors(classifier, threshold, message):
    with pytest.raises(ValueError) as error:
        classifier.thresholds.resolve(threshold)
    assert message in str(error.value)


def test_decide_is_fractured_at_or_above_the_threshold():
    assert decide(0.3, 0.3) == "fractured"
    assert decide(0.2999999, 0.3) == "not_fractured"
    assert decide(1.0, 1.0) == "fractured"


def test_stored_thresholds_are_used_unrounded():
    metadata = {"thresholds": {"screening": 0.08959388132952051, "balanced": 0.19251501284833167,
                               "specific": 0.5042382612440588}}
    thresholds = OperatingThresholds.from_metadata(metadata)
    assert thresholds.resolve("screening") == 0.08959388132952051
    # 0.0896 is the value that a 3-decimal display would show as 0.090: a probability in between
    # must be decided by the stored value, not by what is shown.
    assert decide(0.0897, thresholds["screening"]) == "fractured"
    assert decide(0.0897, round(thresholds["screening"], 3)) == "not_fractured"
    assert thresholds.preset_at(0.08959388132952051) == "screening"
    assert thresholds.preset_at(0.09) is None


def test_preset_names_are_written_once_with_clinical_labels():
    assert PRESET_NAMES == ("screening", "balanced", "specific")
    assert all(preset.label and preset.rule.startswith("chosen on val") for preset in PRESETS)


@pytest.mark.parametrize("stored, message", [
    ({"screening": 0.1, "balanced": 0.2}, "lacks thresholds for specific"),
    ({"screening": 0.1, "balanced": 0.2, "specific": 1.2}, "specific must be in [0, 1]"),
    ({"screening": "x", "balanced": 0.2, "specific": 0.5}, "screening must be a number"),
])
def test_bad_stored_thresholds_are_rejected_precisely(stored, message):
    with pytest.raises(ValueError) as error:
        OperatingThresholds.from_metadata({"thresholds": stored})
    assert message in str(error.value)
