"""FracAtlas test images whose verdict changes from one named threshold to the next, and what
``python -m core.predict`` says about them at each threshold."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import PROJECT_DIR

# Closer than this to a threshold, the last bits of float arithmetic (the app's fused Grad-CAM
# pass against the CLI's plain forward pass) could decide a verdict; farther, only a real
# disagreement between them can, e.g. one side rounding the threshold to the slider's 0.001 step.
MARGIN = 1e-5
# A guard against a hung CLI, not a speed check: one process per preset, all side by side, each
# loading TensorFlow and the model, on a machine that may be busy with other work.
CLI_TIMEOUT_S = 1200


@dataclass(frozen=True)
class Radiograph:
    path: Path
    probability_fractured: float  # as FractureClassifier computed it for the choice


@dataclass(frozen=True)
class CliAnswer:
    probability_fractured: float
    decision: str
    threshold: float


def fracatlas_test_paths(data_dir: Path) -> list[Path]:
    with open(data_dir / "labels.csv", newline="") as handle:
        return [data_dir / row["path"] for row in csv.DictReader(handle) if row["split"] == "test"]


def pick_between_presets(paths: list[Path], thresholds: dict[str, float]) -> list[Radiograph]:
    """For each gap between two neighbouring preset values, the image just above its lower end
    and the one just below its upper end: each is called a fracture at some presets and not at
    others, and sits as near a threshold as the data allow, where rounding would show."""
    from core.classifier import FractureClassifier
    from core.imaging import ImageReadError, read_image
    from core.preprocessing import preprocess

    classifier = FractureClassifier.load()
    readable, inputs = [], []
    for path in paths:
        try:
            inputs.append(preprocess(read_image(path), classifier.preprocess_config))
        except ImageReadError:
            continue
        readable.append(path)
    probabilities = classifier.predict_batch(np.stack(inputs))
    values = sorted(thresholds.values())
    picked: dict[Path, Radiograph] = {}
    for low, high in zip(values, values[1:]):
        inside = [(float(p), path) for p, path in zip(probabilities, readable) if low + MARGIN <= p < high - MARGIN]
        if inside:
            for probability, path in (min(inside), max(inside)):
                picked[path] = Radiograph(path, probability)
    return sorted(picked.values(), key=lambda radiograph: radiograph.probability_fractured)


def cli_answers(paths: list[Path], preset_names: list[str]) -> dict[str, dict[str, CliAnswer]]:
    """``{preset: {file name: answer}}`` from ``python -m core.predict --json --threshold PRESET``,
    one run per preset for all files, the runs side by side."""
    runs = {name: subprocess.Popen([sys.executable, "-m", "core.predict", "--json", "--threshold", name,
                                    *map(str, paths)], cwd=PROJECT_DIR, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            for name in preset_names}
    answers = {}
    for name, run in runs.items():
        out, err = run.communicate(timeout=CLI_TIMEOUT_S)
        if run.returncode != 0:
            raise AssertionError(f"core.predict --threshold {name} exited {run.returncode}: {err[-2000:]}")
        records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        answers[name] = {Path(record["path"]).name: CliAnswer(record["probability_fractured"], record["decision"],
                                                              record["threshold"]) for record in records}
    return answers
