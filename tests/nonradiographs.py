"""Generated and library-shipped images that are not radiographs, to measure the OOD warning.

Every image is built in memory from a fixed seed (nothing binary is committed): photographs from
scikit-learn's two bundled samples (``china.jpg``, ``flower.jpg``) as random crops in colour and in
grey, rendered text documents, matplotlib charts, handwritten digits (scikit-learn's ``digits``),
several kinds of noise, and flat or geometric patterns. Each comes as encoded file bytes, the way
an upload arrives.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

# The features of the radiograph check (core.radiograph_check) were chosen looking at the images of SELECTION_SEED; the figures we
# report come from a fresh draw (REPORT_SEED) that played no part in that choice, and, measured
# later with the check unchanged, from ten more fresh draws (MORE_REPORT_SEEDS).
SELECTION_SEED = 20261128
REPORT_SEED = 2027
MORE_REPORT_SEEDS = range(3001, 3011)
WORDS = ("patient report invoice summary fracture the of and to in is was for on with as by at "
         "results page total date name amount table figure section method data").split()


def _encode(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _photo_crops(rng, count_per_photo: int, grey: bool):
    from sklearn.datasets import load_sample_image

    for photo_name in ("china.jpg", "flower.jpg"):
        photo = load_sample_image(photo_name)
        for index in range(count_per_photo):
            height = int(rng.integers(160, photo.shape[0] + 1))
            width = int(rng.integers(160, photo.shape[1] + 1))
            top = int(rng.integers(0, photo.shape[0] - height + 1))
            left = int(rng.integers(0, photo.shape[1] - width + 1))
            crop = np.ascontiguousarray(photo[top:top + height, left:left + width])
            if grey:
                crop = np.asarray(Image.fromarray(crop).convert("L"))
            yield f"{photo_name}-crop{index}", _encode(crop, "JPEG")


def _document(rng, index: int) -> bytes:
    width, height = int(rng.integers(400, 900)), int(rng.integers(500, 1200))
    page = Image.new("L", (width, height), int(rng.integers(225, 256)))
    draw = ImageDraw.Draw(page)
    font_size = int(rng.integers(10, 28))
    y = int(rng.integers(10, 60))
    while y < height - font_size:
        line = " ".join(rng.choice(WORDS, int(rng.integers(3, 14))))
        draw.text((int(rng.integers(10, 60)), y), line, fill=int(rng.integers(0, 60)), font_size=font_size)
        y += int(font_size * rng.uniform(1.3, 2.2))
    if index % 3 == 0:  # a table grid, as in forms and invoices
        for x in range(40, width, width // 4):
            draw.line([(x, 40), (x, height - 40)], fill=0, width=1)
    return _encode(np.asarray(page), "PNG" if index % 2 else "JPEG")


def _chart(rng, index: int) -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(rng.uniform(4, 8), rng.uniform(3, 6)), dpi=80)
    axes = figure.add_subplot()
    x = np.arange(20)
    if index % 2:
        axes.plot(x, np.cumsum(rng.normal(size=20)), marker="o")
    else:
        axes.bar(x, rng.uniform(1, 10, 20))
    axes.set_title(f"Chart {index}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _digits(rng, count: int):
    from sklearn.datasets import load_digits

    digits = load_digits().images
    for index in rng.choice(len(digits), count, replace=False):
        grey = np.round(digits[index] / 16.0 * 255).astype(np.uint8)
        size = int(rng.integers(64, 256))
        yield f"digit{index}", _encode(np.asarray(Image.fromarray(grey).resize((size, size), Image.NEAREST)))


def _noise(rng, index: int) -> bytes:
    shape = (int(rng.integers(200, 700)), int(rng.integers(200, 700)))
    kind = index % 4
    if kind == 0:
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    elif kind == 1:
        pixels = np.clip(rng.normal(128, rng.uniform(20, 80), shape), 0, 255).astype(np.uint8)
    elif kind == 2:
        pixels = np.where(rng.random(shape) < 0.5, 0, 255).astype(np.uint8)
    else:
        pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    return _encode(pixels)


def _pattern(rng, index: int) -> bytes:
    height, width = int(rng.integers(200, 600)), int(rng.integers(200, 600))
    rows, cols = np.mgrid[0:height, 0:width]
    kind = index % 5
    if kind == 0:  # flat grey or black or white
        pixels = np.full((height, width), int(rng.choice([0, 128, 255])), np.uint8)
    elif kind == 1:  # linear gradient
        pixels = (cols / width * 255).astype(np.uint8)
    elif kind == 2:  # checkerboard
        cell = int(rng.integers(8, 64))
        pixels = (((rows // cell) + (cols // cell)) % 2 * 255).astype(np.uint8)
    elif kind == 3:  # stripes
        pixels = (127.5 + 127.5 * np.sin(cols / rng.uniform(3, 30))).astype(np.uint8)
    else:  # flat colour
        pixels = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (height, width, 3)).copy()
    return _encode(pixels)


def non_radiographs(seed: int = REPORT_SEED) -> list[tuple[str, str, bytes]]:
    """``(category, name, file bytes)`` for every generated non-radiograph (191 of them)."""
    rng = np.random.default_rng(seed)
    cases = [("colour photo", name, data) for name, data in _photo_crops(rng, 20, grey=False)]
    cases += [("grey photo", name, data) for name, data in _photo_crops(rng, 20, grey=True)]
    cases += [("document", f"document{i}", _document(rng, i)) for i in range(30)]
    cases += [("chart", f"chart{i}", _chart(rng, i)) for i in range(16)]
    cases += [("handwritten digit", name, data) for name, data in _digits(rng, 16)]
    cases += [("noise", f"noise{i}", _noise(rng, i)) for i in range(24)]
    cases += [("pattern", f"pattern{i}", _pattern(rng, i)) for i in range(25)]
    return cases


def measure(seeds) -> None:
    """Prints how many non-radiographs of each draw the shipped check warns about, and the pooled rate."""
    from core.classifier import FractureClassifier

    classifier = FractureClassifier.load()
    warned_by_category: dict[str, list[int]] = {}
    for seed in seeds:
        warned_here = 0
        cases = non_radiographs(seed)
        for category, _, data in cases:
            warned = not classifier.classify(data).radiograph_check.looks_like_radiograph
            warned_here += warned
            warned_by_category.setdefault(category, []).append(warned)
        print(f"seed {seed}: {warned_here} of {len(cases)} warned ({warned_here / len(cases):.1%})", flush=True)
    flags = [flag for category_flags in warned_by_category.values() for flag in category_flags]
    print(f"pooled: {sum(flags)} of {len(flags)} warned ({sum(flags) / len(flags):.1%})")
    for category, category_flags in warned_by_category.items():
        print(f"  {category}: {sum(category_flags)} of {len(category_flags)}")


if __name__ == "__main__":
    # .venv/bin/python -m tests.nonradiographs [seed ...]   (default: MORE_REPORT_SEEDS)
    import sys

    measure([int(seed) for seed in sys.argv[1:]] or MORE_REPORT_SEEDS)
