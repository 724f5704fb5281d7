"""The whole app: every page opens from the navigation, and the threshold, its presets, its triage
bands and the split of the sidebar's figures follow the user from page to page; and ``pages/``
holds the pages only, so a deep link on a fresh server opens inside the navigation."""

import ast

import pytest
from streamlit.testing.v1 import AppTest

from core.artifacts import load_held_out, load_thresholds
from core.config import PROJECT_DIR
from core.thresholds import PRESETS
from core.triage import TriageBands
from tests.app.app_pages import PAGES, open_page, whole_app
from ui import entrypoint
from ui.state import PHONE_SLIDER_KEY, SLIDER_KEY, SPLIT_KEY, THRESHOLD_KEY

TITLES = {"classify": "Classify", "batch": "Batch", "performance": "Model performance", "about": "About"}
HEADINGS = {"batch": "Batch", "performance": "Model performance", "about": "About this model"}


@pytest.fixture(scope="module")
def app():
    app = whole_app(default_timeout=120)
    app.run()
    assert not app.exception
    return app


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens(app, page):
    open_page(app, page).run()
    assert not app.exception
    assert app.title, f"{page} drew no title"


def test_the_threshold_carries_from_classify_to_performance(app):
    open_page(app, "classify").run()
    app.slider(key=SLIDER_KEY).set_value(0.3).run()
    open_page(app, "about").run()  # a page without the slider
    open_page(app, "performance").run()
    assert not app.exception
    assert app.session_state[THRESHOLD_KEY] == pytest.approx(0.3)
    assert app.slider(key=SLIDER_KEY).value == pytest.approx(0.3)
    assert any("At threshold 0.300" in header.value for header in app.subheader)


def test_the_slider_shows_the_session_threshold_on_every_page(app):
    open_page(app, "classify").run()
    app.slider(key=SLIDER_KEY).set_value(0.25).run()
    for page in ("batch", "performance", "classify"):  # pages that draw the slider
        open_page(app, page).run()
        assert not app.exception
        assert app.session_state[THRESHOLD_KEY] == pytest.approx(0.25)
        assert app.slider(key=SLIDER_KEY).value == pytest.approx(0.25), page


def _sidebar_text(app) -> str:
    return " ".join(block.value for block in app.sidebar.markdown)


def test_the_split_chosen_on_performance_drives_the_sidebar_on_every_page(app):
    open_page(app, "performance").run()
    app.radio(key=SPLIT_KEY).set_value("val").run()
    val = load_held_out(split="val").at_threshold(app.session_state[THRESHOLD_KEY])
    for page in ("classify", "batch", "about", "performance"):
        open_page(app, page).run()
        assert not app.exception
        if page != "about":  # About draws no threshold sidebar
            assert "On the val split" in _sidebar_text(app), page
            assert {metric.label: metric.value for metric in app.sidebar.metric}["Specificity"] == \
                f"{100 * val.specificity:.1f}%", page
    assert app.radio(key=SPLIT_KEY).value == "val"  # the page still shows the split chosen
    app.radio(key=SPLIT_KEY).set_value("test").run()
    assert "On the held-out test split" in _sidebar_text(app)


def test_the_sidebar_marks_the_threshold_on_the_triage_bands(app):
    open_page(app, "classify").run()
    app.slider(key=SLIDER_KEY).set_value(0.25).run()
    bands = TriageBands.from_thresholds(load_thresholds())
    strip = next(block.value for block in app.sidebar.markdown if "linear-gradient" in block.value)
    assert f"{100 * bands.doubt_from:.2f}%" in strip and f"{100 * bands.fracture_from:.2f}%" in strip
    assert "left:calc(25.00% - 1.5px)" in strip  # the threshold's mark
    assert f"{bands.doubt_from:.3f}" in strip and f"{bands.fracture_from:.3f}" in strip


@pytest.mark.parametrize("preset", PRESETS, ids=lambda preset: preset.name)
def test_the_active_preset_is_highlighted_and_named(app, preset):
    open_page(app, "batch").run()
    app.button(key=f"preset-{preset.name}").click().run()
    assert app.session_state[THRESHOLD_KEY] == load_thresholds()[preset.name]
    assert app.button(key=f"preset-{preset.name}").proto.type == "primary"
    assert all(app.button(key=f"preset-{other.name}").proto.type == "secondary" for other in PRESETS if other != preset)
    assert f"Active preset: **{preset.label}**" in _sidebar_text(app)


def test_the_compact_threshold_control_shares_the_session_threshold(app):
    open_page(app, "classify").run()
    compact = app.slider(key=PHONE_SLIDER_KEY)
    compact.set_value(0.42).run()
    assert app.session_state[THRESHOLD_KEY] == pytest.approx(0.42)
    assert app.slider(key=SLIDER_KEY).value == pytest.approx(0.42)
    app.button(key="compact-preset-specific").click().run()
    assert app.session_state[THRESHOLD_KEY] == load_thresholds()["specific"]
    assert app.slider(key=PHONE_SLIDER_KEY).value == pytest.approx(load_thresholds()["specific"])


# --- the arrangement: pages/ holds the pages only, and a deep link opens inside the navigation ----

def _navigation_pages() -> list[dict]:
    """Each ``st.Page(...)`` of streamlit_app.py: the module its function is from, and its keywords."""
    tree = ast.parse((PROJECT_DIR / "streamlit_app.py").read_text(encoding="utf-8"))
    return [{"module": call.args[0].value.id, "function": call.args[0].attr,
             **{keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}}
            for call in ast.walk(tree) if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "Page"]


def test_pages_holds_the_pages_only_each_named_by_its_url_path():
    pages = _navigation_pages()
    assert [page["url_path"] for page in pages] == list(PAGES)
    assert {page["url_path"]: page["title"] for page in pages} == TITLES
    # The module of each page is pages/<its url path>.py: the name Streamlit's legacy pages/ mode
    # finds a deep link's page by, before any session has called st.navigation.
    assert all(page["module"] == page["url_path"] and page["function"] == "main" for page in pages)
    files = {path.stem for path in (PROJECT_DIR / "pages").glob("*.py") if path.name != "__init__.py"}
    assert files == set(PAGES)


@pytest.mark.parametrize("page", HEADINGS)
def test_a_deep_link_on_a_fresh_server_opens_the_page_inside_the_navigation(page, monkeypatch):
    # streamlit_app.py itself, with pages/ beside it: AppTest, like a fresh server, starts in
    # Streamlit's legacy pages/ mode, where a page asked for before any run is known by its file
    # name; that mode runs pages/<page>.py alone, which hands the run to the entrypoint and its
    # st.navigation. (tests/e2e/test_browser.py sees the same in Chromium, sidebar links and all.)
    handed_over = []
    run_entrypoint = entrypoint.run_entrypoint
    monkeypatch.setattr(entrypoint, "run_entrypoint", lambda: (handed_over.append(page), run_entrypoint()))
    app = AppTest.from_file(str(PROJECT_DIR / "streamlit_app.py"), default_timeout=120)
    app.switch_page(f"pages/{page}.py").run()
    assert not app.exception
    assert handed_over == [page]
    assert [title.value for title in app.title] == [HEADINGS[page]]
