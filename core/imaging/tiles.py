"""Decoded pixels to grey float32, tile by tile and reduced by an integer factor where the image
is large, so that no full-size float64 copy is ever made."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from core.imaging.common import ImageReadError, TILE_PIXELS
from core.imaging.limits import check_deadline


# A 60 MP image as one float64 array is 480 MB, and numpy expressions make several of them.
# Converting tiles of about a megapixel keeps every float64 temporary small; the arithmetic per
# pixel is the same as on the whole array, so small images come out bit for bit as before.

def reduction_factor(height: int, width: int, max_output_pixels: int) -> int:
    """Smallest integer f such that the image reduced f times fits in max_output_pixels."""
    factor = max(1, math.isqrt(height * width // max(1, max_output_pixels)))
    while math.ceil(height / factor) * math.ceil(width / factor) > max_output_pixels:
        factor += 1
    return factor


def tile_boxes(height: int, width: int, factor: int):
    """(top, bottom, left, right) of tiles of about TILE_PIXELS, edges on multiples of factor."""
    tile_width = min(width, max(factor, TILE_PIXELS // factor * factor))
    tile_height = max(factor, TILE_PIXELS // tile_width // factor * factor)
    for top in range(0, height, tile_height):
        for left in range(0, width, tile_width):
            check_deadline()
            yield top, min(top + tile_height, height), left, min(left + tile_width, width)


Tile = Callable[[int, int, int, int], np.ndarray]  # (top, bottom, left, right) -> values


def assemble(height: int, width: int, factor: int, unit_tile: Tile) -> np.ndarray:
    """The float32 image built from tiles in [0, 1]; with factor > 1, each factor × factor box
    is averaged (boxes at the right and bottom edges may be smaller)."""
    out = np.empty((math.ceil(height / factor), math.ceil(width / factor)), np.float32)
    for top, bottom, left, right in tile_boxes(height, width, factor):
        tile = unit_tile(top, bottom, left, right)
        if factor > 1:
            tile = _box_mean(tile, factor)
        row, col = top // factor, left // factor
        out[row:row + tile.shape[0], col:col + tile.shape[1]] = tile
    return out


def _box_mean(tile: np.ndarray, factor: int) -> np.ndarray:
    rows, cols = np.arange(0, tile.shape[0], factor), np.arange(0, tile.shape[1], factor)
    sums = np.add.reduceat(np.add.reduceat(np.asarray(tile, np.float64), rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(np.append(rows, tile.shape[0])), np.diff(np.append(cols, tile.shape[1])))
    return sums / counts


def finite_range(height: int, width: int, values: Tile) -> tuple[float, float] | None:
    """(min, max) of the finite values over all tiles, None when there are none."""
    low, high = math.inf, -math.inf
    for box in tile_boxes(height, width, 1):
        tile = values(*box)
        finite = tile[np.isfinite(tile)]
        if finite.size:
            low, high = min(low, finite.min()), max(high, finite.max())
    return (low, high) if low <= high else None


def min_max(height: int, width: int, factor: int, values: Tile, label: str) -> np.ndarray:
    """Min-max scaling to [0, 1] over the whole image: one pass over the tiles finds the range,
    a second scales."""
    return scaled_to_range(height, width, factor, values, finite_range(height, width, values), label)


def scaled_to_range(height: int, width: int, factor: int, values: Tile, span: tuple[float, float] | None,
                     label: str) -> np.ndarray:
    """``values`` mapped from ``span`` to [0, 1]. Non-finite pixels become 0, and a constant image
    (a blank plate) zeros rather than a division by zero."""
    if span is None:
        raise ImageReadError(f"image in {label} has no finite pixel values (all NaN/inf)")
    low, high = span

    def scaled(*box) -> np.ndarray:
        tile = values(*box)
        unit = (tile - low) / (high - low) if high > low else np.zeros_like(tile)
        return cleaned(np.where(np.isfinite(tile), unit, 0.0))
    return assemble(height, width, factor, scaled)


def cleaned(values: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(values), 0.0, 1.0)


def rgb_luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def checked_grey(grey: np.ndarray, label: str) -> np.ndarray:
    if grey.ndim != 2 or 0 in grey.shape:
        raise ImageReadError(f"image in {label} is empty or not 2-D (shape {grey.shape})")
    return np.ascontiguousarray(grey, dtype=np.float32)
