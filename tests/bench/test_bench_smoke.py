"""Smoke test of `python -m bench`: a quick run on generated images writes every figure, its
baselines and their ratios. Speed is never asserted here; the bench only reports it."""

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from core.config import PROJECT_DIR

FIGURES_WITH_BASELINES = {
    "classify", "verdict", "heatmap_gradcam", "heatmap_gradcam++", "heatmap_scorecam", "heatmap_layercam",
    "heatmap_smoothgrad", "overlay_blend", "overlay_encode", "overlay_png", "whole_path", "first_classify",
    "first_gradcam", "batch", "cold_verdict", "cold_heatmap", "cold_rss",
}
FIGURES_ALONE = {"decode", "preprocess", "bench_rss"}
# A guard against a hung run, not a speed check: minutes on a quiet 2-core machine, several times that
# on a shared, busy machine.
QUICK_RUN_TIMEOUT_S = 3600


@pytest.fixture(scope="module")
def bench_quick_run(tmp_path_factory):
    """`python -m bench --quick` once (minutes): its tests are in the slow lane (tests/conftest.py
    marks every user of this fixture by its name)."""
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-browser", "--no-training",
         "--data-dir", str(folder / "no-fracatlas-here"), "--out", str(out)],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=QUICK_RUN_TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run.stdout


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_every_figure_is_written_with_its_baselines_and_ratios(bench_quick_run):
    data, _ = bench_quick_run
    figures = {item["key"]: item for item in data["figures"]}
    assert set(figures) == FIGURES_WITH_BASELINES | FIGURES_ALONE
    for key, item in figures.items():
        assert _positive(item["ours"]["p50"]), key
        assert bool(item["baselines"]) == (key in FIGURES_WITH_BASELINES), key
        for baseline in item["baselines"]:
            assert _positive(baseline["p50"]), (key, baseline["what"])
            assert _positive(baseline["ratio"]), (key, baseline["what"])
            assert baseline["ratio"] == pytest.approx(baseline["p50"] / item["ours"]["p50"])


def test_the_run_says_what_it_ran_on_and_what_it_skipped(bench_quick_run):
    data, stdout = bench_quick_run
    assert data["mode"] == "quick" and "GENERATED" in data["images"] and "GENERATED" in stdout
    assert set(data["skipped"]) == {"browser", "training"}
    assert data["machine"]["cores"] >= 1 and data["machine"]["versions"]["tensorflow"]
    agreement = data["gradcam_agreement"]
    assert "GENERATED" in agreement["source"] and agreement["n"] > 0
    assert -1.0 <= agreement["min"] <= agreement["median"] <= 1.0


def test_targets_are_listed_and_not_judged_on_a_quick_run(bench_quick_run):
    data, stdout = bench_quick_run
    assert len(data["targets"]) == 4
    for item in data["targets"]:
        assert item["value"] is None and item["passed"] is None and item["not_measured"], item["name"]
    assert "target (issue 5)" in stdout and "ratio" in stdout


@pytest.mark.parametrize("colormap", ["jet", "inferno", "viridis", "magma", "turbo"])
def test_the_overlay_baseline_draws_the_same_bytes_as_ours(colormap):
    """The bench times the colour-table overlay against the previous matplotlib one: like with
    like only if both draw identical pixels, whatever the opacity and input dtype."""
    from bench.baselines import matplotlib_overlay, pillow_png
    from core.overlay import encode_png, overlay_heatmap

    rng = np.random.default_rng(0)
    for opacity in (0.0, 0.25, 0.4, 0.7, 1.0):
        for dtype in (np.float32, np.float64):
            image, heatmap = rng.random((37, 53)).astype(dtype), rng.random((37, 53)).astype(dtype)
            heatmap[0, :3] = (0.0, 1.0, 0.5)  # the ends and the middle of the colour table
            ours = overlay_heatmap(image, heatmap, opacity=opacity, colormap=colormap)
            np.testing.assert_array_equal(ours, matplotlib_overlay(image, heatmap, opacity, colormap))
    decoded = [np.asarray(Image.open(io.BytesIO(data))) for data in (encode_png(ours), pillow_png(ours, 1))]
    np.testing.assert_array_equal(decoded[0], decoded[1])
