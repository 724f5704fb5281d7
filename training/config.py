"""Where training reads data and keeps its caches and runs (never under ``models/``'s readers)."""

from core.config import PROJECT_DIR

DEFAULT_DATA_DIR = PROJECT_DIR.parent / "shared" / "datasets" / "fracatlas"
CACHE_DIR = PROJECT_DIR / ".cache"
RUNS_DIR = PROJECT_DIR / "runs"
