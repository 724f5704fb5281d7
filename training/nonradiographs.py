"""Generated pictures that are not radiographs, for fitting the radiograph detector and testing it.

Every picture is drawn in memory from a seeded generator (nothing binary is committed) as a uint8
array, grey (H, W) or RGB (H, W, 3). Families: grey photographs (scikit-learn's and matplotlib's bundled
photos and terrain, and synthetic "dead leaves" scenes, the classic model of natural-image statistics),
documents, charts, noise, flat and geometric patterns, line drawings and screenshots of
user interfaces. ``tests/nonradiographs.py`` draws the test pictures from other seeds, and adds a family the
detector never sees in fitting (handwritten digits).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageDraw

WORDS = ("patient report invoice summary fracture the of and to in is was for on with as by at "
         "results page total date name amount table figure section method data").split()


def encode(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    """File bytes of a uint8 picture, the way an upload arrives."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _sample_photos() -> list[np.ndarray]:
    from matplotlib import cbook
    from matplotlib.colors import LightSource
    from sklearn.datasets import load_sample_image

    photos = [np.asarray(Image.fromarray(load_sample_image(name)).convert("L")) for name in ("china.jpg", "flower.jpg")]
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        with Image.open(cbook.get_sample_data(name, asfileobj=False)) as image:
            photos.append(np.asarray(image.convert("L")))
    light = LightSource(azdeg=315, altdeg=45)
    for name, key in (("jacksboro_fault_dem.npz", "elevation"), ("topobathy.npz", "topo")):
        terrain = np.asarray(cbook.get_sample_data(name)[key], dtype=np.float64)
        photos.append((light.hillshade(terrain, vert_exag=0.05 if key == "elevation" else 0.002) * 255).astype(np.uint8))
    return photos


_PHOTOS: list[np.ndarray] = []


def dead_leaves(rng, index: int) -> np.ndarray:
    """A synthetic grey scene: occluding discs and boxes of textured grey, blurred and noisy."""
    height, width = int(rng.integers(200, 700)), int(rng.integers(200, 700))
    canvas = np.full((height, width), rng.uniform(0, 1), np.float32)
    for _ in range(int(rng.integers(40, 400))):
        radius = int(max(height, width) * rng.uniform(0.01, 0.3) ** 1.5) + 2
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        shade = float(rng.uniform(0, 1))
        if rng.random() < 0.5:
            cv2.circle(canvas, centre, radius, shade, -1, cv2.LINE_AA)
        else:
            box = cv2.boxPoints((centre, (radius * rng.uniform(0.5, 3), radius * rng.uniform(0.5, 3)), rng.uniform(0, 180)))
            cv2.fillPoly(canvas, [box.astype(np.int32)], shade, cv2.LINE_AA)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), float(rng.uniform(0.5, 3)))
    canvas = canvas + rng.uniform(0, 0.15) * texture / max(float(texture.std()), 1e-6)
    canvas = cv2.GaussianBlur(canvas, (0, 0), float(rng.uniform(0.3, 2.0)))
    canvas = canvas + rng.normal(0, rng.uniform(0, 0.03), canvas.shape)
    return (np.clip(canvas, 0, 1) * 255).astype(np.uint8)


def grey_photo(rng, index: int) -> np.ndarray:
    """A crop of a bundled photograph or terrain, or a dead-leaves scene, in grey."""
    if index % 4 == 3:
        return dead_leaves(rng, index)
    if not _PHOTOS:
        _PHOTOS.extend(_sample_photos())
    photo = _PHOTOS[int(rng.integers(len(_PHOTOS)))] if index % 4 == 2 else _PHOTOS[index % 4]
    height = int(rng.integers(min(64, photo.shape[0]), photo.shape[0] + 1))
    width = int(rng.integers(min(64, photo.shape[1]), photo.shape[1] + 1))
    top = int(rng.integers(0, photo.shape[0] - height + 1))
    left = int(rng.integers(0, photo.shape[1] - width + 1))
    crop = photo[top:top + height, left:left + width].astype(np.float32) / 255
    crop = crop ** rng.uniform(0.6, 1.6)
    scale = rng.uniform(0.5, 2.0)
    crop = cv2.resize(crop, (max(32, int(width * scale)), max(32, int(height * scale))))
    return (np.clip(crop, 0, 1) * 255).astype(np.uint8)


def document(rng, index: int) -> np.ndarray:
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
    return np.asarray(page)


def chart(rng, index: int) -> np.ndarray:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(rng.uniform(4, 8), rng.uniform(3, 6)), dpi=80)
    axes = figure.add_subplot()
    x = np.arange(20)
    kind = index % 4
    if kind == 0:
        axes.plot(x, np.cumsum(rng.normal(size=20)), marker="o")
    elif kind == 1:
        axes.bar(x, rng.uniform(1, 10, 20))
    elif kind == 2:
        axes.scatter(rng.normal(size=80), rng.normal(size=80), s=8)
    else:
        axes.hist(rng.normal(size=500), bins=int(rng.integers(8, 40)))
    axes.set_title(f"Chart {index}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB"))


def noise(rng, index: int) -> np.ndarray:
    shape = (int(rng.integers(200, 700)), int(rng.integers(200, 700)))
    kind = index % 5
    if kind == 0:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == 1:
        return np.clip(rng.normal(128, rng.uniform(20, 80), shape), 0, 255).astype(np.uint8)
    if kind == 2:
        return np.where(rng.random(shape) < 0.5, 0, 255).astype(np.uint8)
    if kind == 3:
        return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    smooth = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), float(rng.uniform(1, 12)))
    smooth = (smooth - smooth.min()) / max(float(np.ptp(smooth)), 1e-6)
    return (smooth * 255).astype(np.uint8)


def pattern(rng, index: int) -> np.ndarray:
    height, width = int(rng.integers(200, 600)), int(rng.integers(200, 600))
    rows, cols = np.mgrid[0:height, 0:width]
    kind = index % 5
    if kind == 0:  # flat grey or black or white
        return np.full((height, width), int(rng.choice([0, 128, 255])), np.uint8)
    if kind == 1:  # linear gradient
        return (cols / width * 255).astype(np.uint8)
    if kind == 2:  # checkerboard
        cell = int(rng.integers(8, 64))
        return (((rows // cell) + (cols // cell)) % 2 * 255).astype(np.uint8)
    if kind == 3:  # stripes
        return (127.5 + 127.5 * np.sin(cols / rng.uniform(3, 30))).astype(np.uint8)
    return np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (height, width, 3)).copy()


def drawing(rng, index: int) -> np.ndarray:
    """Line art: strokes, outlines and a few filled shapes in ink on paper (or chalk on a board)."""
    height, width = int(rng.integers(200, 800)), int(rng.integers(200, 800))
    paper, ink = (255, int(rng.integers(0, 80))) if index % 4 else (int(rng.integers(0, 50)), 255)
    canvas = np.full((height, width), paper, np.uint8)
    for _ in range(int(rng.integers(5, 40))):
        thickness = int(rng.integers(1, 6))
        shade = ink if rng.random() < 0.8 else int(rng.integers(0, 256))
        kind = rng.integers(0, 4)
        if kind == 0:
            points = np.cumsum(rng.normal(0, 20, (int(rng.integers(3, 30)), 2)), axis=0) + [width / 2, height / 2]
            cv2.polylines(canvas, [points.astype(np.int32)], False, shade, thickness, cv2.LINE_AA)
        elif kind == 1:
            cv2.circle(canvas, (int(rng.integers(0, width)), int(rng.integers(0, height))),
                       int(rng.integers(5, max(6, min(height, width) // 3))), shade,
                       -1 if rng.random() < 0.2 else thickness, cv2.LINE_AA)
        elif kind == 2:
            corner = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            size = (int(rng.integers(10, width // 2 + 11)), int(rng.integers(10, height // 2 + 11)))
            cv2.rectangle(canvas, corner, (corner[0] + size[0], corner[1] + size[1]), shade,
                          -1 if rng.random() < 0.2 else thickness)
        else:
            cv2.ellipse(canvas, (int(rng.integers(0, width)), int(rng.integers(0, height))),
                        (int(rng.integers(5, width // 3 + 6)), int(rng.integers(5, height // 3 + 6))),
                        float(rng.uniform(0, 180)), 0, float(rng.uniform(90, 360)), shade, thickness, cv2.LINE_AA)
    return canvas


def screenshot(rng, index: int) -> np.ndarray:
    """A user interface: a title bar, a sidebar, buttons, text and image placeholders, light or dark."""
    height, width = int(rng.integers(300, 900)), int(rng.integers(400, 1400))
    dark = index % 3 == 0
    background = int(rng.integers(20, 50)) if dark else int(rng.integers(230, 256))
    text = 230 if dark else int(rng.integers(0, 60))
    page = Image.new("L", (width, height), background)
    draw = ImageDraw.Draw(page)
    bar = int(rng.integers(24, 60))
    draw.rectangle([0, 0, width, bar], fill=int(rng.integers(60, 200)))
    draw.text((10, bar // 3), "File  Edit  View  Window  Help", fill=255 - text, font_size=max(10, bar // 3))
    sidebar = int(rng.integers(0, width // 4))
    if sidebar:
        draw.rectangle([0, bar, sidebar, height], fill=int(rng.integers(40, 220)))
    for _ in range(int(rng.integers(3, 15))):
        left, top = int(rng.integers(sidebar, width - 60)), int(rng.integers(bar, height - 30))
        right, bottom = left + int(rng.integers(40, 250)), top + int(rng.integers(18, 60))
        if rng.random() < 0.5:
            draw.rounded_rectangle([left, top, right, bottom], radius=6, fill=int(rng.integers(0, 256)), outline=text)
            draw.text((left + 6, top + 4), str(rng.choice(WORDS)).title(), fill=text, font_size=12)
        else:
            draw.text((left, top), " ".join(rng.choice(WORDS, int(rng.integers(2, 10)))), fill=text,
                      font_size=int(rng.integers(10, 20)))
    if rng.random() < 0.4:  # an embedded picture
        left, top = int(rng.integers(sidebar, width // 2)), int(rng.integers(bar, height // 2))
        patch = dead_leaves(rng, index)[: height // 3, : width // 3]
        page.paste(Image.fromarray(patch), (left, top))
    return np.asarray(page)


FAMILIES = {"grey photo": grey_photo, "document": document, "chart": chart, "noise": noise,
            "pattern": pattern, "drawing": drawing, "screenshot": screenshot}


def generate(family: str, count: int, seed: int) -> list[np.ndarray]:
    """``count`` pictures of one family (a key of :data:`FAMILIES`) from ``seed``."""
    rng = np.random.default_rng(seed)
    return [FAMILIES[family](rng, index) for index in range(count)]
