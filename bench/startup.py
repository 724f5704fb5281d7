"""Cold starts: a fresh `python -c` to its first answer, and `streamlit run` to the first verdict
shown in headless Chromium; then warm upload -> verdict + heatmap latency and the server's memory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.timing import peak_rss_mb
from core.config import PROJECT_DIR

CHROMIUM = Path("/usr/bin/chromium")

# Both scripts print one JSON line per milestone, with seconds since the interpreter started.
_SAY = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
def say(event, **extra):
    print(json.dumps({"event": event, "seconds": time.perf_counter() - started, **extra}), flush=True)
def peak_rss_mb():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
data = Path(sys.argv[1]).read_bytes()
"""
OURS = _SAY + """
from core import FractureClassifier, decide
from core.explain import encode_png, fit_for_display, overlay_on_original
say("imported")
classifier = FractureClassifier.load()
say("loaded")
result = classifier.classify(data, explain=True)  # verdict and Grad-CAM in one pass, as the app
say("verdict", verdict=decide(result.probability_fractured, classifier.thresholds["screening"]))
png = encode_png(overlay_on_original(fit_for_display(result.image), result.heatmap, classifier.preprocess_config))
say("heatmap", png_bytes=len(png), peak_rss_mb=peak_rss_mb())
"""
NAIVE = _SAY + """
import keras
from bench import baselines
from core.config import MODELS_DIR
from core.explain import heatmap_to_image
from core.imaging import read_image
from core.preprocessing import PreprocessConfig, preprocess
say("imported")
metadata = json.loads((MODELS_DIR / "metadata.json").read_text())
model = keras.saving.load_model(MODELS_DIR / metadata["model_file"], compile=False)
config = PreprocessConfig.from_dict(metadata["preprocessing"])
say("loaded")
image = read_image(data)
model_input = preprocess(image, config)
probability = baselines.predict_probability(model, model_input)
say("verdict", verdict="fractured" if probability >= metadata["thresholds"]["screening"] else "not_fractured")
heatmap = baselines.unit_maps(baselines.rebuilt_maps(model, "gradcam", model_input[None], metadata["cam_layer"]))[0]
png = baselines.pillow_png(baselines.matplotlib_overlay(image, heatmap_to_image(heatmap, image.shape, config)))
say("heatmap", png_bytes=len(png), peak_rss_mb=peak_rss_mb())
"""


def run_script(script: str, image: Path) -> dict:
    """Runs ``script`` in a fresh interpreter; seconds from launch to each milestone, seen from outside."""
    launched = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", script, str(image)], cwd=PROJECT_DIR,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = {}
    for line in process.stdout:
        if line.startswith("{"):
            event = json.loads(line)
            events[event["event"]] = {**event, "since_launch": time.perf_counter() - launched}
    _, errors = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"cold-start script failed ({process.returncode}): {errors[-2000:]}")
    return events


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_streamlit(flags: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str, float]:
    """`streamlit run` on a free loopback port with extra ``flags``; returns (process, url, launch time)."""
    port = _free_port()
    launched = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
                               "--server.address", "127.0.0.1", "--server.port", str(port),
                               "--server.headless", "true", *flags],
                              cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    return server, f"http://127.0.0.1:{port}", launched


def wait_healthy(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.05)  # a fine poll: the time to first answer is the figure
    raise RuntimeError(f"streamlit did not pass its health check within {timeout:.0f} s")


VERDICT_SHOWN = ("([name]) => Array.from(document.querySelectorAll('[data-testid=stAlert]'))"
                 ".some(a => a.innerText.includes(name))")


def _first_answer(page, image: Path, flags: tuple[str, ...]) -> tuple[dict, subprocess.Popen, str]:
    """Starts a server and uploads ``image`` as soon as the page offers the uploader; the
    timeline is in seconds since the server was launched. The caller stops the server."""
    from bench.browser_latency import SHOWN

    server, url, launched = start_streamlit(flags)
    try:
        wait_healthy(url)
        timeline = {"healthy_s": time.perf_counter() - launched}
        page.goto(url, timeout=120_000)
        page.wait_for_selector("input[type=file]", state="attached", timeout=120_000)
        timeline["uploader_shown_s"] = time.perf_counter() - launched
        page.set_input_files("input[type=file]", str(image))
        page.wait_for_function(VERDICT_SHOWN, arg=[image.name], timeout=120_000)
        timeline["first_verdict_s"] = time.perf_counter() - launched
        page.wait_for_function(SHOWN, arg=[image.name], timeout=120_000)
        timeline["first_heatmap_s"] = time.perf_counter() - launched
    except BaseException:
        _stop(server)
        raise
    return timeline, server, url


def _stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def _warm_uploads(page, url: str, images: list[Path]) -> list[float]:
    """Seconds from upload to verdict + both images, each image new to the server's caches."""
    from bench.browser_latency import SHOWN

    seconds = []
    for image in images:
        page.goto(url, timeout=60_000)
        page.wait_for_selector("input[type=file]", state="attached", timeout=120_000)
        page.wait_for_timeout(500)  # let the page settle, as bench/browser_latency.py does
        started = time.perf_counter()
        page.set_input_files("input[type=file]", str(image))
        page.wait_for_function(SHOWN, arg=[image.name], timeout=120_000)
        seconds.append(time.perf_counter() - started)
    return seconds


# The repository's .streamlit/config.toml turns Streamlit's file watcher off; on, it watches the
# project folder recursively (a .venv inside it too). The second cold start shows what that costs.
WITH_WATCHER = ("--server.fileWatcherType", "auto")


def browser_figures(images: list[Path], warm_uploads: int) -> dict:
    """Cold `streamlit run` -> first verdict (as configured, and with the file watcher on), warm
    uploads on the first server, and that server's peak RSS."""
    from playwright.sync_api import sync_playwright

    from bench.browser_latency import FLAGS

    with sync_playwright() as driver:
        # The browser is open before the server starts, as a user's would be.
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            result, server, url = _first_answer(page, images[0], ())
            try:
                result["warm_upload_s"] = _warm_uploads(page, url, images[1 : 1 + warm_uploads])
                result["server_peak_rss_mb"] = peak_rss_mb(server.pid)
            finally:
                _stop(server)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            with_watcher, server, _ = _first_answer(page, images[1 + warm_uploads], WITH_WATCHER)
            _stop(server)
            result["with_file_watcher"] = with_watcher
        finally:
            browser.close()
    return result
