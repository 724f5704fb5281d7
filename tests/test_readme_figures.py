"""The README's figures are the app's figures: each number it quotes for the shipped model is
recomputed here from what the app reads (``models/`` through :mod:`core.artifacts`)."""

import re

import pytest

from core.artifacts import load_held_out, load_metadata, load_metrics
from core.config import PROJECT_DIR
from core.heldout import describe_costs
from core.thresholds import PRESET_NAMES

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")


def model_v2_cell(row_label: str) -> str:
    """The Model v2 cell of the README's results table row that starts with ``row_label``."""
    [row] = [line for line in README.splitlines() if line.startswith(f"| {row_label}")]
    return row.split("|")[2].strip()


def test_the_quoted_cost_of_the_default_threshold_is_the_sidebars():
    point = load_held_out(split="test").at_threshold(load_metadata().thresholds["screening"])
    quoted = re.findall(r'"(catches \d+ of \d+ fractures; \d+ false alarms? in \d+ normals)"', README)
    assert quoted == [describe_costs(point)]


def test_the_test_auroc_and_its_interval_are_the_performance_pages():
    auroc = load_metrics().split("test").auroc
    assert model_v2_cell("test AUROC") == f"**{auroc.auroc:.3f}** ({auroc.ci_low:.3f}–{auroc.ci_high:.3f})"


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_each_presets_sensitivity_and_specificity_are_the_apps(preset):
    point = load_held_out(split="test").at_threshold(load_metadata().thresholds[preset])
    assert model_v2_cell(f"`{preset}` threshold") == \
        f"sensitivity {point.sensitivity:.3f}, specificity {point.specificity:.3f}"


def test_the_pointing_figures_are_the_viewers():
    metadata, metrics = load_metadata(), load_metrics()
    shown = metrics.pointing(metadata.default_heatmap)
    cell = model_v2_cell("heatmap peak inside a radiologist's box")
    assert cell.startswith(f"**{shown.peak_inside_box} of {shown.n_images}**")
    grad_cam = metrics.pointing("gradcam")
    assert grad_cam is not None and f"Grad-CAM also {grad_cam.peak_inside_box}" in cell


def test_the_readme_cites_the_fracatlas_paper():
    assert "doi.org/10.1038/s41597-023-02432-4" in README or "s41597-023-02432-4" in README
