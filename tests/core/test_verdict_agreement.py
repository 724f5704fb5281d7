"""The app's path and the CLI give the same verdict at each named threshold on every FracAtlas
test image, with the thresholds exactly as stored (never rounded before they are used).

The app's path is ``classify(bytes, heatmap="gradcam")`` (one fused pass on the upload's bytes);
the CLI is ``python -m core.predict --json --threshold NAME`` on the files. The browser leg of the
same check is in ``tests/e2e``, and the pages' preset buttons are checked in ``tests/app``.
"""

import json

import pytest

from core.classifier import FractureClassifier
from core.predict import main as predict
from core.thresholds import PRESET_NAMES, decide
from training.config import DEFAULT_DATA_DIR
from training.data import load_index

pytestmark = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "labels.csv").is_file(),
                                reason=f"FracAtlas not found at {DEFAULT_DATA_DIR}; this check needs the test split")


@pytest.fixture(scope="module")
def test_paths() -> list[str]:
    return [str(sample.path) for sample in load_index(DEFAULT_DATA_DIR) if sample.split == "test"]


@pytest.fixture(scope="module")
def app_probabilities(test_paths) -> dict[str, float]:
    classifier = FractureClassifier.load()
    with_bytes = {path: classifier.classify(open(path, "rb").read(), heatmap="gradcam") for path in test_paths}
    return {path: result.probability_fractured for path, result in with_bytes.items()}


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_cli_and_app_agree_on_every_test_image(capsys, test_paths, app_probabilities, preset):
    threshold = FractureClassifier.load().thresholds[preset]
    assert predict([*test_paths, "--json", "--threshold", preset]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["path"] for record in records] == test_paths
    disagreements = [record["path"] for record in records
                     if record["decision"] != decide(app_probabilities[record["path"]], threshold)]
    assert not disagreements, f"{len(disagreements)} of {len(records)} differ at {preset}: {disagreements[:5]}"
    assert {record["threshold"] for record in records} == {round(threshold, 6)}
