"""Tests for core.scoring: where a heatmap peaks on the original image, scoring many files in
batches (input order, error rows, answers independent of the batch, bounded reading ahead), and
the model's own default heatmap as the one scored unless another is named."""

import shutil

import numpy as np
import pytest

from core.preprocessing import PreprocessConfig
from core.scoring import HeatmapPeak, ImageBytes, ScoredFile, heatmap_peak, score_files
from tests.box_model_fixture import box_classifier, box_model_dir  # noqa: F401  (fixtures)

PAD = PreprocessConfig(image_size=32, aspect="pad", contrast="none")


def test_heatmap_peak_of_a_wide_image_ignores_the_letterbox_and_is_a_fraction_of_the_original():
    # 20 x 40 (H x W) at 32 px: the image fills rows 8-23 of the square (16 rows), all 32 columns.
    heatmap = np.zeros((32, 32), np.float32)
    heatmap[2, 5] = 1.0  # in the black band above the image: not the image, never the peak
    heatmap[8 + 4, 24] = 0.9
    peak = heatmap_peak(heatmap, (20, 40), PAD)
    assert peak == HeatmapPeak(x=(24 + 0.5) / 32, y=(4 + 0.5) / 16)


def test_heatmap_peak_of_a_tall_image_counts_columns_from_the_image_edge():
    # 40 x 20 at 32 px: the image fills columns 8-23 (16 columns), all 32 rows.
    heatmap = np.zeros((32, 32), np.float32)
    heatmap[:, 30] = 1.0  # the band right of the image
    heatmap[31, 8] = 0.5  # the image's bottom-left pixel
    assert heatmap_peak(heatmap, (40, 20), PAD) == HeatmapPeak(x=0.5 / 16, y=31.5 / 32)


def test_heatmap_peak_with_stretch_is_on_the_whole_square_and_ties_go_to_the_first_pixel():
    stretch = PreprocessConfig(image_size=32, aspect="stretch", contrast="none")
    heatmap = np.zeros((32, 32), np.float32)
    heatmap[3, 20] = heatmap[10, 1] = 1.0  # a tie: row 3 comes first in row-major order
    assert heatmap_peak(heatmap, (20, 40), stretch) == HeatmapPeak(x=20.5 / 32, y=3.5 / 32)


def test_heatmap_peak_is_reported_to_four_decimals():
    assert HeatmapPeak(x=1 / 3, y=0.123456).as_list() == [0.3333, 0.1235]


@pytest.fixture(scope="module")
def files(tmp_path_factory, sample_paths, synth):
    """Four readable images of three shapes and, between them, a garbage file and a missing one."""
    folder = tmp_path_factory.mktemp("scoring")
    square = str(shutil.copy(sample_paths[0], folder / "square.png"))
    wide = str(synth.write_png(folder / "wide.png", synth.xray(True, seed=3, shape=(30, 70))))
    tall = str(synth.write_png(folder / "tall.png", synth.xray(False, seed=4, shape=(90, 40))))
    other = str(shutil.copy(sample_paths[4], folder / "other.png"))
    garbage = folder / "garbage.png"
    garbage.write_bytes(b"<html>not an image</html>")
    return [square, str(garbage), wide, str(folder / "missing.png"), tall, other]


def test_score_files_keeps_input_order_and_turns_unreadable_files_into_error_rows(classifier, files):
    square, garbage, wide, missing, tall, other = files
    sources = [square, garbage, ImageBytes("upload.png", open(wide, "rb").read()), missing, tall, other]
    scored = list(score_files(classifier, sources, batch_size=4))
    assert [file.path for file in scored] == [square, garbage, "upload.png", missing, tall, other]
    for file in (scored[1], scored[3]):
        assert file.result is None and file.peak is None
        assert file.record(0.5) == {"path": file.path, "error": file.error}
    assert "expected an image file" in scored[1].error and "missing.png" in scored[3].error
    for file in (scored[0], scored[2], scored[4], scored[5]):
        assert file.error is None and file.result.heatmap_method == "gradcam"
        record = file.record(0.5)
        assert record["decision"] == file.result.decision(0.5)
        assert record["heatmap_peak"] == file.peak.as_list() and all(0 < value < 1 for value in file.peak.as_list())
    assert scored[2].result.source_shape == (30, 70) and scored[4].result.source_shape == (90, 40)


def _answers(scored: list[ScoredFile]) -> list:
    return [None if file.result is None else
            (file.result.probability_fractured, file.result.heatmap.tobytes(), file.peak,
             file.result.radiograph_check) for file in scored]


@pytest.mark.parametrize("batch_size, workers", [(2, 0), (3, 1), (4, 2), (16, 2)])
def test_answers_are_the_same_bit_for_bit_at_any_batch_size(classifier, files, batch_size, workers):
    one_at_a_time = _answers(list(score_files(classifier, files, batch_size=1, workers=0)))
    assert _answers(list(score_files(classifier, files, batch_size=batch_size, workers=workers))) == one_at_a_time


def test_an_unreadable_file_does_not_change_the_answers_of_its_batch(classifier, files):
    readable = [path for path in files if "garbage" not in path and "missing" not in path]
    alone = [_answers(list(score_files(classifier, [path])))[0] for path in readable]
    in_one_batch = [answer for answer in _answers(list(score_files(classifier, files, batch_size=len(files))))
                    if answer is not None]
    assert in_one_batch == alone


def test_batch_answers_are_classifys_answers_bit_for_bit(classifier, files):
    """The app (classify, one upload) and the CLI (batches) give an image the same answer."""
    for file in score_files(classifier, files):
        if file.result is not None:
            expected = classifier.classify(file.path, heatmap="gradcam")
            assert file.result.probability_fractured == expected.probability_fractured
            assert np.array_equal(file.result.heatmap, expected.heatmap)
            assert file.result.radiograph_check == expected.radiograph_check


def test_without_a_heatmap_there_is_no_peak(classifier, files):
    file = next(score_files(classifier, files[:1], heatmap=None))
    assert file.result.heatmap is None and file.peak is None and "heatmap_peak" not in file.record(0.5)


def test_sources_are_read_lazily_at_most_two_batches_ahead(classifier, files):
    pulled = []

    def sources():
        for index in range(40):
            pulled.append(index)
            yield files[index % len(files)]

    batch_size, furthest_ahead = 4, 0
    scored = score_files(classifier, sources(), batch_size=batch_size)
    for count, _ in enumerate(scored, start=1):
        furthest_ahead = max(furthest_ahead, len(pulled) - count)
        if count == 10:
            break
    scored.close()
    assert furthest_ahead <= 2 * batch_size
    assert len(pulled) <= 10 + 2 * batch_size  # stopping early stops the reading too


@pytest.mark.parametrize("options, message", [({"batch_size": 0}, "batch_size must be at least 1; got 0"),
                                              ({"workers": -1}, "workers must be 0")])
def test_bad_batch_size_or_workers_is_refused_at_the_call(classifier, files, options, message):
    with pytest.raises(ValueError, match=message):
        score_files(classifier, files, **options)  # not iterated: refused before any file is read


# --- a model with a fracture map of its own (tests/box_model_fixture.py) ---------------------------

@pytest.fixture(scope="module")
def box_files(tmp_path_factory, synth):
    """Two generated images of other shapes, each with a bright patch."""
    folder = tmp_path_factory.mktemp("box-scoring")
    return [str(synth.write_png(folder / f"{name}.png", synth.xray(True, seed=seed, shape=shape)))
            for name, seed, shape in (("wide", 11, (40, 70)), ("tall", 12, (80, 50)))]


def test_by_default_each_file_comes_with_the_models_own_default_heatmap(box_classifier, box_files):
    assert box_classifier.default_heatmap == "fracturemap"
    for file in score_files(box_classifier, box_files):
        assert file.result.heatmap_method == "fracturemap"
        own_map = box_classifier.explainer.fracture_map(file.result.model_input[np.newaxis])[0]
        np.testing.assert_allclose(file.result.heatmap, own_map, atol=1e-5)
        assert file.peak == heatmap_peak(file.result.heatmap, file.result.source_shape,
                                         box_classifier.preprocess_config)


def test_a_named_method_still_overrides_the_models_default(box_classifier, box_files):
    [file, _] = score_files(box_classifier, box_files, heatmap="gradcam")
    expected = box_classifier.classify(box_files[0], heatmap="gradcam")
    assert file.result.heatmap_method == "gradcam" and np.array_equal(file.result.heatmap, expected.heatmap)


def test_a_model_without_a_default_in_its_metadata_scores_grad_cam(classifier, files):
    assert "default_heatmap" not in classifier.metadata.raw
    assert next(score_files(classifier, files[:1])).result.heatmap_method == "gradcam"
