"""Issue 12's bug, in a real browser: the threshold, the uploads and their verdicts survive every
page switch made through the sidebar's links (one Streamlit session throughout).

The path of the issue: a normal knee uploaded on Classify, the *Few false alarms* preset, Batch,
back to Classify; then every page by the sidebar's links and back, with uploads on Batch too.
Opening a page by its URL would start a fresh session, which is why the earlier tests missed it.
"""

import csv

import pytest

from bench import app_harness as harness
from core import artifacts
from core.thresholds import PRESETS
from training.config import DEFAULT_DATA_DIR

NAVIGATION = ("Classify", "Batch", "Model performance", "About")
WITH_THRESHOLD = ("Classify", "Batch", "Model performance")  # the pages that draw the threshold sidebar
NORMAL_KNEE = "IMG0000230"  # test split, not fractured, region leg, labelled KNEE on the film
OTHER_NORMAL = "IMG0000234"  # another test-split knee for the batch
FRACTURED = "IMG0000144"
SPECIFIC = next(index for index, preset in enumerate(PRESETS) if preset.name == "specific")

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not harness.CHROMIUM.exists(), reason=f"no Chromium at {harness.CHROMIUM}")


DEEP_LINKS = {"batch": "Batch", "performance": "Model performance", "about": "About this model"}  # url path: heading


@pytest.mark.parametrize("url_path", DEEP_LINKS)
def test_a_deep_link_on_a_fresh_server_opens_the_page_inside_the_app(browser, url_path):
    # A server of its own, opened first by the deep link: Streamlit's legacy pages/ mode is on
    # until a session calls st.navigation, and runs pages/<url_path>.py alone; the page hands the
    # run to streamlit_app.py, so the app's navigation (four links, not the files) is drawn.
    with harness.serve_app() as server:
        page = browser.new_page(viewport=harness.VIEWPORT)
        try:
            page.goto(f"{server.url}/{url_path}", timeout=120_000)
            page.get_by_role("heading", name=DEEP_LINKS[url_path]).first.wait_for(timeout=120_000)
            harness.wait_for_idle(page)
            assert page.url == f"{server.url}/{url_path}"
            assert harness.sidebar_links(page) == list(NAVIGATION)
            assert page.locator("[role=dialog]").count() == 0  # no "Page not found"
            assert harness.exceptions_shown(page) == 0
        finally:
            page.context.close()


def _fracatlas_path(image_id: str):
    labels = DEFAULT_DATA_DIR / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"no FracAtlas at {DEFAULT_DATA_DIR}: the test uploads real radiographs")
    with open(labels, newline="") as handle:
        row = next(row for row in csv.DictReader(handle) if row["image_id"] == image_id)
    return DEFAULT_DATA_DIR / row["path"]


def _shown_on(page, title: str) -> dict:
    """What the page shows that must not change on a round trip: the threshold on the slider,
    the text of its results (tables included) and how many of its pictures are shown."""
    page.wait_for_timeout(500)  # images of the new run start loading
    page.wait_for_function("() => Array.from(document.querySelectorAll('[data-testid=stMain] img'))"
                           ".every(i => i.complete) && Array.from(document.querySelectorAll("
                           "'[data-testid=stMain] [data-testid=stDataFrame]'))"
                           ".every(table => table.querySelector('[role=gridcell]') !== null)", timeout=harness.TIMEOUT_MS)
    return {"threshold": harness.shown_threshold(page) if title in WITH_THRESHOLD else None,
            "results": harness.results_text(page), "images": harness.loaded_images(page)}


def _wait_for_verdict(page, name: str, failure: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:  # the run has ended (open_from_sidebar waited): the verdict is shown or it never will be
        harness.wait_for_verdicts(page, [name], images=2, timeout_ms=harness.TIMEOUT_MS)
    except PlaywrightTimeout:
        pytest.fail(f"{failure}; the page shows: {harness.results_text(page)}")


def test_threshold_uploads_and_verdicts_survive_every_page_switch(app, page):
    knee, other, fractured = (_fracatlas_path(image_id) for image_id in (NORMAL_KNEE, OTHER_NORMAL, FRACTURED))
    specific = artifacts.load_thresholds()["specific"]

    # 1. A normal knee on Classify.
    page.goto(app.url, timeout=120_000)
    harness.upload(page, knee)
    harness.wait_for_verdicts(page, [knee.name], images=2)
    # 2. The "Few false alarms" preset.
    assert harness.choose_preset(page, SPECIFIC, specific) == pytest.approx(specific, abs=6e-4)
    harness.wait_for_verdicts(page, [knee.name], images=2)
    verdict = harness.verdict_text(page, knee.name)
    assert harness.shown_decision(page, knee.name) == "not_fractured", verdict
    assert f"{specific:.3f}" in verdict, verdict
    classify = _shown_on(page, "Classify")

    # 3. Batch by the sidebar, then Classify again.
    harness.open_from_sidebar(page, "Batch")
    assert harness.shown_threshold(page) == pytest.approx(specific, abs=6e-4), "Batch reset the threshold"
    harness.open_from_sidebar(page, "Classify")
    assert harness.shown_threshold(page) == pytest.approx(specific, abs=6e-4), "Classify reset the threshold"
    _wait_for_verdict(page, knee.name, "the upload and its verdict are gone after Batch -> Classify")
    assert harness.verdict_text(page, knee.name) == verdict
    assert _shown_on(page, "Classify") == classify

    # Uploads on Batch too, then every page by the sidebar and back.
    harness.open_from_sidebar(page, "Batch")
    harness.upload(page, knee, other, fractured)
    page.locator("[data-testid=stDataFrame] [role=gridcell]", has_text=fractured.name).wait_for(
        state="attached", timeout=120_000)
    harness.wait_for_idle(page)
    batch = _shown_on(page, "Batch")
    assert any(fractured.name in text for text in batch["results"]), "\n".join(batch["results"])
    shown = {"Classify": classify, "Batch": batch}
    for title in (*NAVIGATION, *reversed(NAVIGATION)):
        harness.open_from_sidebar(page, title)
        assert harness.exceptions_shown(page) == 0, title
        now = _shown_on(page, title)
        if title in WITH_THRESHOLD:
            assert now["threshold"] == pytest.approx(specific, abs=6e-4), f"{title} reset the threshold"
        if title in shown:
            assert now == shown[title], f"{title} lost or changed its uploads or verdicts"
    assert harness.verdict_text(page, knee.name) == verdict


def _in_first_screen(page, locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"]


def test_on_a_phone_the_verdict_comes_first_and_the_threshold_is_reachable_without_covering_it(browser, app):
    knee = _fracatlas_path(NORMAL_KNEE)
    specific = artifacts.load_thresholds()["specific"]
    page = harness.new_page(browser, app.url, viewport=harness.PHONE)
    try:
        harness.upload(page, knee)
        harness.wait_for_verdicts(page, [knee.name], images=2)
        harness.wait_for_idle(page)
        assert not harness.sidebar_open(page), "the sidebar covers the page on a phone"
        assert _in_first_screen(page, harness.verdict_alert(page, knee.name).first)
        harness.open_compact_threshold(page)
        buttons = harness.compact_preset_buttons(page)
        assert len(buttons) == len(PRESETS)
        assert harness.choose_preset(page, SPECIFIC, specific, buttons=buttons) == pytest.approx(specific, abs=6e-4)
        assert f"{specific:.3f}" in harness.verdict_text(page, knee.name)
        assert not harness.sidebar_open(page)
        alert = harness.verdict_alert(page, knee.name).first
        alert.scroll_into_view_if_needed()
        assert _in_first_screen(page, alert)
    finally:
        page.context.close()


def test_on_a_wide_screen_the_compact_threshold_control_is_hidden(page, app):
    page.goto(app.url, timeout=120_000)
    page.locator("[data-testid=stSidebar] [data-testid=stSlider]").wait_for(state="visible", timeout=120_000)
    harness.wait_for_idle(page)
    assert page.locator(harness.COMPACT_THRESHOLD).count() == 1  # drawn, and hidden by the wide screen's CSS
    assert not page.locator(harness.COMPACT_THRESHOLD).first.is_visible()
