"""The box-supervised head on synthetic feature maps where the answer is known, and boxes → cells
through the letterbox. No ``../shared`` data needed."""

import numpy as np
import pytest

from core.preprocessing import PreprocessConfig
from training.box_head import (CELL_TARGET, CELL_WEIGHT, IMAGE_LABEL, HeadConfig, HeadOutput, box_cell_mask,
                               pack_targets, pool_cell_logits, predict_head, train_head)

GRID, CHANNELS = 8, 6


def test_box_lands_on_its_cell_through_a_wide_images_letterbox():
    # 100 x 200 at 64 px: scale 0.32, content 32 rows x 64 columns, 16 black rows above; cells 8 px.
    config = PreprocessConfig(64, "pad", "clahe")
    mask = box_cell_mask((100, 200), [(0.5, 0.5, 0.6, 0.6)], config, GRID)
    assert np.argwhere(mask).tolist() == [[4, 4]]
    corner = box_cell_mask((100, 200), [(0.0, 0.0, 0.1, 0.1)], config, GRID)
    assert np.argwhere(corner).tolist() == [[2, 0]]  # pushed down by the letterbox, not row 0


def test_box_on_a_tall_image_is_shifted_right_by_the_letterbox_and_spans_cells():
    # 200 x 100 at 64 px: 64 rows x 32 columns, 16 black columns on the left.
    mask = box_cell_mask((200, 100), [(0.0, 0.25, 1.0, 0.5)], PreprocessConfig(64, "pad", "clahe"), GRID)
    assert np.argwhere(mask.any(axis=0)).ravel().tolist() == [2, 3, 4, 5]
    assert np.argwhere(mask.any(axis=1)).ravel().tolist() == [2, 3]


def test_a_grid_that_does_not_divide_the_input_is_refused():
    with pytest.raises(ValueError, match="does not divide"):
        box_cell_mask((100, 100), [(0.1, 0.1, 0.2, 0.2)], PreprocessConfig(60, "pad", "clahe"), 8)


def test_targets_push_box_cells_up_and_every_normal_cell_down():
    masks = np.zeros((3, GRID, GRID), bool)
    masks[0, 2, 3] = True
    targets = pack_targets(np.array([1, 0, 1]), masks)
    fractured, normal, fractured_without_box = targets
    assert fractured[..., CELL_TARGET].sum() == 1 and fractured[2, 3, CELL_TARGET] == 1
    assert fractured[..., CELL_WEIGHT].sum() == 1  # cells outside the box carry no cell loss
    assert normal[..., CELL_TARGET].sum() == 0 and normal[..., CELL_WEIGHT].sum() == GRID * GRID
    assert fractured_without_box[..., CELL_WEIGHT].sum() == 0
    assert targets[:, 0, 0, IMAGE_LABEL].tolist() == [1, 0, 1]


def test_log_mean_exp_pooling_lies_between_mean_and_max():
    logits = np.random.default_rng(0).normal(size=(4, GRID, GRID)).astype(np.float32)
    for sharpness in (0.5, 1.0, 4.0):
        pooled = np.asarray(pool_cell_logits(logits, sharpness))
        assert np.all(pooled >= logits.mean(axis=(1, 2)) - 1e-5)
        assert np.all(pooled <= logits.max(axis=(1, 2)) + 1e-5)


def _bar_images(count: int, seed: int):
    """Noise feature maps; a fractured one has a bright 1 x 3 bar (channel 0) whose cells are its box.
    Channel 1 is a decoy: bright in a fixed corner of every image, fractured or not."""
    rng = np.random.default_rng(seed)
    features = rng.normal(0, 0.5, size=(count, GRID, GRID, CHANNELS)).astype(np.float32)
    features[:, 0, 0, 1] += 3.0
    labels = np.arange(count) % 2
    masks = np.zeros((count, GRID, GRID), bool)
    for index in np.flatnonzero(labels):
        row, column = int(rng.integers(1, GRID)), int(rng.integers(1, GRID - 3))
        features[index, row, column:column + 3, 0] += 3.0
        masks[index, row, column:column + 3] = True
    return features.astype(np.float16), labels, masks


def test_box_supervised_head_peaks_inside_the_box_on_unseen_images():
    train_features, train_labels, train_masks = _bar_images(96, seed=1)
    test_features, test_labels, test_masks = _bar_images(20, seed=2)
    config = HeadConfig(hidden=8, dropout=0.0, weight_decay=0.0, epochs=25, batch_size=16, learning_rate=1e-2)
    head = train_head(train_features, train_labels, train_masks, config)
    output = predict_head(head.model, test_features, config.sharpness)
    fractured = np.flatnonzero(test_labels)
    for index in fractured:
        peak = np.unravel_index(np.argmax(output.cell_probability[index]), (GRID, GRID))
        assert test_masks[index][peak], f"image {index}: peak {peak} outside its box"
    assert output.probability_fractured[fractured].min() > output.probability_fractured[test_labels == 0].max()
    assert head.train_seconds > 0


def _one_fractured_image(peak_cell: tuple[int, int]):
    from training.box_features import CachedFeatures

    cell_probability = np.full((1, GRID, GRID), 0.01, np.float32)
    cell_probability[(0,) + peak_cell] = 0.9
    cached = CachedFeatures(features=np.zeros((1, GRID, GRID, 1), np.float16), labels=np.array([1]),
                            image_ids=np.array(["wide"]), source_shapes=np.array([[100, 200]]),
                            backbone_ms_per_image=0.0)
    return HeadOutput(np.array([0.9], np.float32), cell_probability), cached


def test_pointing_game_maps_the_heads_cells_back_through_the_letterbox():
    from training.box_study import pointing_game

    # Input rows and columns 32-38 of a 64 px input: inside cell (4, 4), and around its centre, where
    # a bilinear map of cells peaks (a box off the centre of its cell can miss on a coarse map).
    boxes = {"wide": [(0.5, 0.5, 0.6, 0.7)]}
    config = PreprocessConfig(64, "pad", "clahe")
    hit = pointing_game(*_one_fractured_image((4, 4)), boxes, config)
    assert (hit["n_images"], hit["peak_inside_box"]) == (1, 1)
    assert hit["mean_mass_inside"] > hit["mean_box_area"]
    # Row 2 without the letterbox's 16 black rows would be row 4 of the image: it must miss.
    miss = pointing_game(*_one_fractured_image((2, 4)), boxes, config)
    assert miss["peak_inside_box"] == 0
