"""Shared fixtures for tests/core and tests/training: synthetic radiograph data sets and one tiny trained model.

Everything is generated under pytest's temporary directories; the project's ``.cache/``,
``models/`` and ``runs/`` are never read or written.
"""

import csv
import inspect
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


# --- test lanes -------------------------------------------------------------------------------------
# Every test is marked by rule here, so that a new test gets its lane without anyone remembering
# to mark it (the markers are registered in pytest.ini, with --strict-markers). The fast lane is
#     pytest -m "not slow and not data and not browser and not load"
# and CI runs everything (plain `pytest`). See README, "Test lanes".

TESTS_DIR = Path(__file__).resolve().parent
LANE_BY_FOLDER = {"e2e": "browser", "load": "load"}  # tests/<folder>/** -> marker
# Fixtures that make every test using them slow, by name (whoever defines them).
SLOW_FIXTURES = {
    "local_ray",  # tests/serving: starts a local Ray; its users run Ray Data jobs or a Serve app
    "bench_quick_run",  # tests/bench: `python -m bench --quick`, minutes
}
# Whole modules that are slow by what they check, whatever their tests are called.
SLOW_FILES = {
    "core/test_memory_budget.py",  # a 60-megapixel decode per case, each in a CLI subprocess
}
# Names that put a test in a lane when it, one of its fixtures or a helper of tests/ they call
# names them in its code: the location of the real FracAtlas data set (training.config; such a
# test reads the real images, and skips where they are absent), and starting a local Ray.
DATA_NAMES = frozenset({"DEFAULT_DATA_DIR"})
SLOW_NAMES = frozenset({"ray_connection"})


def _code_objects(code):
    yield code
    for constant in code.co_consts:
        if inspect.iscode(constant):
            yield from _code_objects(constant)


def _names_in_code(function, seen: set) -> set[str]:
    """The global and attribute names that ``function`` and the helpers of tests/ it calls by a
    global name use (each code object once, over ``seen``)."""
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None or code in seen:
        return set()
    seen.add(code)
    names = {name for inner in _code_objects(code) for name in inner.co_names}
    module_globals = getattr(function, "__globals__", {})
    for helper in map(module_globals.get, sorted(names)):
        if inspect.isfunction(helper) and helper.__module__.startswith("tests."):
            names |= _names_in_code(helper, seen)
    return names


def _fixture_functions(item):
    info = getattr(item, "_fixtureinfo", None)
    for definitions in (info.name2fixturedefs.values() if info is not None else ()):
        if definitions:
            yield definitions[-1].func


def _skip_reasons(item) -> str:
    return " ".join(str(mark.kwargs.get("reason", "")) for mark in item.iter_markers("skipif"))


def _relative(item) -> str:
    """``item``'s file relative to tests/ (``core/test_x.py``), or "" outside it."""
    try:
        return item.path.resolve().relative_to(TESTS_DIR).as_posix()
    except ValueError:
        return ""


def lanes_of(item) -> set[str]:
    """The lane markers that the rules give ``item``."""
    lanes = set()
    folder = _relative(item).split("/")[0]
    if folder in LANE_BY_FOLDER:
        lanes.add(LANE_BY_FOLDER[folder])
    reasons = _skip_reasons(item)
    if "Chromium" in reasons:  # launches Chromium: skipped without it (app_harness.CHROMIUM)
        lanes.add("browser")
    seen: set = set()
    names = set().union(*(_names_in_code(function, seen) for function in
                          (getattr(item, "function", None), *_fixture_functions(item)) if function is not None))
    if (SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or names & SLOW_NAMES
            or _relative(item) in SLOW_FILES):
        lanes.add("slow")
    if "FracAtlas" in reasons or names & DATA_NAMES:
        lanes.add("data")
    return lanes


def pytest_collection_modifyitems(config, items):
    for item in items:
        for lane in sorted(lanes_of(item) - {mark.name for mark in item.iter_markers()}):
            item.add_marker(lane)
