"""training.fracatlas_split on a mock of the official FracAtlas folder layout."""

import csv

import numpy as np
from PIL import Image

from training.data import load_index
from training.fracatlas_split import SPLIT_LIST, main


def _write_official_layout(root, records):
    for image_id, fractured in records:
        folder = root / "images" / ("Fractured" if fractured else "Non_fractured")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / f"{image_id}.jpg")
    with open(root / "dataset.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "hand", "leg", "hip", "shoulder", "mixed", "hardware",
                         "multiscan", "fractured", "fracture_count", "frontal", "lateral", "oblique"])
        for image_id, fractured in records:
            writer.writerow([f"{image_id}.jpg", 1, 0, 0, 0, 0, 0, 0, int(fractured), int(fractured), 1, 0, 0])


def test_split_list_has_ids_and_splits_only():
    with open(SPLIT_LIST, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["image_id", "split"]
    assert len(rows) == 4073
    assert {row["split"] for row in rows} == {"train", "val", "test"}


def test_rebuilds_labels_csv_that_training_reads(tmp_path):
    with open(SPLIT_LIST, newline="") as handle:
        known = [row for row in csv.DictReader(handle)][:4]
    records = [(row["image_id"], index % 2 == 0) for index, row in enumerate(known)]
    records.append(("IMG9999999", True))  # not in our split: left out
    _write_official_layout(tmp_path, records)

    assert main([str(tmp_path)]) == 0

    samples = load_index(tmp_path)
    assert sorted(s.image_id for s in samples) == sorted(row["image_id"] for row in known)
    by_id = {s.image_id: s for s in samples}
    for (image_id, fractured), row in zip(records, known):
        assert by_id[image_id].label == int(fractured)
        assert by_id[image_id].split == row["split"]
        assert by_id[image_id].region == "hand"


def test_missing_dataset_csv_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "dataset.csv" in capsys.readouterr().err
