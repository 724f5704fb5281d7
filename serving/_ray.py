"""Connecting the serving commands to Ray: a local Ray of their own, or an existing cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def ray_connection(*, address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray, for the duration of the ``with`` block.

    Args:
        address: an existing cluster to join (``ray.init(address=...)``, e.g. ``auto`` on a node
            of the cluster or ``ray://head:10001``); None starts a local Ray.
        num_cpus: the CPUs a local Ray may use (ignored when joining a cluster: it has its own).

    A Ray this process is already connected to (a test session, a notebook) is used as it is and
    left running; one started here is shut down on the way out.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    # Usage statistics would be sent to Ray's servers: nothing leaves the machine unless asked.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    else:
        ray.init(address=address)
    try:
        yield
    finally:
        ray.shutdown()
