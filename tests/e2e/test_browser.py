"""End-to-end runs in a real browser: `streamlit run` on loopback, driven by headless Chromium
through bench/app_harness.py, as a person would: the uploader, the sidebar's threshold slider and
preset buttons, and the sidebar's links from page to page.

Screenshots go to tests/e2e/screenshots/ (git-ignored).
"""

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from bench import app_harness as harness
from bench.screenshots import DRAWN
from core import artifacts
from core.config import PROJECT_DIR
from core.reports import VERDICT_TEXT
from core.thresholds import PRESETS, decide
from tests.e2e import between_presets
from training.config import DEFAULT_DATA_DIR

SCREENSHOTS = PROJECT_DIR / "tests" / "e2e" / "screenshots"
XRAY_NAME = "x*ray*_[1]_$2$&copy;.jpg"  # markdown and an HTML entity in the name: shown as typed
NAVIGATION = ("Classify", "Batch", "Model performance", "About")
HEADINGS = {"Classify": "Bone fracture detection", "Batch": "Batch", "Model performance": "Model performance",
            "About": "About this model"}
PATHS = {"Classify": "", "Batch": "batch", "Model performance": "performance", "About": "about"}
WITH_THRESHOLD = ("Classify", "Batch", "Model performance")  # the pages that draw the threshold sidebar
PROBABILITY = re.compile(r"P\(fractured\) = ([0-9.]+)")
WAIT_MS = harness.TIMEOUT_MS  # deadlines for conditions, generous for a busy machine; never a speed check
# The run has ended, the slider shows ``threshold`` and the verdict naming ``name`` says ``verdict``.
DECISION_SHOWN = """({name, verdict, threshold, slider}) => (%s)()
    && Number(document.querySelector(slider)?.getAttribute('value')) === threshold
    && Array.from(document.querySelectorAll('[data-testid=stAlert]'))
        .some(a => a.innerText.includes(name) && a.innerText.includes(verdict))""" % harness.APP_IDLE

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not harness.CHROMIUM.exists(), reason=f"no Chromium at {harness.CHROMIUM}")


@pytest.fixture(scope="module")
def xray(tmp_path_factory):
    shared = DEFAULT_DATA_DIR / "images" / "fractured" / "IMG0000144.jpg"
    target = tmp_path_factory.mktemp("upload") / XRAY_NAME
    if shared.is_file():
        shutil.copy(shared, target)
    else:
        pixels = np.random.default_rng(0).integers(0, 255, (454, 373), dtype=np.uint8)
        Image.fromarray(pixels).save(target)
    return target


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)  # no tooltip of the last button clicked over the page
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _sidebar_costs(page) -> str:
    return page.locator("[data-testid=stSidebar] [data-testid=stCaptionContainer]").last.inner_text()


def _wait_for_decision(page, name: str, decision: str, threshold: float) -> None:
    page.wait_for_function(DECISION_SHOWN, arg={"name": name, "verdict": VERDICT_TEXT[decision], "threshold": threshold,
                                                "slider": harness.SLIDER_INPUT}, timeout=WAIT_MS, polling=100)


def _heading(page, title: str):
    return page.get_by_role("heading", name=title).first


def test_a_deep_link_on_a_fresh_server_opens_inside_the_app(app, page):
    # Runs first, on the fresh server: Streamlit's legacy pages/ mode is still on then, and would
    # list every module of pages/ as a page.
    page.goto(f"{app.url}/batch", timeout=WAIT_MS)
    _heading(page, "Batch").wait_for(timeout=WAIT_MS)
    harness.threshold_slider(page).wait_for(state="attached", timeout=WAIT_MS)
    assert harness.sidebar_links(page) == list(NAVIGATION)


def test_upload_threshold_and_every_page_through_the_sidebar(app, page, xray):
    page.goto(app.url, timeout=WAIT_MS)
    harness.upload(page, xray)
    harness.wait_for_verdicts(page, [XRAY_NAME], images=2)
    _screenshot(page, "classify")
    first_verdict, first_costs = harness.verdict_text(page, XRAY_NAME), _sidebar_costs(page)
    assert XRAY_NAME in first_verdict, first_verdict  # the literal name, not rendered markdown
    assert PROBABILITY.search(first_verdict), first_verdict

    harness.threshold_slider(page).focus()
    page.keyboard.press("End")  # threshold 1.0: nothing is called a fracture
    _wait_for_decision(page, XRAY_NAME, "not_fractured", 1.0)
    page.wait_for_function(
        "(before) => { const c = document.querySelectorAll('[data-testid=stSidebar] "
        "[data-testid=stCaptionContainer]'); return c[c.length - 1].innerText !== before; }",
        arg=first_costs, timeout=WAIT_MS)
    assert _sidebar_costs(page) != first_costs
    page.keyboard.press("Home")  # threshold 0.0: everything is
    _wait_for_decision(page, XRAY_NAME, "fractured", 0.0)
    assert harness.shown_decision(page, XRAY_NAME) == "fractured"
    assert harness.shown_threshold(page) == 0.0
    _screenshot(page, "classify_threshold_0")

    for title in (*NAVIGATION[1:], NAVIGATION[0]):
        harness.open_from_sidebar(page, title)
        _heading(page, HEADINGS[title]).wait_for(timeout=WAIT_MS)
        assert page.url.rstrip("/") == f"{app.url}/{PATHS[title]}".rstrip("/")
        page.wait_for_function(DRAWN, timeout=WAIT_MS, polling=100)  # charts and images drawn
        assert harness.exceptions_shown(page) == 0, title
        if title in WITH_THRESHOLD:
            assert harness.shown_threshold(page) == 0.0, f"{title} forgot the threshold chosen on Classify"
        if title != "Classify":
            _screenshot(page, PATHS[title])


def test_a_file_over_the_upload_limit_gets_streamlits_size_message(app, page, tmp_path):
    # Playwright refuses in-memory buffers over 50 MB, so the 51 MiB file (a PNG signature and
    # zeros) goes through a temporary path, as a user's file would. The browser refuses it before
    # a byte reaches the app; tests/app/test_bad_uploads.py covers what the app says if one does.
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(51 * 1024 * 1024 - 8))
    page.goto(app.url, timeout=WAIT_MS)
    harness.upload(page, huge)
    chip = page.locator("[data-testid=stFileChip]", has_text="huge.png")
    chip.wait_for(timeout=WAIT_MS)
    assert chip.get_attribute("aria-invalid") == "true"
    # Streamlit 1.67 marks the file red and says why in an alert for screen readers
    # and in a tooltip on hover.
    assert chip.get_by_role("alert").inner_text() == "Error: File must be 50.0MB or smaller."
    page.locator("[data-testid=stTooltipErrorHoverTarget]", has=chip).hover()
    tooltip = page.locator("[data-testid=stTooltipErrorContent]")
    tooltip.wait_for(timeout=WAIT_MS)
    assert tooltip.inner_text() == "File must be 50.0MB or smaller."
    page.wait_for_timeout(1500)  # a window for a rerun to start, had the file reached the app
    harness.wait_for_idle(page, WAIT_MS)  # and for any such run to end before looking
    assert harness.exceptions_shown(page) == 0
    assert page.locator("text=/Fracture suspected|No fracture detected|Could not read/").count() == 0
    _screenshot(page, "over_upload_limit")


@pytest.fixture(scope="module")
def radiographs_between_presets():
    if not (DEFAULT_DATA_DIR / "labels.csv").is_file():
        pytest.skip(f"no FracAtlas at {DEFAULT_DATA_DIR}: the test needs real radiographs")
    thresholds = artifacts.load_thresholds().values
    picked = between_presets.pick_between_presets(between_presets.fracatlas_test_paths(DEFAULT_DATA_DIR), thresholds)
    if not picked:
        pytest.skip("no FracAtlas test image lies between two preset thresholds")
    return picked


def test_the_app_the_cli_and_the_browser_test_all_give_the_same_verdict_at_each_named_threshold(
        app, page, radiographs_between_presets):
    thresholds = artifacts.load_thresholds()
    names = [radiograph.path.name for radiograph in radiographs_between_presets]
    cli = between_presets.cli_answers([radiograph.path for radiograph in radiographs_between_presets],
                                      [preset.name for preset in PRESETS])

    page.goto(app.url, timeout=WAIT_MS)
    harness.upload(page, *(radiograph.path for radiograph in radiographs_between_presets))
    harness.wait_for_verdicts(page, names, images=2 * len(names), timeout_ms=2 * WAIT_MS)
    assert len(harness.preset_buttons(page)) == len(PRESETS)
    shown: dict[str, dict[str, str]] = {}
    for index, preset in enumerate(PRESETS):
        harness.choose_preset(page, index, thresholds[preset.name])
        shown[preset.name] = {name: harness.shown_decision(page, name) for name in names}
        for name in names:  # and the same image: the page shows the CLI's probability to 3 decimals
            probability = PROBABILITY.search(harness.verdict_text(page, name))
            assert probability, harness.verdict_text(page, name)
            assert float(probability.group(1)) == pytest.approx(cli[preset.name][name].probability_fractured,
                                                                abs=5e-4 + 1e-6)
        _screenshot(page, f"verdicts_{preset.name}")

    for radiograph in radiographs_between_presets:
        name = radiograph.path.name
        by_cli = {preset: cli[preset][name].decision for preset in cli}
        by_app = {preset: shown[preset][name] for preset in shown}
        by_rule = {preset.name: decide(cli[preset.name][name].probability_fractured, thresholds[preset.name])
                   for preset in PRESETS}
        assert by_app == by_cli == by_rule, (name, radiograph.probability_fractured, dict(thresholds.values))
        assert all(cli[preset.name][name].threshold == round(thresholds[preset.name], 6) for preset in PRESETS)
        # The image was picked between two presets, so some preset calls it a fracture and another not.
        assert set(by_cli.values()) == {"fractured", "not_fractured"}, (name, by_cli)
