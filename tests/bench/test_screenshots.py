"""`python -m bench.screenshots` serves the app and saves every page at both widths."""

import subprocess
import sys

import pytest
from PIL import Image

from bench import app_harness, screenshots
from core.config import PROJECT_DIR

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
# A guard against a hung run, not a speed check: 8 screenshots of a real app on a shared machine.
RUN_TIMEOUT_S = 1800

pytestmark = pytest.mark.skipif(not app_harness.CHROMIUM.exists(), reason=f"no Chromium at {app_harness.CHROMIUM}")


def test_every_page_is_saved_at_the_desktop_and_the_phone_size(tmp_path):
    run = subprocess.run([sys.executable, "-m", "bench.screenshots", "--out", str(tmp_path)], cwd=PROJECT_DIR,
                         capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-3000:]
    for page in screenshots.PAGES:
        for width_name, viewport in screenshots.VIEWPORTS.items():
            path = tmp_path / f"{screenshots.FILE_NAMES[page]}-{width_name}.png"
            assert path.is_file(), path
            with Image.open(path) as picture:
                assert picture.size == (viewport["width"], viewport["height"]), path
