"""The decision rule and the named operating thresholds stored with the model.

Every reader of a threshold goes through :class:`OperatingThresholds`: the app, the CLI and the
reports use the stored values exactly as chosen on val, and round only what they display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

FRACTURED_DECISION = "fractured"
NOT_FRACTURED_DECISION = "not_fractured"


@dataclass(frozen=True)
class Preset:
    """One named threshold: its key in ``metadata.json``, a clinical label and how val chose it."""

    name: str
    label: str
    rule: str


PRESETS = (
    Preset("screening", "Catch almost every fracture", "chosen on val: sensitivity ≥ 0.90"),
    Preset("balanced", "Balanced", "chosen on val: maximum Youden J"),
    Preset("specific", "Few false alarms", "chosen on val: specificity ≥ 0.95"),
)
PRESET_NAMES = tuple(preset.name for preset in PRESETS)
DEFAULT_PRESET = "balanced"  # the CLI's default; the app starts at "screening" (a missed fracture costs more)


def decide(probability_fractured: float, threshold: float) -> str:
    """The verdict under the project's rule: ``"fractured"`` iff probability >= threshold."""
    return FRACTURED_DECISION if probability_fractured >= threshold else NOT_FRACTURED_DECISION


@dataclass(frozen=True)
class OperatingThresholds:
    """The model's named thresholds, as stored (never rounded)."""

    values: MappingProxyType  # preset name -> threshold in [0, 1]

    @classmethod
    def from_metadata(cls, metadata: dict) -> "OperatingThresholds":
        """Reads ``metadata["thresholds"]``.

        Raises:
            ValueError: if a preset is missing or a value is not a number in [0, 1].
        """
        stored = metadata.get("thresholds", {})
        missing = [name for name in PRESET_NAMES if name not in stored]
        if missing:
            raise ValueError(f"the model's metadata lacks thresholds for {', '.join(missing)}")
        return cls(MappingProxyType({name: _unit_interval(stored[name], name) for name in PRESET_NAMES}))

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def __iter__(self):
        return iter(self.values)

    def resolve(self, threshold: str | float) -> float:
        """A preset name or a number, as the threshold to decide with.

        Raises:
            ValueError: for an unknown preset or a number outside [0, 1].
        """
        if isinstance(threshold, str) and threshold in self.values:
            return self.values[threshold]
        try:
            value = float(threshold)
        except (TypeError, ValueError):
            raise ValueError(f"unknown threshold {threshold!r}; valid: a number in [0, 1] or one of "
                             f"{', '.join(PRESET_NAMES)}") from None
        return _unit_interval(value, "threshold")

    def preset_at(self, threshold: float) -> str | None:
        """The name of the preset whose value is exactly ``threshold``, if any."""
        return next((name for name, value in self.values.items() if value == threshold), None)


def _unit_interval(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}") from None
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ValueError(f"{name} must be in [0, 1]; got {number}")
    return number
