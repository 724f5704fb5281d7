"""training.box_features: a view keeps, mirrors or drops the boxes as it moves the anatomy, repeats
itself for a seed, and every feature map is of the shipped preprocessing."""

import numpy as np
import pytest

from core.preprocessing import PreprocessConfig
from training.box_features import PLAIN, View, shipped_preprocessing

BOX = (0.1, 0.2, 0.3, 0.5)


def test_a_view_keeps_mirrors_or_drops_the_boxes_as_it_moves_the_anatomy():
    assert PLAIN.boxes([BOX]) == [BOX]
    assert View("photometric", 3).boxes([BOX]) == [BOX]
    assert View(flip=True).boxes([BOX]) == [pytest.approx((0.7, 0.2, 0.9, 0.5))]
    assert View("shift", 12).boxes([BOX]) == []
    with pytest.raises(ValueError, match="unknown view kind"):
        View("rotate")


def test_a_mirrored_view_mirrors_the_image_and_a_seeded_view_repeats_itself():
    image = np.random.default_rng(0).random((40, 60)).astype(np.float32)
    np.testing.assert_array_equal(View(flip=True).apply(image, 0), image[:, ::-1])
    first, again = View("photometric", 5).apply(image, 7), View("photometric", 5).apply(image, 7)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, View("photometric", 5).apply(image, 8))  # one draw per image


def test_the_features_are_of_the_shipped_models_preprocessing_at_the_studied_size():
    assert shipped_preprocessing(224) == PreprocessConfig(224, "pad", "clahe")
    assert shipped_preprocessing(320).image_size == 320
