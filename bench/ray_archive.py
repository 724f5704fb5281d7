"""Archive scoring throughput: `python -m serving.archive` on 1 and 2 Ray workers against the CLI.

    .venv/bin/python -m bench.ray_archive [--images 400] [--overlays] [--data-dir DIR]

Every command runs as a subprocess on the same files and is timed from outside, start-up
included: ``python -m core.predict --json FILES`` and ``python -m serving.archive --list FILE
--output rows.parquet --workers K`` (which starts its own local Ray with K CPUs). ``--overlays``
adds ``--heatmap-dir`` / ``--overlay-dir`` to both. The files are the first N FracAtlas test and
val radiographs (the images the issue's CLI figure was taken on), or generated stand-ins where
FracAtlas is absent.

Each command runs on N files and on N/4; images per second is given both overall (N / wall time)
and marginal, start-up excluded: (N - N/4) / (T(N) - T(N/4)), what an archive of any size costs
per image once running. Commands take turns at each size, so a noisy neighbour hits all alike; on
a shared machine the figures are only indicative. The archive's rows must be the CLI's answers:
the exit status is 1 when they are not.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from bench.data import generated_images
from core.config import PROJECT_DIR
from serving._archive_worker import scored_columns
from training.config import DEFAULT_DATA_DIR

WORKER_COUNTS = (1, 2)


@dataclass(frozen=True)
class Command:
    """One way of scoring the files: its label and how to run it on a list of them."""

    label: str
    archive_workers: int | None  # None: the CLI


@dataclass(frozen=True)
class Timing:
    """Wall seconds of one command on ``small`` and on ``large`` files."""

    command: Command
    small: int
    large: int
    small_s: float
    large_s: float

    @property
    def images_per_s(self) -> float:
        return self.large / self.large_s

    @property
    def marginal_images_per_s(self) -> float | None:
        extra_s = self.large_s - self.small_s
        return (self.large - self.small) / extra_s if extra_s > 0 else None


def image_paths(data_dir: Path, count: int, scratch: Path) -> tuple[str, list[Path]]:
    """The first ``count`` FracAtlas test and val images, or generated ones written to ``scratch``."""
    labels = data_dir / "labels.csv"
    if labels.is_file():
        with open(labels, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["split"] in ("test", "val")]
        if len(rows) >= count:
            return f"FracAtlas test and val, first {count} images", [data_dir / row["path"] for row in rows[:count]]
    images = generated_images(count, reason=f"fewer than {count} FracAtlas test and val images in {data_dir}")
    paths = [scratch / name for name in images.names]
    for path, data in zip(paths, images.files):
        path.write_bytes(data)
    return images.source, paths


def run_command(command: Command, files: list[Path], scratch: Path, overlays: bool) -> tuple[float, list[dict]]:
    """Wall seconds of ``command`` on ``files``, from launch to exit, and its answers as archive
    rows sorted by path."""
    name = f"{command.archive_workers or 'cli'}-{len(files)}"
    overlay_dir, rows_file = scratch / f"overlays-{name}", scratch / f"rows-{name}.parquet"
    if command.archive_workers is None:
        argv = ["-m", "core.predict", "--json", *map(str, files)]
        argv += ["--heatmap-dir", str(overlay_dir)] if overlays else []
    else:
        list_file = scratch / f"files-{len(files)}.txt"
        list_file.write_text("".join(f"{path}\n" for path in files))
        argv = ["-m", "serving.archive", "--list", str(list_file), "--output", str(rows_file),
                "--workers", str(command.archive_workers)]
        argv += ["--overlay-dir", str(overlay_dir)] if overlays else []
    started = time.perf_counter()
    run = subprocess.run([sys.executable, *argv], cwd=PROJECT_DIR, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode not in (0, 1):  # 1: some file unreadable, and said so in its row
        raise SystemExit(f"{command.label} exited {run.returncode}:\n{run.stderr[-2000:]}")
    if command.archive_workers is None:
        records = [json.loads(line) for line in run.stdout.splitlines()]
        rows = [{"path": record["path"], **scored_columns(record)} for record in records]
    else:
        rows = [{key: value for key, value in row.items() if value is not None}
                for row in pq.read_table(rows_file).to_pylist()]
    return seconds, sorted(rows, key=lambda row: row["path"])


def measure(files: list[Path], scratch: Path, overlays: bool) -> tuple[list[Timing], bool]:
    """Every command's timing, and whether they all gave the same answers."""
    commands = [Command("python -m core.predict (CLI)", None),
                *(Command(f"serving.archive, {count} Ray worker{'s' * (count > 1)}", count) for count in WORKER_COUNTS)]
    small = files[: max(1, len(files) // 4)]
    seconds: dict[tuple[str, int], float] = {}
    answers: dict[int, list[list[dict]]] = {len(small): [], len(files): []}
    for subset in (small, files):
        for command in commands:
            print(f"running {command.label} on {len(subset)} images …", flush=True)
            seconds[command.label, len(subset)], rows = run_command(command, subset, scratch, overlays)
            answers[len(subset)].append(rows)
    same = all(rows == group[0] for group in answers.values() for rows in group)
    return [Timing(command, len(small), len(files), seconds[command.label, len(small)],
                   seconds[command.label, len(files)]) for command in commands], same


def table(timings: list[Timing]) -> str:
    cli = timings[0]
    lines = [f"{'command':34s} {'s (N/4)':>8s} {'s (N)':>8s} {'images/s':>9s} {'marginal/s':>11s} {'vs CLI':>7s}"]
    for timing in timings:
        marginal, base = timing.marginal_images_per_s, cli.marginal_images_per_s
        ratio = f"{marginal / base:.2f}×" if marginal and base else "–"
        marginal_text = "–" if marginal is None else f"{marginal:.1f}"
        lines.append(f"{timing.command.label:34s} {timing.small_s:8.1f} {timing.large_s:8.1f} "
                     f"{timing.images_per_s:9.1f} {marginal_text:>11s} {ratio:>7s}")
    lines.append("– : not measurable in this run (the larger run was not slower than the smaller one: "
                 "start-up dominates, or the machine is busy)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ray_archive", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="N: files per run (also run on N/4)")
    parser.add_argument("--overlays", action="store_true", help="write overlay PNGs too (--heatmap-dir, --overlay-dir)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the FracAtlas folder")
    args = parser.parse_args(argv)
    if args.images < 4:
        parser.error(f"--images must be at least 4 (the runs on N/4 need one); got {args.images}")
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-ray-archive-") as folder:
        source, files = image_paths(args.data_dir, args.images, Path(folder))
        print(f"images: {source}; overlays: {'yes' if args.overlays else 'no'}; {os.cpu_count()} CPUs", flush=True)
        timings, same = measure(files, Path(folder), args.overlays)
    print()
    print(table(timings))
    print(f"\nload average (1, 5, 15 min) at start {', '.join(f'{value:.1f}' for value in load_at_start)}, "
          f"at end {', '.join(f'{value:.1f}' for value in os.getloadavg())}; wall time from outside, start-up "
          "included; marginal = (N - N/4) / (T(N) - T(N/4)), start-up excluded")
    print(f"archive rows identical to the CLI's --json answers: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
