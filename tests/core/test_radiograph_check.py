"""The radiograph check (core.radiograph_check): its two tiers, and how often tier 1 ("not a
radiograph") fires on real radiographs and on non-radiographs, through the classifier and the CLI.
Tier 1's detector alone is tested in tests/core/test_radiograph_detector.py; fitting the tier-2
reference in tests/training/test_radiograph_reference.py."""

import io
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from core.radiograph_check import COLOURFUL, RadiographCheck, colourfulness
from training.config import DEFAULT_DATA_DIR


def _encode(pixels, fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def test_grey_images_have_no_colour_even_when_stored_as_rgb():
    grey = np.random.default_rng(0).integers(0, 256, (64, 80), dtype=np.uint8)
    assert colourfulness(_encode(grey)) == 0.0
    assert colourfulness(_encode(np.stack([grey] * 3, axis=-1), "JPEG")) < 2.0


def test_a_colour_photograph_is_colourful_and_junk_is_left_to_the_reader(tmp_path):
    from sklearn.datasets import load_sample_image

    photo = _encode(load_sample_image("flower.jpg"), "JPEG")
    assert colourfulness(photo) > COLOURFUL
    (tmp_path / "flower.jpg").write_bytes(photo)
    assert colourfulness(tmp_path / "flower.jpg") == pytest.approx(colourfulness(photo))
    assert colourfulness(b"<html>not an image</html>") == 0.0


def test_tier_one_warns_that_a_non_radiograph_verdict_is_meaningless():
    like = RadiographCheck(0.0, 0.1, 0.2)
    assert like.looks_like_radiograph and not like.unlike_training_data
    assert like.warning() == like.caution() == like.notice() == ""
    colour = RadiographCheck(40.0, 0.1, 0.2)
    assert not colour.looks_like_radiograph
    assert "colour image" in colour.warning() and "meaningless" in colour.warning()
    assert colour.notice() == colour.warning() and colour.caution() == ""
    assert RadiographCheck(3.0, None, None).looks_like_radiograph  # no reference shipped


def test_tier_one_says_a_grey_non_radiograph_is_not_one_when_the_detector_scores_it_low():
    grey_photo = RadiographCheck(0.0, 0.5, 0.2, radiograph_score=0.1, radiograph_threshold=0.4)
    assert not grey_photo.looks_like_radiograph and not grey_photo.unlike_training_data
    assert "unlike an X-ray's" in grey_photo.warning() and grey_photo.notice() == grey_photo.warning()
    assert len(RadiographCheck(40.0, 0.1, 0.2, 0.1, 0.4).not_radiograph_reasons) == 2  # colour and detector
    x_ray = RadiographCheck(0.0, 0.5, 0.2, radiograph_score=0.9, radiograph_threshold=0.4)
    assert x_ray.looks_like_radiograph and x_ray.unlike_training_data  # far from training: a caution only


def test_tier_two_cautions_without_claiming_a_radiograph_is_not_one():
    far = RadiographCheck(0.0, 0.5, 0.2)
    assert far.looks_like_radiograph and far.unlike_training_data
    assert far.warning() == ""
    assert "unlike the training images" in far.caution() and "care" in far.caution()
    assert "not look like a radiograph" not in far.notice()
    both = RadiographCheck(40.0, 0.5, 0.2)
    assert len(both.reasons) == 2 and not both.unlike_training_data  # tier 1 speaks for it
    assert both.notice() == both.warning()


def test_shipped_model_ships_a_reference_of_its_own_version():
    from core.classifier import FractureClassifier

    classifier = FractureClassifier.load()
    assert classifier.reference is not None
    assert classifier.reference.model_version == classifier.version


needs_data = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "labels.csv").is_file(),
                                reason=f"FracAtlas not found at {DEFAULT_DATA_DIR}")


@pytest.fixture(scope="module")
def shipped():
    from core.classifier import FractureClassifier

    return FractureClassifier.load()


@needs_data
def test_at_most_2_percent_of_test_radiographs_are_warned(shipped):
    from training.data import load_index

    samples = [sample for sample in load_index(DEFAULT_DATA_DIR) if sample.split == "test"]
    warned = [sample.image_id for sample in samples if not shipped.classify(sample.path).radiograph_check.looks_like_radiograph]
    rate = len(warned) / len(samples)
    print(f"\nFracAtlas test split: {len(warned)} of {len(samples)} warned ({rate:.1%}): {warned}")
    assert rate <= 0.02


def test_non_radiographs_of_every_family_are_called_not_radiographs(shipped):
    """Tier 1 on the generated families of tests/nonradiographs.py (232 pictures, grey photos and the
    held-out handwritten digits included), through the whole classifier as an upload goes."""
    from tests.nonradiographs import HELD_OUT_FAMILY, non_radiographs

    outcome = Counter()
    for category, _, data in non_radiographs():
        outcome[category, shipped.classify(data).radiograph_check.looks_like_radiograph] += 1
    categories = sorted({category for category, _ in outcome})
    assert HELD_OUT_FAMILY in categories and "grey photo" in categories
    total_warned = sum(outcome[category, False] for category in categories)
    total = sum(outcome.values())
    print(f"\nNon-radiographs: {total_warned} of {total} called not a radiograph")
    for category in categories:
        count = outcome[category, False] + outcome[category, True]
        print(f"  {category}: {outcome[category, False]} of {count}")
    # The target, >= 95 % of each family, is met on ten fresh draws of 232 (docs/robustness.md).
    # One draw of 16-40 per family cannot resolve it (one miss in 16 is 6 points), so this draw is
    # held to what it measured (231 of 232) with a little room: >= 97 % in all, >= 90 % per family.
    assert total_warned / total >= 0.97
    for category in categories:
        count = outcome[category, False] + outcome[category, True]
        assert outcome[category, False] / count >= 0.9, f"only {outcome[category, False]} of {count} {category}s caught"


def _shifted_radiograph(path) -> np.ndarray:
    """A FracAtlas radiograph as another site might send it: rotated 30 degrees with black corners,
    inverted (MONOCHROME1 shown raw), a burned-in side marker and an arrow."""
    import cv2

    from core.imaging import read_image

    image = (read_image(path) * 255).astype(np.uint8)
    height, width = image.shape
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), 30, 0.8)
    image = 255 - cv2.warpAffine(image, rotation, (width, height), borderValue=0)
    cv2.putText(image, "R", (width // 10, height // 6), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 255, 4, cv2.LINE_AA)
    cv2.arrowedLine(image, (width // 2, height // 4), (width // 2 + 60, height // 4 + 60), 255, 3, tipLength=0.3)
    return image


@needs_data
def test_cli_says_a_shifted_radiograph_is_one_and_a_grey_photo_is_not(tmp_path, capsys):
    import json

    from sklearn.datasets import load_sample_image

    from core.predict import main
    from training.data import load_index

    val = [sample for sample in load_index(DEFAULT_DATA_DIR) if sample.split == "val"][:3]
    paths = []
    for sample in val:
        paths.append(tmp_path / f"{sample.image_id}-shifted.png")
        paths[-1].write_bytes(_encode(_shifted_radiograph(sample.path)))
    paths.append(tmp_path / "grey-photo.jpg")
    paths[-1].write_bytes(_encode(np.asarray(Image.fromarray(load_sample_image("china.jpg")).convert("L")), "JPEG"))
    assert main([str(path) for path in paths] + ["--json"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [result["looks_like_radiograph"] for result in results] == [True, True, True, False]
    assert results[-1]["unlike_training_data"] is False
    assert any("unlike an X-ray" in reason for reason in results[-1]["unreliable_because"])
