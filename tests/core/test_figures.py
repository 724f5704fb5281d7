"""Figures and the subgroup table of the performance page, on the shipped models/ files."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.artifacts import load_held_out, load_history, load_metadata, load_metrics, load_probability_rows
from core.metadata import FieldReader, TrainingRecord
from core.figures import (calibration_figure, confusion_figure, roc_figure, subgroup_label, subgroup_rows,
                          training_figure)
from core.metrics import operating_point


@pytest.fixture(scope="module")
def metrics():
    return load_metrics()


@pytest.fixture(scope="module")
def rows():
    return load_probability_rows()


@pytest.mark.parametrize("split", ["test", "val"])
def test_roc_marks_the_operating_point_and_shows_the_auroc(metrics, split):
    point = load_held_out(split=split).at_threshold(0.3)
    figure = roc_figure(metrics, split, point)
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    curve, _, marker = axes.lines
    np.testing.assert_allclose(curve.get_xdata(), metrics.split(split).roc.fpr)
    np.testing.assert_allclose(marker.get_xydata()[0], (1 - point.specificity, point.sensitivity))
    legend = " ".join(text.get_text() for text in axes.get_legend().get_texts())
    assert f"{metrics.split(split).auroc.auroc:.3f}" in legend
    assert f"{metrics.split(split).auroc.ci_low:.3f}" in legend


def test_roc_without_a_point_draws_curve_and_diagonal_only(metrics):
    assert len(roc_figure(metrics, "test", None).axes[0].lines) == 2


def test_confusion_matrix_puts_true_classes_in_rows(metrics):
    point = metrics.split("test").operating_points["screening"]
    axes = confusion_figure(point).axes[0]
    np.testing.assert_array_equal(axes.images[0].get_array(), [[point.tn, point.fp], [point.fn, point.tp]])
    texts = {text.get_position(): text.get_text() for text in axes.texts}  # keyed by (column, row)
    assert texts[(1, 1)].startswith(f"{point.tp}\n") and texts[(1, 0)].startswith(f"{point.fp}\n")
    assert "fractured" in axes.get_yticklabels()[1].get_text()
    assert "not fractured" in axes.get_xticklabels()[0].get_text()


def test_calibration_plots_the_reliability_bins_with_ece_in_the_title(metrics):
    axes = calibration_figure(metrics, "test").axes[0]
    bins = [entry for entry in metrics.split("test").reliability if entry.count]
    diagonal, model = axes.lines
    np.testing.assert_allclose(diagonal.get_xydata(), [[0, 0], [1, 1]])
    np.testing.assert_allclose(model.get_ydata(), [entry.fraction_positive for entry in bins])
    assert f"ECE = {100 * metrics.split('test').ece:.1f}%" in axes.get_title()


@pytest.mark.parametrize("split", ["test", "val"])
def test_calibration_labels_do_not_overlap(metrics, split):
    figure = calibration_figure(metrics, split)
    canvas = FigureCanvasAgg(figure)  # lays the text out as the app's PNG would
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [text for axes in figure.axes for text in [*axes.texts, axes.title, axes.xaxis.label, axes.yaxis.label,
                                                       *axes.get_xticklabels(), *axes.get_yticklabels()]
             if text.get_visible() and text.get_text()]
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in texts]
    overlapping = [(first, second) for index, (first, box) in enumerate(boxes)
                   for second, other in boxes[index + 1:] if box.overlaps(other)]
    assert not overlapping, overlapping
    crossed = [text.get_text() for axes in figure.axes for text in axes.texts if text.get_text()
               and any(text.get_window_extent(renderer).contains(x, y) for x, y in _points_along_lines(axes))]
    assert not crossed, f"labels drawn over the curves: {crossed}"
    counts = figure.axes[1]
    assert [text.get_text() for text in counts.texts if text.get_text()] == \
        [str(entry.count) for entry in metrics.split(split).reliability if entry.count]


def _points_along_lines(axes, per_segment: int = 50) -> np.ndarray:
    """Display coordinates of points along every line of ``axes`` (markers' centres included)."""
    points = []
    for line in axes.lines:
        xy = axes.transData.transform(line.get_xydata())
        for start, end in zip(xy, xy[1:]):
            points.extend(start + (end - start) * step for step in np.linspace(0, 1, per_segment))
        points.extend(xy)
    return np.array(points).reshape(-1, 2)


def test_axes_of_proportions_read_in_percent(metrics):
    point = load_held_out(split="test").at_threshold(0.3)
    for figure in (roc_figure(metrics, "test", point), calibration_figure(metrics, "test")):
        FigureCanvasAgg(figure).draw()
        ticks = [label.get_text() for label in figure.axes[-1].get_xticklabels() if label.get_text()]
        assert ticks and all(tick.endswith("%") for tick in ticks), ticks


@pytest.mark.parametrize("name, label", [("region=hand", "Hand"), ("region=mixed", "Several regions"),
                                         ("hardware=with", "With implant"), ("hardware=without", "Without implant")])
def test_subgroups_are_named_as_a_reader_would(name, label):
    assert subgroup_label(name) == label


def test_training_figure_marks_the_epoch_whose_weights_were_kept():
    history = load_history()
    training = load_metadata().training
    figure = training_figure(history, training)
    loss_axes, auroc_axes = figure.axes
    np.testing.assert_allclose(loss_axes.lines[0].get_ydata(), [row["loss"] for row in history])
    kept = next(row for row in history if row["epoch"] == training.kept_epoch)
    np.testing.assert_allclose(auroc_axes.lines[1].get_xydata()[0], (kept["epoch"], kept["val_auroc"]))
    assert f"epoch {training.kept_epoch}, {training.epoch_rule}" in auroc_axes.lines[1].get_label()


def test_training_figure_marks_the_best_epoch_of_a_model_that_kept_it():
    history = [{"epoch": 1, "loss": 0.6, "val_auroc": 0.8}, {"epoch": 2, "loss": 0.5, "val_auroc": 0.9},
               {"epoch": 3, "loss": 0.4, "val_auroc": 0.85}]
    training = TrainingRecord.parse(FieldReader({"epochs": 3, "best_epoch": 2}, "metadata.json.training"))
    auroc_axes = training_figure(history, training).axes[1]
    np.testing.assert_allclose(auroc_axes.lines[1].get_xydata()[0], (2, 0.9))
    assert "best val AUROC" in auroc_axes.lines[1].get_label()


@pytest.mark.parametrize("threshold", [0.1, 0.5])
def test_subgroup_rows_agree_with_operating_point_on_the_csv_subset(metrics, rows, threshold):
    table = {row.subgroup: row for row in subgroup_rows(metrics, "test", threshold, rows)}
    assert set(table) == set(metrics.split("test").subgroups)
    hand = [row for row in rows if row["split"] == "test" and row["region"] == "hand"]
    point = operating_point([int(row["label"]) for row in hand],
                            [float(row["probability_fractured"]) for row in hand], threshold)
    assert table["region=hand"].images == len(hand)
    assert table["region=hand"].sensitivity == pytest.approx(point.sensitivity)
    assert table["region=hand"].specificity == pytest.approx(point.specificity)
    assert table["hardware=with"].auroc_text.startswith("–")
    assert table["hardware=with"].specificity is None  # every test image with an implant is fractured
    leg = metrics.split("test").subgroups["region=leg"].auroc.auroc
    assert table["region=leg"].auroc_text.startswith(f"{leg:.3f}")


def test_subgroup_rows_reproduce_metrics_json_at_the_preset_thresholds(metrics, rows):
    for split in ("val", "test"):
        threshold = load_metadata().thresholds["balanced"]
        for row in subgroup_rows(metrics, split, threshold, rows):
            report = metrics.split(split).subgroups[row.subgroup]
            assert (row.images, row.fractured) == (report.n, report.n_positive)
            stored = report.operating_points["balanced"]
            assert row.sensitivity == pytest.approx(stored.sensitivity, nan_ok=True)
            assert row.specificity == pytest.approx(stored.specificity, nan_ok=True)
