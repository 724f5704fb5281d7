"""training.localisation: box masks and heatmap scores against fracture boxes."""

import numpy as np
import pytest

from training.localisation import box_mask, load_boxes, score_heatmap


def test_box_mask_covers_the_normalised_box():
    mask = box_mask((10, 20), [(0.25, 0.5, 0.5, 1.0)])
    assert mask.sum() == 5 * 5
    assert mask[5:10, 5:10].all()


def test_a_heatmap_peaking_in_the_box_hits_and_an_even_one_scores_its_area():
    boxes = [(0.0, 0.0, 0.5, 0.5)]
    focused = np.zeros((8, 8), np.float32)
    focused[1, 1] = 1.0
    assert score_heatmap(focused, boxes) == {"hit": True, "mass_inside": 1.0, "area_inside": 0.25}
    even = np.full((8, 8), 0.5, np.float32)
    assert score_heatmap(even, boxes)["mass_inside"] == pytest.approx(0.25)
    outside = np.zeros((8, 8), np.float32)
    outside[7, 7] = 1.0
    assert score_heatmap(outside, boxes)["hit"] is False
    assert score_heatmap(np.zeros((8, 8), np.float32), boxes)["hit"] is False


def test_load_boxes_groups_by_image(tmp_path):
    (tmp_path / "boxes.csv").write_text(
        "image_id,x_min,y_min,x_max,y_max\nA,0.1,0.2,0.3,0.4\nA,0.5,0.5,0.6,0.6\nB,0,0,1,1\n")
    boxes = load_boxes(tmp_path)
    assert boxes == {"A": [(0.1, 0.2, 0.3, 0.4), (0.5, 0.5, 0.6, 0.6)], "B": [(0.0, 0.0, 1.0, 1.0)]}


def test_the_summary_counts_hits_and_averages_the_shares():
    from training.localisation import summarise_scores

    scores = [{"hit": True, "mass_inside": 0.5, "area_inside": 0.1},
              {"hit": False, "mass_inside": 0.1, "area_inside": 0.3}]
    summary = summarise_scores(scores, split="test", model_version="v1")
    assert (summary["n_images"], summary["peak_inside_box"]) == (2, 1)
    assert summary["mean_mass_inside"] == pytest.approx(0.3) and summary["mean_box_area"] == pytest.approx(0.2)
    assert (summary["split"], summary["model_version"], summary["method"]) == ("test", "v1", "gradcam")


def test_storing_a_summary_keeps_every_other_figure_and_the_other_methods_of_the_same_model(tmp_path):
    import json

    from training.localisation import store_summary

    fracture_map = {"method": "fracturemap", "model_version": "v1", "n_images": 111, "peak_inside_box": 36}
    metrics = {"model_version": "v1", "splits": {"test": {"auroc": {"auroc": 0.86}}}, "localisation": fracture_map}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    grad_cam = {"method": "gradcam", "model_version": "v1", "n_images": 111, "peak_inside_box": 30}
    store_summary(tmp_path, grad_cam)
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored == {**metrics, "localisation": {"methods": {"fracturemap": fracture_map, "gradcam": grad_cam}}}
    other_model = {**grad_cam, "model_version": "v2"}
    store_summary(tmp_path, other_model)  # figures of v1 say nothing of v2
    assert json.loads((tmp_path / "metrics.json").read_text())["localisation"] == {"methods": {"gradcam": other_model}}


def test_storing_without_metrics_json_says_so(tmp_path):
    from training.localisation import store_summary

    with pytest.raises(FileNotFoundError):
        store_summary(tmp_path, {"n_images": 1})


def test_the_shipped_metrics_hold_the_localisation_figures_of_the_model_card():
    from core.artifacts import load_metadata, load_metrics
    from core.config import PROJECT_DIR

    metrics, metadata = load_metrics(), load_metadata()
    figures = metrics.pointing(metadata.default_heatmap)
    assert figures is not None, "run python -m training.localisation"
    assert figures.model_version == metadata.model_version
    card = (PROJECT_DIR / "docs" / "model-card.md").read_text(encoding="utf-8")
    assert f"**{figures.peak_inside_box} of {figures.n_images}" in card  # the app's caption and the card agree
    for other in metrics.localisation.values():  # every method measured: the card says the same figure
        assert f"{other.peak_inside_box} of {other.n_images}" in card, other.method
