"""The frozen backbone's feature maps of train and val, as Model v2's trainer and its study see them.

A *view* is one way of showing the images to the backbone: as read, mirrored, through
:func:`training.radiograph_shift.photometric_shift` (the boxes hold) or through
:func:`training.radiograph_shift.strong_shift` (crops and rotations: the boxes are lost).
:data:`VAL_SHIFT` is val under simulated shift, the same images perturbed the same way every run.
Every image goes through the ONE preprocessing path (:func:`core.preprocessing.preprocess`) with
the shipped aspect and contrast (:func:`shipped_preprocessing`); a map is computed once and cached
(float16, ``runs/box_study_cache/``). :func:`cell_masks` turns the radiologists' boxes into the
map's cells as a view shows them.

Used by :mod:`training.train_box` (the shipped trainer), :mod:`training.box_study` and
:mod:`training.val_check`.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.imaging import read_image
from core.preprocessing import PreprocessConfig, preprocess
from training.box_head import box_cell_mask
from training.config import RUNS_DIR, SHIPPED_ASPECT, SHIPPED_CONTRAST
from training.data import Sample, split_hash
from training.localisation import Box
from training.pretrained import BACKBONES
from training.radiograph_shift import photometric_shift, strong_shift

CACHE_DIR = RUNS_DIR / "box_study_cache"  # named for the study that wrote it first; the trainer shares it
LAYERS = {"stride8": 8, "stride16": 16, "stride32": 32}
SHIFT_SEED = 11  # val under simulated shift is the same images, perturbed the same way, every run
BATCH_SIZE = 16


def shipped_preprocessing(size: int) -> PreprocessConfig:
    """The shipped model's preprocessing (:data:`training.config.SHIPPED_ASPECT`, ``SHIPPED_CONTRAST``)
    at an input side of ``size`` px: only the size is studied."""
    return PreprocessConfig(size, SHIPPED_ASPECT, SHIPPED_CONTRAST)


@dataclass(frozen=True)
class CachedFeatures:
    """One split's feature maps under one view, as cached.

    Attributes:
        features: (N, g, g, C) float16.
        labels: (N,) 0/1.
        image_ids: (N,) the samples' ids, in index order.
        source_shapes: (N, 2) (H, W) of each image as read, before preprocessing (the view's own
            shape for a shifted view).
        backbone_ms_per_image: Backbone wall time over the split / N, at batch 16, when the cache
            was written.
    """

    features: np.ndarray
    labels: np.ndarray
    image_ids: np.ndarray
    source_shapes: np.ndarray
    backbone_ms_per_image: float


@dataclass(frozen=True)
class View:
    """One way of showing the training or val images to the backbone.

    Attributes:
        kind: ``"plain"`` (as read), ``"shift"`` (:func:`strong_shift`: crops and rotations move
            the anatomy, so the view's boxes are lost) or ``"photometric"``
            (:func:`photometric_shift`: the anatomy stays where it was, the boxes hold).
        seed: Seeds the perturbation; image ``i`` gets the generator ``(seed, i)``, so a view is
            the same whatever the threading.
        flip: Mirror left-right first (the boxes are mirrored with it).
    """

    kind: str = "plain"
    seed: int = 0
    flip: bool = False

    def __post_init__(self):
        if self.kind not in ("plain", "shift", "photometric"):
            raise ValueError(f"unknown view kind {self.kind!r}")

    @property
    def name(self) -> str:
        return ("plain" if self.kind == "plain" else f"{'shift' if self.kind == 'shift' else 'photo'}{self.seed}") + (
            "flip" if self.flip else "")

    @property
    def keeps_boxes(self) -> bool:
        return self.kind != "shift"

    def apply(self, image: np.ndarray, index: int) -> np.ndarray:
        if self.flip:
            image = np.ascontiguousarray(image[:, ::-1])
        if self.kind == "plain":
            return image
        perturb = strong_shift if self.kind == "shift" else photometric_shift
        return perturb(image, np.random.default_rng([self.seed, index]))

    def boxes(self, boxes: list[Box]) -> list[Box]:
        """``boxes`` as they lie on this view (empty where the view moved the anatomy)."""
        if not self.keeps_boxes:
            return []
        return [(1 - x_max, y_min, 1 - x_min, y_max) for x_min, y_min, x_max, y_max in boxes] if self.flip else boxes


PLAIN = View()
VAL_SHIFT = View("shift", SHIFT_SEED)


def load_view_input(sample: Sample, index: int, config: PreprocessConfig, view: View):
    image = view.apply(read_image(sample.path), index)
    return preprocess(image, config), image.shape


def extract_features(samples: list[Sample], backbone_name: str, size: int, layer: str,
                     view: View = PLAIN, *, cache_dir: Path = CACHE_DIR) -> CachedFeatures:
    """The frozen backbone's map for each sample, from the cache or computed and cached.

    Args:
        samples: One split, in index order.
        backbone_name: A key of :data:`training.pretrained.BACKBONES`.
        size: Input side in pixels.
        layer: A key of :data:`LAYERS`.
        view: How the images are shown (as read, or perturbed).
        cache_dir: Where ``.npz`` caches live.
    """
    config = shipped_preprocessing(size)
    key = json.dumps([split_hash(samples), [s.image_id for s in samples], config.to_dict(), view.name])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{backbone_name}-{size}px-{layer}-{samples[0].split}-{view.name}-{digest}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return CachedFeatures(stored["features"], stored["labels"], stored["image_ids"],
                                  stored["source_shapes"], float(stored["backbone_ms_per_image"]))
    extractor = _feature_extractor(backbone_name, size, layer)
    features, shapes, backbone_seconds = [], [], 0.0
    with ThreadPoolExecutor(max_workers=2) as pool:  # decoding and OpenCV release the GIL
        for start in range(0, len(samples), BATCH_SIZE):
            chunk = list(enumerate(samples[start:start + BATCH_SIZE], start=start))
            loaded = list(pool.map(lambda item: load_view_input(item[1], item[0], config, view), chunk))
            batch = np.stack([pixels for pixels, _ in loaded]).astype(np.float32)
            if start == 0:
                extractor.predict_on_batch(batch)  # the first call traces the graph: not timed
            started = time.perf_counter()
            features.append(np.asarray(extractor.predict_on_batch(batch), dtype=np.float16))
            backbone_seconds += time.perf_counter() - started
            shapes.extend(shape for _, shape in loaded)
    cached = CachedFeatures(np.concatenate(features), np.array([s.label for s in samples]),
                            np.array([s.image_id for s in samples]), np.array(shapes),
                            1000 * backbone_seconds / len(samples))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, **asdict(cached))
    temporary.replace(path)
    return cached


def _feature_extractor(backbone_name: str, size: int, layer: str):
    import keras

    backbone = BACKBONES[backbone_name]
    network = backbone.build((size, size, 1), include_top=False)
    tap = network.get_layer(backbone.layers.by_stride()[LAYERS[layer]]).output
    return keras.Model(network.input, tap, name=f"{backbone_name}_{layer}")


def cell_masks(cached: CachedFeatures, boxes: dict[str, list[Box]], config: PreprocessConfig,
               view: View = PLAIN) -> np.ndarray:
    """(N, g, g) cells under each image's boxes as ``view`` shows them (none for normal or unboxed
    images, nor for a view that moved the anatomy)."""
    grid = cached.features.shape[1]
    return np.stack([box_cell_mask(tuple(shape), view.boxes(boxes.get(str(image_id), [])), config, grid)
                     for image_id, shape in zip(cached.image_ids, cached.source_shapes)])
