"""Cold starts: a fresh `python -c` to its first answer, and `streamlit run` to the first verdict
shown in headless Chromium; then warm upload -> verdict + heatmap latency and the server's memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench import app_harness
from bench.timing import peak_rss_mb
from core.config import PROJECT_DIR

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
from core.classifier import FractureClassifier
from core.overlay import encode_png, overlay_on_original
say("imported")
classifier = FractureClassifier.load()
say("loaded")
# The verdict and the model's default heatmap in one pass, as the app does.
result = classifier.classify(data, heatmap=classifier.default_heatmap).for_display()
say("verdict", verdict=result.decision(classifier.thresholds["screening"]))
png = encode_png(overlay_on_original(result.image, result.heatmap, classifier.preprocess_config,
                                     source_shape=result.source_shape))
say("heatmap", png_bytes=len(png), peak_rss_mb=peak_rss_mb())
"""
NAIVE = _SAY + """
import keras
import core.layers  # the model file names its pooling layer
from bench import baselines
from core.config import MODELS_DIR
from core.imaging import read_image
from core.overlay import heatmap_to_image
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


def _first_answer(page, app: app_harness.AppServer, image: Path) -> dict:
    """Uploads ``image`` as soon as the page offers the uploader; the timeline is in seconds
    since the server was launched."""
    timeline = {"healthy_s": app.healthy_s}
    page.goto(app.url, timeout=120_000)
    app_harness.wait_for_uploader(page)
    timeline["uploader_shown_s"] = time.perf_counter() - app.launched
    app_harness.upload(page, image)
    app_harness.wait_for_verdicts(page, [image.name])
    timeline["first_verdict_s"] = time.perf_counter() - app.launched
    app_harness.wait_for_verdicts(page, [image.name], images=2)
    timeline["first_heatmap_s"] = time.perf_counter() - app.launched
    return timeline


# The repository's .streamlit/config.toml turns Streamlit's file watcher off; on, it watches the
# project folder recursively (a .venv inside it too). The second cold start shows what that costs.
WITH_WATCHER = ("--server.fileWatcherType", "auto")


def browser_figures(images: list[Path], warm_uploads: int) -> dict:
    """Cold `streamlit run` -> first verdict (as configured, and with the file watcher on), warm
    uploads on the first server, and that server's peak RSS."""
    with app_harness.chromium() as browser:
        # The page is open before the server starts, as a user's browser would be.
        page = app_harness.new_page(browser)
        with app_harness.serve_app() as app:
            result = _first_answer(page, app, images[0])
            result["warm_upload_s"] = app_harness.upload_to_answer_seconds(page, app.url, images[1 : 1 + warm_uploads])
            result["server_peak_rss_mb"] = peak_rss_mb(app.pid)
        page = app_harness.new_page(browser)
        with app_harness.serve_app(flags=WITH_WATCHER) as app:
            result["with_file_watcher"] = _first_answer(page, app, images[1 + warm_uploads])
    return result
