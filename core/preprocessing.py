"""The one preprocessing path: grey image in [0, 1] -> model input.

Training, evaluation, the CLIs and the app all call :func:`preprocess` with the
:class:`PreprocessConfig` stored in the model's metadata, so the app can never drift from what
the network was trained on. Scaling to [0, 1] for the network lives inside the model (a
``Rescaling`` layer); this function returns uint8 so decoded data sets cache compactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

ASPECT_MODES = ("pad", "stretch")
CONTRAST_MODES = ("none", "clahe")

# Contrast is normalised at a fixed working resolution so that a 3,000 px DICOM and a 373 px
# JPEG of the same bone get the same local-contrast treatment before the final resize.
WORKING_LONG_SIDE = 512
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (8, 8)
# Percentiles for the global stretch: ignores burnt-in labels and the darkest border pixels.
STRETCH_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class PreprocessConfig:
    """How a grey image becomes a square model input.

    Attributes:
        image_size: side of the square input in pixels.
        aspect: ``"pad"`` keeps the aspect ratio and pads with black (letterbox);
            ``"stretch"`` squashes the image to a square (the original design).
        contrast: ``"clahe"`` applies a percentile stretch then CLAHE; ``"none"`` leaves
            intensities as read.
    """

    image_size: int = 64
    aspect: str = "pad"
    contrast: str = "clahe"

    def __post_init__(self):
        if not isinstance(self.image_size, int) or not 8 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be an integer in [8, 1024]; got {self.image_size!r}")
        if self.aspect not in ASPECT_MODES:
            raise ValueError(f"unknown aspect mode {self.aspect!r}; valid: {', '.join(ASPECT_MODES)}")
        if self.contrast not in CONTRAST_MODES:
            raise ValueError(
                f"unknown contrast mode {self.contrast!r}; valid: {', '.join(CONTRAST_MODES)}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "PreprocessConfig":
        return cls(**{key: values[key] for key in ("image_size", "aspect", "contrast")})


def preprocess(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Turns a grey image into the model's input.

    Args:
        image: 2-D float array (H, W) with values in [0, 1], bone bright, as returned by
            :func:`core.imaging.read_image`.
        config: the preprocessing stored with the model.

    Returns:
        uint8 array of shape (image_size, image_size, 1).

    Raises:
        ValueError: if ``image`` is not a finite 2-D array in [0, 1].
    """
    _check_grey_image(image)
    working = _to_working_resolution(image)
    if config.contrast == "clahe":
        working = _normalise_contrast(working)
    if config.aspect == "pad":
        square = _letterbox(working, config.image_size)
    else:
        square = _resize(working, (config.image_size, config.image_size))
    return square[:, :, np.newaxis]


def _check_grey_image(image) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 2:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"expected a 2-D grey image (H, W); got {shape}")
    if image.size == 0:
        raise ValueError(f"expected a non-empty image; got shape {image.shape}")
    low, high = float(np.min(image)), float(np.max(image))
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0.0 or high > 1.0:
        raise ValueError(f"expected values in [0, 1]; got range [{low:.4g}, {high:.4g}]")


def _working_shape(height: int, width: int) -> tuple[int, int]:
    """(H, W) of an image after :func:`_to_working_resolution`."""
    scale = min(1.0, WORKING_LONG_SIDE / max(height, width))
    if scale == 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def _to_working_resolution(image: np.ndarray) -> np.ndarray:
    as_uint8 = np.round(image * 255.0).astype(np.uint8)
    height, width = _working_shape(*image.shape)
    if (height, width) == image.shape:
        return as_uint8
    return cv2.resize(as_uint8, (width, height), interpolation=cv2.INTER_AREA)


def _normalise_contrast(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, STRETCH_PERCENTILES)
    if high > low:
        stretched = (image.astype(np.float32) - low) * (255.0 / (high - low))
        image = np.clip(stretched, 0, 255).astype(np.uint8)
    # A CLAHE object holds state; one per call keeps this safe across app threads.
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    return clahe.apply(image)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    shrinking = width * height < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


@dataclass(frozen=True)
class ContentBox:
    """Where the image lies inside the square model input, in model-input pixels."""

    top: int
    left: int
    height: int
    width: int

    def crop(self, square: np.ndarray) -> np.ndarray:
        """The part of a model-input-sized array (a heatmap, the input itself) that is the image."""
        return square[self.top : self.top + self.height, self.left : self.left + self.width]


def content_box(image_shape: tuple[int, int], config: PreprocessConfig) -> ContentBox:
    """Where the image lies inside the square model input: the whole square for ``stretch``.

    Used to map a heatmap on the model input back onto the original image.

    Args:
        image_shape: (H, W) of the image before preprocessing.
        config: the preprocessing applied.
    """
    side = config.image_size
    if config.aspect == "stretch":
        return ContentBox(0, 0, side, side)
    # The letterbox is laid out on the working-resolution image; computing it from the original
    # shape can round to a different height or width (e.g. 513 x 3000 at 32 px: 5 vs 6 rows).
    height, width = _working_shape(*image_shape)
    scale = side / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    return ContentBox((side - new_height) // 2, (side - new_width) // 2, new_height, new_width)


def _letterbox(image: np.ndarray, side: int) -> np.ndarray:
    box = content_box(image.shape, PreprocessConfig(side, "pad", "none"))
    # Radiograph backgrounds are black, so black padding adds no new edges.
    square = np.zeros((side, side), dtype=np.uint8)
    box.crop(square)[...] = _resize(image, (box.width, box.height))
    return square
