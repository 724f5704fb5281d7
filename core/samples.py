"""The sample X-rays the app offers to try: six FracAtlas test images shipped in ``assets/samples/``,
with the radiologists' boxes, read from the manifest ``samples.json`` that
``python -m training.samples`` writes.

A sample is classified like any upload; :func:`boxes_for_upload` recognises its bytes (by SHA-256)
so that a viewer can draw the radiologists' boxes over it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.config import PROJECT_DIR

__all__ = ["FractionBox", "Sample", "SampleManifestError", "SAMPLES_DIR", "boxes_for_upload", "load_samples",
           "sample_bytes", "sample_thumbnail"]

SAMPLES_DIR = PROJECT_DIR / "assets" / "samples"
MANIFEST_NAME = "samples.json"
_SAMPLE_KEYS = ("name", "file", "caption", "fractured", "boxes", "sha256")
_BOX_KEYS = ("left", "top", "right", "bottom")


class SampleManifestError(ValueError):
    """The samples' manifest, or a file it names, is missing or malformed; the message says where."""


@dataclass(frozen=True)
class FractionBox:
    """A box as fractions of the image's width (left, right) and height (top, bottom), in 0..1."""

    left: float
    top: float
    right: float
    bottom: float

    def __post_init__(self) -> None:
        values = (self.left, self.top, self.right, self.bottom)
        if not all(_is_fraction(value) for value in values):
            raise ValueError(f"box sides must be numbers in 0..1; got {values}")
        if not (self.left < self.right and self.top < self.bottom):
            raise ValueError(f"box needs left < right and top < bottom; got {values}")


def _is_fraction(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


@dataclass(frozen=True)
class Sample:
    """One shipped sample X-ray.

    Attributes:
        name: The display name, also its name in the page's list of uploads.
        file_name: The file in ``assets/samples/`` (the FracAtlas file name).
        caption: What it shows, e.g. "Wrist, fracture".
        fractured: The radiologists' label.
        boxes: The radiologists' fracture boxes (none for a normal image).
        sha256: Of the shipped file; how an upload is recognised as this sample.
    """

    name: str
    file_name: str
    caption: str
    fractured: bool
    boxes: tuple[FractionBox, ...]
    sha256: str


def load_samples(directory: Path = SAMPLES_DIR) -> tuple[Sample, ...]:
    """The samples the manifest in ``directory`` lists, in its order (read once per directory).

    Raises:
        SampleManifestError: The manifest is missing, not JSON, or an entry lacks a key, has a
            value of the wrong type, a box outside 0..1, a file name outside the folder, or
            repeats another's name, file or SHA-256.
    """
    directory = Path(directory).resolve()
    return _load(directory, _modified(directory))


def _modified(directory: Path) -> int | None:
    """The manifest's modification time: part of the cache key, so a rebuilt manifest is re-read."""
    try:
        return (directory / MANIFEST_NAME).stat().st_mtime_ns
    except OSError:
        return None


@functools.lru_cache(maxsize=8)
def _load(directory: Path, modified: int | None) -> tuple[Sample, ...]:
    manifest = directory / MANIFEST_NAME
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SampleManifestError(f"no sample manifest at {manifest}; build it with python -m training.samples") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SampleManifestError(f"{manifest} is not readable JSON: {error}") from error
    entries = document.get("samples") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SampleManifestError(f"{manifest} needs a non-empty list under \"samples\"")
    samples = tuple(_parse_entry(entry, f"{manifest}, sample {index + 1}") for index, entry in enumerate(entries))
    for field in ("name", "file_name", "sha256"):
        values = [getattr(sample, field) for sample in samples]
        if len(set(values)) != len(values):
            raise SampleManifestError(f"{manifest}: two samples share a {field}: {values}")
    return samples


def _parse_entry(entry, where: str) -> Sample:
    if not isinstance(entry, dict):
        raise SampleManifestError(f"{where} is not an object")
    missing = [key for key in _SAMPLE_KEYS if key not in entry]
    if missing:
        raise SampleManifestError(f"{where} lacks {', '.join(missing)} (needs {', '.join(_SAMPLE_KEYS)})")
    for key in ("name", "file", "caption", "sha256"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise SampleManifestError(f"{where}: {key} must be a non-empty string, got {entry[key]!r}")
    if Path(entry["file"]).name != entry["file"]:
        raise SampleManifestError(f"{where}: file must be a plain file name in the samples folder, got {entry['file']!r}")
    if len(entry["sha256"]) != 64 or any(char not in "0123456789abcdef" for char in entry["sha256"]):
        raise SampleManifestError(f"{where}: sha256 must be 64 lower-case hex digits, got {entry['sha256']!r}")
    if not isinstance(entry["fractured"], bool):
        raise SampleManifestError(f"{where}: fractured must be true or false, got {entry['fractured']!r}")
    if not isinstance(entry["boxes"], list):
        raise SampleManifestError(f"{where}: boxes must be a list, got {entry['boxes']!r}")
    return Sample(entry["name"], entry["file"], entry["caption"], entry["fractured"],
                  tuple(_parse_box(box, f"{where}, box {number + 1}") for number, box in enumerate(entry["boxes"])),
                  entry["sha256"])


def _parse_box(box, where: str) -> FractionBox:
    if not isinstance(box, dict) or sorted(box) != sorted(_BOX_KEYS):
        raise SampleManifestError(f"{where} must be an object with exactly {', '.join(_BOX_KEYS)}; got {box!r}")
    try:
        return FractionBox(*(box[key] for key in _BOX_KEYS))
    except ValueError as error:
        raise SampleManifestError(f"{where}: {error}") from error


def sample_bytes(sample: Sample, directory: Path = SAMPLES_DIR) -> bytes:
    """The shipped file's bytes.

    Raises:
        SampleManifestError: The file is missing, or is not the file the manifest describes.
    """
    path = Path(directory) / sample.file_name
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SampleManifestError(f"sample file {path} cannot be read: {error.strerror or error}") from error
    if hashlib.sha256(data).hexdigest() != sample.sha256:
        raise SampleManifestError(f"sample file {path} does not match the SHA-256 in its manifest; "
                                  "rebuild both with python -m training.samples")
    return data


def boxes_for_upload(data: bytes, directory: Path = SAMPLES_DIR) -> tuple[FractionBox, ...]:
    """The radiologists' boxes when ``data`` is exactly a shipped sample's bytes, else ``()``.

    Only an upload whose size is a sample's is hashed, so a large upload costs nothing here.
    """
    directory = Path(directory).resolve()
    by_size = _samples_by_size(directory, _modified(directory))
    candidates = by_size.get(len(data), ())
    if not candidates:
        return ()
    digest = hashlib.sha256(data).hexdigest()
    return next((sample.boxes for sample in candidates if sample.sha256 == digest), ())


@functools.lru_cache(maxsize=8)
def _samples_by_size(directory: Path, modified: int | None) -> dict[int, tuple[Sample, ...]]:
    by_size: dict[int, tuple[Sample, ...]] = {}
    for sample in _load(directory, modified):
        path = directory / sample.file_name
        if path.is_file():
            by_size[path.stat().st_size] = by_size.get(path.stat().st_size, ()) + (sample,)
    return by_size


def sample_thumbnail(sample: Sample, side: int = 160, directory: Path = SAMPLES_DIR) -> bytes:
    """A small square JPEG of the sample for a gallery: the whole image, ``side`` pixels on its
    long side, centred on the grey of its own border (an X-ray's background), so that a row of
    them lines up."""
    with Image.open(io.BytesIO(sample_bytes(sample, directory))) as image:
        image.draft("L", (side, side))  # JPEG decodes at a reduced scale: cheap
        picture = image.convert("L")
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    pixels = np.asarray(picture)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    square = Image.new("L", (side, side), int(np.median(border)))
    square.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
    buffer = io.BytesIO()
    square.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
