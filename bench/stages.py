"""Per-image stages and the whole path, each against its baseline, on the same images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench import baselines
from bench.report import figure, measure
from bench.timing import seconds, summary, time_each, time_interleaved
from core.classifier import FractureClassifier
from core.heatmaps import METHODS, SLOW_METHODS, HeatmapExplainer
from core.imaging import read_image
from core.overlay import encode_png, fit_for_display, heatmap_to_image, overlay_on_original
from core.preprocessing import preprocess


@dataclass
class Context:
    """The loaded model and the images, decoded once so each stage is timed alone."""

    classifier: FractureClassifier
    reference_gradcam: baselines.TfKerasVisGradcam  # tf-keras-vis's Grad-CAM, built once
    files: list[bytes]  # warm-up images first
    warmup: int
    images: list[np.ndarray]
    model_inputs: list[np.ndarray]
    heatmaps: list[np.ndarray]

    @property
    def explainer(self) -> HeatmapExplainer:
        return self.classifier.explainer

    @property
    def model(self):
        return self.classifier.model

    @property
    def config(self):
        return self.classifier.preprocess_config

    @property
    def cam_layer(self) -> str:
        return self.classifier.metadata.cam_layer

    @property
    def threshold(self) -> float:
        return self.classifier.thresholds["screening"]

    def split(self, values, n: int):
        """(warm-up values, the next ``n`` values to time)."""
        return values[: self.warmup], values[self.warmup : self.warmup + n]


def prepare_context(classifier: FractureClassifier, files: list[bytes], warmup: int) -> Context:
    images = [read_image(data) for data in files]
    model_inputs = [preprocess(image, classifier.preprocess_config) for image in images]
    heatmaps = list(classifier.explainer.explain(np.stack(model_inputs), "gradcam"))
    reference = baselines.TfKerasVisGradcam(classifier.model, classifier.metadata.cam_layer)
    return Context(classifier, reference, list(files), warmup, images, model_inputs, heatmaps)


def fast_whole_path(classifier: FractureClassifier, threshold: float, data: bytes) -> tuple[str, bytes]:
    """What the Classify page does for an upload (ui/state.py), through the public API:
    verdict and the model's default heatmap (Grad-CAM, or a box model's own map) from one compiled
    pass, drawn on a display-size copy."""
    result = classifier.classify(data, heatmap=classifier.default_heatmap).for_display()
    overlay = overlay_on_original(result.image, result.heatmap, classifier.preprocess_config,
                                  source_shape=result.source_shape)
    return result.decision(threshold), encode_png(overlay)


def two_pass_whole_path(classifier: FractureClassifier, threshold: float, data: bytes) -> tuple[str, bytes]:
    """The same with a separate heatmap pass after the verdict (the app before one-pass)."""
    result = classifier.classify(data).for_display()
    heatmap = classifier.explainer.explain(result.model_input[np.newaxis], classifier.default_heatmap)[0]
    overlay = overlay_on_original(result.image, heatmap, classifier.preprocess_config,
                                  source_shape=result.source_shape)
    return result.decision(threshold), encode_png(overlay)


def decode_and_preprocess(ctx: Context, n: int) -> list[dict]:
    warm, timed = ctx.split(ctx.files, n)
    decode = time_each(read_image, timed, warmup=warm)
    warm, timed = ctx.split(ctx.images, n)
    prep = time_each(lambda image: preprocess(image, ctx.config), timed, warmup=warm)
    return [figure("decode", "decode: read_image (bytes -> grey)", measure("core.imaging.read_image", summary(decode))),
            figure("preprocess", "preprocess: CLAHE + letterbox to 192 px",
                   measure("core.preprocessing.preprocess", summary(prep)))]


def classify(ctx: Context, n: int) -> list[dict]:
    warm, timed = ctx.split(ctx.model_inputs, n)
    samples = time_interleaved({
        "ours": lambda x: ctx.classifier.predict_batch(x[np.newaxis]),
        "predict": lambda x: baselines.predict_probability(ctx.model, x),
    }, timed, warmup=warm)
    warm, timed = ctx.split(ctx.files, n)
    verdicts = time_interleaved({
        "ours": ctx.classifier.classify,
        "naive": lambda data: baselines.predict_probability(ctx.model, preprocess(read_image(data), ctx.config)),
    }, timed, warmup=warm)
    return [figure("classify", "classify one image (compiled forward)",
                   measure("FractureClassifier.predict_batch", summary(samples["ours"])),
                   (measure("model.predict", summary(samples["predict"])),)),
            figure("verdict", "verdict from bytes (with radiograph check)",
                   measure("FractureClassifier.classify", summary(verdicts["ours"])),
                   (measure("read_image + preprocess + model.predict", summary(verdicts["naive"])),))]


def gradcam(ctx: Context, n: int) -> list[dict]:
    warm, timed = ctx.split(ctx.model_inputs, n)
    samples = time_interleaved({
        "ours": lambda x: ctx.explainer.explain(x[np.newaxis], "gradcam"),
        "reused": lambda x: ctx.reference_gradcam(x[np.newaxis]),
        "rebuilt": lambda x: baselines.rebuilt_maps(ctx.model, "gradcam", x[np.newaxis], ctx.cam_layer),
    }, timed, warmup=warm)
    return [figure("heatmap_gradcam", "Grad-CAM (compiled tf.function)",
                   measure("HeatmapExplainer.explain(gradcam)", summary(samples["ours"])),
                   (measure("tf-keras-vis Gradcam, reused", summary(samples["reused"])),
                    measure("tf-keras-vis Gradcam, rebuilt per call", summary(samples["rebuilt"]))))]


def other_methods(ctx: Context, n: int, n_slow: int) -> list[dict]:
    """The tf-keras-vis methods through the HeatmapExplainer (built once) vs rebuilt per call (the fracture
    map is no tf-keras-vis method: the whole-path figure times it)."""
    figures = []
    for method in [name for name in METHODS if name not in ("gradcam", "fracturemap")]:  # tf-keras-vis only
        count = n_slow if method in SLOW_METHODS else n
        warm, timed = ctx.split(ctx.model_inputs, count)
        samples = time_interleaved({
            "ours": lambda x: ctx.explainer.explain(x[np.newaxis], method),
            "rebuilt": lambda x: baselines.rebuilt_maps(ctx.model, method, x[np.newaxis], ctx.cam_layer),
        }, timed, warmup=warm[:1])
        figures.append(figure(f"heatmap_{method}", f"{METHODS[method]} (built once)",
                              measure(f"HeatmapExplainer.explain({method})", summary(samples["ours"])),
                              (measure(f"tf-keras-vis {method}, rebuilt per call", summary(samples["rebuilt"])),)))
    return figures


def overlay(ctx: Context, n: int) -> list[dict]:
    """The overlay alone, the PNG encoder alone, and the two as the app runs them (on the
    display-size copy, the heatmap placed by the shape of the image as read)."""
    indices = list(range(len(ctx.images)))
    warm, timed = ctx.split(indices, n)
    shown = [fit_for_display(image) for image in ctx.images]

    def ours_overlay(k):
        return overlay_on_original(shown[k], ctx.heatmaps[k], ctx.config, source_shape=ctx.images[k].shape)

    def matplotlib_overlay(k):
        heatmap = heatmap_to_image(ctx.heatmaps[k], ctx.images[k].shape, ctx.config, output_shape=shown[k].shape)
        return baselines.matplotlib_overlay(shown[k], heatmap)

    blends = time_interleaved({"ours": ours_overlay, "before": matplotlib_overlay}, timed, warmup=warm)
    overlays = [ours_overlay(k) for k in indices]
    encodes = time_interleaved({
        "ours": lambda k: encode_png(overlays[k]),
        "level1": lambda k: baselines.pillow_png(overlays[k], 1),
        "default": lambda k: baselines.pillow_png(overlays[k]),
    }, timed, warmup=warm)
    both = time_interleaved({
        "ours": lambda k: encode_png(ours_overlay(k)),
        "before": lambda k: baselines.pillow_png(matplotlib_overlay(k), 1),
        "naive": lambda k: baselines.pillow_png(matplotlib_overlay(k)),
    }, timed, warmup=warm)
    kib = {name: f"{np.mean([len(encoder(overlays[k])) for k in timed]) / 1024:.0f} KiB"
           for name, encoder in (("ours", encode_png), ("level1", lambda rgb: baselines.pillow_png(rgb, 1)),
                                 ("default", baselines.pillow_png))}
    return [
        figure("overlay_blend", "overlay: map to image + colour-table blend",
               measure("core.overlay.overlay_on_original", summary(blends["ours"])),
               (measure("matplotlib colormap per pixel, float64 (before)", summary(blends["before"])),)),
        figure("overlay_encode", "encode_png (OpenCV, level 1, up filter, RLE)",
               measure("core.overlay.encode_png", summary(encodes["ours"]), note=kib["ours"]),
               (measure("Pillow PNG level 1 (before)", summary(encodes["level1"]), note=kib["level1"]),
                measure("Pillow PNG default level 6", summary(encodes["default"]), note=kib["default"]))),
        figure("overlay_png", "overlay PNG as the app makes it",
               measure("overlay_on_original + encode_png", summary(both["ours"])),
               (measure("matplotlib overlay + Pillow level 1 (before)", summary(both["before"])),
                measure("matplotlib overlay + Pillow default (naive)", summary(both["naive"])))),
    ]


def whole_path(ctx: Context, n: int) -> list[dict]:
    """Ours back to back, as a server answers uploads, then the naive path on the same images.

    Not interleaved like the stages: a naive call between two of ours (a model cloned and
    dropped every time) pollutes caches and added 2-4 ms to ours in trials, which the target
    figure must not carry.
    """
    warm, timed = ctx.split(ctx.files, n)
    samples = {
        "ours": time_each(lambda data: fast_whole_path(ctx.classifier, ctx.threshold, data),
                          timed, warmup=warm),
        "two_pass": time_each(lambda data: two_pass_whole_path(ctx.classifier, ctx.threshold, data),
                              timed, warmup=warm),
        "naive": time_each(lambda data: baselines.naive_whole_path(ctx.model, ctx.config, ctx.cam_layer,
                                                                   ctx.threshold, data), timed, warmup=warm),
    }
    default = ctx.classifier.default_heatmap
    return [figure("whole_path", f"whole path: bytes -> verdict + {default} heatmap PNG",
                   measure(f'classify(heatmap="{default}") + overlay + PNG', summary(samples["ours"])),
                   (measure("predict + tf-keras-vis rebuilt + mpl + PIL", summary(samples["naive"])),
                    measure("classify, then a separate heatmap pass", summary(samples["two_pass"]))))]


def first_calls(ctx: Context) -> list[dict]:
    """What tracing costs the first caller: a fresh classifier's first forward pass and first
    Grad-CAM pass vs later ones.

    The app pays it at load (``FractureClassifier.warm_up(heatmap="gradcam")`` in
    ui/state.py), so no user does.
    """
    x = ctx.model_inputs[0][np.newaxis]
    fresh = FractureClassifier(ctx.model, ctx.classifier.metadata)
    first_classify, _ = seconds(lambda: fresh.predict_batch(x))
    later_classify = time_each(lambda _: fresh.predict_batch(x), range(5))
    first_explain, _ = seconds(lambda: fresh.explainer.explain(x, "gradcam"))
    later_explain = time_each(lambda _: fresh.explainer.explain(x, "gradcam"), range(5))
    return [
        figure("first_classify", "classify: later call vs first (tracing)",
               measure("later calls (after warm_up at load)", summary(later_classify)),
               (measure("first call on a fresh classifier", summary([first_classify * 1e3])),)),
        figure("first_gradcam", "Grad-CAM: later call vs first (tracing)",
               measure("later calls (after warm-up at load)", summary(later_explain)),
               (measure("first call on a fresh classifier's explainer", summary([first_explain * 1e3])),)),
    ]
