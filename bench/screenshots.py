"""Screenshots of every page, wide and on a phone, for docs/screenshots/ and the README.

    .venv/bin/python -m bench.screenshots [--out docs/screenshots]

Serves the app (`streamlit run` on loopback) and drives headless Chromium as a person would, at
1440x900 and at 390x844: Classify with one sample X-ray classified, Batch with every sample,
Model performance and About, each page opened by the sidebar's links in one session. Each picture
is what fits on the screen (the first screen is what a visitor judges a page by). The samples
are the FracAtlas test images shipped in assets/samples/ (CC BY 4.0), so no data set is needed.
Every wait is for the app to be idle and its pictures and charts drawn, never a fixed sleep.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import app_harness
from core.config import PROJECT_DIR
from core.samples import SAMPLES_DIR, load_samples

OUT_DIR = PROJECT_DIR / "docs" / "screenshots"
VIEWPORTS = {"desktop": app_harness.DESKTOP, "phone": app_harness.PHONE}
PAGES = ("Classify", "Batch", "Model performance", "About")
FILE_NAMES = {"Classify": "classify", "Batch": "batch", "Model performance": "performance", "About": "about"}
# Every <img> of the page loaded, every Plotly chart drawn, and no widget still a placeholder
# (Streamlit loads some widgets' code on first use and shows a skeleton meanwhile).
DRAWN = """() => Array.from(document.querySelectorAll('[data-testid=stMain] img')).every(i => i.complete)
    && Array.from(document.querySelectorAll('[data-testid=stPlotlyChart]'))
        .every(c => c.querySelector('.main-svg') !== null)
    && document.querySelector('[data-testid^=stSkeleton]') === null"""


def wait_until_drawn(page, timeout_ms: int = 120_000) -> None:
    app_harness.wait_for_idle(page, timeout_ms)
    page.wait_for_function(DRAWN, timeout=timeout_ms, polling=100)
    page.evaluate("() => document.fonts.ready")


def close_sidebar_if_it_covers(page, viewport: dict) -> None:
    """On a phone the open sidebar covers the page; a person closes it to read."""
    if viewport["width"] > app_harness.PHONE["width"] or not app_harness.sidebar_open(page):
        return
    page.locator("[data-testid=stSidebar]").hover()
    page.locator("[data-testid=stSidebarCollapseButton] button").click()
    page.wait_for_function(f"() => !({app_harness.SIDEBAR_OPEN})()", timeout=10_000)
    page.wait_for_timeout(400)  # the end of its sliding animation (no event marks it)


def sample_paths() -> tuple[Path, list[Path]]:
    """One fractured sample (for Classify) and all of them (for Batch)."""
    samples = load_samples()
    fractured = next((sample for sample in samples if sample.fractured), samples[0])
    return SAMPLES_DIR / fractured.file_name, [SAMPLES_DIR / sample.file_name for sample in samples]


def screenshot_pages(browser, url: str, name: str, viewport: dict, out_dir: Path) -> list[Path]:
    """One session through every page by the sidebar's links; returns the files written."""
    single, batch = sample_paths()
    page = app_harness.new_page(browser, url, viewport=viewport)
    saved = []
    try:
        for title in PAGES:
            if title != "Classify":
                app_harness.open_from_sidebar(page, title)
            if title == "Classify":
                app_harness.upload(page, single)
                app_harness.wait_for_verdicts(page, [single.name], images=2)
            elif title == "Batch":
                app_harness.upload(page, *batch)
                page.locator("[data-testid=stDataFrame]").wait_for(timeout=120_000)
            wait_until_drawn(page)
            close_sidebar_if_it_covers(page, viewport)
            page.evaluate("() => window.scrollTo(0, 0)")
            page.mouse.move(0, viewport["height"] - 1)  # no tooltip of the last click
            path = out_dir / f"{FILE_NAMES[title]}-{name}.png"
            page.screenshot(path=str(path))
            saved.append(path)
            if app_harness.exceptions_shown(page):
                raise RuntimeError(f"{title} shows an exception at {name} width; see {path}")
    finally:
        page.context.close()
    return saved


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the PNG files")
    args = parser.parse_args(argv)
    if not app_harness.CHROMIUM.exists():
        raise SystemExit(f"no Chromium at {app_harness.CHROMIUM}")
    args.out.mkdir(parents=True, exist_ok=True)
    with app_harness.serve_app() as app, app_harness.chromium() as browser:
        for name, viewport in VIEWPORTS.items():
            for path in screenshot_pages(browser, app.url, name, viewport, args.out):
                print(path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
