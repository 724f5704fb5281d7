"""Forward time of each backbone's feature extractor, and its feature maps' shapes, per input size.

    python -m bench.pretrained_speed [--sizes 224 320 384] [--batches 1 16] [--repeats 15]
                                     [--backbones mobilenet_v2 efficientnet_lite0] [--json out.json]

The figures decide the resolution study: how large an input, and how fine a map, the CPU budget
allows. Each call is one compiled forward pass (``include_top=False``) on random 0..255 images,
after two warm-up calls; p50 and p95 are over ``--repeats`` calls, the backbones taking turns.
A busy machine slows every figure, so the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.timing import summary, time_interleaved
from training.pretrained import BACKBONES, Backbone

WARMUP_CALLS = 2


@dataclass(frozen=True)
class ForwardTiming:
    """One backbone's feature extractor at one input size and batch size.

    Attributes:
        backbone: Its key in ``BACKBONES``.
        input_px: Side of the square input.
        batch: Images per call.
        p50_ms: Median milliseconds per call.
        p95_ms: 95th percentile per call (None for fewer than 5 calls).
        ms_per_image: ``p50_ms / batch``.
        calls: How many calls were timed.
    """

    backbone: str
    input_px: int
    batch: int
    p50_ms: float
    p95_ms: float | None
    ms_per_image: float
    calls: int


def feature_map_shapes(model, backbone: Backbone) -> dict[str, dict]:
    """``{"stride_16": {"layer": name, "shape": [h, w, c]}, ...}`` for a built feature extractor."""
    return {f"stride_{stride}": {"layer": name, "shape": list(model.get_layer(name).output.shape[1:])}
            for stride, name in backbone.layers.by_stride().items()}


def multiply_adds(model) -> int:
    """Multiply-adds of one forward pass through the model's convolutions and dense layers.

    The count does not depend on how busy the machine is, so it compares sizes where a shared
    machine's timings cannot.
    """
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, height, width, channels = layer.output.shape
            total += height * width * channels * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            total += height * width * filters * layer.input.shape[-1] * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def compiled_forward(model, input_px: int, batch: int) -> Callable[[object], np.ndarray]:
    """A call that runs one compiled forward pass of ``batch`` fixed random images."""
    import tensorflow as tf

    channels = model.inputs[0].shape[-1]
    images = tf.constant(np.random.default_rng(0).uniform(0, 255, (batch, input_px, input_px, channels)), tf.float32)
    forward = tf.function(lambda batch_images: model(batch_images, training=False))
    return lambda _: forward(images).numpy()


def measure(backbone_names, sizes, batches, repeats) -> dict:
    """Every backbone × size × batch: timings and feature-map shapes, with the machine's state.

    At each size and batch the backbones take turns call by call, so a noisy neighbour slows
    them alike and their ratio holds even when the absolute figures wander.
    """
    timings, shapes = [], {}
    for size in sizes:
        models = {name: BACKBONES[name].build((size, size, 3), include_top=False) for name in backbone_names}
        for name, model in models.items():
            shapes[f"{name}@{size}"] = {**feature_map_shapes(model, BACKBONES[name]),
                                        "giga_multiply_adds": round(multiply_adds(model) / 1e9, 3)}
        for batch in batches:
            calls = {name: compiled_forward(model, size, batch) for name, model in models.items()}
            samples = time_interleaved(calls, range(repeats), warmup=range(WARMUP_CALLS))
            for name in backbone_names:
                timing = _timing(name, size, batch, samples[name])
                timings.append(timing)
                print(f"{name:<19} {size:>4} px  batch {batch:>3}: p50 {timing.p50_ms:9.1f} ms  "
                      f"p95 {timing.p95_ms or float('nan'):9.1f} ms  ({timing.ms_per_image:7.1f} ms/image)", flush=True)
    return {"cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
            "timings": [asdict(timing) for timing in timings], "feature_maps": shapes}


def _timing(name: str, size: int, batch: int, samples: list[float]) -> ForwardTiming:
    stats = summary(samples)
    return ForwardTiming(name, size, batch, round(stats["p50"], 2),
                         None if stats["p95"] is None else round(stats["p95"], 2),
                         round(stats["p50"] / batch, 2), stats["n"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pretrained_speed", description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", choices=sorted(BACKBONES), default=list(BACKBONES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 320, 384])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per backbone, size and batch")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    figures = measure(args.backbones, args.sizes, args.batches, args.repeats)
    print(f"load average {figures['load_average'][0]:.2f} at the end")
    for key, maps in figures["feature_maps"].items():
        taps = {stride: entry for stride, entry in maps.items() if stride.startswith("stride_")}
        print(f"{key:<24} {maps['giga_multiply_adds']:.2f} G multiply-adds   "
              + "   ".join(f"{stride}: {entry['layer']} {tuple(entry['shape'])}" for stride, entry in taps.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
