"""The Model performance page through Streamlit's AppTest, run on its own (no navigation)."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.config import METRICS_FILENAME, MODELS_DIR, PROJECT_DIR
from core.artifacts import load_held_out, load_thresholds
from pages.state import SPLIT_KEY, THRESHOLD_KEY

PAGE = str(PROJECT_DIR / "pages" / "performance.py")
METRICS = json.loads((MODELS_DIR / METRICS_FILENAME).read_text())


def _metric(app: AppTest, label: str) -> str:
    return next(metric.value for metric in app.metric if metric.label == label)


@pytest.fixture
def app():
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception
    return app


def test_page_shows_the_test_auroc_and_its_ci(app):
    auroc = METRICS["splits"]["test"]["auroc"]
    assert app.title[0].value == "Model performance"
    assert _metric(app, "AUROC") == f"{auroc['auroc']:.3f}"
    assert any(f"{auroc['ci_low']:.3f}–{auroc['ci_high']:.3f}" in caption.value for caption in app.caption)
    assert len(app.get("image")) == 4  # ROC, confusion matrix, calibration, training history
    assert len(app.dataframe[0].value) == len(METRICS["splits"]["test"]["subgroups"])


def test_without_a_threshold_in_session_it_uses_the_screening_preset(app):
    assert app.session_state[THRESHOLD_KEY] == load_thresholds()["screening"]  # exactly, not rounded
    screening = METRICS["splits"]["test"]["operating_points"]["screening"]
    assert _metric(app, "Sensitivity") == f"{100 * screening['sensitivity']:.1f}%"
    assert _metric(app, "Specificity") == f"{100 * screening['specificity']:.1f}%"


def test_the_session_threshold_drives_the_figures(app):
    app.session_state[THRESHOLD_KEY] = 0.5
    app.run()
    assert not app.exception
    point = load_held_out(split="test").at_threshold(0.5)
    assert _metric(app, "Sensitivity") == f"{100 * point['sensitivity']:.1f}%"
    assert _metric(app, "NPV") == f"{100 * point['npv']:.1f}%"
    assert any(f"{point['tp']} of {point['n_positive']}" == caption.value for caption in app.caption)
    assert "sensitivity @ 0.500" in app.dataframe[0].value.columns


def test_switching_to_val(app):
    app.radio(key=SPLIT_KEY).set_value("val").run()
    assert not app.exception
    val = METRICS["splits"]["val"]
    assert _metric(app, "AUROC") == f"{val['auroc']['auroc']:.3f}"
    screening = val["operating_points"]["screening"]
    assert _metric(app, "Sensitivity") == f"{100 * screening['sensitivity']:.1f}%"
