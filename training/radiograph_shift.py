"""Strong perturbations of a radiograph: FracAtlas made to look like X-rays from elsewhere.

We have no radiographs from other hospitals, so the radiograph detector (tier 1 of the check) is
trained and calibrated on FracAtlas images changed the way other sources differ: tight or odd
crops, any rotation with black or white corners, a frame or letterbox, other windowing, gamma and
processing (equalisation, edge enhancement), inverted grey (MONOCHROME1 shown raw), noise, blur,
JPEG damage, burned-in letters, labels and arrows, and any size.
"""

from __future__ import annotations

import cv2
import numpy as np

_LABELS = ("L", "R", "AP", "LAT", "PA", "OBL", "STANDING", "PORTABLE", "2019-04-11", "12:31",
           "kVp 60", "mAs 4", "Dr.", "Case 3", "A", "B", "*", "WB")


def _crop(image: np.ndarray, rng) -> np.ndarray:
    height, width = image.shape
    keep_h, keep_w = rng.uniform(0.4, 1.0), rng.uniform(0.4, 1.0)
    new_h, new_w = max(16, int(height * keep_h)), max(16, int(width * keep_w))
    top, left = int(rng.integers(0, height - new_h + 1)), int(rng.integers(0, width - new_w + 1))
    return image[top:top + new_h, left:left + new_w]


def _rotate(image: np.ndarray, rng) -> np.ndarray:
    height, width = image.shape
    angle = float(rng.choice([rng.uniform(-180, 180), rng.choice([90.0, 180.0, 270.0]), rng.uniform(-15, 15)]))
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[0, 2] += new_w / 2 - width / 2
    matrix[1, 2] += new_h / 2 - height / 2
    corner = float(rng.choice([0.0, 0.0, 1.0]))
    return cv2.warpAffine(image, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=corner)


def _frame(image: np.ndarray, rng) -> np.ndarray:
    height, width = image.shape
    sides = [int(rng.integers(0, max(2, size // 4))) for size in (height, height, width, width)]
    value = float(rng.choice([0.0, 1.0, rng.uniform(0, 1)]))
    return cv2.copyMakeBorder(image, *sides, cv2.BORDER_CONSTANT, value=value)


def _tone(image: np.ndarray, rng) -> np.ndarray:
    low, high = np.percentile(image, [rng.uniform(0, 10), rng.uniform(90, 100)])
    if rng.random() < 0.7 and high > low + 0.05:
        image = np.clip((image - low) / (high - low), 0, 1)
    image = image ** rng.uniform(0.4, 2.5)
    if rng.random() < 0.25:  # another site's processing: equalised ...
        clahe = cv2.createCLAHE(clipLimit=float(rng.uniform(1.5, 4.0)), tileGridSize=(8, 8))
        image = clahe.apply((image * 255).astype(np.uint8)).astype(np.float32) / 255
    if rng.random() < 0.3:  # ... or edge-enhanced (unsharp masking, common on CR and DR)
        blurred = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(2, 8)))
        image = np.clip(image + rng.uniform(0.3, 1.5) * (image - blurred), 0, 1)
    return image.astype(np.float32)


def _burn_in(image: np.ndarray, rng) -> np.ndarray:
    height, width = image.shape
    for _ in range(int(rng.integers(1, 6))):
        mark = np.zeros((height, width), np.uint8)  # OpenCV draws text on 8-bit images only
        if rng.random() < 0.6:
            text = str(rng.choice(_LABELS))
            scale = rng.uniform(0.3, 2.0) * max(height, width) / 512
            position = (int(rng.integers(0, max(1, width - 20))), int(rng.integers(15, max(16, height))))
            cv2.putText(mark, text, position, cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                        max(1, int(2 * scale)), cv2.LINE_AA)
        else:
            start = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            length = rng.uniform(0.05, 0.25) * max(height, width)
            angle = rng.uniform(0, 2 * np.pi)
            end = (int(start[0] + length * np.cos(angle)), int(start[1] + length * np.sin(angle)))
            cv2.arrowedLine(mark, start, end, 255, max(1, int(max(height, width) / 200)), cv2.LINE_AA, tipLength=0.3)
        weight = mark.astype(np.float32) / 255
        image = image * (1 - weight) + float(rng.choice([1.0, 1.0, 0.0])) * weight
    return image


def _degrade(image: np.ndarray, rng) -> np.ndarray:
    if rng.random() < 0.4:
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, 2.5)))
    if rng.random() < 0.4:
        image = np.clip(image + rng.normal(0, rng.uniform(0.005, 0.05), image.shape), 0, 1).astype(np.float32)
    if rng.random() < 0.5:
        quality = int(rng.integers(20, 95))
        _, encoded = cv2.imencode(".jpg", (image * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    return image


def _rescale(image: np.ndarray, rng) -> np.ndarray:
    height, width = image.shape
    side = int(rng.integers(96, 1024))
    scale = side / max(height, width)
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def strong_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A randomly and strongly perturbed copy of a grey radiograph (float32 in [0, 1])."""
    image = np.asarray(image, dtype=np.float32)
    if rng.random() < 0.7:
        image = _crop(image, rng)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        image = _rotate(image, rng)
    image = _tone(image, rng)
    if rng.random() < 0.3:
        image = 1.0 - image  # MONOCHROME1, or a viewer's inverted display
    if rng.random() < 0.6:
        image = _burn_in(image, rng)
    if rng.random() < 0.3:
        image = _frame(image, rng)
    image = _rescale(image, rng)
    return np.clip(_degrade(image, rng), 0, 1).astype(np.float32)


def photometric_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:func:`strong_shift` without the changes that move anatomy (crop, rotation, frame): another
    site's exposure, processing, inversion, burned-in marks, size and degradation. A box normalised
    to the image still marks the same bone afterwards, so training can keep the radiologists' boxes."""
    image = _tone(np.asarray(image, dtype=np.float32), rng)
    if rng.random() < 0.3:
        image = 1.0 - image
    if rng.random() < 0.6:
        image = _burn_in(image, rng)
    image = _rescale(image, rng)
    return np.clip(_degrade(image, rng), 0, 1).astype(np.float32)
