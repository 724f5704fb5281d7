"""Shared fixtures for tests/core and tests/training: synthetic radiograph data sets and one tiny trained model.

Everything is generated under pytest's temporary directories; the project's ``.cache/``,
``models/`` and ``runs/`` are never read or written.
"""

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from training import data as core_data

IMAGE_PX = 48  # side of the generated PNGs
MODEL_PX = 32  # --image-size of the tiny model
FOLDER_COUNTS = {"train": 12, "val": 8, "test": 8}  # images per class and split


def synthetic_xray(fractured: bool, seed: int, shape=(IMAGE_PX, IMAGE_PX)) -> np.ndarray:
    """uint8 grey noise; a fractured image also has a bright diagonal line (2 px wide)."""
    rng = np.random.default_rng(seed)
    height, width = shape
    image = rng.integers(20, 110, size=shape, dtype=np.uint8)
    if fractured:
        offset = int(rng.integers(-height // 4, height // 4 + 1))
        for row in range(height):
            for col in (row + offset, row + offset + 1):
                if 0 <= col < width:
                    image[row, col] = 240
    return image


def write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def make_folder_dataset(root: Path, counts=None) -> Path:
    """``root/{split}/{fractured,not_fractured}/{split}_{class}_{i}.png`` (unique file stems)."""
    counts = FOLDER_COUNTS if counts is None else counts
    seed = 0
    for split, n in counts.items():
        for class_name in ("fractured", "not_fractured"):
            for index in range(n):
                seed += 1
                pixels = synthetic_xray(class_name == "fractured", seed)
                write_png(root / split / class_name / f"{split}_{class_name}_{index:02d}.png", pixels)
    return root


def make_csv_dataset(root: Path, counts) -> Path:
    """``root/images/*.png`` plus ``root/labels.csv`` with region and hardware columns.

    Regions alternate hand/leg and hardware alternates 1/0 within each (split, class).
    """
    rows, seed = [], 1000
    for split, n in counts.items():
        for class_name in ("fractured", "not_fractured"):
            for index in range(n):
                seed += 1
                name = f"{split}_{class_name}_{index:02d}"
                write_png(root / "images" / f"{name}.png", synthetic_xray(class_name == "fractured", seed))
                rows.append({"image_id": name, "path": f"images/{name}.png", "label": class_name,
                             "split": split, "region": ("hand", "leg")[index % 2],
                             "hardware": (1, 0)[index % 2]})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="session", autouse=True)
def isolated_data_cache(tmp_path_factory):
    """Points load_arrays' default cache at a temporary folder instead of the project's .cache/."""
    cache = tmp_path_factory.mktemp("data-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(core_data.load_arrays.__kwdefaults__, "cache_dir", cache)
        yield cache


@pytest.fixture(scope="session")
def synth() -> SimpleNamespace:
    """The generators above, for tests that build their own data sets."""
    return SimpleNamespace(xray=synthetic_xray, write_png=write_png, folder_dataset=make_folder_dataset,
                           csv_dataset=make_csv_dataset, image_px=IMAGE_PX, model_px=MODEL_PX,
                           folder_counts=FOLDER_COUNTS)


@pytest.fixture(scope="session")
def folder_dataset(tmp_path_factory) -> Path:
    """The tiny folder-layout data set the shared model is trained on."""
    return make_folder_dataset(tmp_path_factory.mktemp("folder-data"))


@dataclass(frozen=True)
class TrainedModel:
    directory: Path
    data_dir: Path
    returncode: int
    seconds: float
    files_written: tuple[str, ...]  # right after training (evaluate adds its reports later)


@pytest.fixture(scope="session")
def trained_model(folder_dataset, tmp_path_factory) -> TrainedModel:
    """Trains the tiny model once per test session (1 epoch, 32 px) and returns where it is.

    Session-scoped, so the training, inference, explain, predict and evaluate tests share one
    run. No augmentation and a constant, high learning rate make one epoch separate the classes
    clearly, which keeps the probabilities apart (evaluate writes them with 6 decimals).
    """
    from training import train_v1

    output = tmp_path_factory.mktemp("model")
    started = time.perf_counter()
    returncode = train_v1.main([
        "--data-dir", str(folder_dataset), "--output-dir", str(output), "--epochs", "1",
        "--image-size", str(MODEL_PX), "--batch-size", "8",
        "--augment", "none", "--learning-rate", "0.01", "--schedule", "constant",
    ])
    seconds = time.perf_counter() - started
    return TrainedModel(output, folder_dataset, returncode, seconds,
                        tuple(sorted(path.name for path in output.iterdir())))


@pytest.fixture(scope="session")
def classifier(trained_model):
    """The tiny model loaded once (tracing the forward pass costs seconds)."""
    from core.classifier import FractureClassifier

    assert trained_model.returncode == 0, "training the shared tiny model failed"
    return FractureClassifier.load(trained_model.directory)


@pytest.fixture(scope="session")
def sample_paths(folder_dataset) -> list[Path]:
    """A few images of both classes from the tiny data set's test split."""
    return (sorted((folder_dataset / "test" / "fractured").glob("*.png"))[:3]
            + sorted((folder_dataset / "test" / "not_fractured").glob("*.png"))[:3])
