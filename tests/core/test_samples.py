"""The shipped sample X-rays (core.samples): the manifest, the files, the boxes and their lookup."""

import hashlib
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from core.config import PROJECT_DIR
from core.imaging import read_image
from core.samples import (SAMPLES_DIR, FractionBox, SampleManifestError, boxes_for_upload, load_samples, sample_bytes,
                          sample_thumbnail)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".svg", ".dcm"}
MAX_ASSET_IMAGES = 8


@pytest.fixture(scope="module")
def samples():
    return load_samples()


def test_manifest_lists_six_samples_fractured_normal_and_with_an_implant(samples):
    assert len(samples) == 6
    assert sum(sample.fractured for sample in samples) == 4
    assert sum(not sample.fractured for sample in samples) == 2
    assert any("implant" in sample.caption for sample in samples)
    assert len({sample.caption.split(",")[0] for sample in samples if sample.fractured}) == 4  # four body regions


def test_every_file_exists_and_matches_its_sha256(samples):
    for sample in samples:
        data = (SAMPLES_DIR / sample.file_name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sample.sha256
        assert sample_bytes(sample) == data


def test_files_are_small_grey_jpegs_without_metadata(samples):
    for sample in samples:
        with Image.open(io.BytesIO(sample_bytes(sample))) as image:
            assert image.format == "JPEG" and image.mode == "L"
            assert max(image.size) <= 800
            assert not image.getexif() and "icc_profile" not in image.info and "comment" not in image.info
        assert read_image(sample_bytes(sample)).shape == image.size[::-1]  # the app's reader reads it


def test_fractures_have_boxes_inside_the_image_and_normals_none(samples):
    for sample in samples:
        assert bool(sample.boxes) == sample.fractured
        for box in sample.boxes:
            assert 0 <= box.left < box.right <= 1 and 0 <= box.top < box.bottom <= 1


def test_boxes_for_upload_finds_a_samples_boxes_by_its_bytes(samples):
    for sample in samples:
        assert boxes_for_upload(sample_bytes(sample)) == sample.boxes


def test_boxes_for_upload_gives_none_for_other_bytes(samples):
    data = sample_bytes(next(sample for sample in samples if sample.fractured))
    changed = data[:-3] + bytes([data[-3] ^ 1]) + data[-2:]  # same size, one bit different
    assert boxes_for_upload(changed) == ()
    assert boxes_for_upload(data + b"\0") == ()
    assert boxes_for_upload(b"") == ()
    with Image.open(io.BytesIO(data)) as image:  # the same picture, re-encoded
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    assert boxes_for_upload(buffer.getvalue()) == ()


def test_attribution_names_the_licence_the_paper_and_every_original_file(samples):
    text = (SAMPLES_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in text and "doi:10.1038/s41597-023-02432-4" in text and "Abedeen I" in text
    assert "downscaled and re-encoded" in text
    for sample in samples:
        assert f"| {sample.file_name} | images/" in text


def test_assets_hold_at_most_eight_images():
    images = [path for path in (PROJECT_DIR / "assets").rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES]
    assert 0 < len(images) <= MAX_ASSET_IMAGES, images


def test_thumbnail_is_a_small_square_jpeg_of_the_whole_image(samples):
    portrait = samples[0]
    with Image.open(SAMPLES_DIR / portrait.file_name) as image:
        assert image.height > image.width
    with Image.open(io.BytesIO(sample_thumbnail(portrait, 120))) as thumbnail:
        assert thumbnail.format == "JPEG" and thumbnail.size == (120, 120)
        pixels = np.asarray(thumbnail)
    assert pixels[:, :5].std() < 2 and pixels[:, -5:].std() < 2  # plain bars beside a portrait image
    assert pixels[:, 50:70].max() > 100  # the X-ray in the middle


# --- a malformed manifest gets a clear error -------------------------------------------------------

def _entry(**changes) -> dict:
    entry = {"name": "A", "file": "a.jpg", "caption": "Wrist, fracture", "fractured": True,
             "boxes": [{"left": 0.1, "top": 0.2, "right": 0.3, "bottom": 0.4}], "sha256": "0" * 64}
    entry.update(changes)
    return entry


def _write(tmp_path, document) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    (tmp_path / "samples.json").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(("document", "message"), [
    ("{not json", "is not readable JSON"),
    ({"samples": []}, "non-empty list under \"samples\""),
    ([_entry()], "non-empty list under \"samples\""),
    ({"samples": [{k: v for k, v in _entry().items() if k != "sha256"}]}, "sample 1 lacks sha256"),
    ({"samples": [_entry(fractured="yes")]}, "fractured must be true or false"),
    ({"samples": [_entry(sha256="abc")]}, "sha256 must be 64 lower-case hex digits"),
    ({"samples": [_entry(file="../../etc/passwd")]}, "plain file name"),
    ({"samples": [_entry(caption="")]}, "caption must be a non-empty string"),
    ({"samples": [_entry(boxes=[{"left": 0.1, "top": 0.2, "right": 1.3, "bottom": 0.4}])]}, "box 1: box sides must be numbers in 0..1"),
    ({"samples": [_entry(boxes=[{"left": 0.5, "top": 0.2, "right": 0.3, "bottom": 0.4}])]}, "left < right"),
    ({"samples": [_entry(boxes=[[0.1, 0.2, 0.3, 0.4]])]}, "exactly left, top, right, bottom"),
    ({"samples": [_entry(boxes=[{"left": True, "top": 0.2, "right": 0.3, "bottom": 0.4}])]}, "numbers in 0..1"),
    ({"samples": [_entry(), _entry(name="B", file="b.jpg")]}, "two samples share a sha256"),
], ids=["not-json", "empty", "no-object", "missing-key", "fractured-not-bool", "short-sha", "path-escape",
        "empty-caption", "box-outside", "box-inverted", "box-as-list", "box-bool", "duplicate-sha"])
def test_malformed_manifest_raises_a_clear_error(tmp_path, document, message):
    _write(tmp_path, document)
    with pytest.raises(SampleManifestError, match=message):
        load_samples(tmp_path)


def test_missing_manifest_says_how_to_build_it(tmp_path):
    with pytest.raises(SampleManifestError, match="python -m training.samples"):
        load_samples(tmp_path)


def test_a_changed_sample_file_is_refused(tmp_path, samples):
    shutil.copytree(SAMPLES_DIR, tmp_path, dirs_exist_ok=True)
    sample = load_samples(tmp_path)[0]
    (tmp_path / sample.file_name).write_bytes(b"\xff\xd8 not the shipped file")
    with pytest.raises(SampleManifestError, match="does not match the SHA-256"):
        sample_bytes(sample, tmp_path)


def test_fraction_box_refuses_sides_outside_the_unit_square():
    with pytest.raises(ValueError, match="0..1"):
        FractionBox(-0.1, 0.0, 0.5, 0.5)
