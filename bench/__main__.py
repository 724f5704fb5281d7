"""`python -m bench`: measure, print the table, write the JSON (see bench/__init__.py)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench import agreement, app_harness, batch, processes, stages
from bench.data import bench_images
from bench.report import figure, measure, once, table, target, targets_table
from bench.timing import peak_rss_mb, seconds
from training.config import DEFAULT_DATA_DIR

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"
# n: images timed per stage (after WARMUP more); n_slow: per slow heatmap method; batch: images in
# the throughput figure; naive_batch: how many of them the naive path runs (the rest extrapolated,
# and labelled); cold_runs: fresh interpreters each; warm_uploads: browser uploads after the cold
# one; agreement: test-split images for the Grad-CAM check (None = all); per_class: training subset.
FULL = dict(n=60, n_slow=6, batch=100, naive_batch=100, cold_runs=2, warm_uploads=8, agreement=None, per_class=128)
QUICK = dict(n=6, n_slow=2, batch=8, naive_batch=2, cold_runs=1, warm_uploads=2, agreement=16, per_class=16)
WARMUP = 3
TARGETS = {"whole_path_ms": 20.0, "batch_100_s": 5.0, "streamlit_first_answer_s": 6.0, "server_rss_mb": 1024.0}
# Benches that run on their own, as `python -m bench.<name>` (listed by `python -m bench --help`).
STANDALONE = {
    "cli_throughput": "python -m core.predict --heatmap-dir, ms per image marginal: one at a time vs batched",
    "ray_archive": "python -m serving.archive on 1 and 2 Ray workers vs python -m core.predict: images per second, "
                   "rows checked equal",
    "serve_load": "50 concurrent HTTP clients: Ray Serve vs a one-process server, p50/p95 latency and throughput",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="run on their own:\n" + "\n".join(
                                         f"  python -m bench.{name}: {what}" for name, what in STANDALONE.items()))
    parser.add_argument("--quick", action="store_true", help="a few images per figure (smoke test); "
                        "the issue's targets are then not judged")
    parser.add_argument("--no-browser", action="store_true", help="skip `streamlit run` and Chromium")
    parser.add_argument("--no-training", action="store_true", help="skip the training epoch")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="FracAtlas folder; generated images are used where it is absent")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    return parser.parse_args(argv)


def machine() -> dict:
    import cv2
    import keras
    import PIL
    import streamlit
    import tensorflow as tf
    import tf_keras_vis

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "ram_gib": round(int(memory.split()[1]) / 2**20, 1),
            "load_average_at_start": os.getloadavg(),
            "versions": {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
                         "numpy": np.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__,
                         "tf_keras_vis": tf_keras_vis.__version__, "streamlit": streamlit.__version__}}


def in_process(ctx: stages.Context, files: tuple[bytes, ...], plan: dict) -> list[dict]:
    """Every per-image stage, the whole path and the batch, in this process."""
    steps = [("decode/preprocess", lambda: stages.decode_and_preprocess(ctx, plan["n"])),
             ("classify", lambda: stages.classify(ctx, plan["n"])),
             ("Grad-CAM", lambda: stages.gradcam(ctx, plan["n"])),
             ("other heatmap methods", lambda: stages.other_methods(ctx, plan["n"], plan["n_slow"])),
             ("overlay", lambda: stages.overlay(ctx, plan["n"])),
             ("whole path", lambda: stages.whole_path(ctx, plan["n"])),
             ("first calls", lambda: stages.first_calls(ctx)),
             ("batch", lambda: batch.throughput(ctx, list(files[WARMUP : WARMUP + plan["batch"]]),
                                                plan["naive_batch"]))]
    figures = []
    for name, step in steps:
        print(f"measuring {name} …", flush=True)
        figures += step()
    return figures


def gradcam_agreement(args, ctx: stages.Context, plan: dict) -> dict:
    print("measuring Grad-CAM agreement with tf-keras-vis …", flush=True)
    test_inputs = agreement.test_split_inputs(args.data_dir, ctx.config, plan["agreement"])
    if test_inputs is None:
        source, test_inputs = "the bench's GENERATED images (no FracAtlas)", np.stack(ctx.model_inputs)
    else:
        source = f"FracAtlas test split, {'all' if plan['agreement'] is None else 'first'} {len(test_inputs)} images"
    return agreement.gradcam_agreement(ctx.explainer, ctx.reference_gradcam, test_inputs, source)


def other_processes(args, images, plan: dict, whole_ms: float, results: dict) -> list[dict]:
    """Cold starts, and the browser where it is wanted and possible; fills ``results``."""
    with tempfile.TemporaryDirectory(prefix="bench-images-") as folder:
        paths = _image_paths(images, Path(folder))[WARMUP:]
        print("measuring cold starts …", flush=True)
        figures, results["cold_start"] = processes.cold_start(paths, plan["cold_runs"])
        if args.no_browser:
            results["skipped"]["browser"] = "--no-browser"
        elif not app_harness.CHROMIUM.exists():
            results["skipped"]["browser"] = f"no Chromium at {app_harness.CHROMIUM}"
        else:
            print("measuring streamlit + Chromium …", flush=True)
            more, results["browser"] = processes.browser(paths, plan["warm_uploads"], whole_ms)
            figures += more
    return figures


def _image_paths(images, folder: Path) -> list[Path]:
    """Files on disk for the subprocesses and the browser (generated images are written out)."""
    if images.paths:
        return list(images.paths)
    for name, data in zip(images.names, images.files):
        (folder / name).write_bytes(data)
    return [folder / name for name in images.names]


def training(args, metadata: dict, plan: dict, results: dict) -> list[dict]:
    if args.no_training:
        results["skipped"]["training"] = "--no-training"
        return []
    if not (args.data_dir / "labels.csv").is_file():
        results["skipped"]["training"] = f"no FracAtlas at {args.data_dir}"
        return []
    print("measuring a training epoch …", flush=True)
    figures, results["training"] = processes.training(args.data_dir, metadata, plan["per_class"])
    return figures


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    results = {"command": " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
               "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "mode": "quick" if args.quick else "full", "machine": machine(), "skipped": {}}
    images = bench_images(args.data_dir, WARMUP + max(plan["n"], plan["batch"]))
    results["images"] = images.source
    print(f"images: {images.source}", flush=True)

    from core.classifier import FractureClassifier

    load_s, classifier = seconds(FractureClassifier.load)
    warm_s, _ = seconds(lambda: classifier.warm_up())
    results["model"] = {"version": classifier.version, "input_size": classifier.preprocess_config.image_size,
                        "load_s": load_s, "warm_up_s": warm_s}
    ctx = stages.prepare_context(classifier, list(images.files), WARMUP)

    figures = in_process(ctx, images.files, plan)
    results["gradcam_agreement"] = gradcam_agreement(args, ctx, plan)
    figures.append(figure("bench_rss", "bench process peak RSS (MiB)",
                          measure("all stages above, one process", once(peak_rss_mb()), "MiB")))
    whole_ms = _ours(figures, "whole_path")
    figures += other_processes(args, images, plan, whole_ms, results)
    figures += training(args, classifier.metadata.raw, plan, results)

    results["figures"] = figures
    results["targets"] = judge(args, images, whole_ms, _ours(figures, "batch"), results.get("browser"), plan)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_report(results)
    print(f"\nwrote {args.out} ({results['seconds']:.0f} s)")
    return 0


def _ours(figures: list[dict], key: str) -> float:
    return next(item for item in figures if item["key"] == key)["ours"]["p50"]


def judge(args, images, whole_ms: float, batch_s: float, browser: dict | None, plan: dict) -> list[dict]:
    """The issue's targets, judged only where this run measured what they are about."""
    not_typical = ("--quick runs too few images" if args.quick
                   else "" if images.paths else "the images are generated, not FracAtlas radiographs")
    no_browser = "--no-browser" if args.no_browser else f"no Chromium at {app_harness.CHROMIUM}"
    return [
        target("whole path p50, typical 373×454 radiograph", None if not_typical else whole_ms,
               TARGETS["whole_path_ms"], "ms", not_typical),
        target("batch of 100 with heatmaps", batch_s if plan["batch"] == 100 else None,
               TARGETS["batch_100_s"], "s", f"batch of {plan['batch']}"),
        target("`streamlit run` to first answer (verdict)", browser and browser["first_verdict_s"],
               TARGETS["streamlit_first_answer_s"], "s", no_browser),
        target("streamlit server peak RSS", browser and browser["server_peak_rss_mb"],
               TARGETS["server_rss_mb"], "MiB", no_browser),
    ]


def print_report(results: dict) -> None:
    m = results["machine"]
    load = lambda values: ", ".join(f"{value:.1f}" for value in values)  # noqa: E731
    print(f"\n{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB; load average (1, 5, 15 min) at start "
          f"{load(m['load_average_at_start'])}, at end {load(m['load_average_at_end'])}")
    print(f"images: {results['images']}; model {results['model']['version']} at "
          f"{results['model']['input_size']} px; mode {results['mode']}\n")
    print(table(results["figures"]))
    print("ratio = baseline p50 / ours p50 (× faster, or × less memory); '–' = reference row, no ratio; "
          "p95 only with ≥ 5 samples")
    for item in results["figures"]:
        for row in [item["ours"], *item["baselines"]]:
            if row.get("note"):
                print(f"  note, {item['label']} / {row['what']}: {row['note']}")
    agree = results["gradcam_agreement"]
    print(f"\nGrad-CAM compiled vs tf-keras-vis on {agree['source']}: Pearson r min {agree['min']:.6f}, "
          f"median {agree['median']:.6f}, {agree['below_0.99']} below 0.99, {agree['both_all_zero']} both all-zero\n")
    print(targets_table(results["targets"]))
    for section, why in results["skipped"].items():
        print(f"skipped {section}: {why}")


if __name__ == "__main__":
    sys.exit(main())
