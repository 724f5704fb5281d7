"""Helpers for the thread-safety tests of core (tests/core) and of the app's caches (tests/app)."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

# Seconds; a thread stuck before the barrier fails the test instead of hanging it. Generous: on a
# busy, shared 2-core machine a new thread may wait long before it is first scheduled.
BARRIER_TIMEOUT = 600


def synthetic_image(index: int) -> bytes:
    """A distinct grey 'radiograph' per index: its own size, noise and bright oblique band."""
    height, width = 300 + 23 * index, 240 + 31 * index
    rng = np.random.default_rng(1000 + index)
    pixels = rng.integers(10, 90, (height, width)).astype(np.uint8)
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    band = np.abs(cols - (0.5 + 0.3 * np.sin(index)) * width - (rows - height / 2) * (index % 3 - 1) * 0.5)
    pixels[band < 6 + index] = 230  # bone-bright, in a different place on every image
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG" if index % 2 else "JPEG")
    return buffer.getvalue()


def run_together(task, count: int) -> list:
    """Runs ``task(index)`` for ``index < count`` in ``count`` threads released by one barrier."""
    barrier = threading.Barrier(count, timeout=BARRIER_TIMEOUT)

    def start_together(index):
        barrier.wait()
        return task(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start_together, range(count)))
