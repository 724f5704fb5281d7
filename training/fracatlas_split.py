"""Rebuild this project's FracAtlas split from the official download.

    python -m training.fracatlas_split /path/to/FracAtlas

The official archive (Abedeen et al., Scientific Data 10, 521, 2023; figshare
doi:10.6084/m9.figshare.22363012) holds ``images/Fractured``, ``images/Non_fractured`` and
``dataset.csv``. This writes ``labels.csv`` into that folder using ``docs/fracatlas-split.csv``
(image ids and splits only), after which ``python -m training.train_v1 --data-dir /path/to/FracAtlas``
trains on exactly our split. Images not in the split list (the ten duplicates and the one
contradictory label we removed) are left out.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from core.config import PROJECT_DIR

SPLIT_LIST = PROJECT_DIR / "docs" / "fracatlas-split.csv"
REGIONS = ("hand", "leg", "hip", "shoulder")
IMAGE_FOLDERS = {"fractured": "Fractured", "not_fractured": "Non_fractured"}


def build_labels(download_dir: Path, split_list: Path = SPLIT_LIST) -> list[dict]:
    """Joins the official ``dataset.csv`` with our split list.

    Returns:
        Rows for ``labels.csv``: image_id, path, label, split, region, hardware.

    Raises:
        FileNotFoundError: if ``dataset.csv`` or an image is missing.
    """
    with open(split_list, newline="") as handle:
        splits = {row["image_id"]: row["split"] for row in csv.DictReader(handle)}
    dataset_csv = Path(download_dir) / "dataset.csv"
    if not dataset_csv.is_file():
        raise FileNotFoundError(f"{dataset_csv} not found; expected the official FracAtlas folder")
    rows = []
    with open(dataset_csv, newline="") as handle:
        for record in csv.DictReader(handle):
            image_id = Path(record["image_id"]).stem
            if image_id not in splits:
                continue
            label = "fractured" if record["fractured"] == "1" else "not_fractured"
            path = Path("images") / IMAGE_FOLDERS[label] / f"{image_id}.jpg"
            if not (Path(download_dir) / path).is_file():
                raise FileNotFoundError(f"{download_dir / path} listed in dataset.csv is missing")
            regions = [region for region in REGIONS if record.get(region) == "1"]
            rows.append({"image_id": image_id, "path": path.as_posix(), "label": label,
                         "split": splits[image_id], "region": "+".join(regions) or "unknown",
                         "hardware": record.get("hardware", "")})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.fracatlas_split", description=__doc__.splitlines()[0])
    parser.add_argument("download_dir", type=Path, help="the unpacked official FracAtlas folder")
    args = parser.parse_args(argv)
    try:
        rows = build_labels(args.download_dir)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with open(args.download_dir / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    counts = {split: sum(row["split"] == split for row in rows) for split in ("train", "val", "test")}
    print(f"wrote {args.download_dir / 'labels.csv'}: {len(rows)} images, {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
