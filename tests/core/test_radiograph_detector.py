"""Tier 1 of the radiograph check (core.radiograph_detector): its features on images whose answer is
known, how stored trees are applied, and how the shipped detector does on perturbed FracAtlas
radiographs. Fitting it is tested in tests/training/test_radiograph_detector.py; how often the
whole check warns on non-radiographs in tests/core/test_radiograph_check.py."""

import numpy as np
import pytest

from core.radiograph_detector import (FEATURE_NAMES, THUMBNAIL_SIDE, RadiographDetector, grey_thumbnail,
                                      radiograph_features)
from training.config import DEFAULT_DATA_DIR


def feature(image: np.ndarray, name: str) -> float:
    return float(radiograph_features(image)[FEATURE_NAMES.index(name)])


def test_thumbnail_keeps_the_aspect_and_the_mean_of_a_large_image():
    rng = np.random.default_rng(0)
    large = rng.random((3000, 2000), dtype=np.float32)
    thumb = grey_thumbnail(large)
    assert thumb.shape == (THUMBNAIL_SIDE, round(THUMBNAIL_SIDE * 2000 / 3000))
    assert float(thumb.mean()) == pytest.approx(float(large.mean()), abs=0.01)
    small = rng.random((40, 60), dtype=np.float32)
    assert np.array_equal(grey_thumbnail(small), small)  # never enlarged


def test_a_flat_image_is_all_background_with_no_edges():
    flat = np.full((300, 400), 0.3, np.float32)
    assert feature(flat, "flat_share") == 1.0
    assert feature(flat, "gradient_mean") == pytest.approx(0.0, abs=1e-6)  # area resizing rounds
    assert feature(flat, "grey_top_bin_share") == 1.0
    assert feature(flat, "background_share") == 1.0


def test_neighbours_correlate_in_smooth_images_and_not_in_noise():
    rng = np.random.default_rng(1)
    noise = rng.random((256, 256), dtype=np.float32)
    smooth = np.tile(np.linspace(0, 1, 256, dtype=np.float32), (256, 1)) ** 2
    assert abs(feature(noise, "neighbour_correlation")) < 0.1
    assert feature(smooth, "neighbour_correlation") > 0.99
    assert feature(noise, "fine_to_coarse_gradient") > feature(smooth, "fine_to_coarse_gradient") + 1.0


def test_inverting_an_image_mirrors_its_grey_levels():
    rng = np.random.default_rng(2)
    image = rng.beta(2, 5, (200, 300)).astype(np.float32)
    assert feature(1 - image, "grey_p1") == pytest.approx(1 - feature(image, "grey_p99"), abs=1e-5)
    assert feature(1 - image, "grey_std") == pytest.approx(feature(image, "grey_std"), abs=1e-5)


def test_ruled_lines_are_axis_aligned_and_a_dark_frame_shows_as_background():
    stripes = np.zeros((256, 256), np.float32)
    stripes[:, ::16] = 1.0
    assert feature(stripes, "axis_aligned_share") > 0.99
    framed = np.zeros((256, 256), np.float32)
    framed[64:192, 64:192] = 0.8
    assert feature(framed, "background_darkness") > 0.95
    assert feature(framed, "border_centre_contrast") == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize("shape", [(1, 1), (2, 500), (500, 3), (7, 7)])
def test_features_of_degenerate_images_are_finite(shape):
    values = radiograph_features(np.random.default_rng(3).random(shape, dtype=np.float32))
    assert values.shape == (len(FEATURE_NAMES),) and np.isfinite(values).all()


def _stump(threshold: float) -> RadiographDetector:
    """One tree: grey_p50 <= 0.5 gives -2, else +2 (log-odds), offset 0."""
    median = FEATURE_NAMES.index("grey_p50")
    return RadiographDetector(feature=np.array([[median, 0, 0]]), split=np.array([[0.5, 0.0, 0.0]]),
                              left=np.array([[1, -1, -1]]), right=np.array([[2, -1, -1]]),
                              value=np.array([[0.0, -2.0, 2.0]]), offset=0.0, threshold=threshold)


def test_trees_are_applied_node_by_node_and_round_trip_through_a_file(tmp_path):
    detector = _stump(0.5)
    dark, bright = np.full((50, 50), 0.2, np.float32), np.full((50, 50), 0.8, np.float32)
    assert detector.score(dark) == pytest.approx(1 / (1 + np.exp(2)))
    assert detector.score(bright) == pytest.approx(1 / (1 + np.exp(-2)))
    detector.save(tmp_path / "detector.npz")
    loaded = RadiographDetector.load(tmp_path / "detector.npz")
    assert loaded.threshold == 0.5 and loaded.score(bright) == pytest.approx(detector.score(bright))


def test_a_detector_fitted_on_other_features_is_refused(tmp_path):
    detector = RadiographDetector(*[getattr(_stump(0.5), field) for field in
                                    ("feature", "split", "left", "right", "value", "offset", "threshold")],
                                  feature_names=("something", "else"))
    detector.save(tmp_path / "old.npz")
    with pytest.raises(ValueError, match="other features"):
        RadiographDetector.load(tmp_path / "old.npz")


def test_shipped_detector_loads_and_is_small():
    from core import artifacts
    from core.config import DETECTOR_FILENAME, MODELS_DIR

    detector = artifacts.load_radiograph_detector()
    assert detector is not None
    assert (MODELS_DIR / DETECTOR_FILENAME).stat().st_size < 100_000
    assert 0.0 < detector.threshold < 1.0


def test_without_a_detector_file_tier_one_is_colour_alone(tmp_path):
    from core import artifacts

    assert artifacts.load_radiograph_detector(tmp_path) is None


needs_data = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "labels.csv").is_file(),
                                reason=f"FracAtlas not found at {DEFAULT_DATA_DIR}")


@needs_data
def test_at_most_5_percent_of_strongly_perturbed_val_radiographs_are_called_not_radiographs():
    """Fresh perturbations (a seed the threshold was not set on) of every val radiograph: crops,
    rotations, inversion, burned-in text and arrows, other windowing, noise, blur, JPEG, sizes."""
    from core import artifacts
    from training.data import load_index
    from training.radiograph_detector import load_radiographs, radiograph_rows

    detector = artifacts.load_radiograph_detector()
    val = load_radiographs([sample for sample in load_index(DEFAULT_DATA_DIR) if sample.split == "val"], cache_dir=None)
    rows = radiograph_rows(val, shifts=1, seed=12345, include_plain=True)
    flagged = detector.scores(rows) < detector.threshold
    plain, shifted = flagged[:len(val)], flagged[len(val):]
    print(f"\nval radiographs told 'not a radiograph': as read {plain.mean():.1%}, perturbed {shifted.mean():.1%}")
    assert plain.mean() <= 0.01
    assert shifted.mean() <= 0.05
