"""The whole app: every page opens from the navigation, and the threshold, its presets, its triage
bands and the split of the sidebar's figures follow the user from page to page."""

import pytest
from streamlit.testing.v1 import AppTest

from core.artifacts import load_held_out, load_thresholds
from core.config import PROJECT_DIR
from core.thresholds import PRESETS
from core.triage import TriageBands
from ui.state import PHONE_SLIDER_KEY, SLIDER_KEY, SPLIT_KEY, THRESHOLD_KEY

PAGES = ("pages/classify.py", "pages/batch.py", "pages/performance.py", "pages/about.py")


@pytest.fixture(scope="module")
def app():
    app = AppTest.from_file(str(PROJECT_DIR / "streamlit_app.py"), default_timeout=120)
    app.run()
    assert not app.exception
    return app


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens(app, page):
    app.switch_page(page).run()
    assert not app.exception
    assert app.title, f"{page} drew no title"


def test_the_threshold_carries_from_classify_to_performance(app):
    app.switch_page("pages/classify.py").run()
    app.slider(key=SLIDER_KEY).set_value(0.3).run()
    app.switch_page("pages/about.py").run()  # a page without the slider
    app.switch_page("pages/performance.py").run()
    assert not app.exception
    assert app.session_state[THRESHOLD_KEY] == pytest.approx(0.3)
    assert app.slider(key=SLIDER_KEY).value == pytest.approx(0.3)
    assert any("At threshold 0.300" in header.value for header in app.subheader)


def test_the_slider_shows_the_session_threshold_on_every_page(app):
    app.switch_page("pages/classify.py").run()
    app.slider(key=SLIDER_KEY).set_value(0.25).run()
    for page in ("pages/batch.py", "pages/performance.py", "pages/classify.py"):  # pages that draw the slider
        app.switch_page(page).run()
        assert not app.exception
        assert app.session_state[THRESHOLD_KEY] == pytest.approx(0.25)
        assert app.slider(key=SLIDER_KEY).value == pytest.approx(0.25), page


def _sidebar_text(app) -> str:
    return " ".join(block.value for block in app.sidebar.markdown)


def test_the_split_chosen_on_performance_drives_the_sidebar_on_every_page(app):
    app.switch_page("pages/performance.py").run()
    app.radio(key=SPLIT_KEY).set_value("val").run()
    val = load_held_out(split="val").at_threshold(app.session_state[THRESHOLD_KEY])
    for page in ("pages/classify.py", "pages/batch.py", "pages/about.py", "pages/performance.py"):
        app.switch_page(page).run()
        assert not app.exception
        if page != "pages/about.py":  # About draws no threshold sidebar
            assert "On the val split" in _sidebar_text(app), page
            assert {metric.label: metric.value for metric in app.sidebar.metric}["Specificity"] == \
                f"{100 * val['specificity']:.1f}%", page
    assert app.radio(key=SPLIT_KEY).value == "val"  # the page still shows the split chosen
    app.radio(key=SPLIT_KEY).set_value("test").run()
    assert "On the held-out test split" in _sidebar_text(app)


def test_the_sidebar_marks_the_threshold_on_the_triage_bands(app):
    app.switch_page("pages/classify.py").run()
    app.slider(key=SLIDER_KEY).set_value(0.25).run()
    bands = TriageBands.from_thresholds(load_thresholds())
    strip = next(block.value for block in app.sidebar.markdown if "linear-gradient" in block.value)
    assert f"{100 * bands.doubt_from:.2f}%" in strip and f"{100 * bands.fracture_from:.2f}%" in strip
    assert "left:calc(25.00% - 1.5px)" in strip  # the threshold's mark
    assert f"{bands.doubt_from:.3f}" in strip and f"{bands.fracture_from:.3f}" in strip


@pytest.mark.parametrize("preset", PRESETS, ids=lambda preset: preset.name)
def test_the_active_preset_is_highlighted_and_named(app, preset):
    app.switch_page("pages/batch.py").run()
    app.button(key=f"preset-{preset.name}").click().run()
    assert app.session_state[THRESHOLD_KEY] == load_thresholds()[preset.name]
    assert app.button(key=f"preset-{preset.name}").proto.type == "primary"
    assert all(app.button(key=f"preset-{other.name}").proto.type == "secondary" for other in PRESETS if other != preset)
    assert f"Active preset: **{preset.label}**" in _sidebar_text(app)


def test_the_compact_threshold_control_shares_the_session_threshold(app):
    app.switch_page("pages/classify.py").run()
    compact = app.slider(key=PHONE_SLIDER_KEY)
    compact.set_value(0.42).run()
    assert app.session_state[THRESHOLD_KEY] == pytest.approx(0.42)
    assert app.slider(key=SLIDER_KEY).value == pytest.approx(0.42)
    app.button(key="compact-preset-specific").click().run()
    assert app.session_state[THRESHOLD_KEY] == load_thresholds()["specific"]
    assert app.slider(key=PHONE_SLIDER_KEY).value == pytest.approx(load_thresholds()["specific"])
