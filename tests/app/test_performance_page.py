"""The Model performance page through Streamlit's AppTest, run on its own (no navigation)."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.config import METRICS_FILENAME, MODELS_DIR
from core.artifacts import load_held_out, load_thresholds
from ui.state import HELD_OUT_SPLIT_KEY, SPLIT_KEY, THRESHOLD_KEY
from tests.app.app_pages import page_alone

PAGE = "performance"
METRICS = json.loads((MODELS_DIR / METRICS_FILENAME).read_text())


def _metric(app: AppTest, label: str) -> str:
    return next(metric.value for metric in app.metric if metric.label == label)


@pytest.fixture
def app():
    app = page_alone(PAGE, default_timeout=60)
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
    assert _metric(app, "Sensitivity") == f"{100 * point.sensitivity:.1f}%"
    assert _metric(app, "NPV") == f"{100 * point.npv:.1f}%"
    assert any(f"{point.tp} of {point.n_positive}" == caption.value for caption in app.caption)
    assert "Sensitivity at 0.500" in app.dataframe[0].value.columns


def test_switching_to_val(app):
    app.radio(key=SPLIT_KEY).set_value("val").run()
    assert not app.exception
    val = METRICS["splits"]["val"]
    assert _metric(app, "AUROC") == f"{val['auroc']['auroc']:.3f}"
    screening = val["operating_points"]["screening"]
    assert _metric(app, "Sensitivity") == f"{100 * screening['sensitivity']:.1f}%"


def _sidebar_text(app: AppTest) -> str:
    return " ".join(block.value for block in app.sidebar.markdown)


def test_the_sidebar_figures_follow_the_split_the_page_shows(app):
    assert "held-out test split" in _sidebar_text(app)
    app.radio(key=SPLIT_KEY).set_value("val").run()
    assert not app.exception
    assert app.session_state[HELD_OUT_SPLIT_KEY] == "val"
    val = load_held_out(split="val").at_threshold(load_thresholds()["screening"])
    assert "val split" in _sidebar_text(app) and "held-out test split" not in _sidebar_text(app)
    assert f"({val.n_positive + val.n_negative} images)" in _sidebar_text(app)
    sidebar_metrics = {metric.label: metric.value for metric in app.sidebar.metric}
    assert sidebar_metrics["Sensitivity"] == f"{100 * val.sensitivity:.1f}%"
    assert sidebar_metrics["NPV"] == f"{100 * val.npv:.1f}%"


def test_the_subgroup_table_reads_as_text_for_a_clinician(app):
    table = app.dataframe[0].value
    groups = list(table["Group"])
    assert "Hand" in groups and "With implant" in groups and "Several regions" in groups
    assert not any("=" in group for group in groups)
    cells = [str(value) for column in table.columns for value in table[column]]
    assert not any(cell in ("None", "nan", "NaN", "") for cell in cells), cells
    for column in (name for name in table.columns if name.startswith(("Sensitivity", "Specificity"))):
        assert all(cell.endswith("%") or cell.startswith("– (no ") for cell in table[column]), list(table[column])
    implant = table[table["Group"] == "With implant"].iloc[0]
    assert implant[next(name for name in table.columns if name.startswith("Specificity"))] == "– (no normals)"
