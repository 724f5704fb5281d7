"""One end-to-end run in a real browser: `streamlit run` on loopback, driven by headless Chromium.

Uploads an X-ray through the file input, waits for the verdict and the heatmap, moves the
threshold with the keyboard, checks the verdict and the test-split figures change, visits every
page, and saves screenshots under tests/e2e/screenshots/ (git-ignored).
"""

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import PROJECT_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = PROJECT_DIR / "tests" / "e2e" / "screenshots"
XRAY_NAME = "x*ray*_[1]_$2$.jpg"
PAGES = {"performance": "Model performance", "batch": "Batch", "about": "About this model"}

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(PROJECT_DIR / "streamlit_app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true"],
        cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(process.pid, signal.SIGTERM)
        pytest.fail("streamlit did not answer its health check within 60 s")
    yield url
    os.killpg(process.pid, signal.SIGTERM)  # stop the server by its PID (and its group)
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def xray(tmp_path_factory) -> Path:
    shared = PROJECT_DIR.parent / "shared" / "datasets" / "fracatlas" / "images" / "fractured" / "IMG0000144.jpg"
    # Markdown in the name: the page must show it as typed (pages.shared.markdown_literal).
    target = tmp_path_factory.mktemp("upload") / XRAY_NAME
    if shared.is_file():
        shutil.copy(shared, target)
    else:
        pixels = np.random.default_rng(0).integers(0, 255, (454, 373), dtype=np.uint8)
        Image.fromarray(pixels).save(target)
    return target


@contextlib.contextmanager
def _page_at(url: str):
    """A headless Chromium page opened on ``url``; the browser is closed afterwards."""
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, timeout=60_000)
            yield page
        finally:
            browser.close()


def _sidebar_costs(page) -> str:
    return page.locator("[data-testid=stSidebar] [data-testid=stCaptionContainer]").last.inner_text()


def test_a_deep_link_on_a_fresh_server_opens_inside_the_app(server):
    # Runs first, on the fresh server: Streamlit's legacy pages/ mode is still on then.
    with _page_at(f"{server}/batch") as page:
        page.get_by_role("heading", name="Batch").first.wait_for(timeout=120_000)
        page.locator("[data-testid=stSidebar] >> text=Decision threshold").wait_for(timeout=60_000)
        navigation = page.locator("[data-testid=stSidebarNav]").inner_text()
        assert "Model performance" in navigation and "shared" not in navigation


def test_upload_threshold_and_every_page(server, xray):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with _page_at(server) as page:
        page.wait_for_selector("input[type=file]", state="attached", timeout=120_000)
        page.set_input_files("input[type=file]", str(xray))
        verdict = page.locator("text=/Fracture suspected|No fracture detected/").first
        verdict.wait_for(timeout=120_000)
        page.wait_for_function("document.querySelectorAll('[data-testid=stImage] img').length >= 2",
                               timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / "classify.png"), full_page=True)
        first_verdict, first_costs = verdict.inner_text(), _sidebar_costs(page)
        assert f"— {XRAY_NAME}: P(fractured)" in page.locator("[data-testid=stAlert]").first.inner_text()

        slider = page.locator("[data-testid=stSidebar] [data-testid=stSlider] input[type=range]")
        slider.focus()
        page.keyboard.press("End")  # threshold 1.0: nothing is called a fracture
        page.locator("text=No fracture detected").first.wait_for(timeout=30_000)
        page.wait_for_function(
            "(before) => { const c = document.querySelectorAll('[data-testid=stSidebar] "
            "[data-testid=stCaptionContainer]'); return c[c.length - 1].innerText !== before; }",
            arg=first_costs, timeout=30_000)
        assert _sidebar_costs(page) != first_costs
        page.keyboard.press("Home")  # threshold 0.0: everything is
        page.locator("text=Fracture suspected").first.wait_for(timeout=30_000)
        assert "Fracture suspected" in page.locator("text=/Fracture suspected/").first.inner_text()
        assert first_verdict  # the first answer came before any slider move
        page.screenshot(path=str(SCREENSHOTS / "classify_threshold_0.png"), full_page=True)

        for path, title in PAGES.items():
            page.goto(f"{server}/{path}", timeout=60_000)
            page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            assert page.locator("[data-testid=stException]").count() == 0
            page.screenshot(path=str(SCREENSHOTS / f"{path}.png"), full_page=True)


def test_a_file_over_the_upload_limit_gets_streamlits_size_message(server, tmp_path):
    # Playwright refuses in-memory buffers over 50 MB, so the 51 MiB file (a PNG signature and
    # zeros) goes through a temporary path, as a user's file would. The browser refuses it before
    # a byte reaches the app; tests/app/test_bad_uploads.py covers what the app says if one does.
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(51 * 1024 * 1024 - 8))
    with _page_at(server) as page:
        page.wait_for_selector("input[type=file]", state="attached", timeout=120_000)
        page.set_input_files("input[type=file]", str(huge))
        chip = page.locator("[data-testid=stFileChip]", has_text="huge.png")
        chip.wait_for(timeout=60_000)
        assert chip.get_attribute("aria-invalid") == "true"
        # Streamlit 1.67 marks the file red and says why in an alert for screen readers
        # and in a tooltip on hover.
        assert chip.get_by_role("alert").inner_text() == "Error: File must be 50.0MB or smaller."
        page.locator("[data-testid=stTooltipErrorHoverTarget]", has=chip).hover()
        tooltip = page.locator("[data-testid=stTooltipErrorContent]")
        tooltip.wait_for(timeout=10_000)
        assert tooltip.inner_text() == "File must be 50.0MB or smaller."
        page.wait_for_timeout(1500)  # a rerun, had there been one, would have shown by now
        assert page.locator("[data-testid=stException]").count() == 0
        assert page.locator("text=/Fracture suspected|No fracture detected|Could not read/").count() == 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "over_upload_limit.png"), full_page=True)
