"""Fixtures of the browser tests: one app server and one Chromium per test module, and a fresh
page (so a new Streamlit session) per test."""

import pytest

from bench import app_harness as harness


@pytest.fixture(scope="module")
def app():
    with harness.serve_app() as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with harness.chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser):
    """A fresh page in its own browser context, so a new Streamlit session."""
    page = browser.new_page(viewport=harness.VIEWPORT)
    # Every wait without a deadline of its own (clicks, reading text) gets the harness's generous
    # one instead of Playwright's 30 s, which a busy machine can exceed.
    page.set_default_timeout(harness.TIMEOUT_MS)
    yield page
    page.context.close()
