"""One local Ray for every test of :mod:`serving`: starting Ray costs seconds, so the archive and
Serve tests share it (2 CPUs, as the CI machine has; no dashboard, no usage reporting)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def local_ray():
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
