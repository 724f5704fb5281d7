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
