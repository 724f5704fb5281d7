"""The archive's worker and an image of an extreme aspect (issue 25, item 6), in this process (no
Ray): a 2,000,000 x 1 px PNG, whose full-size overlay libpng cannot write, aborted the whole Ray job
with no rows. Its overlay is now drawn at the most a PNG holds; and an overlay that still cannot be
drawn costs its own file an error row, never the job."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import MODELS_DIR
from core.overlay import PNG_MAX_SIDE
from serving import _archive_worker

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "metadata.json").is_file(), reason=f"no shipped model in {MODELS_DIR}")


@pytest.fixture(scope="module")
def worker_and_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    noise = np.random.default_rng(5).integers(0, 255, (300, 240), dtype=np.uint8)
    paths = []
    for name, pixels in (("before", noise), ("wide", np.zeros((1, 2_000_000), np.uint8)), ("after", noise.T.copy())):
        Image.fromarray(pixels).save(folder / f"{name}.png")
        paths.append(folder / f"{name}.png")
    return _archive_worker.ArchiveWorker(str(MODELS_DIR), threshold=0.5), paths


def _batch(paths: list[Path]) -> dict:
    return {"index": np.arange(len(paths)), "location": np.array([os.fsencode(path) for path in paths], dtype=object)}


def test_every_file_gets_its_row_and_overlay_around_an_extreme_aspect(worker_and_paths, tmp_path):
    worker, paths = worker_and_paths
    worker.overlay_staging = tmp_path
    rows = worker(_batch(paths)).to_pylist()
    assert [row["index"] for row in rows] == [0, 1, 2]
    assert all(row["error"] is None and 0.0 <= row["probability_fractured"] <= 1.0 for row in rows)
    staged = {index: tmp_path / _archive_worker.overlay_staging_name(index) for index in range(3)}
    assert all(path.is_file() for path in staged.values())
    with Image.open(io.BytesIO(staged[1].read_bytes())) as overlay:
        assert overlay.size == (PNG_MAX_SIDE, 1)


def test_an_overlay_that_cannot_be_drawn_is_its_files_error_row(worker_and_paths, tmp_path, monkeypatch):
    worker, paths = worker_and_paths
    worker.overlay_staging = tmp_path
    real_write = _archive_worker.write_overlay

    def failing_on_wide(path, result, classifier):
        if result.image.shape == (1, 2_000_000):
            raise ValueError("injected: no PNG can hold this")
        real_write(path, result, classifier)

    monkeypatch.setattr(_archive_worker, "write_overlay", failing_on_wide)
    rows = worker(_batch(paths)).to_pylist()
    assert [row["index"] for row in rows] == [0, 1, 2]
    assert rows[1]["error"] == "its overlay could not be drawn: injected: no PNG can hold this"
    assert rows[1]["probability_fractured"] is None and rows[1]["heatmap_method"] is None
    assert rows[0]["error"] is None and rows[2]["error"] is None
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        _archive_worker.overlay_staging_name(index) for index in (0, 2))
