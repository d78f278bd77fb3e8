"""The test suite's view of `gmsd.bench.local_redis`: a missing binary skips, or fails under CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gmsd.bench.local_redis import LocalCluster, LocalSentinel, MissingRedisBinaries, RedisProcess, wait_until

__all__ = ["LocalCluster", "LocalSentinel", "RedisProcess", "redis_binaries_required", "wait_until"]


@contextmanager
def redis_binaries_required() -> Iterator[None]:
    """Turn MissingRedisBinaries into a skip, or a failure under CI (where .ci/run installs them)."""
    try:
        yield
    except MissingRedisBinaries as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: .ci/run must install redis-server and redis-tools")
        pytest.skip(str(exc))
