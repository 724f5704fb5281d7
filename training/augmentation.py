"""Training-time augmentation, applied to uint8-range batches in the input pipeline.

Kept out of the served model so that inference and Grad-CAM see the plain network.
"""

from __future__ import annotations

import keras
from keras import layers

AUGMENT_STRENGTHS = ("none", "light", "strong")


def build_augmenter(strength: str, *, seed: int = 0) -> keras.Sequential | None:
    """Returns a layer stack that augments (batch, H, W, 1) images in [0, 255].

    ``light`` is the original design (horizontal flips, ±5° rotations, brightness/contrast
    jitter). ``strong`` adds what radiographs from other hospitals differ by: framing (zoom,
    shift), larger rotations, stronger exposure and contrast changes.

    Raises:
        ValueError: for an unknown strength.
    """
    if strength not in AUGMENT_STRENGTHS:
        raise ValueError(f"unknown augmentation {strength!r}; valid: {', '.join(AUGMENT_STRENGTHS)}")
    if strength == "none":
        return None
    value_range = (0.0, 255.0)
    if strength == "light":
        stack = [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(5 / 360, fill_mode="constant", seed=seed + 1),
            layers.RandomBrightness(0.1, value_range=value_range, seed=seed + 2),
            layers.RandomContrast(0.1, value_range=value_range, seed=seed + 3),
        ]
    else:
        stack = [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(15 / 360, fill_mode="constant", seed=seed + 1),
            layers.RandomZoom((-0.15, 0.15), fill_mode="constant", seed=seed + 4),
            layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 5),
            layers.RandomBrightness(0.2, value_range=value_range, seed=seed + 2),
            layers.RandomContrast(0.3, value_range=value_range, seed=seed + 3),
        ]
    return keras.Sequential(stack, name=f"augment_{strength}")
