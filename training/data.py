"""Data sets on disk: the index of labelled images and a cache of their preprocessed pixels.

Two layouts are read:

* ``labels.csv`` with columns ``path``, ``label``, ``split`` and optionally ``region``,
  ``hardware``, ``image_id`` (the layout of ``shared/datasets/fracatlas``);
* plain folders ``train|val|test/fractured|not_fractured/*`` (the layout of the Kaggle sets).

Decoding a few thousand radiographs takes longer than an epoch of a small CNN, so the
preprocessed arrays are cached under ``.cache/`` keyed by the split hash and the preprocessing.
"""

from __future__ import annotations

import csv
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import CLASS_NAMES, SPLITS
from core.imaging import ImageReadError, read_image
from core.preprocessing import PreprocessConfig, preprocess
from training.config import CACHE_DIR

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".dcm"}


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``label`` is 1 for fractured, 0 for not fractured."""

    image_id: str
    path: Path
    label: int
    split: str
    region: str = "unknown"
    hardware: int | None = None


def load_index(data_dir: str | Path) -> list[Sample]:
    """Lists the labelled images of a data set, in a stable order.

    Args:
        data_dir: a folder holding ``labels.csv``, or ``train``/``val``/``test`` folders.

    Returns:
        The samples, sorted by split then path.

    Raises:
        FileNotFoundError: if the folder does not exist.
        ValueError: if it has neither layout, or a label or split is not recognised.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory not found: {data_dir}")
    if (data_dir / "labels.csv").is_file():
        samples = _index_from_csv(data_dir)
    elif any((data_dir / split).is_dir() for split in SPLITS):
        samples = _index_from_folders(data_dir)
    else:
        raise ValueError(
            f"{data_dir} has neither labels.csv nor train/val/test folders; expected one of the "
            "two layouts described in the README"
        )
    if not samples:
        raise ValueError(f"no images found under {data_dir}")
    return sorted(samples, key=lambda sample: (SPLITS.index(sample.split), str(sample.path)))


def _parse_label(value: str, where: str) -> int:
    if value not in CLASS_NAMES:
        raise ValueError(f"{where}: label {value!r} is not one of {', '.join(CLASS_NAMES)}")
    return CLASS_NAMES.index(value)


def _index_from_csv(data_dir: Path) -> list[Sample]:
    samples = []
    with open(data_dir / "labels.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"path", "label", "split"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"labels.csv lacks column(s) {', '.join(sorted(missing))}; "
                             f"it has: {', '.join(reader.fieldnames or ()) or 'nothing'}")
        for line_number, row in enumerate(reader, start=2):
            where = f"labels.csv line {line_number}"
            if row.get("split") not in SPLITS:
                raise ValueError(f"{where}: split {row.get('split')!r} is not one of {', '.join(SPLITS)}")
            hardware = row.get("hardware")
            if hardware not in (None, "", "0", "1"):
                raise ValueError(f"{where}: hardware {hardware!r} is not 0, 1 or empty")
            samples.append(Sample(
                image_id=row.get("image_id") or Path(row["path"]).stem,
                path=data_dir / row["path"],
                label=_parse_label(row.get("label"), where),
                split=row["split"],
                region=row.get("region") or "unknown",
                hardware=int(hardware) if hardware not in (None, "") else None,
            ))
    return samples


def _index_from_folders(data_dir: Path) -> list[Sample]:
    samples = []
    for split in SPLITS:
        for class_name in CLASS_NAMES:
            folder = data_dir / split / class_name
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    samples.append(Sample(path.stem, path, CLASS_NAMES.index(class_name), split))
    return samples


def split_hash(samples: list[Sample]) -> str:
    """SHA-256 over (image id, label, split): changes whenever the split or a label changes."""
    lines = sorted(f"{sample.image_id},{sample.label},{sample.split}" for sample in samples)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def load_arrays(
    samples: list[Sample], config: PreprocessConfig, *, cache_dir: Path | None = CACHE_DIR
) -> tuple[np.ndarray, np.ndarray]:
    """Reads and preprocesses images, from the cache when it holds them.

    Args:
        samples: the images to load.
        config: preprocessing to apply.
        cache_dir: folder for the ``.npz`` cache; ``None`` disables caching.

    Returns:
        ``(images, labels)``: uint8 array (N, size, size, 1) and int array (N,).

    Raises:
        ImageReadError: if any image cannot be read (the message names the file).
    """
    labels = np.array([sample.label for sample in samples], dtype=np.int64)
    cache_path = None
    if cache_dir is not None:
        key = json.dumps([split_hash(samples), [str(s.path) for s in samples], config.to_dict()])
        cache_path = Path(cache_dir) / f"images-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        if cache_path.is_file():
            return np.load(cache_path)["images"], labels
    # Decoding and OpenCV release the GIL, so threads use both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        images = list(pool.map(lambda sample: _load_one(sample, config), samples))
    stacked = np.stack(images) if images else np.zeros((0, config.image_size, config.image_size, 1), np.uint8)
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_path.with_suffix(".tmp.npz")
        np.savez(temporary, images=stacked)
        temporary.replace(cache_path)
    return stacked, labels


def _load_one(sample: Sample, config: PreprocessConfig) -> np.ndarray:
    try:
        return preprocess(read_image(sample.path), config)
    except ImageReadError as error:
        raise ImageReadError(f"{sample.path}: {error}") from error
