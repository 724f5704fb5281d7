"""``metadata.json`` as a typed record: what the app, the CLI and the reports may say about a model.

:class:`ModelMetadata` is parsed and validated once, when :mod:`core.artifacts` reads the file: a
missing or mistyped field is a :class:`MetadataError` naming the file and the field, never a "?"
or a ``KeyError`` on a page. The stored dict stays available as :attr:`ModelMetadata.raw` for
what passes it on whole (the Serve ``/metadata`` endpoint, the export, training's rewrites).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from types import MappingProxyType

from core.config import CLASS_NAMES
from core.preprocessing import PreprocessConfig
from core.thresholds import OperatingThresholds

GRADCAM = "gradcam"  # the heatmap of a model whose metadata names none (every model before Model v2)
EPOCH_RULE_BEST = "best val AUROC"
EPOCH_RULE_LAST = "last epoch"


class MetadataError(ValueError):
    """A model file (``metadata.json`` or ``metrics.json``) lacks a field or holds a wrong type."""


class FieldReader:
    """Typed reads of one JSON object, each failing with the file and the dotted field name."""

    def __init__(self, values, where: str):
        if not isinstance(values, Mapping):
            raise MetadataError(f"{where} must be a JSON object; got {type(values).__name__}")
        self.values, self.where = values, where

    def _fail(self, key: str, wanted: str, value=None, missing: bool = False):
        if missing:
            raise MetadataError(f"{self.where}: missing field {key!r}")
        raise MetadataError(f"{self.where}: field {key!r} must be {wanted}; got {value!r}")

    def child(self, key: str, required: bool = True) -> "FieldReader | None":
        if key not in self.values:
            return self._fail(key, "", missing=True) if required else None
        return FieldReader(self.values[key], f"{self.where}.{key}")

    def text(self, key: str, default: str | None = None, required: bool = True) -> str | None:
        if key not in self.values or self.values[key] is None:
            return self._fail(key, "", missing=True) if required and default is None else default
        value = self.values[key]
        return value if isinstance(value, str) else self._fail(key, "a string", value)

    def file_name(self, key: str) -> str:
        """A file name inside the model's own folder: a path would let a metadata file point a
        loader anywhere on the machine ("/etc/passwd", "../../elsewhere.keras")."""
        name = self.text(key)
        if name in ("", ".", "..") or any(name != kind(name).name for kind in (PurePosixPath, PureWindowsPath)):
            raise MetadataError(f"{self.where}: field {key!r} must be a file name in the model's folder; got {name!r}")
        return name

    def integer(self, key: str, required: bool = True) -> int | None:
        if key not in self.values or self.values[key] is None:
            return self._fail(key, "", missing=True) if required else None
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(key, "an integer", value)
        return value

    def number(self, key: str, required: bool = True) -> float | None:
        """A finite number; None where optional and absent or stored as null (an undefined ratio)."""
        if key not in self.values or self.values[key] is None:
            return self._fail(key, "", missing=True) if required else None
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self._fail(key, "a finite number", value)
        return float(value)

    def numbers(self, key: str) -> tuple[float, ...]:
        value = self.values.get(key)
        if not isinstance(value, list) or not all(isinstance(item, (int, float)) for item in value):
            self._fail(key, "a list of numbers", value, missing=key not in self.values)
        return tuple(float(item) for item in value)

    def objects(self, key: str) -> dict[str, "FieldReader"]:
        """A JSON object of JSON objects, each as a reader."""
        child = self.child(key)
        return {name: FieldReader(value, f"{child.where}.{name}") for name, value in child.values.items()}


@dataclass(frozen=True)
class Calibration:
    """The temperature applied to the network's P(fractured), and the val ECE before and after it.

    Training keeps a fitted temperature only where it lowers the ECE, so T = 1 means none applied.
    """

    temperature: float
    val_ece_before: float | None = None
    val_ece_after: float | None = None

    @property
    def applied(self) -> bool:
        return self.temperature != 1.0

    def sentence(self) -> str:
        """How the probabilities were calibrated, in words, for the Performance page."""
        if self.applied:
            return (f"Probabilities are temperature-scaled (T = {self.temperature:.3f}, fitted on val"
                    + (f"; val ECE {100 * self.val_ece_before:.1f}% → {100 * self.val_ece_after:.1f}%)."
                       if self.val_ece_before is not None and self.val_ece_after is not None else ")."))
        measured = "" if self.val_ece_before is None else f" (val ECE {100 * self.val_ece_before:.1f}%)"
        return f"No temperature scaling is applied: a temperature fitted on val did not lower the calibration error{measured}."


@dataclass(frozen=True)
class TrainingRecord:
    """How training chose the weights that ship: v1 keeps its best val-AUROC epoch, Model v2 its last."""

    epochs: int | None  # epochs planned (None where the metadata does not say)
    kept_epoch: int | None
    epoch_rule: str  # EPOCH_RULE_BEST or EPOCH_RULE_LAST

    def sentence(self) -> str:
        """Which weights were kept, in words, for the Performance page's training curve."""
        if self.kept_epoch is None:
            return "The metadata does not record which epoch's weights were kept."
        if self.epoch_rule == EPOCH_RULE_BEST:
            return f"The kept weights are those of epoch {self.kept_epoch}, the best val AUROC."
        return (f"The kept weights are those of the last epoch ({self.kept_epoch}); val AUROC was recorded "
                "after each epoch to draw this curve, never to choose one.")

    @classmethod
    def parse(cls, reader: FieldReader | None) -> "TrainingRecord":
        if reader is None:
            return cls(None, None, EPOCH_RULE_LAST)
        epochs = reader.integer("epochs", required=False)
        best = reader.integer("best_epoch", required=False)
        if best is not None:
            return cls(epochs, best, EPOCH_RULE_BEST)
        ran = reader.integer("epochs_run", required=False)
        return cls(epochs, ran if ran is not None else epochs, EPOCH_RULE_LAST)


@dataclass(frozen=True)
class LiteRTRecord:
    """The ``.tflite`` of the classifier's forward pass beside the Keras file (``metadata["litert"]``),
    written by ``python -m training.litert_export`` and by the trainers: file name and sha256."""

    file: str
    sha256: str

    @classmethod
    def parse(cls, reader: FieldReader | None) -> "LiteRTRecord | None":
        if reader is None:
            return None
        sha256 = reader.text("sha256")
        if len(sha256) != 64 or any(char not in "0123456789abcdef" for char in sha256):
            raise MetadataError(f"{reader.where}: field 'sha256' must be 64 lower-case hex digits; got {sha256!r}")
        return cls(reader.file_name("file"), sha256)


@dataclass(frozen=True)
class ModelMetadata:
    """A model's ``metadata.json``, typed: everything served code and pages read of it.

    Build with :meth:`parse`; :attr:`raw` is the stored dict, read-only.
    """

    model_file: str
    model_version: str
    input_size: int
    preprocessing: PreprocessConfig
    thresholds: OperatingThresholds
    calibration: Calibration
    training: TrainingRecord
    default_heatmap: str  # a heatmap method's key (core.heatmaps.METHODS); Grad-CAM where none is stored
    architecture: str = ""
    class_names: tuple[str, ...] = CLASS_NAMES
    cam_layer: str | None = None  # the conv layer Grad-CAM explains; None: the model cannot be explained
    fracture_map_layer: str | None = None
    split_hash: str | None = None  # the data split the model was trained and chosen on
    created: str | None = None
    litert: LiteRTRecord | None = None  # the forward pass as a .tflite; None: TensorFlow serves the model
    raw: Mapping = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)

    @property
    def temperature(self) -> float:
        return self.calibration.temperature

    @classmethod
    def parse(cls, values: Mapping, where: str = "metadata.json") -> "ModelMetadata":
        """Validates ``values`` (the JSON of ``metadata.json``).

        Raises:
            MetadataError: naming the first missing or mistyped field.
        """
        if isinstance(values, ModelMetadata):
            return values
        reader = FieldReader(values, where)
        preprocessing = reader.child("preprocessing")
        try:
            config = PreprocessConfig.from_dict(dict(preprocessing.values))
            thresholds = OperatingThresholds.from_metadata(values)
        except (KeyError, TypeError, ValueError) as error:
            raise MetadataError(f"{where}: {error}") from None
        data = reader.child("data", required=False)
        class_names = values.get("class_names", list(CLASS_NAMES))
        if not isinstance(class_names, list) or not all(isinstance(name, str) for name in class_names):
            raise MetadataError(f"{where}: field 'class_names' must be a list of strings; got {class_names!r}")
        return cls(
            model_file=reader.file_name("model_file"), model_version=reader.text("model_version"),
            input_size=reader.integer("input_size"), preprocessing=config, thresholds=thresholds,
            calibration=Calibration(reader.number("temperature"),
                                    reader.number("val_ece_before_temperature", required=False),
                                    reader.number("val_ece_after_temperature", required=False)),
            training=TrainingRecord.parse(reader.child("training", required=False)),
            default_heatmap=reader.text("default_heatmap", default=GRADCAM),
            architecture=reader.text("architecture", default="", required=False),
            class_names=tuple(class_names), cam_layer=reader.text("cam_layer", required=False),
            fracture_map_layer=reader.text("fracture_map_layer", required=False),
            split_hash=None if data is None else data.text("split_hash", required=False),
            created=reader.text("created", required=False),
            litert=LiteRTRecord.parse(reader.child("litert", required=False)), raw=MappingProxyType(dict(values)))
