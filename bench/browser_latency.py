"""Warm upload -> verdict + heatmap latency in a real browser (headless Chromium, loopback only).

    .venv/bin/python -m bench.browser_latency [--images 8] [--data-dir DIR]

Starts `streamlit run` on a free loopback port, opens the Classify page once per image (the
server, its model and Grad-CAM stay warm; each image is new to the cache), uploads a typical
373x454 FracAtlas test radiograph and times until its verdict and both images are on screen.
Needs FracAtlas (../shared/datasets/fracatlas by default) and Debian's /usr/bin/chromium. Prints
the first (cold) and the warm timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from bench import app_harness
from bench.data import bench_images
from training.config import DEFAULT_DATA_DIR


def upload_seconds(url: str, images: list[Path]) -> list[float]:
    """Seconds from upload to verdict + both images, one fresh page load per image."""
    with app_harness.chromium() as browser:
        return app_harness.upload_to_answer_seconds(app_harness.new_page(browser), url, images)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="uploads, the first of them cold (at least 2)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the FracAtlas folder")
    args = parser.parse_args(argv)
    if args.images < 2:
        parser.error("--images must be at least 2: one cold upload, then warm ones")
    if not app_harness.CHROMIUM.exists():
        raise SystemExit(f"no Chromium at {app_harness.CHROMIUM}")
    images = bench_images(args.data_dir, args.images)
    if not images.paths:
        raise SystemExit(f"needs FracAtlas test images; {images.source}")
    with app_harness.serve_app() as app:
        seconds = upload_seconds(app.url, list(images.paths))
    warm = seconds[1:]
    print(f"first upload (cold caches) {seconds[0]:.2f} s; warm: median {statistics.median(warm):.2f} s, "
          f"min {min(warm):.2f} s, max {max(warm):.2f} s over {len(warm)} uploads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
