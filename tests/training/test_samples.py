"""training.samples: builds the gallery's files from a FracAtlas-style folder, reproducibly."""

import csv
import io

import numpy as np
import pytest
from PIL import Image

from core.samples import SAMPLES_DIR, FractionBox, load_samples, sample_bytes
from training import samples as build
from training.config import DEFAULT_DATA_DIR
from training.samples import SampleChoice, build_samples

LABEL_COLUMNS = ("image_id", "path", "label", "split", "region", "hardware", "multiscan", "truncated_jpeg")


def _fake_fracatlas(root, rows, boxes, exif_orientation=None):
    """labels.csv, boxes.csv and one noisy RGB JPEG per row (1000×600 for the first, 300×200 after)."""
    rng = np.random.default_rng(0)
    for index, row in enumerate(rows):
        size = (1000, 600) if index == 0 else (300, 200)
        path = root / row["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        exif[0x010F] = "Scanner maker"  # metadata that must not be shipped
        if exif_orientation:
            exif[0x0112] = exif_orientation
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, exif=exif)
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LABEL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with open(root / "boxes.csv", "w", newline="") as handle:
        handle.write("image_id,x_min,y_min,x_max,y_max\n")
        handle.writelines(f"{image_id},{','.join(map(str, box))}\n" for image_id, box in boxes)
    return root


def _row(image_id, label="fractured", split="test", hardware="0"):
    return {"image_id": image_id, "path": f"images/{label}/{image_id}.jpg", "label": label, "split": split,
            "region": "hand", "hardware": hardware, "multiscan": "0", "truncated_jpeg": "0"}


CHOICES = (SampleChoice("IMG1", "Wrist, fracture", fractured=True), SampleChoice("IMG2", "Hand, no fracture", fractured=False))


def test_builds_small_grey_jpegs_a_valid_manifest_and_the_attribution(tmp_path):
    data_dir = _fake_fracatlas(tmp_path / "data", [_row("IMG1"), _row("IMG2", "not_fractured")],
                               [("IMG1", (0.1, 0.2, 0.3, 0.4))])
    build_samples(data_dir, tmp_path / "out", CHOICES)
    samples = load_samples(tmp_path / "out")
    assert [sample.file_name for sample in samples] == ["IMG1.jpg", "IMG2.jpg"]
    assert samples[0].boxes == (FractionBox(0.1, 0.2, 0.3, 0.4),) and samples[1].boxes == ()
    assert samples[0].name == "IMG1 (Wrist, fracture).jpg" and samples[0].fractured
    with Image.open(io.BytesIO(sample_bytes(samples[0], tmp_path / "out"))) as image:
        assert image.size == (800, 480) and image.mode == "L"  # 1000×600 downscaled
        assert not image.getexif()
    with Image.open(io.BytesIO(sample_bytes(samples[1], tmp_path / "out"))) as image:
        assert image.size == (300, 200)  # never upscaled
    attribution = (tmp_path / "out" / "ATTRIBUTION.md").read_text()
    assert "| IMG1.jpg | images/fractured/IMG1.jpg | 1000×600 |" in attribution and "CC BY 4.0" in attribution


def test_building_twice_gives_the_same_bytes(tmp_path):
    data_dir = _fake_fracatlas(tmp_path / "data", [_row("IMG1"), _row("IMG2", "not_fractured")],
                               [("IMG1", (0.1, 0.2, 0.3, 0.4))])
    first = build_samples(data_dir, tmp_path / "a", CHOICES)
    second = build_samples(data_dir, tmp_path / "b", CHOICES)
    assert first == second
    assert (tmp_path / "a" / "IMG1.jpg").read_bytes() == (tmp_path / "b" / "IMG1.jpg").read_bytes()


@pytest.mark.parametrize(("row", "boxes", "message"), [
    (_row("IMG1", split="val"), [("IMG1", (0.1, 0.2, 0.3, 0.4))], "in the val split, not test"),
    (_row("IMG1", label="not_fractured"), [], "labelled not_fractured"),
    (_row("IMG1"), [], "a fracture needs boxes"),
    (_row("IMG1", hardware="1"), [("IMG1", (0.1, 0.2, 0.3, 0.4))], "hardware column is 1"),
], ids=["val-split", "wrong-label", "no-boxes", "unexpected-implant"])
def test_refuses_a_choice_that_does_not_fit_the_labels(tmp_path, row, boxes, message):
    data_dir = _fake_fracatlas(tmp_path / "data", [row], boxes)
    with pytest.raises(ValueError, match=message):
        build_samples(data_dir, tmp_path / "out", CHOICES[:1])


def test_refuses_an_image_turned_by_exif(tmp_path):
    data_dir = _fake_fracatlas(tmp_path / "data", [_row("IMG1")], [("IMG1", (0.1, 0.2, 0.3, 0.4))], exif_orientation=6)
    with pytest.raises(ValueError, match="EXIF rotation"):
        build_samples(data_dir, tmp_path / "out", CHOICES[:1])


def test_rebuilding_from_fracatlas_reproduces_the_shipped_samples(tmp_path):
    if not (DEFAULT_DATA_DIR / "labels.csv").is_file():
        pytest.skip(f"FracAtlas not found at {DEFAULT_DATA_DIR}")
    assert build.main(["--data-dir", str(DEFAULT_DATA_DIR), "--output-dir", str(tmp_path)]) == 0
    for name in ("samples.json", "ATTRIBUTION.md", *(sample.file_name for sample in load_samples())):
        assert (tmp_path / name).read_bytes() == (SAMPLES_DIR / name).read_bytes(), name
