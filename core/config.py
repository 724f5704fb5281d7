"""Project-wide constants: class order, file names and paths.

Paths are built from the package location, never from the working directory, so the CLIs and
the app find the shipped model wherever they are started from.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
MODELS_DIR = PROJECT_DIR / "models"
CACHE_DIR = PROJECT_DIR / ".cache"
DEFAULT_DATA_DIR = PROJECT_DIR.parent / "shared" / "datasets" / "fracatlas"

# Index 1 is the positive class; every probability in this project is P(fractured).
CLASS_NAMES = ("not_fractured", "fractured")
FRACTURED = 1

MODEL_FILENAME = "fracture_cnn.keras"
METADATA_FILENAME = "metadata.json"
METRICS_FILENAME = "metrics.json"
PROBABILITIES_FILENAME = "probabilities.csv"
HISTORY_FILENAME = "history.csv"

SPLITS = ("train", "val", "test")
THRESHOLD_NAMES = ("screening", "balanced", "specific")
