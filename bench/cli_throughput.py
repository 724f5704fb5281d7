"""The CLI's marginal cost per image, from outside: one image at a time against the batch path.

    .venv/bin/python -m bench.cli_throughput [--n 500] [--small 20] [--repeats 1] [--data-dir DIR]

Runs ``python -m core.predict --json --heatmap-dir DIR`` as a fresh process, as a user would, on
the first N FracAtlas test and val radiographs (labels.csv order: mostly 373×454 JPEGs, both
orientations, and about one in six a scan downscaled to 1,280 px; generated stand-ins where the
data is absent, and then it says so) and on the first SMALL of them, two ways taking turns:

* one at a time, ``--batch-size 1 --workers 0``: read, one network pass, overlay and PNG per
  image, all on the main thread, as the CLI ran before issue 14 (the lone image is now scored
  beside a blank one, which keeps its answer the batch's bit for bit);
* batched, the defaults: files read and overlays written on worker threads while the network
  scores batches.

Marginal ms per image = (seconds for N - seconds for SMALL) / (N - SMALL) × 1000: imports, the
model load and tracing cancel out. It is given for wall time, the target, and for the CPU time
the process used (user + system, all its threads): on a shared machine the wall time follows the
neighbours, the CPU time much less, and CPU / cores is the least wall time the work allows. The
two ways must print the same JSON and write the same PNG bytes; the exit status is 1 when they do
not. The load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.data import generated_images
from core.config import PROJECT_DIR
from training.config import DEFAULT_DATA_DIR

WAYS = {"one at a time (--batch-size 1 --workers 0)": ["--batch-size", "1", "--workers", "0"],
        "batched (defaults)": []}
TARGET_MS = 10.0  # issue 14: at most 10 ms per image, marginal, with --heatmap-dir, on 2 cores


@dataclass(frozen=True)
class Run:
    """One CLI process: its wall and CPU time, what it printed and the overlays it wrote (name -> SHA-256)."""

    seconds: float
    cpu_seconds: float
    stdout: str
    overlays: dict[str, str]


def radiographs(data_dir: Path, count: int, folder: Path) -> tuple[str, list[str]]:
    """What the images are, and ``count`` paths: FracAtlas test and val, or generated ones written to ``folder``."""
    labels = data_dir / "labels.csv"
    if labels.is_file():
        with open(labels, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["split"] in ("test", "val")][:count]
        if len(rows) == count:
            large = sum(row["resized"] == "1" for row in rows)
            return (f"FracAtlas test and val, first {count} (labels.csv order; {large} of them scans "
                    f"downscaled to 1,280 px, the rest mostly 373×454)", [str(data_dir / row["path"]) for row in rows])
    images = generated_images(count, reason=f"no FracAtlas labels.csv with {count} test and val images in {data_dir}")
    for name, data in zip(images.names, images.files):
        (folder / name).write_bytes(data)
    return images.source, [str(folder / name) for name in images.names]


def run_cli(paths: list[str], options: list[str], heatmap_dir: Path) -> Run:
    """``python -m core.predict --json --heatmap-dir`` on ``paths`` in a fresh interpreter, timed from launch."""
    heatmap_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "core.predict", *paths, "--json", "--heatmap-dir", str(heatmap_dir), *options]
    cpu_before, started = _children_cpu_seconds(), time.perf_counter()
    finished = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True)
    seconds, cpu_seconds = time.perf_counter() - started, _children_cpu_seconds() - cpu_before
    if finished.returncode not in (0, 1):  # 1: some file unreadable, reported in the JSON
        raise SystemExit(f"python -m core.predict failed ({finished.returncode}):\n{finished.stderr[-3000:]}")
    overlays = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(heatmap_dir.iterdir())}
    return Run(seconds, cpu_seconds, finished.stdout, overlays)


def _children_cpu_seconds() -> float:
    """User + system time of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(paths: list[str], small: int, repeats: int, scratch: Path) -> dict[str, list[tuple[Run, Run]]]:
    """Per way, ``repeats`` (small run, full run) pairs; the ways take turns, so that a noisy
    neighbour's bursts fall on both alike."""
    runs: dict[str, list[tuple[Run, Run]]] = {way: [] for way in WAYS}
    for repeat in range(repeats):
        for number, (way, options) in enumerate(WAYS.items()):
            print(f"  {way}: {small} images …", flush=True)
            small_run = run_cli(paths[:small], options, scratch / f"run{repeat}-way{number}-small")
            print(f"  {way}: {len(paths)} images …", flush=True)
            runs[way].append((small_run, run_cli(paths, options, scratch / f"run{repeat}-way{number}-all")))
    return runs


def marginal_ms(pair: tuple[Run, Run], small: int, count: int, *, cpu: bool = False) -> float:
    small_run, full_run = pair
    if cpu:
        return (full_run.cpu_seconds - small_run.cpu_seconds) / (count - small) * 1e3
    return (full_run.seconds - small_run.seconds) / (count - small) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="images in the full run (default 500)")
    parser.add_argument("--small", type=int, default=20, help="images in the small run (default 20)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each way; the median is reported")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the FracAtlas folder")
    args = parser.parse_args(argv)
    if not 1 <= args.small < args.n:
        parser.error(f"need 1 <= --small < --n; got --small {args.small}, --n {args.n}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1; got {args.repeats}")

    with tempfile.TemporaryDirectory(prefix="cli-throughput-") as folder:
        scratch = Path(folder)
        (scratch / "images").mkdir()
        source, paths = radiographs(args.data_dir, args.n, scratch / "images")
        print(f"images: {source}\nload average at start (1, 5, 15 min): {_load()}", flush=True)
        runs = measure(paths, args.small, args.repeats, scratch)
    print(f"load average at end: {_load()}  (the machine may be shared: compare the ratio, not the ms)\n")

    figures = {way: statistics.median(marginal_ms(pair, args.small, args.n) for pair in pairs)
               for way, pairs in runs.items()}
    cpu = {way: statistics.median(marginal_ms(pair, args.small, args.n, cpu=True) for pair in pairs)
           for way, pairs in runs.items()}
    cores = len(os.sched_getaffinity(0))
    print(f"{'way':44s} {'small run s':>11s} {'full run s':>10s} {'ms/image marginal':>18s} "
          f"{'CPU ms/image':>13s} {f'CPU / {cores} cores':>14s}")
    for way, pairs in runs.items():
        print(f"{way:44s} {statistics.median(p[0].seconds for p in pairs):11.2f} "
              f"{statistics.median(p[1].seconds for p in pairs):10.2f} {figures[way]:18.2f} "
              f"{cpu[way]:13.2f} {cpu[way] / cores:14.2f}")
    (one, batched), (one_cpu, batched_cpu) = figures.values(), cpu.values()
    verdict = "PASS" if batched <= TARGET_MS else "FAIL"
    print(f"ratio (one at a time / batched): {one / batched:.2f}× wall, {one_cpu / batched_cpu:.2f}× CPU; "
          f"target ≤ {TARGET_MS:g} ms/image wall: {verdict}")
    return 0 if _same_outputs(runs, args.n) else 1


def _same_outputs(runs: dict[str, list[tuple[Run, Run]]], count: int) -> bool:
    """Says whether every run printed the same JSON and wrote the same PNG bytes as every other
    run on the same images."""
    same_json = same_png = True
    for size in (0, 1):  # the small runs, then the full ones
        group = [pair[size] for pairs in runs.values() for pair in pairs]
        same_json &= all(run.stdout == group[0].stdout for run in group)
        same_png &= all(run.overlays == group[0].overlays for run in group)
    full = next(iter(runs.values()))[0][1]
    print(f"JSON identical between the ways: {'yes' if same_json else 'NO'} ({len(full.stdout.splitlines())} "
          f"lines for {count} images); PNG bytes identical: {'yes' if same_png else 'NO'} "
          f"({len(full.overlays)} overlays)")
    return same_json and same_png


def _load() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
