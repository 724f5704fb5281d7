"""Constants of the served model: class order, the files in ``models/`` and where they are.

Paths are built from the package location, never from the working directory, so the CLIs and
the app find the shipped model wherever they are started from.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
MODELS_DIR = PROJECT_DIR / "models"

# Index 1 is the positive class; every probability in this project is P(fractured).
CLASS_NAMES = ("not_fractured", "fractured")
FRACTURED = 1

MODEL_FILENAME = "fracture_cnn.keras"
METADATA_FILENAME = "metadata.json"
METRICS_FILENAME = "metrics.json"
PROBABILITIES_FILENAME = "probabilities.csv"
HISTORY_FILENAME = "history.csv"
REFERENCE_FILENAME = "ood_reference.npz"  # the radiograph check's feature-space reference (tier 2)
DETECTOR_FILENAME = "radiograph_detector.npz"  # the radiograph check's "is it an X-ray at all?" (tier 1)

SPLITS = ("train", "val", "test")
