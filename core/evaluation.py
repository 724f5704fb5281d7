"""``metrics.json`` as a typed record: the held-out figures ``python -m training.evaluate`` and
``training.localisation`` wrote for the shipped model.

:class:`ModelMetrics` is parsed once by :func:`core.artifacts.load_metrics`; the pages, figures
and reports read its fields, so a figure the file lacks is a clear error at load, not a blank.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from core.metadata import FieldReader, MetadataError
from core.metrics import OperatingPoint


@dataclass(frozen=True)
class AurocInterval:
    """AUROC with its 95% bootstrap interval."""

    auroc: float
    ci_low: float
    ci_high: float
    n_bootstrap: int

    def text(self) -> str:
        """"0.863 (95% CI 0.822–0.900)"."""
        return f"{self.auroc:.3f} (95% CI {self.ci_low:.3f}–{self.ci_high:.3f})"

    @classmethod
    def parse(cls, reader: FieldReader) -> "AurocInterval":
        return cls(reader.number("auroc"), reader.number("ci_low"), reader.number("ci_high"),
                   reader.integer("n_bootstrap"))


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability diagram; the means are None for an empty bin."""

    bin_low: float
    bin_high: float
    count: int
    mean_predicted: float | None
    fraction_positive: float | None


@dataclass(frozen=True)
class RocCurve:
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]


@dataclass(frozen=True)
class SplitReport:
    """The figures of one split, or of one subgroup of it (a region, with or without implant)."""

    n: int
    n_positive: int
    auroc: AurocInterval | None  # None where the group holds one class only
    operating_points: MappingProxyType  # preset name -> OperatingPoint
    ece: float | None
    reliability: tuple[ReliabilityBin, ...]
    roc: RocCurve | None
    subgroups: MappingProxyType  # "region=hand", "hardware=with" -> SplitReport

    @property
    def n_negative(self) -> int:
        return self.n - self.n_positive

    def auroc_text(self) -> str:
        """"0.863 (95% CI 0.822–0.900)", or a dash where the group holds one class only."""
        return "– (one class only)" if self.auroc is None else self.auroc.text()

    @classmethod
    def parse(cls, reader: FieldReader) -> "SplitReport":
        auroc = None if reader.values.get("auroc") is None else reader.child("auroc")
        roc = None if reader.values.get("roc") is None else reader.child("roc")
        bins = reader.values.get("reliability", [])
        if not isinstance(bins, list):
            raise MetadataError(f"{reader.where}: field 'reliability' must be a list; got {bins!r}")
        subgroups = reader.objects("subgroups") if "subgroups" in reader.values else {}
        return cls(
            n=reader.integer("n"), n_positive=reader.integer("n_positive"),
            auroc=None if auroc is None else AurocInterval.parse(auroc),
            operating_points=MappingProxyType({name: _operating_point(point) for name, point
                                               in reader.objects("operating_points").items()}),
            ece=reader.number("ece", required=False),
            reliability=tuple(_reliability_bin(FieldReader(entry, f"{reader.where}.reliability[{index}]"))
                              for index, entry in enumerate(bins)),
            roc=None if roc is None else RocCurve(roc.numbers("fpr"), roc.numbers("tpr")),
            subgroups=MappingProxyType({name: cls.parse(group) for name, group in subgroups.items()}))


@dataclass(frozen=True)
class PointingFigures:
    """The pointing game of one heatmap method (``python -m training.localisation``): on how many
    fractured images of ``split`` the map's peak fell inside a radiologist's box."""

    method: str
    split: str
    model_version: str
    n_images: int
    peak_inside_box: int

    @property
    def hit_rate(self) -> float:
        return self.peak_inside_box / self.n_images

    @classmethod
    def parse(cls, reader: FieldReader) -> "PointingFigures":
        return cls(reader.text("method"), reader.text("split"), reader.text("model_version"),
                   reader.integer("n_images"), reader.integer("peak_inside_box"))


@dataclass(frozen=True)
class ModelMetrics:
    """A model's ``metrics.json``: its held-out splits and, per heatmap method measured, where the
    heatmap points."""

    model_version: str
    splits: MappingProxyType  # "val", "test" -> SplitReport
    localisation: MappingProxyType  # heatmap method -> PointingFigures (of this model only)

    def split(self, name: str) -> SplitReport:
        """Raises:
            MetadataError: if the file holds no figures for ``name``."""
        if name not in self.splits:
            raise MetadataError(f"metrics.json holds no figures for split {name!r}; it has {', '.join(self.splits)}")
        return self.splits[name]

    def pointing(self, method: str) -> PointingFigures | None:
        return self.localisation.get(method)

    @classmethod
    def parse(cls, values, where: str = "metrics.json") -> "ModelMetrics":
        """Validates ``values`` (the JSON of ``metrics.json``).

        Raises:
            MetadataError: naming the first missing or mistyped field.
        """
        reader = FieldReader(values, where)
        version = reader.text("model_version")
        splits = {name: SplitReport.parse(split) for name, split in reader.objects("splits").items()}
        return cls(version, MappingProxyType(splits), MappingProxyType(_localisation(reader, version)))


def _operating_point(reader: FieldReader) -> OperatingPoint:
    point = OperatingPoint.from_counts(reader.number("threshold"), reader.integer("tp"), reader.integer("fp"),
                                       reader.integer("tn"), reader.integer("fn"))
    for name in ("sensitivity", "specificity", "ppv", "npv"):
        stored = reader.number(name, required=False)
        if (stored is None) != (getattr(point, name) is None) or (
                stored is not None and abs(stored - getattr(point, name)) > 1e-9):
            raise MetadataError(f"{reader.where}: {name} {stored!r} disagrees with its own counts")
    return point


def _reliability_bin(reader: FieldReader) -> ReliabilityBin:
    return ReliabilityBin(reader.number("bin_low"), reader.number("bin_high"), reader.integer("count"),
                          reader.number("mean_predicted", required=False),
                          reader.number("fraction_positive", required=False))


def _localisation(reader: FieldReader, version: str) -> dict[str, PointingFigures]:
    """``"localisation"`` by method: stored as {method: figures}, or, as older files have it, the
    figures of one method. Figures of another model are dropped: they say nothing of this one."""
    stored = reader.child("localisation", required=False)
    if stored is None:
        return {}
    entries = {stored.values.get("method"): stored} if "method" in stored.values else stored.objects("methods") \
        if "methods" in stored.values else {}
    figures = {method: PointingFigures.parse(entry) for method, entry in entries.items()}
    return {method: entry for method, entry in figures.items() if entry.model_version == version}
