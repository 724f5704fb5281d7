"""training.overlay_examples: the model card's example overlays, their drawing and their selection rule.

The rule and the drawing are checked on hand-made records and synthetic images; the CLI on the tiny
model of ``tests/conftest.py``; the whole path on ten FracAtlas test images and the shipped model,
skipped, saying why, where ``../shared`` or ``models/`` is absent.
"""

import dataclasses
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.scoring import HeatmapPeak
from training.config import DEFAULT_DATA_DIR
from training.data import Sample
from training.overlay_examples import (BOX_COLOUR, KIND_CAPTIONS, MAX_SIDE, PEAK_COLOUR, Example, ScoredImage,
                                       draw_example, readme, score_image, select_examples)

SCREENING = 0.1
GREY = 100


def _coloured(image: np.ndarray, colour) -> np.ndarray:
    return np.all(image == np.array(colour, np.uint8), axis=-1)


@pytest.mark.parametrize("box, rows, columns", [
    ((0.25, 0.25, 0.75, 0.75), (10, 30), (15, 45)),  # box_mask's rows 10..29, columns 15..44 of 40×60
    ((0.0, 0.5, 0.5, 1.0), (20, 40), (0, 30)),  # touching the image's left and bottom edges
])
def test_a_box_is_outlined_two_pixels_wide_on_its_border_and_nowhere_inside(box, rows, columns):
    overlay = np.full((40, 60, 3), GREY, np.uint8)
    drawn = draw_example(overlay, [box], HeatmapPeak(x=0.99, y=0.02))  # marker far from both boxes
    inside = np.zeros((40, 60), bool)
    inside[rows[0]:rows[1], columns[0]:columns[1]] = True
    interior = np.zeros((40, 60), bool)
    interior[rows[0] + 2:rows[1] - 2, columns[0] + 2:columns[1] - 2] = True
    border = inside & ~interior
    green = _coloured(drawn, BOX_COLOUR)
    assert green[border].all()
    assert not green[~border].any()
    assert (drawn[interior] == GREY).all()
    assert (overlay == GREY).all()  # drawn on a copy


def _sample(image_id="IMG0000001", label=1, region="hand") -> Sample:
    return Sample(image_id, Path(f"{image_id}.jpg"), label, "test", region)


def test_the_peak_marker_is_centred_on_the_heatmaps_argmax_at_any_display_size():
    heatmap = np.random.default_rng(0).uniform(0.0, 0.5, (60, 100)).astype(np.float32)
    heatmap[21, 67] = 1.0
    peak = score_image(_sample(), 0.9, [], heatmap).peak
    for shape, argmax in (((60, 100), (21, 67)), ((30, 50), (10, 33))):
        drawn = draw_example(np.zeros((*shape, 3), np.uint8), [], peak)
        marked_rows, marked_columns = np.nonzero(_coloured(drawn, PEAK_COLOUR))
        assert _coloured(drawn, PEAK_COLOUR)[argmax]
        assert abs((marked_rows.min() + marked_rows.max()) / 2 - argmax[0]) <= 0.5
        assert abs((marked_columns.min() + marked_columns.max()) / 2 - argmax[1]) <= 0.5


def test_a_peak_in_a_box_is_a_hit_and_one_outside_is_measured_to_the_nearest_box_over_the_long_side():
    boxes = [(0.5, 0.5, 0.6, 0.6)]  # rows 50..59, columns 100..119 of 100×200
    heatmap = np.zeros((100, 200), np.float32)
    heatmap[10, 100] = 1.0  # 40 px above the box
    outside = score_image(_sample(), 0.9, boxes, heatmap)
    assert outside.peak == HeatmapPeak(x=100.5 / 200, y=10.5 / 100)
    assert (outside.peak_in_box, outside.peak_to_box) == (False, pytest.approx(40 / 200))
    heatmap[55, 110] = 2.0
    inside = score_image(_sample(), 0.9, boxes, heatmap)
    assert (inside.peak_in_box, inside.peak_to_box) == (True, 0.0)
    normal = score_image(_sample(label=0), 0.9, [], heatmap)
    assert (normal.fractured, normal.peak_in_box, normal.peak_to_box, normal.boxes) == (False, False, None, ())


def test_an_image_id_that_is_not_a_plain_file_name_is_refused():
    with pytest.raises(ValueError, match=r"'\.\./IMG1' cannot name a file"):
        score_image(_sample("../IMG1"), 0.9, [], np.zeros((4, 4), np.float32))


def _record(image_id, probability, *, region="hand", fractured=True, in_box=False, distance=0.1) -> ScoredImage:
    return ScoredImage(image_id, Path(f"{image_id}.jpg"), region, fractured, probability,
                       ((0.1, 0.1, 0.2, 0.2),) if fractured else (), HeatmapPeak(0.5, 0.5), fractured and in_box,
                       (0.0 if in_box else distance) if fractured else None)


RECORDS = (
    _record("IMG_A", 0.99, in_box=True), _record("IMG_B", 0.98, in_box=True),  # two hands
    _record("IMG_C", 0.97, region="leg", in_box=True), _record("IMG_D", 0.90, region="hip", in_box=True),
    _record("IMG_E", 0.95, region="hip", in_box=True),
    _record("IMG_F", 0.80, distance=0.1), _record("IMG_G", 0.70, distance=0.3),  # flagged, peak outside
    _record("IMG_H", 0.05), _record("IMG_I", 0.01), _record("IMG_J", SCREENING),  # J: at the threshold, flagged
    _record("IMG_N1", 0.60, fractured=False), _record("IMG_N2", 0.99 * SCREENING, fractured=False),
)


def test_the_rule_picks_three_hits_from_three_regions_and_the_worst_of_each_failure_kind():
    examples = select_examples(RECORDS[::-1], SCREENING)  # the input order does not matter
    assert [example.file_name for example in examples] == [
        "hit-1-IMG_A.png", "hit-2-IMG_C.png", "hit-3-IMG_E.png",  # B: a second hand; D: a lower hip
        "missed-1-IMG_I.png", "off-target-1-IMG_G.png", "false-alarm-1-IMG_N1.png"]
    assert all(isinstance(example, Example) for example in examples)


def test_hits_come_from_one_region_after_every_region_has_one_and_ties_go_to_the_smaller_id():
    records = [_record("IMG_A", 0.99, in_box=True), _record("IMG_B", 0.98, in_box=True),
               _record("IMG_C", 0.50, region="leg", in_box=True), _record("IMG_D", 0.40, region="leg", in_box=True),
               _record("IMG_Y", 0.01), _record("IMG_X", 0.01)]
    examples = select_examples(records, SCREENING)
    assert [(example.kind, example.image.image_id) for example in examples] == [
        ("hit", "IMG_A"), ("hit", "IMG_B"), ("hit", "IMG_C"), ("missed", "IMG_X")]


def test_a_kind_without_a_candidate_is_left_out():
    records = [_record("IMG_A", 0.5, in_box=True), _record("IMG_N", 0.5 * SCREENING, fractured=False)]
    assert [example.kind for example in select_examples(records, SCREENING)] == ["hit"]
    assert select_examples([], SCREENING) == ()


def test_the_readme_tables_each_example_cites_fracatlas_and_names_what_is_missing():
    examples = select_examples(RECORDS, SCREENING)[3:]
    text = readme(examples, SCREENING, "v-test", "python -m training.overlay_examples --split test")
    rows = [line for line in text.splitlines() if line.startswith("| [")]
    assert len(rows) == 3
    assert rows[0].startswith("| [missed-1-IMG_I.png](missed-1-IMG_I.png) | IMG_I | hand | 0.010 | "
                              "not_fractured (< 0.100) | miss |")
    assert "| no boxes |" in rows[2] and KIND_CAPTIONS["false-alarm"] in rows[2]
    assert "No candidate for: hit." in text
    assert "CC BY 4.0" in text and "Abedeen I" in text and "doi:10.1038/s41597-023-02432-4" in text
    assert "`python -m training.overlay_examples --split test`" in text and "`v-test`" in text


def test_the_cli_writes_the_examples_and_readme_for_a_small_model(trained_model, synth, tmp_path):
    from training.overlay_examples import main

    data_dir = synth.csv_dataset(tmp_path / "data", {"test": 4})
    (data_dir / "boxes.csv").write_text("image_id,x_min,y_min,x_max,y_max\n" + "".join(
        f"test_fractured_{index:02d},0.25,0.25,0.75,0.75\n" for index in range(4)))
    output_dir = tmp_path / "examples"
    output_dir.mkdir()
    (output_dir / "hit-1-OLD.png").write_bytes(b"an earlier run's example")
    assert main(["--data-dir", str(data_dir), "--model-dir", str(trained_model.directory),
                 "--output-dir", str(output_dir)]) == 0
    pictures = sorted(path.name for path in output_dir.glob("*.png"))
    assert pictures and all(re.fullmatch(r"(hit|missed|off-target|false-alarm)-\d-test_(not_)?fractured_\d\d\.png",
                                         name) for name in pictures)
    text = (output_dir / "README.md").read_text()
    assert all(f"]({name})" in text for name in pictures)
    for name in pictures:
        picture = cv2.imdecode(np.frombuffer((output_dir / name).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == (48, 48, 3)  # never upscaled


@pytest.fixture(scope="module")
def fracatlas_ten():
    """The shipped model and ten FracAtlas test images (seven fractures with boxes, three normal)."""
    from core.classifier import FractureClassifier
    from training.data import load_index
    from training.localisation import load_boxes

    if not (DEFAULT_DATA_DIR / "labels.csv").is_file():
        pytest.skip(f"FracAtlas not found at {DEFAULT_DATA_DIR}")
    try:
        classifier = FractureClassifier.load()
    except FileNotFoundError as missing:
        pytest.skip(f"no shipped model: {missing}")
    boxes = load_boxes(DEFAULT_DATA_DIR)
    test = [sample for sample in load_index(DEFAULT_DATA_DIR) if sample.split == "test"]
    samples = ([sample for sample in test if sample.label == 1 and sample.image_id in boxes][:7]
               + [sample for sample in test if sample.label == 0][:3])
    return classifier, samples, boxes


def test_ten_real_images_give_examples_that_meet_their_rule_drawn_at_most_512_px(fracatlas_ten):
    from training.overlay_examples import example_png, score_split

    classifier, samples, boxes = fracatlas_ten
    images = score_split(classifier, samples, boxes)
    assert [image.image_id for image in images] == [sample.image_id for sample in samples]
    screening = classifier.thresholds.resolve("screening")
    examples = select_examples(images, screening)
    assert examples
    flagged = {image.image_id for image in images if image.probability_fractured >= screening}
    for example in examples:
        image = example.image
        expected = {"hit": image.fractured and image.image_id in flagged and image.peak_in_box,
                    "missed": image.fractured and image.image_id not in flagged,
                    "off-target": image.fractured and image.image_id in flagged and not image.peak_in_box,
                    "false-alarm": not image.fractured and image.image_id in flagged}
        assert expected[example.kind], example
        assert image.boxes == tuple(boxes.get(image.image_id, ()))
        picture = cv2.imdecode(np.frombuffer(example_png(classifier, example), np.uint8), cv2.IMREAD_COLOR)
        picture = cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)
        assert max(picture.shape[:2]) <= MAX_SIDE
        assert _coloured(picture, PEAK_COLOUR).any()
        assert _coloured(picture, BOX_COLOUR).any() == image.fractured
    hits = [example for example in examples if example.kind == "hit"]
    candidates = [image for image in images if image.fractured and image.image_id in flagged and image.peak_in_box]
    assert len(hits) == min(3, len(candidates))
    assert dataclasses.is_dataclass(examples[0]) and examples[0].__dataclass_params__.frozen
