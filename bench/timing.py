"""Wall-clock samples, their percentiles, and peak memory read from /proc."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np


def time_each(call: Callable, inputs: Iterable, *, warmup: Sequence = ()) -> list[float]:
    """Milliseconds of ``call(x)`` for each ``x`` in ``inputs``, after ``call`` on each of ``warmup``."""
    for value in warmup:
        call(value)
    samples = []
    for value in inputs:
        started = time.perf_counter()
        call(value)
        samples.append((time.perf_counter() - started) * 1e3)
    return samples


def time_interleaved(calls: dict[str, Callable], inputs: Sequence, *, warmup: Sequence = ()) -> dict[str, list[float]]:
    """Milliseconds of every call on each input, the calls taking turns input by input.

    Taking turns spreads a noisy neighbour's bursts over all calls alike, so their ratio holds
    even when the absolute figures wander; the order rotates so no call always goes first.
    """
    for value in warmup:
        for call in calls.values():
            call(value)
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index, value in enumerate(inputs):
        for name in names[index % len(names):] + names[: index % len(names)]:
            started = time.perf_counter()
            calls[name](value)
            samples[name].append((time.perf_counter() - started) * 1e3)
    return samples


def seconds(call: Callable) -> tuple[float, object]:
    """``(seconds, result)`` of one call."""
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def summary(samples: Sequence[float]) -> dict:
    """p50, p95 and count of a list of samples (p95 is None for fewer than 5 samples)."""
    values = np.asarray(samples, dtype=np.float64)
    return {"p50": float(np.median(values)),
            "p95": float(np.percentile(values, 95)) if len(values) >= 5 else None,
            "n": int(len(values))}


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process in MiB, or None where /proc does not say."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None
