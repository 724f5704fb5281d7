"""Tests for training.data: both index layouts, their errors, the split hash and the array cache."""

import csv
import dataclasses

import numpy as np
import pytest

from training.data import Sample, load_arrays, load_index, split_hash
from core.imaging import ImageReadError, read_image
from core.preprocessing import PreprocessConfig, preprocess

CONFIG = PreprocessConfig(32, "pad", "clahe")


def write_labels(root, rows, fieldnames=("path", "label", "split", "region", "hardware", "image_id")):
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)


def test_csv_layout(tmp_path, synth):
    synth.csv_dataset(tmp_path, {"train": 2, "val": 1, "test": 1})
    samples = load_index(tmp_path)
    assert len(samples) == 8
    assert [s.split for s in samples] == ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    for split in ("train", "val", "test"):
        paths = [str(s.path) for s in samples if s.split == split]
        assert paths == sorted(paths)
    by_id = {s.image_id: s for s in samples}
    first = by_id["train_fractured_00"]
    assert first == Sample("train_fractured_00", tmp_path / "images" / "train_fractured_00.png", 1,
                           "train", "hand", 1)
    assert by_id["train_not_fractured_01"].label == 0
    assert by_id["train_not_fractured_01"].region == "leg"
    assert by_id["train_not_fractured_01"].hardware == 0
    assert all(s.path.is_file() for s in samples)


def test_csv_optional_columns_default(tmp_path):
    write_labels(tmp_path, [{"path": "a/x1.png", "label": "fractured", "split": "val"},
                            {"path": "a/x2.png", "label": "not_fractured", "split": "val",
                             "region": "", "hardware": "", "image_id": ""}])
    samples = load_index(tmp_path)
    assert [(s.image_id, s.region, s.hardware, s.label) for s in samples] == [
        ("x1", "unknown", None, 1), ("x2", "unknown", None, 0)]


def test_folder_layout(tmp_path, synth):
    synth.folder_dataset(tmp_path, {"train": 2, "test": 1})  # no val folder at all
    (tmp_path / "train" / "fractured" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "unrelated").mkdir()
    samples = load_index(tmp_path)
    assert len(samples) == 6
    assert [s.split for s in samples] == ["train"] * 4 + ["test"] * 2
    for sample in samples:
        assert sample.path.parent.name == ("not_fractured", "fractured")[sample.label]
        assert sample.image_id == sample.path.stem
        assert sample.region == "unknown" and sample.hardware is None
    assert sorted(s.label for s in samples) == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("bad_row, message", [
    ({"label": "broken"}, "label 'broken'"),
    ({"split": "holdout"}, "split 'holdout'"),
])
def test_bad_label_or_split_names_the_line(tmp_path, bad_row, message):
    rows = [{"path": f"i{n}.png", "label": "fractured", "split": "train"} for n in range(3)]
    rows[1].update(bad_row)  # data row 2 = line 3 of the file
    write_labels(tmp_path, rows, ("path", "label", "split"))
    with pytest.raises(ValueError) as error:
        load_index(tmp_path)
    assert "line 3" in str(error.value) and message in str(error.value)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="data directory not found"):
        load_index(tmp_path / "nowhere")


def test_neither_layout(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="neither labels.csv nor train/val/test"):
        load_index(tmp_path)


def test_folder_layout_without_images(tmp_path):
    (tmp_path / "train" / "fractured").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images found"):
        load_index(tmp_path)


def test_split_hash_tracks_labels_and_splits_not_order(tmp_path):
    samples = [Sample(f"id{n}", tmp_path / f"id{n}.png", n % 2, ("train", "val", "test")[n % 3])
               for n in range(9)]
    reference = split_hash(samples)
    assert len(reference) == 64
    assert split_hash(list(reversed(samples))) == reference
    assert split_hash(samples[3:] + samples[:3]) == reference
    relabelled = samples.copy()
    relabelled[4] = dataclasses.replace(samples[4], label=1 - samples[4].label)
    assert split_hash(relabelled) != reference
    moved = samples.copy()
    moved[4] = dataclasses.replace(samples[4], split="test" if samples[4].split != "test" else "val")
    assert split_hash(moved) != reference
    assert split_hash(samples[:-1]) != reference


def test_load_arrays_and_cache_hit(tmp_path, synth):
    data_dir = synth.folder_dataset(tmp_path / "data", {"train": 3})
    samples = load_index(data_dir)
    cache = tmp_path / "cache"
    images, labels = load_arrays(samples, CONFIG, cache_dir=cache)
    assert images.shape == (6, 32, 32, 1) and images.dtype == np.uint8
    assert labels.tolist() == [s.label for s in samples]
    for sample, image in zip(samples, images):
        np.testing.assert_array_equal(image, preprocess(read_image(sample.path), CONFIG))
    cached = list(cache.glob("images-*.npz"))
    assert len(cached) == 1

    # With the source images gone, only the cache can answer.
    for sample in samples:
        sample.path.unlink()
    again, labels_again = load_arrays(samples, CONFIG, cache_dir=cache)
    np.testing.assert_array_equal(again, images)
    np.testing.assert_array_equal(labels_again, labels)
    assert again.dtype == np.uint8
    # Another preprocessing is another cache entry, so it has to read the (missing) files.
    with pytest.raises(ImageReadError):
        load_arrays(samples, PreprocessConfig(32, "stretch", "clahe"), cache_dir=cache)


def test_load_arrays_without_cache_writes_nothing(tmp_path, synth):
    data_dir = synth.folder_dataset(tmp_path / "data", {"val": 1})
    before = sorted(tmp_path.rglob("*"))
    images, labels = load_arrays(load_index(data_dir), CONFIG, cache_dir=None)
    assert images.shape == (2, 32, 32, 1) and sorted(labels.tolist()) == [0, 1]
    assert sorted(tmp_path.rglob("*")) == before


def test_load_arrays_of_nothing(tmp_path):
    images, labels = load_arrays([], CONFIG, cache_dir=None)
    assert images.shape == (0, 32, 32, 1) and images.dtype == np.uint8 and labels.shape == (0,)


def test_unreadable_image_names_the_file(tmp_path, synth):
    data_dir = synth.folder_dataset(tmp_path / "data", {"train": 2})
    broken = data_dir / "train" / "fractured" / "broken.png"
    broken.write_bytes(b"this is not a PNG at all")
    with pytest.raises(ImageReadError) as error:
        load_arrays(load_index(data_dir), CONFIG, cache_dir=tmp_path / "cache")
    assert str(broken) in str(error.value)
    assert not list(tmp_path.rglob("*.npz"))  # nothing half-done is cached


def test_csv_without_required_columns_names_them(tmp_path):
    (tmp_path / "labels.csv").write_text("image,label\nx.png,fractured\n")
    with pytest.raises(ValueError, match="lacks column.*path.*split"):
        load_index(tmp_path)


def test_csv_with_bad_hardware_value_names_the_line(tmp_path):
    (tmp_path / "labels.csv").write_text("path,label,split,hardware\nx.png,fractured,train,yes\n")
    with pytest.raises(ValueError, match="line 2.*hardware"):
        load_index(tmp_path)
