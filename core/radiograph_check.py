"""Does an upload look like a radiograph? A warning for photographs, documents, noise and the like.

The network answers for any picture; a verdict on a holiday photo is meaningless. Two tiers,
neither of which ever hides the verdict:

* **Tier 1, is it a radiograph at all?** Colour, and :mod:`core.radiograph_detector`'s
  boosted trees over grey-level, edge and texture features of what makes an X-ray an X-ray.
* **Tier 2, is it like the training radiographs?** The distance in the network's feature space.

In detail:

* **Colour.** Radiographs are grey. Colourfulness is Hasler & Süsstrunk's metric ("Measuring
  colourfulness in natural images", Proc. SPIE 5007, 2003), measured on a thumbnail of the
  reader's own decode; above 15 ("slightly colourful" on their scale) the upload is called a
  colour image.
* **Distance to the training radiographs in the network's own feature space.** Each image is
  summarised by the channel means of every activation layer (early layers see texture, late ones
  anatomy), L2-normalised and projected on 64 principal components fitted on the train split. Its
  distance to the nearest train image is compared with a threshold set on the val split so that
  1 % of val radiographs are flagged (deep nearest-neighbour OOD detection: Sun et al., "Out-of-
  distribution detection with deep nearest neighbors", ICML 2022). The test split is never used.
  A radiograph from another hospital or of another body part is far too, so this tier only
  cautions; it never says that an X-ray is not one.
* **The radiograph detector** (tier 1 with colour): its score, P(radiograph), below its threshold
  means "not a radiograph" (see :mod:`core.radiograph_detector`).

``python -m training.radiograph_reference`` fits the reference on FracAtlas train/val and writes it
next to the model, and ``python -m training.radiograph_detector`` fits the detector; this module
only applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.imaging import ImageReadError, decode_image

COLOURFUL = 15.0


def colourfulness(source) -> float:
    """Hasler–Süsstrunk colourfulness (0 for grey) of an image file, read by :mod:`core.imaging`.

    Args:
        source: file bytes or a path. Anything the reader refuses counts as grey: the reader,
            not this check, decides whether it is an image.
    """
    try:
        return thumbnail_colourfulness(decode_image(source).colour_thumbnail)
    except ImageReadError:  # a file the reader rejects is reported by the reader
        return 0.0


def thumbnail_colourfulness(thumbnail: np.ndarray | None) -> float:
    """Colourfulness of the reader's RGB thumbnail (``DecodedImage.colour_thumbnail``); 0 for
    None, i.e. for files stored in a grey mode and for DICOM.

    The thumbnail comes from the same decode as the grey image: the upload is opened once, by
    the one reader and its allow-list of formats. Opening it a second time with every Pillow
    plugin let a DICOM preamble be read as EPS (Ghostscript) or as a 169 MP TIFF.
    """
    if thumbnail is None:
        return 0.0
    rgb = np.asarray(thumbnail, dtype=np.float64)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    red_green, yellow_blue = red - green, 0.5 * (red + green) - blue
    spread = np.hypot(red_green.std(), yellow_blue.std())
    centre = np.hypot(red_green.mean(), yellow_blue.mean())
    return float(spread + 0.3 * centre)


def activation_summary_outputs(model) -> list:
    """Keras tensors: the channel means of every 4-D activation layer of ``model``, in order."""
    import keras

    return [keras.ops.mean(layer.output, axis=(1, 2)) for layer in model.layers
            if isinstance(layer, keras.layers.Activation) and len(layer.output.shape) == 4]


def normalise_summaries(summaries: np.ndarray) -> np.ndarray:
    summaries = np.asarray(summaries, dtype=np.float64)
    return summaries / np.maximum(np.linalg.norm(summaries, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class RadiographReference:
    """The train split in the network's feature space, and the distance that counts as far."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (K, D), K principal axes
    train_points: np.ndarray  # (N_train, K)
    threshold: float
    model_version: str = ""  # the model whose features these are; another model's are meaningless

    def distances(self, summaries: np.ndarray) -> np.ndarray:
        """Distance from each summary (N, D) to its nearest train image."""
        points = (normalise_summaries(summaries) - self.mean) @ self.components.T
        squared = ((points ** 2).sum(1)[:, None] - 2.0 * points @ self.train_points.T
                   + (self.train_points ** 2).sum(1)[None, :])
        return np.sqrt(np.maximum(squared.min(axis=1), 0.0))

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, mean=self.mean.astype(np.float32), components=self.components.astype(np.float32),
                            train_points=self.train_points.astype(np.float32), threshold=self.threshold,
                            model_version=self.model_version)

    @classmethod
    def load(cls, path: str | Path) -> "RadiographReference":
        with np.load(path) as stored:
            return cls(stored["mean"].astype(np.float64), stored["components"].astype(np.float64),
                       stored["train_points"].astype(np.float64), float(stored["threshold"]),
                       str(stored["model_version"]))


@dataclass(frozen=True)
class RadiographCheck:
    """Two questions about an upload, in two tiers that never hide the verdict.

    * Tier 1, :attr:`looks_like_radiograph`: is this a radiograph at all? A colour photo, a
      document or noise is not; the verdict on it is meaningless (:meth:`warning`).
    * Tier 2, :attr:`unlike_training_data`: is this radiograph like the ones the model learned
      from? Another hospital, body part or exposure makes it unlike them; the verdict stands, with
      a softer caution (:meth:`caution`). It never claims that a real X-ray is not one.
    """

    colourfulness: float
    distance: float | None  # None where the model ships no reference
    threshold: float | None
    radiograph_score: float | None = None  # the detector's P(radiograph); None where none is shipped
    radiograph_threshold: float | None = None

    @property
    def not_radiograph_reasons(self) -> tuple[str, ...]:
        """Tier 1: why this is not a radiograph at all (empty when it looks like one)."""
        reasons = []
        if self.colourfulness > COLOURFUL:
            reasons.append("it is a colour image; radiographs are grey")
        if self.radiograph_score is not None and self.radiograph_score < self.radiograph_threshold:
            reasons.append("its grey levels, edges and texture are unlike an X-ray's, as in a photograph, "
                           "document, chart, drawing or noise")
        return tuple(reasons)

    @property
    def unlike_training_reasons(self) -> tuple[str, ...]:
        """Tier 2: why this radiograph is unlike the training images (empty when it is like them)."""
        if self.distance is not None and self.distance > self.threshold:
            return ("its content is unlike the radiographs the model was trained on",)
        return ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every reason of both tiers, tier 1 first."""
        return self.not_radiograph_reasons + self.unlike_training_reasons

    @property
    def looks_like_radiograph(self) -> bool:
        return not self.not_radiograph_reasons

    @property
    def unlike_training_data(self) -> bool:
        """True for a radiograph unlike the training images; False for a non-radiograph (tier 1 says it)."""
        return self.looks_like_radiograph and bool(self.unlike_training_reasons)

    def warning(self) -> str:
        """Tier 1's sentence for the user, or "" when the image looks like a radiograph."""
        if self.looks_like_radiograph:
            return ""
        return (f"This does not look like a radiograph ({'; '.join(self.not_radiograph_reasons)}). "
                "The verdict is meaningless for it.")

    def caution(self) -> str:
        """Tier 2's quieter sentence, or "" when tier 1 warns or the image is like the training data."""
        if not self.unlike_training_data:
            return ""
        return ("This X-ray is unlike the training images (another hospital, body part or exposure, "
                "for example); treat the verdict with care.")

    def notice(self) -> str:
        """The one sentence to show beside the verdict: tier 1's warning, else tier 2's caution, else ""."""
        return self.warning() or self.caution()
