"""Builds the app's sample gallery: six FracAtlas test-split images, downscaled and re-encoded into
``assets/samples/``, with the manifest ``samples.json`` (captions, labels, the radiologists' boxes,
SHA-256) and ``ATTRIBUTION.md`` (CC BY 4.0).

    python -m training.samples [--data-dir ../shared/datasets/fracatlas] [--output-dir assets/samples]

The images are chosen by hand (below), from the test split only, so that the gallery never shows
an image the model was trained or tuned on: four fractures in different body regions, one of them
with an implant, whose boxes are clear at thumbnail size, and two normal images. The model's test
probabilities were looked at too, so that each triage band shows up (the shoulder fracture lands
in the doubt band): the gallery teaches how to read the app and says nothing about its accuracy.
Running the script again gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.samples import MANIFEST_NAME, SAMPLES_DIR, load_samples
from training.config import DEFAULT_DATA_DIR
from training.localisation import load_boxes

MAX_SIDE = 800
JPEG_QUALITY = 88
ATTRIBUTION_NAME = "ATTRIBUTION.md"
CITATION = ("Abedeen I, Rahman MA, Prottyasha FZ, Ahmed T, Chowdhury TM, Shatabda S. FracAtlas: A Dataset for "
            "Fracture Classification, Localization and Segmentation of Musculoskeletal Radiographs. "
            "Scientific Data 10, 521 (2023). doi:10.1038/s41597-023-02432-4")
DATA_DOI = "doi:10.6084/m9.figshare.22363012"


@dataclass(frozen=True)
class SampleChoice:
    """One hand-picked image and what the gallery says about it (checked against labels.csv)."""

    image_id: str
    caption: str
    fractured: bool
    hardware: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.image_id}.jpg"

    @property
    def name(self) -> str:
        return f"{self.image_id} ({self.caption}).jpg"


SELECTION = (
    SampleChoice("IMG0002652", "Wrist, fracture", fractured=True),
    SampleChoice("IMG0003458", "Lower leg, fracture", fractured=True),
    SampleChoice("IMG0002306", "Shoulder, fracture", fractured=True),
    SampleChoice("IMG0002608", "Hip, fracture with implant", fractured=True, hardware=True),
    SampleChoice("IMG0001063", "Hand, no fracture", fractured=False),
    SampleChoice("IMG0003142", "Knee, no fracture", fractured=False),
)


def build_samples(data_dir: Path, output_dir: Path, selection=SELECTION) -> list[dict]:
    """Writes the images, ``samples.json`` and ``ATTRIBUTION.md`` into ``output_dir``.

    Returns:
        The manifest's entries.

    Raises:
        ValueError: A chosen image is not in labels.csv, not in the test split, labelled otherwise
            than the choice says, damaged, multi-view, turned by EXIF, or a fracture without boxes.
    """
    data_dir, output_dir = Path(data_dir), Path(output_dir)
    with open(data_dir / "labels.csv", newline="") as handle:
        rows = {row["image_id"]: row for row in csv.DictReader(handle)}
    boxes = load_boxes(data_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    entries, sources = [], []
    for choice in selection:
        row = _checked_row(choice, rows, boxes)
        data, size = _reencoded(data_dir / row["path"])
        (output_dir / choice.file_name).write_bytes(data)
        entries.append({"name": choice.name, "file": choice.file_name, "caption": choice.caption,
                        "fractured": choice.fractured,
                        "boxes": [dict(zip(("left", "top", "right", "bottom"), box)) for box in boxes.get(choice.image_id, [])],
                        "sha256": hashlib.sha256(data).hexdigest()})
        sources.append((choice, row, size))
    manifest = {"source": f"FracAtlas, test split ({CITATION}); CC BY 4.0; see {ATTRIBUTION_NAME}",
                "samples": entries}
    (output_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (output_dir / ATTRIBUTION_NAME).write_text(attribution(sources), encoding="utf-8")
    load_samples(output_dir)  # the app's reader accepts what was written
    return entries


def _checked_row(choice: SampleChoice, rows: dict[str, dict], boxes: dict) -> dict:
    row = rows.get(choice.image_id)
    if row is None:
        raise ValueError(f"{choice.image_id} is not in labels.csv")
    problems = []
    if row["split"] != "test":
        problems.append(f"it is in the {row['split']} split, not test")
    if (row["label"] == "fractured") != choice.fractured:
        problems.append(f"it is labelled {row['label']}")
    if (row.get("hardware") == "1") != choice.hardware:
        problems.append(f"its hardware column is {row.get('hardware')}")
    if row.get("truncated_jpeg") == "1" or row.get("multiscan") == "1":
        problems.append("it is a truncated JPEG or holds several views")
    if choice.fractured != bool(boxes.get(choice.image_id)):
        problems.append("a fracture needs boxes and a normal image has none")
    if problems:
        raise ValueError(f"{choice.image_id} cannot be the sample '{choice.caption}': {'; '.join(problems)}")
    return row


def _reencoded(path: Path) -> tuple[bytes, tuple[int, int]]:
    """A grey JPEG, long side at most MAX_SIDE, with no metadata; and the source's (width, height)."""
    with Image.open(path) as source:
        if source.getexif().get(0x0112, 1) != 1:  # the boxes are in the stored pixels' frame
            raise ValueError(f"{path.name} carries an EXIF rotation, so its boxes would not match its pixels")
        size = source.size
        grey = source.convert("L")
    scale = MAX_SIDE / max(size)
    if scale < 1:
        grey = grey.resize((round(size[0] * scale), round(size[1] * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    grey.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)  # no exif=: nothing but pixels
    return buffer.getvalue(), size


def attribution(sources) -> str:
    lines = ["# Sample X-rays: source and licence", "",
             "The images in this folder are from **FracAtlas** (test split), licensed under",
             "[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/):", "",
             f"> {CITATION}.", f"> Data: {DATA_DOI}.", "",
             f"Each was **downscaled and re-encoded**: converted to greyscale, reduced to a long side of at most "
             f"{MAX_SIDE} px, saved as JPEG (quality {JPEG_QUALITY}) with no metadata. The boxes in "
             f"`{MANIFEST_NAME}` are the dataset's radiologist annotations, as fractions of width and height.",
             "Built by `python -m training.samples`.", "",
             "| file | original file | original size | shown as |", "|---|---|---|---|"]
    for choice, row, (width, height) in sources:
        lines.append(f"| {choice.file_name} | {row['path']} | {width}×{height} | {choice.caption} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--output-dir", type=Path, default=SAMPLES_DIR)
    args = parser.parse_args(argv)
    if not (args.data_dir / "labels.csv").is_file():
        print(f"no labels.csv in {args.data_dir}: pass --data-dir with the FracAtlas folder", file=sys.stderr)
        return 2
    for entry in build_samples(args.data_dir, args.output_dir):
        print(f"{entry['file']}  {entry['caption']:<28} {len(entry['boxes'])} box(es)  sha256 {entry['sha256'][:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
