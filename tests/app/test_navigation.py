"""The whole app: every page opens from the navigation, and the threshold follows the user."""

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_DIR
from pages.state import SLIDER_KEY, THRESHOLD_KEY

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
