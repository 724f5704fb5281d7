"""Figures and tables of the shipped model's held-out results, from the files ``core`` writes.

Everything here draws what :mod:`core.artifacts` read from ``models/`` (metrics, history and
stored probabilities); nothing runs the network. Figures are ``matplotlib.figure.Figure``
objects built without pyplot's global state, so several app sessions can draw at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.evaluation import ModelMetrics
from core.heldout import region_group
from core.metadata import TrainingRecord
from core.metrics import OperatingPoint, operating_point

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CLASS_LABELS = ("not fractured", "fractured")
SEVERAL_REGIONS = "Several regions"  # the "mixed" group: images of more than one body region
FIGSIZE = (5.0, 4.0)


def _new_figure(figsize: tuple[float, float]) -> Figure:
    # matplotlib is imported on the first figure, not with this module: the app reads the metadata
    # through here before its first answer, which must not wait for matplotlib.
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _percent_axes(axes) -> None:
    from matplotlib.ticker import PercentFormatter

    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))


def subgroup_label(name: str) -> str:
    """A subgroup as a reader names it: "region=hand" -> "Hand", "hardware=with" -> "With implant"."""
    key, _, value = name.partition("=")
    if key == "region":
        return SEVERAL_REGIONS if value == "mixed" else value.capitalize()
    if key == "hardware":
        return {"with": "With implant", "without": "Without implant"}.get(value, name)
    return name


def roc_figure(metrics: ModelMetrics, split: str, threshold_point: OperatingPoint | None = None) -> Figure:
    """ROC curve of ``split`` with AUROC and CI in the legend, and the current operating point marked."""
    report = metrics.split(split)
    figure = _new_figure(FIGSIZE)
    axes = figure.add_subplot()
    axes.plot(report.roc.fpr, report.roc.tpr, color="tab:blue", lw=2,
              label=f"{split}: AUROC {report.auroc_text()}")
    axes.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="chance")
    point = threshold_point
    if point is not None and point.specificity is not None and point.sensitivity is not None:
        axes.plot([1 - point.specificity], [point.sensitivity], "o",
                  color="tab:red", ms=9, label=f"threshold {point.threshold:.3f}: sensitivity "
                                              f"{100 * point.sensitivity:.1f}%, specificity "
                                              f"{100 * point.specificity:.1f}%")
    axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 − specificity (false-positive rate)",
             ylabel="sensitivity (true-positive rate)", title=f"ROC curve ({split} split)")
    _percent_axes(axes)
    axes.legend(loc="lower right", fontsize="small")
    axes.grid(alpha=0.3)
    return figure


def confusion_figure(point: OperatingPoint) -> Figure:
    """2×2 confusion matrix at one threshold: rows are the true class, columns the prediction."""
    counts = np.array([[point.tn, point.fp], [point.fn, point.tp]])
    figure = _new_figure((4.2, 3.8))
    axes = figure.add_subplot()
    axes.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1) * 1.25)
    names = (("true negative", "false positive"), ("false negative", "true positive"))
    for row in range(2):
        for column in range(2):
            dark = counts[row, column] > 0.6 * counts.max()
            axes.text(column, row, f"{counts[row, column]}\n{names[row][column]}", ha="center",
                      va="center", fontsize=11, color="white" if dark else "black")
    axes.set_xticks([0, 1], [f"predicted\n{name}" for name in CLASS_LABELS])
    axes.set_yticks([0, 1], [f"true\n{name}" for name in CLASS_LABELS])
    axes.set_title(f"Confusion matrix at threshold {point.threshold:.3f}")
    return figure


def calibration_figure(metrics: ModelMetrics, split: str) -> Figure:
    """Reliability diagram: observed fraction fractured against mean P(fractured), per bin, in
    percent; below it, how many images each bin holds (bars, not labels on the curve, which
    overlapped where the bins crowd together)."""
    from matplotlib.ticker import PercentFormatter

    report = metrics.split(split)
    bins = [entry for entry in report.reliability if entry.count]
    figure = _new_figure((5.0, 4.6))
    axes, counts = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    axes.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect calibration")
    axes.plot([entry.mean_predicted for entry in bins], [entry.fraction_positive for entry in bins],
              "o-", color="tab:blue", label="model (one point per bin)")
    ece = report.ece
    axes.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed fractured",
             title=f"Calibration ({split} split), ECE = {'–' if ece is None else f'{100 * ece:.1f}%'}")
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.legend(loc="upper left", fontsize="small")
    axes.grid(alpha=0.3)
    lows = [entry.bin_low for entry in report.reliability]
    widths = [entry.bin_high - entry.bin_low for entry in report.reliability]
    heights = [entry.count for entry in report.reliability]
    bars = counts.bar(lows, heights, width=widths, align="edge", color="tab:blue", alpha=0.35, edgecolor="white")
    counts.bar_label(bars, labels=[str(count) if count else "" for count in heights], fontsize=7, padding=1)
    counts.set(ylim=(0, max(heights, default=1) * 1.35), xlabel="mean predicted P(fractured)", ylabel="images")
    counts.xaxis.set_major_formatter(PercentFormatter(1.0))
    counts.set_yticks([])
    return figure


def training_figure(history_rows: list[dict], training: TrainingRecord) -> Figure:
    """Training loss (left axis) and val AUROC (right axis) per epoch, the epoch whose weights
    were kept marked (the best val AUROC for v1, the last epoch for Model v2)."""
    epochs = [int(row["epoch"]) for row in history_rows]
    loss = [float(row["loss"]) for row in history_rows]
    auroc = [float(row["val_auroc"]) for row in history_rows]
    kept = epochs.index(training.kept_epoch) if training.kept_epoch in epochs else len(epochs) - 1
    figure = _new_figure((6.0, 3.6))
    left = figure.add_subplot()
    right = left.twinx()
    left.plot(epochs, loss, color="tab:orange", label="training loss")
    right.plot(epochs, auroc, color="tab:blue", label="val AUROC")
    right.plot([epochs[kept]], [auroc[kept]], "*", color="tab:red", ms=14,
               label=f"kept: epoch {epochs[kept]}, {training.epoch_rule} (val AUROC {auroc[kept]:.3f})")
    left.set(xlabel="epoch", title="Training history")
    left.set_ylabel("training loss", color="tab:orange")
    right.set_ylabel("val AUROC", color="tab:blue")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    right.legend(handles, [handle.get_label() for handle in handles], loc="center right", fontsize="small")
    left.grid(alpha=0.3)
    return figure


def _subgroup_mask(name: str, rows: list[dict]) -> np.ndarray:
    """Rows of subgroup ``name`` ("region=hand", "hardware=with"), grouped as ``training.evaluate`` does."""
    key, value = name.split("=", 1)
    if key == "region":
        return np.array([region_group(row["region"]) == value for row in rows])
    if key == "hardware":
        wanted = {"with": "1", "without": "0"}[value]
        return np.array([str(row["hardware"]).strip() == wanted for row in rows])
    raise ValueError(f"unknown subgroup {name!r}")


@dataclass(frozen=True)
class SubgroupRow:
    """One row of the subgroup table: sensitivity and specificity are None where the group holds
    no fractures or no normals."""

    subgroup: str  # "region=hand"
    group: str  # "Hand"
    images: int
    fractured: int
    auroc_text: str
    sensitivity: float | None
    specificity: float | None


def subgroup_rows(metrics: ModelMetrics, split: str, threshold: float,
                  probability_rows: list[dict]) -> list[SubgroupRow]:
    """One table row per subgroup: its key ("region=hand") and label ("Hand"), size, AUROC with CI,
    and sensitivity/specificity at ``threshold`` (None where the group holds no fractures or no normals).

    AUROC comes from ``metrics.json``; sensitivity and specificity are recounted from the stored
    probabilities, because ``metrics.json`` holds only the three preset thresholds.
    """
    rows = [row for row in probability_rows if row["split"] == split]
    labels = np.array([int(row["label"]) for row in rows])
    probabilities = np.array([float(row["probability_fractured"]) for row in rows])
    table = []
    for name, report in metrics.split(split).subgroups.items():
        mask = _subgroup_mask(name, rows)
        point = operating_point(labels[mask], probabilities[mask], threshold)
        table.append(SubgroupRow(name, subgroup_label(name), int(mask.sum()), int(labels[mask].sum()),
                                 report.auroc_text(), point.sensitivity, point.specificity))
    return table
