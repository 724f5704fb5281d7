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
    yield page
    page.context.close()
