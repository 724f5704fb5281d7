"""The app in a real browser: `streamlit run` on loopback and headless Chromium, for the e2e
tests, the load test and the bench alike.

    with serve_app() as app, chromium() as browser:   # or launch_chromium(a Playwright driver)
        page = new_page(browser, app.url)
        upload(page, Path("xray.jpg"))
        wait_for_verdicts(page, ["xray.jpg"], images=2)   # the verdict, the X-ray and its heatmap
        shown_decision(page, "xray.jpg")                  # "fractured" or "not_fractured"

The server runs in its own process group, on a free port of 127.0.0.1 only, and is stopped with
that group. Its output is kept in memory (the last lines, for error messages), never written to
a file. The page helpers find things by what Streamlit renders (test ids, the uploader, the
sidebar's slider and buttons) and by the verdict words of :data:`core.reports.VERDICT_TEXT`,
never by the wording of a label that the pages may change.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.config import PROJECT_DIR
from core.reports import VERDICT_TEXT

APP_SCRIPT = PROJECT_DIR / "streamlit_app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")
VIEWPORT = {"width": 1400, "height": 1000}
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
LOG_LINES = 200
# Deadlines, not speeds: every wait below polls for a condition and ends as soon as it holds, so a
# generous deadline costs nothing when things go well; it only has to outlast a busy, shared
# 2-core machine (the app's first run imports TensorFlow and traces the model).
STARTUP_TIMEOUT_S = 300.0
TIMEOUT_MS = 300_000  # the default deadline of each page wait
UPLOADER = "input[type=file]"
# The sidebar's only slider is the threshold; its range input's value attribute holds what it
# shows, the session's threshold snapped to the slider's 0.001 step.
SLIDER_INPUT = "[data-testid=stSidebar] [data-testid=stSlider] input[type=range]"
VERDICTS = {text: decision for decision, text in VERDICT_TEXT.items()}  # shown words -> decision
VERDICT_PATTERN = re.compile("|".join(re.escape(text) for text in VERDICTS))

# Pictures on screen: <img> of st.image fully loaded, and the images a Plotly figure draws in its
# SVG (the viewer's X-ray, and its heatmap, which Plotly rasterises), once they have a source.
PICTURES_SHOWN = """() => Array.from(document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img'))
        .filter(i => i.complete && i.naturalWidth > 0).length
    + Array.from(document.querySelectorAll('[data-testid=stMain] [data-testid=stPlotlyChart] svg image'))
        .filter(i => (i.getAttribute('href') || i.getAttribute('xlink:href') || '').length > 0).length"""
# The verdict alert of every named file (an alert naming the file and saying a verdict; the
# "does not look like a radiograph" warning names neither), and at least ``images`` pictures
# fully loaded. One function for the sync and async Playwright APIs alike.
ANSWER_SHOWN = """({names, verdicts, images}) => {
    const alerts = Array.from(document.querySelectorAll('[data-testid=stAlert]')).map(a => a.innerText);
    const named = names.every(name => alerts.some(text => text.includes(name)
                                                          && verdicts.some(v => text.includes(v))));
    return named && (%s)() >= images;
}""" % PICTURES_SHOWN
# Streamlit marks its root with the script's state and fades the elements of the previous run
# (data-stale) until the new run has replaced them.
APP_IDLE = """() => {
    const app = document.querySelector('[data-testid=stApp]');
    return app !== null && app.dataset.testScriptState === 'notRunning'
        && document.querySelectorAll('[data-testid=stElementContainer][data-stale=true]').length === 0;
}"""


@dataclass(frozen=True)
class AppServer:
    """A running `streamlit run`, from :func:`serve_app`."""

    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen
    launched: float  # time.perf_counter() when the process was started
    healthy_s: float  # seconds from launch until /_stcore/health answered
    log_tail: collections.deque  # the server's last output lines (memory only)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self, lines: int = 40) -> str:
        return "\n".join(list(self.log_tail)[-lines:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve_app(*, flags: Sequence[str] = (), env: dict[str, str] | None = None,
              script: Path = APP_SCRIPT, startup_timeout_s: float = STARTUP_TIMEOUT_S,
              poll_s: float = 0.05) -> Iterator[AppServer]:
    """`streamlit run script` on a free loopback port until the block ends.

    Args:
        flags: extra command-line options, e.g. ``("--server.fileWatcherType", "auto")``.
        env: variables added to this process's environment for the server.
        poll_s: health-check interval; fine, because the bench times the start-up.

    Raises:
        RuntimeError: if the server exits or does not pass its health check in time (the
            message holds its last output lines).
    """
    port = free_port()
    launched = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", *flags],
        cwd=PROJECT_DIR, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    log_tail: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
    # A full pipe would block the server, so a thread drains it into memory.
    reader = threading.Thread(target=lambda: log_tail.extend(line.decode(errors="replace").rstrip()
                                                             for line in process.stdout), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log_tail, startup_timeout_s, poll_s)
        yield AppServer(url, process, launched, time.perf_counter() - launched, log_tail)
    finally:
        stop_process_group(process)
        reader.join(timeout=5)


def _wait_healthy(url: str, process: subprocess.Popen, log_tail, timeout_s: float, poll_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {process.returncode}" if process.poll() is not None \
                else f"did not pass its health check within {timeout_s:.0f} s"
            raise RuntimeError(f"streamlit {state}; its last output:\n" + "\n".join(log_tail))
        time.sleep(poll_s)


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process's own group (by its PID), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def launch_chromium(playwright):
    """Headless Debian Chromium from a sync or async Playwright driver (``await`` it for async)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), timeout=TIMEOUT_MS)


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium (sync API) until the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = launch_chromium(driver)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, url: str | None = None, *, timeout_ms: int = TIMEOUT_MS, viewport: dict | None = None):
    """A page of ``browser`` (at ``viewport``, the harness's by default); opened on ``url``, if
    given, until the app's first run there has ended."""
    page = browser.new_page(viewport=viewport or VIEWPORT)
    page.set_default_timeout(timeout_ms)  # every implicit wait too (Playwright's own default is 30 s)
    if url is not None:
        page.goto(url, timeout=timeout_ms)
        wait_for_idle(page, timeout_ms)
    return page


# --- page helpers (sync API) ----------------------------------------------------------------------

def wait_for_idle(page, timeout_ms: int = TIMEOUT_MS) -> None:
    """Until the script run has finished and its output replaced the previous run's."""
    page.wait_for_function(APP_IDLE, timeout=timeout_ms, polling=100)


def wait_for_uploader(page, timeout_ms: int = TIMEOUT_MS) -> None:
    page.wait_for_selector(UPLOADER, state="attached", timeout=timeout_ms)


def upload(page, *files, timeout_ms: int = TIMEOUT_MS) -> None:
    """Puts ``files`` (paths, or Playwright payload dicts for bytes in memory) in the page's uploader."""
    wait_for_uploader(page, timeout_ms)
    page.set_input_files(UPLOADER, [str(item) if isinstance(item, Path) else item for item in files],
                         timeout=timeout_ms)


def wait_for_verdicts(page, names: Sequence[str], *, images: int = 0, timeout_ms: int = TIMEOUT_MS,
                      polling: str | int = "raf") -> None:
    """Until a verdict naming each file is shown, and at least ``images`` pictures have loaded.

    ``polling="raf"`` checks on every animation frame, as precise as the bench's latencies need.
    """
    page.wait_for_function(ANSWER_SHOWN, arg=answer_shown_arg(names, images), timeout=timeout_ms,
                           polling=polling)


def answer_shown_arg(names: Sequence[str], images: int = 0) -> dict:
    """The argument of :data:`ANSWER_SHOWN` (for callers of the async API)."""
    return {"names": list(names), "verdicts": list(VERDICTS), "images": images}


def verdict_alert(page, name: str):
    """The locator of the verdict alert naming ``name``."""
    return page.locator("[data-testid=stAlert]").filter(has_text=name).filter(has_text=VERDICT_PATTERN)


def verdict_text(page, name: str) -> str:
    return verdict_alert(page, name).first.inner_text().strip()


def shown_decision(page, name: str) -> str:
    """``"fractured"`` or ``"not_fractured"``, as the page says it for ``name``."""
    text = verdict_text(page, name)
    said = [decision for words, decision in VERDICTS.items() if words in text]
    if len(said) != 1:
        raise AssertionError(f"no single verdict in the alert for {name}: {text!r}")
    return said[0]


def exceptions_shown(page) -> int:
    return page.locator("[data-testid=stException]").count()


# Records, from before a click, whether the app has started a run since: a wait for idle right
# after the click could otherwise end before the click's run began, on the previous page.
WATCH_FOR_RUN = """() => {
    const app = document.querySelector('[data-testid=stApp]');
    window.__harnessRunSeen = false;
    if (window.__harnessRunWatcher) window.__harnessRunWatcher.disconnect();
    window.__harnessRunWatcher = new MutationObserver(records => {
        if (app.dataset.testScriptState !== 'notRunning'
            || records.some(record => record.oldValue !== 'notRunning')) window.__harnessRunSeen = true;
    });
    window.__harnessRunWatcher.observe(app, {attributes: true, attributeOldValue: true,
                                             attributeFilter: ['data-test-script-state']});
}"""
# A collapsed sidebar is moved off screen, to the left, and has no width.
SIDEBAR_OPEN = """() => { const rect = document.querySelector('[data-testid=stSidebar]').getBoundingClientRect();
    return rect.left >= 0 && rect.width > 0; }"""
# No CSS transition or animation of the sidebar (its slide) is still running, however slowly a
# busy machine draws it; an infinite one (a spinner) would never end and is not waited for.
SIDEBAR_STILL = """() => document.querySelector('[data-testid=stSidebar]').getAnimations({subtree: true})
    .every(a => a.playState !== 'running' || a.effect === null
                || a.effect.getComputedTiming().iterations === Infinity)"""
RAN_AND_IDLE = f"() => window.__harnessRunSeen === true && ({APP_IDLE})()"
# The answer as the finished run left it: false until the run has ended, nothing stale remains and
# :data:`ANSWER_SHOWN` holds, then the pictures and exceptions counted in that same instant. A
# count taken in a later call can catch Plotly redrawing a chart (an <image> without its source yet).
SETTLED_ANSWER = """(arg) => {
    if (!(%s)() || !(%s)(arg)) return false;
    return {pictures: (%s)(), exceptions: document.querySelectorAll('[data-testid=stException]').length};
}""" % (APP_IDLE, ANSWER_SHOWN, PICTURES_SHOWN)


def open_from_sidebar(page, title: str, *, timeout_ms: int = TIMEOUT_MS) -> None:
    """Clicks the sidebar's navigation link titled ``title`` (as a person would) and waits until
    the run that the click started has ended."""
    links = page.locator("[data-testid=stSidebarNav] [data-testid=stSidebarNavLink]")
    link = links.filter(has=page.get_by_text(title, exact=True))
    if not sidebar_open(page):
        # A phone starts with the sidebar collapsed (moved off screen): open it as a person would.
        page.locator("[data-testid=stExpandSidebarButton]").click(timeout=timeout_ms)
        page.wait_for_function(f"() => ({SIDEBAR_OPEN})() && ({SIDEBAR_STILL})()", timeout=timeout_ms, polling=50)
    page.evaluate(WATCH_FOR_RUN)
    link.click(timeout=timeout_ms)
    page.wait_for_function(RAN_AND_IDLE, timeout=timeout_ms, polling=50)


def sidebar_open(page) -> bool:
    return page.evaluate(SIDEBAR_OPEN)


def results_text(page) -> list[str]:
    """The text of each shown element of the main column but its uploaders and buttons; a table's cells
    (from the grid's accessible copy: the grid itself is drawn on a canvas) joined by "|".

    What a page shows about its uploads (verdicts, probabilities, captions, tables), without what
    depends on the uploader widget itself: Streamlit draws a new, empty uploader on each visit.
    """
    return page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid=stMain] [data-testid=stElementContainer]'))
        .filter(e => e.getClientRects().length > 0  // not hidden (the compact threshold on a wide screen)
            && !e.querySelector('[data-testid=stElementContainer], [data-testid=stFileUploader], '
                                + '[data-testid=stButton], [data-testid=stDownloadButton]'))
        .map(e => {
            const cells = Array.from(e.querySelectorAll('[role=columnheader], [role=gridcell]'));
            return (cells.length ? cells.map(c => c.innerText.trim()).join('|') : e.innerText).trim();
        }).filter(text => text.length > 0)""")


def loaded_images(page) -> int:
    """How many pictures of the main column are on screen (see :data:`PICTURES_SHOWN`)."""
    return page.evaluate(PICTURES_SHOWN)


def sidebar_links(page) -> list[str]:
    """The titles of the sidebar's navigation links, in order."""
    return [text.strip().splitlines()[-1] for text in
            page.locator("[data-testid=stSidebarNav] [data-testid=stSidebarNavLink]").all_inner_texts()]


def threshold_slider(page):
    """The sidebar's threshold slider's input (focus it to move it with the keyboard)."""
    return page.locator(SLIDER_INPUT)


def shown_threshold(page) -> float:
    return float(threshold_slider(page).get_attribute("value"))


def preset_buttons(page) -> list:
    """The sidebar's preset buttons, in the order of :data:`core.thresholds.PRESETS` (whatever
    their labels say)."""
    # Streamlit also renders a hidden copy of a button with help text, to measure it.
    return page.locator("[data-testid=stSidebar] [data-testid=stButton] button").filter(visible=True).all()


COMPACT_THRESHOLD = ".st-key-compact-threshold"  # the threshold controls atop the page, for phones


def compact_preset_buttons(page) -> list:
    """The preset buttons of the compact threshold control (open it first: :func:`open_compact_threshold`)."""
    return page.locator(f"{COMPACT_THRESHOLD} [data-testid=stButton] button").filter(visible=True).all()


def open_compact_threshold(page, timeout_ms: int = TIMEOUT_MS) -> None:
    page.locator(f"{COMPACT_THRESHOLD} summary").click(timeout=timeout_ms)
    page.locator(f"{COMPACT_THRESHOLD} [data-testid=stSlider]").wait_for(state="visible", timeout=timeout_ms)


def choose_preset(page, index: int, expected: float, *, tolerance: float = 6e-4,
                  timeout_ms: int = TIMEOUT_MS, buttons: list | None = None) -> float:
    """Clicks the ``index``-th preset button (of the sidebar's, or of ``buttons``) and waits until
    the sidebar's slider shows ``expected`` (within ``tolerance``: the slider shows its value
    snapped to its 0.001 step) and the run has ended.

    Returns the slider's value; a timeout means the button set another threshold.
    """
    (buttons or preset_buttons(page))[index].click(timeout=timeout_ms)
    page.wait_for_function(
        "([selector, expected, tolerance]) => { const s = document.querySelector(selector);"
        " return s !== null && Math.abs(Number(s.getAttribute('value')) - expected) <= tolerance; }",
        arg=[SLIDER_INPUT, expected, tolerance], timeout=timeout_ms, polling=100)
    wait_for_idle(page, timeout_ms)
    return shown_threshold(page)


def upload_to_answer_seconds(page, url: str, images: list[Path]) -> list[float]:
    """Seconds from upload to verdict + both images, each image new to the server's caches."""
    seconds = []
    for image in images:
        page.goto(url, timeout=TIMEOUT_MS)
        wait_for_uploader(page)
        wait_for_idle(page)
        page.wait_for_timeout(500)  # a quiet page before the clock starts (a measurement, not a wait)
        started = time.perf_counter()
        upload(page, image)
        wait_for_verdicts(page, [image.name], images=2)
        seconds.append(time.perf_counter() - started)
    return seconds
