"""Where training reads data and keeps its caches and runs (never under ``models/``'s readers), and
the shipped model's preprocessing."""

from core.config import PROJECT_DIR

DEFAULT_DATA_DIR = PROJECT_DIR.parent / "shared" / "datasets" / "fracatlas"
CACHE_DIR = PROJECT_DIR / ".cache"
RUNS_DIR = PROJECT_DIR / "runs"
# The rows of every box-head run, the study's and the shipped trainer's
# (``python -m training.box_study --table-only`` prints them).
BOX_STUDY_RESULTS = RUNS_DIR / "box_study.jsonl"

# Aspect and contrast of the shipped model (models/metadata.json, ``"preprocessing"``), the one
# statement of them: Model v2's trainer and its study use them at every size, and they are the v1
# trainer's defaults. :class:`core.preprocessing.PreprocessConfig` says what each mode does.
SHIPPED_ASPECT, SHIPPED_CONTRAST = "pad", "clahe"
