"""How closely the compiled Grad-CAM matches tf-keras-vis's Grad-CAM, image by image."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.heatmaps import HeatmapExplainer

CHUNK = 32


def gradcam_agreement(explainer: HeatmapExplainer, reference: Callable[[np.ndarray], np.ndarray],
                      model_inputs: np.ndarray, source: str) -> dict:
    """Pearson correlation per image between ``explainer.explain(..., "gradcam")`` and
    ``reference`` (tf-keras-vis's Grad-CAM, :class:`bench.baselines.TfKerasVisGradcam`).

    Images where both maps are all zero (no evidence for "fractured") agree trivially and are
    counted apart; a map that is flat in one method but not the other counts as r = 0.
    """
    correlations, both_zero = [], 0
    for start in range(0, len(model_inputs), CHUNK):
        chunk = model_inputs[start : start + CHUNK]
        ours, theirs = explainer.explain(chunk, "gradcam"), reference(chunk)
        for mine, reference_map in zip(ours, theirs):
            if mine.max() == 0 and reference_map.max() == 0:
                both_zero += 1
            elif mine.std() == 0 or reference_map.std() == 0:
                correlations.append(0.0)
            else:
                correlations.append(float(np.corrcoef(mine.ravel(), reference_map.ravel())[0, 1]))
    values = np.asarray(correlations)
    return {"source": source, "n": int(len(model_inputs)), "both_all_zero": both_zero,
            "min": float(values.min()) if len(values) else None,
            "median": float(np.median(values)) if len(values) else None,
            "below_0.99": int((values < 0.99).sum())}


def test_split_inputs(data_dir, config, limit: int | None):
    """Preprocessed FracAtlas test-split images (through training.data's cache), or None if absent."""
    from training.data import load_arrays, load_index

    if not (data_dir / "labels.csv").is_file():
        return None
    samples = [sample for sample in load_index(data_dir) if sample.split == "test"]
    samples = samples[:limit] if limit else samples
    images, _ = load_arrays(samples, config)
    return images
