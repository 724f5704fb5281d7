"""The images the bench runs on: typical FracAtlas test radiographs, or generated stand-ins."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TYPICAL_SIZE = (373, 454)  # width, height of most FracAtlas radiographs


@dataclass(frozen=True)
class BenchImages:
    """Encoded image files, as an upload would deliver them."""

    source: str  # said in the output: which images the figures are about
    names: tuple[str, ...]
    files: tuple[bytes, ...]
    paths: tuple[Path, ...]  # empty for generated images

    def __len__(self) -> int:
        return len(self.files)


def bench_images(data_dir: Path, count: int) -> BenchImages:
    """``count`` typical (373×454) FracAtlas test images, or generated ones where the data is absent."""
    labels = data_dir / "labels.csv"
    if labels.is_file():
        with open(labels, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["split"] == "test"
                    and (int(row["original_width"]), int(row["original_height"])) == TYPICAL_SIZE]
        if len(rows) >= count:
            paths = tuple(data_dir / row["path"] for row in rows[:count])
            return BenchImages(f"FracAtlas test split, {count} radiographs of 373×454 px (JPEG)",
                               tuple(path.name for path in paths),
                               tuple(path.read_bytes() for path in paths), paths)
    return generated_images(count, reason=f"no FracAtlas labels.csv with {count} typical test images in {data_dir}")


def generated_images(count: int, *, reason: str = "") -> BenchImages:
    """Radiograph-like 373×454 JPEGs: dark noisy background, bright bone bars, a thin crack."""
    from PIL import Image

    width, height = TYPICAL_SIZE
    rng = np.random.default_rng(0)
    files, names = [], []
    rows, cols = np.mgrid[0:height, 0:width]
    for index in range(count):
        pixels = rng.normal(40, 12, (height, width))
        for _ in range(2):
            centre, half_width = rng.uniform(0.25, 0.75) * width, rng.uniform(20, 45)
            slope = rng.uniform(-0.3, 0.3)
            distance = np.abs(cols - (centre + slope * (rows - height / 2)))
            pixels += 150 * np.clip(1 - (distance / half_width) ** 2, 0, None)
        crack_row = int(rng.uniform(0.3, 0.7) * height)
        pixels[crack_row : crack_row + 2] *= 0.5
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=95)
        files.append(buffer.getvalue())
        names.append(f"generated_{index:03d}.jpg")
    source = f"GENERATED images ({count}, 373×454 px JPEG): {reason}" if reason else f"GENERATED images ({count})"
    return BenchImages(source, tuple(names), tuple(files), ())
