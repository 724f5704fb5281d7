"""Throughput: N images from bytes to verdicts and Grad-CAM overlay PNGs."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench import baselines
from bench.report import figure, measure
from bench.stages import Context, fast_whole_path
from bench.timing import seconds
from core.imaging import read_image
from core.overlay import encode_png, fit_for_display, overlay_on_original
from core.preprocessing import preprocess
from core.thresholds import decide

HEATMAP_CHUNK = 32  # Grad-CAM images per compiled call; larger chunks gain nothing on 2 cores


def batched(classifier, explainer, threshold: float, files: list[bytes]) -> list[tuple[str, bytes]]:
    """Decode and overlay in threads (Pillow, OpenCV and NumPy release the GIL), classify and
    explain in batches through the compiled passes."""
    config = classifier.preprocess_config

    def prepare(data: bytes) -> tuple[np.ndarray, np.ndarray]:
        image = read_image(data)
        return image, preprocess(image, config)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        images, model_inputs = zip(*pool.map(prepare, files))
        model_inputs = np.stack(model_inputs)
        probabilities = classifier.predict_batch(model_inputs)
        heatmaps = np.concatenate([explainer.explain(model_inputs[start : start + HEATMAP_CHUNK], "gradcam")
                                   for start in range(0, len(model_inputs), HEATMAP_CHUNK)])

        def finish(index: int) -> tuple[str, bytes]:
            image = images[index]
            overlay = overlay_on_original(fit_for_display(image), heatmaps[index], config, source_shape=image.shape)
            return decide(float(probabilities[index]), threshold), encode_png(overlay)

        return list(pool.map(finish, range(len(files))))


def throughput(ctx: Context, files: list[bytes], naive_count: int) -> list[dict]:
    """``files`` through the batched fast path, one by one through the fast path, and through
    the naive path (on ``naive_count`` of them, extrapolated to all when fewer, and labelled)."""
    count = len(files)
    batched(ctx.classifier, ctx.explainer, ctx.threshold, files[:4])  # warm the thread pool's path
    ours, _ = seconds(lambda: batched(ctx.classifier, ctx.explainer, ctx.threshold, files))
    loop, _ = seconds(lambda: [fast_whole_path(ctx.classifier, ctx.threshold, data)
                               for data in files])
    naive_files = files[:naive_count]
    naive, _ = seconds(lambda: [baselines.naive_whole_path(ctx.model, ctx.config, ctx.cam_layer, ctx.threshold, data)
                                for data in naive_files])
    note = "" if naive_count >= count else f"EXTRAPOLATED: measured on {naive_count}, × {count / naive_count:g}"
    naive_what = "naive path, one by one" + (" (extrapolated)" if note else "")
    return [figure("batch", f"batch of {count} with heatmaps (s)",
                   measure("threads + batched compiled calls", {"p50": ours, "p95": None, "n": count}, "s"),
                   (measure("fast path, one image at a time", {"p50": loop, "p95": None, "n": count}, "s"),
                    measure(naive_what, {"p50": naive * count / len(naive_files), "p95": None,
                                         "n": len(naive_files)}, "s", note)))]
