"""Warm upload -> verdict + heatmap latency in a real browser (headless Chromium, loopback only).

    .venv/bin/python bench/browser_latency.py [--images 8]

Starts `streamlit run` on a free loopback port, opens the Classify page once per image (the
server, its model and Grad-CAM stay warm; each image is new to the cache), uploads a typical
373x454 FracAtlas test radiograph and times until its verdict and both images are on screen.
Needs ../shared/datasets/fracatlas and Debian's /usr/bin/chromium. Prints the first (cold) and
the warm timings.
"""

import argparse
import csv
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_DIR.parent / "shared" / "datasets" / "fracatlas"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOWN = ("([name]) => Array.from(document.querySelectorAll('[data-testid=stAlert]'))"
         ".some(a => a.innerText.includes(name))"
         " && document.querySelectorAll('[data-testid=stImage] img').length >= 2")


def typical_test_images(count: int) -> list[Path]:
    with open(DATA_DIR / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle)
                if row["split"] == "test" and (row["original_width"], row["original_height"]) == ("373", "454")]
    return [DATA_DIR / row["path"] for row in rows[:count]]


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
                               "--server.address", "127.0.0.1", "--server.port", str(port)],
                              cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            return server, url
        except OSError:
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("streamlit did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    server, url = start_server()
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            seconds = []
            for image in typical_test_images(args.images):
                page.goto(url, timeout=60_000)
                page.wait_for_selector("input[type=file]", state="attached", timeout=120_000)
                page.wait_for_timeout(500)
                started = time.perf_counter()
                page.set_input_files("input[type=file]", str(image))
                page.wait_for_function(SHOWN, arg=[image.name], timeout=120_000)
                seconds.append(time.perf_counter() - started)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    warm = seconds[1:]
    print(f"first upload (cold caches) {seconds[0]:.2f} s; warm: median {statistics.median(warm):.2f} s, "
          f"min {min(warm):.2f} s, max {max(warm):.2f} s over {len(warm)} uploads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
