"""DICOM window/level: the values after the modality LUT, a window to look at them through, and the
presets a viewer offers (the file's own window, bone, soft tissue).

The classifier reads a DICOM once, through :func:`core.imaging.read_image`, with the file's VOI
window applied. A viewer needs the values before that window, so that the user can choose another;
:func:`dicom_windowable` gives them, decoded by the same guarded path (size checks before any
decode) and reduced for display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.imaging.common import MAX_FILE_BYTES, MAX_OUTPUT_PIXELS, MAX_PIXELS, ImageReadError
from core.imaging.dicom import DicomFrame, decode_dicom_frame, dicom_colour_to_grey, looks_like_dicom, modality_values
from core.imaging.limits import decode_deadline
from core.imaging.sources import load_bytes
from core.imaging.tiles import assemble, reduction_factor

__all__ = ["Window", "WindowableImage", "apply_window", "dicom_windowable", "window_presets"]

FILE_DEFAULT, BONE, SOFT_TISSUE = "File default", "Bone", "Soft tissue"
# CT values are Hounsfield units, so the classic windows apply (level, width), e.g. Radiopaedia's
# "bone window" W 1800 L 400 and "soft tissue window" W 400 L 40.
CT_WINDOWS = {BONE: (400.0, 1800.0), SOFT_TISSUE: (40.0, 400.0)}
DEFAULT_PERCENTILES = (0.5, 99.5)  # a window that ignores the few extreme pixels (labels, collimator edges)
# Radiograph presets, as percentiles of the body's pixels (those clearly brighter than the air).
# Chosen by eye on FracAtlas hands, knees, shoulders and hips: with a lower "Bone" floor the
# finger bones, dimmer than the forearm's, go black.
BONE_BODY_PERCENTILES = (10.0, 99.0)
SOFT_TISSUE_BODY_PERCENTILE = 55.0
AIR_HISTOGRAM_BINS = 256
AIR_SPREADS = 3.0
MIN_BODY_SHARE = 0.02  # below this (or above 1 - this) there is no air/body split to trust


@dataclass(frozen=True)
class Window:
    """A linear window: ``center - width / 2`` shows black, ``center + width / 2`` white.

    Raises:
        ValueError: ``center`` is not finite, or ``width`` is not a finite positive number.
    """

    center: float
    width: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.center) or not math.isfinite(self.width) or self.width <= 0:
            raise ValueError(f"a window needs a finite center and a finite width > 0; "
                             f"got center {self.center}, width {self.width}")

    @classmethod
    def spanning(cls, low: float, high: float) -> Window:
        """The window from ``low`` (black) to ``high`` (white); a zero span becomes width 1."""
        return cls((low + high) / 2, high - low if high > low else 1.0)


@dataclass(frozen=True, eq=False)  # eq would compare arrays
class WindowableImage:
    """A DICOM image's values, ready to be windowed for display.

    Attributes:
        values: float32 (H, W), at most ``max_side`` a side, after the modality LUT (rescale slope
            and intercept): Hounsfield units for CT, detector units for a radiograph. For
            MONOCHROME1 files (bone dark as stored) the values are negated, so that higher is
            always brighter and :func:`apply_window` needs no flag. NaN where the file holds NaN.
        default: The file's own window (VOI window centre and width, in the same units and sign),
            or, where it has none that is valid, a window over the 0.5th-99.5th percentiles.
        modality: The file's Modality tag ("CT", "DX", "CR", ...), "" where absent.
        inverted: True when the file is MONOCHROME1 and ``values`` are its negated units.
    """

    values: np.ndarray
    default: Window
    modality: str = ""
    inverted: bool = False

    @property
    def value_range(self) -> tuple[float, float]:
        """(lowest, highest) finite value: the bounds of a manual window."""
        finite = self.values[np.isfinite(self.values)]
        return float(finite.min()), float(finite.max())


def dicom_windowable(data: bytes, max_side: int = 1600) -> WindowableImage | None:
    """The values of a DICOM upload before any VOI window, for window/level display.

    Args:
        data: The upload's bytes.
        max_side: Larger images are reduced by an integer factor (averaging boxes of pixels) until
            neither side exceeds this.

    Returns:
        The image, or None when ``data`` is not DICOM (other formats have no units to window).
        A colour DICOM comes back as its luma in [0, 1], with a percentile window.

    Raises:
        ImageReadError: The DICOM is damaged, too large or undecodable; the same checks and
            messages as :func:`core.imaging.read_image`.
        ValueError: ``max_side`` is below 1.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    data = bytes(data)
    if not looks_like_dicom(data):
        return None
    data, label = load_bytes(data, MAX_FILE_BYTES)
    with decode_deadline(label):
        frame = decode_dicom_frame(data, label, MAX_PIXELS, MAX_FILE_BYTES)
        height, width = frame.pixels.shape[:2]
        factor = max(math.ceil(max(height, width) / max_side), reduction_factor(height, width, MAX_OUTPUT_PIXELS))
        if not frame.monochrome:
            grey = dicom_colour_to_grey(frame.pixels, frame.photometric, factor, label)
            return WindowableImage(grey, percentile_window(grey), _modality(frame.dataset))
        return _monochrome(frame, factor, label)


def _monochrome(frame: DicomFrame, factor: int, label: str) -> WindowableImage:
    inverted = frame.photometric == "MONOCHROME1"
    sign = -1.0 if inverted else 1.0
    height, width = frame.pixels.shape
    values = assemble(height, width, factor,
                      lambda top, bottom, left, right: sign * modality_values(frame, top, bottom, left, right, label))
    if not np.isfinite(values).any():
        raise ImageReadError(f"image in {label} has no finite pixel values (all NaN/inf)")
    stored = _file_window(frame.dataset)
    default = Window(sign * stored.center, stored.width) if stored else percentile_window(values)
    return WindowableImage(values, default, _modality(frame.dataset), inverted)


def _modality(dataset) -> str:
    try:
        return str(dataset.get("Modality") or "").strip().upper()
    except Exception:  # a corrupt tag: the presets then treat the image as a radiograph
        return ""


def _file_window(dataset) -> Window | None:
    """The first VOI window the file names, in modality-LUT units; None if absent or unusable
    (pydicom converts tag values when first read, so a corrupt one raises here)."""
    try:
        center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
        if center is None or width is None:
            return None
        return Window(_first_number(center), _first_number(width))
    except Exception:  # a malformed window is ignored, as the reader ignores it: the image is still valid
        return None


def _first_number(value) -> float:
    """A tag's first value as a float (WindowCenter may hold several windows)."""
    return float(np.ravel(np.asarray(value, dtype=np.float64))[0])


def percentile_window(values: np.ndarray, percentiles: tuple[float, float] = DEFAULT_PERCENTILES) -> Window:
    """The window from the ``percentiles`` (low, high) of the finite values."""
    finite = values[np.isfinite(values)]
    low, high = np.percentile(finite, percentiles)
    return Window.spanning(float(low), float(high))


def window_presets(image: WindowableImage) -> dict[str, Window]:
    """The windows a viewer offers: "File default", "Bone" and "Soft tissue".

    For CT the values are Hounsfield units and the classic windows apply (bone W 1800 L 400, soft
    tissue W 400 L 40). A plain radiograph has no such units: its values depend on the detector,
    the exposure and the processing, so there the presets follow the image's own distribution.
    The air is the histogram's dark peak; the pixels clearly above it are the body. "Soft
    tissue" spans the air's edge to the body's 55th percentile, so that the faint soft tissue
    gets the grey scale and bone saturates white; "Bone" spans the body's 10th to 99th
    percentile, so that soft tissue goes dark and the grades of bone density get the contrast.
    """
    sign = -1.0 if image.inverted else 1.0
    if image.modality == "CT":
        relative = {name: Window(sign * center, width) for name, (center, width) in CT_WINDOWS.items()}
    else:
        relative = _radiograph_windows(image.values[np.isfinite(image.values)])
    return {FILE_DEFAULT: image.default, **relative}


def _radiograph_windows(finite: np.ndarray) -> dict[str, Window]:
    edge = air_edge(finite)
    body = finite[finite > edge]
    if not MIN_BODY_SHARE <= body.size / finite.size <= 1 - MIN_BODY_SHARE:  # no air, or nothing but air
        body, edge = finite, float(np.percentile(finite, DEFAULT_PERCENTILES[0]))
    bone_low, bone_high = np.percentile(body, BONE_BODY_PERCENTILES)
    return {BONE: Window.spanning(float(bone_low), float(bone_high)),
            SOFT_TISSUE: Window.spanning(edge, float(np.percentile(body, SOFT_TISSUE_BODY_PERCENTILE)))}


def air_edge(finite: np.ndarray, bins: int = AIR_HISTOGRAM_BINS) -> float:
    """Where the air ends: the histogram's peak (the most common grey, the air around the body in
    a radiograph) plus three times its spread below the peak, which the body does not reach."""
    below_labels = finite[finite <= np.percentile(finite, 99)]  # a burnt-in white label is no peak
    counts, edges = np.histogram(below_labels, bins=bins)
    peak = float((edges[np.argmax(counts)] + edges[np.argmax(counts) + 1]) / 2)
    spread = max(peak - float(np.percentile(finite, 1)), float(edges[1] - edges[0]))
    return peak + AIR_SPREADS * spread


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """``values`` seen through ``window``: float32 in [0, 1], the same shape, higher brighter
    (MONOCHROME1 is already inverted in :attr:`WindowableImage.values`); NaN shows black.

    The linear ramp of DICOM's "LINEAR_EXACT" function; a file's SIGMOID VOI function is shown
    linear too.
    """
    low = window.center - window.width / 2
    shown = (np.asarray(values, np.float64) - low) / window.width
    return np.nan_to_num(np.clip(shown, 0.0, 1.0), nan=0.0).astype(np.float32)
