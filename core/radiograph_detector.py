"""Is this picture a radiograph at all? Tier 1 of the radiograph check, on what makes an X-ray one.

A projection radiograph is a grey map of attenuation: a large, flat, noise-free background (air or
collimator) at one end of the grey scale, smooth soft tissue, and bone with soft-edged gradients;
no hard-edged flat regions, no strokes of text covering the page, no dense texture everywhere.
:func:`radiograph_features` measures these on a small thumbnail of the reader's own grey decode
(histogram shape, background, gradient and edge statistics, neighbour correlation, flat regions),
none of them on FracAtlas's statistics, so they are the same for an X-ray from any hospital.

Small boosted decision trees over those features (:class:`RadiographDetector`) are fitted by
``python -m training.radiograph_detector`` on FracAtlas train radiographs under heavy augmentation
against generated non-radiographs, and stored as node arrays in ``radiograph_detector.npz`` (no
pickle); this module only applies them. The features do not depend on the network, so neither does the detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

THUMBNAIL_SIDE = 96  # 128 px cost 3.2 ms per image here, 96 px 2.2 ms, against a 2 ms budget
_PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
FEATURE_NAMES = (
    *(f"grey_p{p}" for p in _PERCENTILES), "grey_std", "grey_entropy", "grey_top_bin_share",
    "dark_share", "bright_share", "background_share", "background_darkness",
    "border_centre_contrast", "gradient_mean", "gradient_p90", "gradient_kurtosis", "flat_share",
    "strong_edge_share", "edge_density_fine", "fine_to_coarse_gradient", "neighbour_correlation",
    "correlation_lag4", "laplacian_to_gradient", "saturated_flat_share", "distinct_levels",
    "row_profile_variation", "aspect_ratio", "block_std_p10", "block_std_p50", "block_std_p90",
    "smooth_block_share", "block_std_spread", "orientation_entropy", "axis_aligned_share",
)


def grey_thumbnail(grey: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """float32 thumbnail whose long side is at most ``side``, from any size of grey image cheaply.

    A large image is first subsampled by a stride (a view; copying a 12 MP float image costs
    more than all the features), then area-averaged, so the thumbnail of a 3,000 px scan and of a
    500 px copy of it agree closely.
    """
    grey = np.asarray(grey, dtype=np.float32)
    height, width = grey.shape
    stride = max(1, max(height, width) // (4 * side))
    if stride > 1:
        grey = grey[::stride, ::stride]
        height, width = grey.shape
    scale = side / max(height, width)
    if scale >= 1.0:
        return np.ascontiguousarray(grey)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def _percentiles(values: np.ndarray, percentiles) -> np.ndarray:
    """Linearly interpolated percentiles, as np.percentile gives, without its per-call overhead."""
    ordered = np.sort(values)
    positions = np.asarray(percentiles, dtype=np.float64) / 100.0 * (len(ordered) - 1)
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, len(ordered) - 1)
    return ordered[below] + (positions - below) * (ordered[above] - ordered[below])


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 1e-12 else 1.0


def radiograph_features(grey: np.ndarray) -> np.ndarray:
    """The detector's features (float64, in the order of :data:`FEATURE_NAMES`) of a grey image
    in [0, 1] of any size (the reader's ``DecodedImage.grey``)."""
    thumb = grey_thumbnail(grey)
    height, width = thumb.shape
    values = thumb.ravel()
    edges, gx, gy, gradient = _edge_and_noise_features(thumb)
    features = [
        *_grey_level_features(thumb), *edges,
        float(np.count_nonzero(np.bincount(np.clip(np.round(values * 255), 0, 255).astype(np.int64), minlength=256)) / 256.0),
        float(np.abs(np.diff(thumb.mean(axis=1))).mean()) if height > 1 else 0.0,
        float(np.log(width / height)),
        *_texture_features(thumb),
        *(_orientation_features(gx, gy, gradient) if gx is not None else (0.0, 0.0)),
    ]
    return np.nan_to_num(np.asarray(features, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _grey_level_features(thumb: np.ndarray) -> list[float]:
    """Histogram shape and the background: X-rays lie on a large flat field of air or collimator."""
    height, width = thumb.shape
    values = thumb.ravel()
    histogram = np.bincount(np.clip((values * 31.999).astype(np.int64), 0, 31), minlength=32) / values.size
    entropy = -float((histogram[histogram > 0] * np.log2(histogram[histogram > 0])).sum()) / 5.0
    # The background: the most common of 32 grey levels, and how much of the image lies near it.
    mode = (np.argmax(histogram) + 0.5) / 32.0
    border = np.concatenate([thumb[: max(1, height // 8)].ravel(), thumb[-max(1, height // 8):].ravel(),
                             thumb[:, : max(1, width // 8)].ravel(), thumb[:, -max(1, width // 8):].ravel()])
    centre = thumb[height // 4: max(height // 4 + 1, 3 * height // 4), width // 4: max(width // 4 + 1, 3 * width // 4)]
    return [*_percentiles(values, _PERCENTILES), float(values.std()), entropy, float(histogram.max()),
            float((values < 0.08).mean()), float((values > 0.92).mean()),
            float((np.abs(values - mode) < 0.06).mean()), float(1.0 - mode), float(abs(border.mean() - centre.mean()))]


def _edge_and_noise_features(thumb: np.ndarray):
    """Gradients, their spread and scale, and neighbour correlation: soft-edged anatomy, not strokes,
    texture or noise. Returns the features and the gradients (None for an image under 3 px a side)."""
    height, width = thumb.shape
    gx = gy = None
    if height < 3 or width < 3:
        gradient = laplacian = coarse = np.zeros(1, np.float32)
        near_extreme = np.zeros(1, bool)
    else:
        gx = thumb[1:-1, 2:] - thumb[1:-1, :-2]
        gy = thumb[2:, 1:-1] - thumb[:-2, 1:-1]
        gradient = np.hypot(gx, gy).ravel()
        laplacian = np.abs(thumb[1:-1, 2:] + thumb[1:-1, :-2] + thumb[2:, 1:-1] + thumb[:-2, 1:-1]
                           - 4 * thumb[1:-1, 1:-1]).ravel()
        blurred = cv2.blur(thumb, (5, 5))
        coarse = np.hypot(blurred[1:-1, 2:] - blurred[1:-1, :-2], blurred[2:, 1:-1] - blurred[:-2, 1:-1]).ravel()
        near_extreme = np.abs(thumb[1:-1, 1:-1].ravel() - 0.5) > 0.46
    gradient_mean = float(gradient.mean())
    centred = gradient - gradient_mean
    squared = centred * centred  # centred ** 4 goes through pow(), a third of the time of all features
    variance = float(squared.mean())
    kurtosis = float((squared * squared).mean() / variance ** 2) if variance > 1e-12 else 0.0
    flat = gradient < 0.004
    features = [
        gradient_mean, float(_percentiles(gradient, (90,))[0]), float(np.log1p(kurtosis)), float(flat.mean()),
        float((gradient > 0.25).mean()), float((laplacian > 0.1).mean()),
        float(np.log((gradient_mean + 1e-3) / (float(coarse.mean()) + 1e-3))),
        _correlation(thumb[:, 1:], thumb[:, :-1]) if width > 1 else 1.0,
        _correlation(thumb[:, 4:], thumb[:, :-4]) if width > 4 else 1.0,
        float(np.log((float(laplacian.mean()) + 1e-3) / (gradient_mean + 1e-3))),
        float((flat & near_extreme).mean()),
    ]
    return features, gx, gy, gradient


def _texture_features(thumb: np.ndarray, block: int = 8) -> list[float]:
    """How texture is spread: X-rays are smooth almost everywhere, photographs textured in places."""
    height, width = (thumb.shape[0] // block) * block, (thumb.shape[1] // block) * block
    if height == 0 or width == 0:
        return [0.0] * 5
    blocks = thumb[:height, :width].reshape(height // block, block, width // block, block)
    spread = blocks.std(axis=(1, 3)).ravel()
    low, middle, high = _percentiles(spread, (10, 50, 90))
    return [float(low), float(middle), float(high), float((spread < 0.01).mean()),
            float(np.log((high + 1e-3) / (middle + 1e-3)))]


def _orientation_features(gx: np.ndarray, gy: np.ndarray, gradient: np.ndarray) -> list[float]:
    """Edge directions: documents, charts, screens and buildings are ruled horizontally and vertically."""
    angle = np.arctan2(gy.ravel(), gx.ravel()) % np.pi
    bins = np.minimum((angle / np.pi * 8).astype(np.int64), 7)
    weights = np.bincount(bins, weights=gradient, minlength=8)
    total = weights.sum()
    if total <= 1e-9:
        return [0.0, 0.0]
    share = weights / total
    entropy = -float((share[share > 0] * np.log2(share[share > 0])).sum()) / 3.0
    return [entropy, float(share[0] + share[4] + share[7] + share[3])]


@dataclass(frozen=True)
class RadiographDetector:
    """Boosted decision trees over :func:`radiograph_features`: P(radiograph), and where it says no.

    Each tree is stored as flat node arrays (T trees, padded to N nodes): the feature and the
    threshold a node splits on, its children (-1 at a leaf) and its leaf value. Evaluating all
    trees at once is one NumPy step per level, a fraction of a millisecond.
    """

    feature: np.ndarray  # (T, N) int
    split: np.ndarray  # (T, N) float, go left when feature value <= split
    left: np.ndarray  # (T, N) int, -1 at a leaf
    right: np.ndarray  # (T, N) int
    value: np.ndarray  # (T, N) float, the leaf's contribution
    offset: float  # log-odds before any tree
    threshold: float  # a score below this is "not a radiograph"
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def scores(self, features: np.ndarray) -> np.ndarray:
        """P(radiograph) for feature rows (M, F)."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        trees = np.arange(self.feature.shape[0])[np.newaxis, :]
        rows = np.arange(len(features))[:, np.newaxis]
        node = np.zeros((len(features), self.feature.shape[0]), dtype=np.int64)
        for _ in range(self.feature.shape[1]):
            leaf = self.left[trees, node] < 0
            if leaf.all():
                break
            goes_left = features[rows, self.feature[trees, node]] <= self.split[trees, node]
            node = np.where(leaf, node, np.where(goes_left, self.left[trees, node], self.right[trees, node]))
        logit = self.offset + self.value[trees, node].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-logit))

    def score(self, grey: np.ndarray) -> float:
        """P(radiograph) of one grey image in [0, 1]."""
        return float(self.scores(radiograph_features(grey)[np.newaxis])[0])

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, feature=self.feature.astype(np.int16), split=self.split.astype(np.float32),
                            left=self.left.astype(np.int16), right=self.right.astype(np.int16),
                            value=self.value.astype(np.float32), offset=self.offset, threshold=self.threshold,
                            feature_names=np.array(self.feature_names))

    @classmethod
    def load(cls, path: str | Path) -> "RadiographDetector":
        """Raises ValueError if the file was fitted on other features than this code computes."""
        with np.load(path, allow_pickle=False) as stored:
            if tuple(stored["feature_names"].tolist()) != FEATURE_NAMES:
                raise ValueError(f"{path} was fitted on other features; refit it with "
                                 "python -m training.radiograph_detector")
            return cls(stored["feature"].astype(np.int64), stored["split"].astype(np.float64),
                       stored["left"].astype(np.int64), stored["right"].astype(np.int64),
                       stored["value"].astype(np.float64), float(stored["offset"]), float(stored["threshold"]))
