"""Showing a heatmap: map it from the model's input back onto the X-ray, blend, encode as PNG.

Computing heatmaps is :mod:`core.heatmaps`; this module only draws them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from core.preprocessing import PreprocessConfig, content_box

# Each map is scaled to its own peak, so a confident normal still shows "hot" spots. When the
# image is not flagged at the session's threshold, the map is drawn at this share of the chosen
# opacity (and the page says so), so that it does not read as a finding.
UNFLAGGED_FADE = 0.35
# Where the model flags a fracture, the regions it looked at most are outlined: the map at or
# above this share of its own peak (the half-maximum contour).
OUTLINE_LEVEL = 0.5
MIN_OUTLINE_AREA = 0.002  # share of the image; smaller specks are not outlined


def shown_opacity(opacity: float, flagged: bool) -> float:
    """The heatmap's opacity as drawn: as chosen when the image is flagged, faded when it is not."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1]; got {opacity}")
    return opacity if flagged else opacity * UNFLAGGED_FADE


@dataclass(frozen=True)
class Outline:
    """One closed outline around a suspected region, in pixel coordinates of the map it came from
    (x to the right, y down, pixel centres at integers)."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def scaled(self, x_factor: float, y_factor: float) -> "Outline":
        """The outline on an image ``x_factor`` times wider and ``y_factor`` times taller, pixel
        centres kept on pixel centres."""
        return Outline(tuple((value + 0.5) * x_factor - 0.5 for value in self.x),
                       tuple((value + 0.5) * y_factor - 0.5 for value in self.y))


def region_outlines(heatmap: np.ndarray, *, level: float = OUTLINE_LEVEL,
                    min_area: float = MIN_OUTLINE_AREA) -> tuple[Outline, ...]:
    """The outlines of the regions where ``heatmap`` reaches ``level``, largest first, each closed.

    Args:
        heatmap: float (H, W) in [0, 1] (a map is normalised to its own peak).
        level: the share of the peak that a region reaches.
        min_area: regions smaller than this share of the map are left out.

    Raises:
        ValueError: for a map that is not 2-D or not in [0, 1], or a level outside (0, 1].
    """
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be 2-D; got shape {heatmap.shape}")
    _check_unit_range("heatmap", heatmap)
    if not 0.0 < level <= 1.0:
        raise ValueError(f"level must be in (0, 1]; got {level}")
    mask = (heatmap >= level).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    areas = [np.count_nonzero(_filled(contour, mask.shape)) for contour in contours]
    kept = [contour for area, contour in sorted(zip(areas, contours), key=lambda pair: -pair[0])
            if area >= min_area * heatmap.size]
    outlines = []
    for contour in kept:
        points = contour[:, 0, :].astype(float)
        points = np.vstack([points, points[:1]])  # closed
        outlines.append(Outline(tuple(points[:, 0]), tuple(points[:, 1])))
    return tuple(outlines)


def _filled(contour: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixels a contour encloses, its border included (a one-pixel region has zero area)."""
    canvas = np.zeros(shape, np.uint8)
    cv2.drawContours(canvas, [contour], -1, 1, thickness=cv2.FILLED)
    return canvas


def colour_scale(colormap: str, steps: int = 11) -> tuple[tuple[float, str], ...]:
    """``colormap`` as ``(position, "rgb(r, g, b)")`` stops from 0 to 1, from the same table the
    overlay blends with, so a colour bar drawn from it matches the overlay's colours.

    Raises:
        ValueError: for an unknown colormap or fewer than 2 steps.
    """
    if steps < 2:
        raise ValueError(f"a colour scale needs at least 2 steps; got {steps}")
    table = _colormap_table(colormap)
    positions = np.linspace(0.0, 1.0, steps)
    rows = _colormap_index(positions, len(table))
    return tuple((float(position), "rgb({}, {}, {})".format(*np.rint(table[row] * 255).astype(int)))
                 for position, row in zip(positions, rows))


def heatmap_to_image(heatmap: np.ndarray, source_shape: tuple[int, int], config: PreprocessConfig, *,
                     output_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Maps a model-input heatmap (S, S) back onto the image (H, W) it was computed from.

    Args:
        heatmap: float (S, S) at the model's input size.
        source_shape: (H, W) of the image as read, the one that was preprocessed: the letterbox
            is cropped where preprocessing put it for that shape.
        config: the preprocessing that made the model input.
        output_shape: (h, w) to draw at (a display-size copy); defaults to ``source_shape``.
            The crop is never recomputed from this shape: rounding a smaller shape's letterbox
            can move the map by a model pixel.
    """
    cropped = content_box(source_shape, config).crop(heatmap)
    rows, columns = source_shape if output_shape is None else output_shape
    resized = cv2.resize(cropped, (columns, rows), interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, *, opacity: float = 0.4,
                    colormap: str = "jet") -> np.ndarray:
    """Blends a heatmap over a grey image.

    Args:
        image: float (H, W) grey image in [0, 1].
        heatmap: float (H, W) map in [0, 1], same shape as ``image``.
        opacity: weight of the heatmap, in [0, 1].
        colormap: a matplotlib colormap name.

    Returns:
        uint8 RGB array (H, W, 3).

    Raises:
        ValueError: on mismatched shapes, values outside [0, 1] or an unknown colormap.
    """
    if image.shape != heatmap.shape or image.ndim != 2:
        raise ValueError(f"image and heatmap must be 2-D and the same shape; got {image.shape} and {heatmap.shape}")
    for name, values in (("image", image), ("heatmap", heatmap)):
        _check_unit_range(name, values)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1]; got {opacity}")
    table = _colormap_table(colormap)
    index = _colormap_index(heatmap, len(table))
    codes = _eight_bit_codes(image)
    if codes is not None:
        return _blend_eight_bit(index, codes, colormap, opacity)
    # The same arithmetic as blending matplotlib's colours pixel by pixel, so the bytes are
    # identical; looking colours up in the colormap's own table, one channel at a time, is about
    # twice as fast as calling the colormap on every pixel (bench/, docs/performance.md).
    colours = opacity * table
    grey = (1.0 - opacity) * image
    blended = np.empty((*image.shape, 3), dtype=np.uint8)
    for channel in range(3):
        values = colours[:, channel].take(index)
        values += grey
        values *= 255.0
        # No clip: every term is in [0, 1], so rounding error cannot leave [0, 255.5).
        blended[..., channel] = np.rint(values, out=values)
    return blended


def _eight_bit_codes(image: np.ndarray) -> np.ndarray | None:
    """The codes k (uint8) of an image whose every pixel is exactly k / 255 in float32, as the reader
    makes of an 8-bit file (nearly every radiograph); None for any other image."""
    if image.dtype != np.float32:
        return None
    codes = cv2.convertScaleAbs(image, alpha=255.0)  # round(255 · value), saturated to 0..255
    exact = codes.astype(np.float32)
    exact /= 255.0  # the reader's own division
    return codes if np.array_equal(exact, image) else None


def _blend_eight_bit(index: np.ndarray, codes: np.ndarray, colormap: str, opacity: float) -> np.ndarray:
    """:func:`overlay_heatmap` of an 8-bit image: each pixel looked up in :func:`_blend_table` by its
    colour row and grey code, the same bytes as blending it, 3-6x faster (bench/)."""
    combined = index.astype(np.intp)
    combined <<= 8
    combined |= codes
    packed = _blend_table(colormap, opacity).take(combined)  # one 4-byte gather per pixel
    return cv2.cvtColor(packed.view(np.uint8).reshape(*index.shape, 4), cv2.COLOR_RGBA2RGB)


@functools.lru_cache(maxsize=32)
def _blend_table(colormap: str, opacity: float) -> np.ndarray:
    """Every blend of a colormap row i with an 8-bit grey level k, at i · 256 + k, as little-endian
    packed RGB0 (uint32), read-only. Computed with the pixel path's own arithmetic: the grey term
    in float32, as ``(1 - opacity) * image`` is for a float32 image, the sum and scaling in float64."""
    colours = opacity * _colormap_table(colormap)
    levels = np.arange(256, dtype=np.float32)
    levels /= 255.0
    grey = (1.0 - opacity) * levels
    rgb = np.rint((colours[:, np.newaxis, :] + grey[np.newaxis, :, np.newaxis]) * 255.0).astype(np.uint32)
    packed = (rgb[..., 0] | rgb[..., 1] << 8 | rgb[..., 2] << 16).astype("<u4").reshape(-1)
    packed.setflags(write=False)
    return packed


def _check_unit_range(name: str, values: np.ndarray) -> None:
    if not values.size:
        return
    # min and max propagate NaN and show infinities: two passes instead of an isfinite mask.
    low, high = float(values.min()), float(values.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} values must be finite and in [0, 1]; got NaN or infinity")
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{name} values must be finite and in [0, 1]; got [{low:.3g}, {high:.3g}]")


@functools.lru_cache(maxsize=32)
def _colormap_table(colormap: str) -> np.ndarray:
    """The colormap's N RGB entries as float64 (N, 3), read-only; built once per name."""
    import matplotlib

    if colormap not in matplotlib.colormaps:
        raise ValueError(f"unknown colormap {colormap!r}; try one of: jet, inferno, viridis, magma, turbo")
    lookup = matplotlib.colormaps[colormap]
    table = lookup(np.arange(lookup.N))[:, :3]
    table.setflags(write=False)
    return table


def _colormap_index(heatmap: np.ndarray, entries: int) -> np.ndarray:
    """The table row matplotlib picks for each value in [0, 1]: floor(value × N), 1.0 -> N - 1."""
    index_type = np.uint8 if entries <= 256 else np.intp
    return np.minimum(heatmap * entries, entries - 1).astype(index_type)


def overlay_on_original(image: np.ndarray, model_heatmap: np.ndarray, config: PreprocessConfig, *,
                        source_shape: tuple[int, int] | None = None, opacity: float = 0.4,
                        colormap: str = "jet") -> np.ndarray:
    """A model-input heatmap (S, S) mapped onto ``image`` and blended: uint8 RGB (H, W, 3).

    Args:
        image: float (H, W) grey image in [0, 1]: the image as read, or a display-size copy of it.
        source_shape: the shape of the image as read, where ``image`` is a resized copy
            (``ImageResult.source_shape``); defaults to ``image.shape``.
    """
    heatmap = heatmap_to_image(model_heatmap, source_shape or image.shape, config, output_shape=image.shape)
    return overlay_heatmap(image, heatmap, opacity=opacity, colormap=colormap)


DISPLAY_LONG_SIDE = 800


def fit_for_display(image: np.ndarray, max_side: int = DISPLAY_LONG_SIDE) -> np.ndarray:
    """A copy of an image no longer than ``max_side`` on its long side: a grey float image in
    [0, 1] (kept in range), or uint8 pixels, grey or RGB (the PDF's pictures).

    A screen column is under 800 px wide; overlaying and encoding a 3,000 px scan at full size
    costs hundreds of milliseconds and shows nothing more.
    """
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shrunk = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return shrunk if image.dtype == np.uint8 else np.clip(shrunk, 0.0, 1.0)


_PNG_OPTIONS = [
    # zlib level 1 with run-length matching after the "up" row filter: for overlays and
    # radiographs about 2.2x faster than Pillow at level 1 and 3-20 % smaller (bench/,
    # docs/performance.md).
    cv2.IMWRITE_PNG_COMPRESSION, 1,
    cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
]
_TO_OPENCV_ORDER = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
# libpng refuses an image wider or taller than this (its default user limit, PNG_USER_WIDTH_MAX
# and PNG_USER_HEIGHT_MAX): a 2,000,000 x 1 px image reads (60 MP is the pixel limit) but cannot
# be written. :func:`fit_for_png` shrinks such an image to fit.
PNG_MAX_SIDE = 1_000_000


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image, built in memory (nothing is written to disk).

    Args:
        rgb: uint8 array (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey.

    Raises:
        ValueError: for another dtype or shape, or a side over :data:`PNG_MAX_SIDE`.
    """
    if rgb.dtype != np.uint8 or not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[-1] in _TO_OPENCV_ORDER)):
        raise ValueError(f"expected a uint8 (H, W), (H, W, 3) or (H, W, 4) array; got {rgb.dtype} {rgb.shape}")
    if max(rgb.shape[:2]) > PNG_MAX_SIDE:  # refused here, before libpng prints its own errors
        raise ValueError(f"a PNG holds at most {PNG_MAX_SIDE:,} px a side; got {rgb.shape[1]} x {rgb.shape[0]} px "
                         "(see fit_for_png)")
    if rgb.ndim == 3:
        rgb = cv2.cvtColor(rgb, _TO_OPENCV_ORDER[rgb.shape[-1]])  # OpenCV writes BGR(A)
    encoded, png = cv2.imencode(".png", rgb, _PNG_OPTIONS)
    if not encoded:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} image as PNG")
    return png.tobytes()


def fit_for_png(image: np.ndarray) -> np.ndarray:
    """``image`` (as :func:`fit_for_display` takes it) shrunk, keeping its aspect, to a long side of
    at most :data:`PNG_MAX_SIDE`, so that :func:`encode_png` can write it; any image that a PNG can
    hold is returned as it is (every ordinary radiograph: the reader's 12 MP output limit allows a
    side of 1,000,000 px only for a strip 12 px wide)."""
    return fit_for_display(image, PNG_MAX_SIDE)
