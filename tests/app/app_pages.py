"""The app's pages in AppTest, opened as ``streamlit_app.py``'s ``st.navigation`` opens them.

A page is the ``main`` function of ``pages/<url path>.py`` (a function handed to ``st.Page``), and
AppTest's ``switch_page`` knows page files only: :func:`whole_app` runs the real entrypoint behind
a line that switches, with Streamlit's own ``st.switch_page``, to the page :func:`open_page` names.
"""

from streamlit.testing.v1 import AppTest

OPEN_KEY = "test-open-page"  # the url path of the page the next run opens (the test's own key)
PAGES = ("classify", "batch", "performance", "about")  # url paths, in the navigation's order


def _page_alone(url_path: str) -> None:  # AppTest.from_function runs this body as the app's script
    import importlib

    importlib.import_module(f"pages.{url_path}").main()


def _whole_app() -> None:  # likewise: streamlit_app.py, on the page the test asked for
    import importlib
    import runpy

    import streamlit as st

    from core.config import PROJECT_DIR

    url_path = st.session_state.pop("test-open-page", None)
    if url_path is not None:  # a page is known by its url path, as the navigation registers it
        st.switch_page(st.Page(importlib.import_module(f"pages.{url_path}").main, url_path=url_path))
    runpy.run_path(str(PROJECT_DIR / "streamlit_app.py"), run_name="__main__")


def page_alone(url_path: str, *, default_timeout: float) -> AppTest:
    """One page without the navigation around it: ``pages/<url_path>.py``'s ``main()``."""
    return AppTest.from_function(_page_alone, args=(url_path,), default_timeout=default_timeout)


def whole_app(*, default_timeout: float) -> AppTest:
    """``streamlit_app.py`` (its navigation, then the page it opens); :func:`open_page` switches."""
    return AppTest.from_function(_whole_app, default_timeout=default_timeout)


def open_page(app: AppTest, url_path: str) -> AppTest:
    """``app`` set to open the page at ``url_path`` on its next run (call ``run()``, as after
    AppTest's own ``switch_page``)."""
    if url_path not in PAGES:
        raise ValueError(f"no page at /{url_path}; the app's: {', '.join(PAGES)}")
    app.session_state[OPEN_KEY] = url_path
    return app
