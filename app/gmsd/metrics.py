"""Prometheus metrics: per-route HTTP traffic, Redis errors and the counters operators watch.

Every metric is a module-level prometheus-client object, so handlers and domain code call the
small `count_*` functions below. With several uvicorn workers, prometheus-client's
multiprocess mode keeps one set of files per worker in `PROMETHEUS_MULTIPROC_DIR` and a scrape
adds them up (`exposition`). That variable must be set before `prometheus_client` is first
imported in a worker, which is why `gmsd serve` prepares the directory (`prepare_multiprocess_dir`)
before uvicorn starts any worker.

In multiprocess mode every `inc()`/`observe()` is a write into a memory-mapped file, which
measured ~15 µs per request on the hot path with two workers. So per-request observations are
added up in plain Python (`observe_request`, `count_*`) and folded into prometheus-client once a
second (`flush`, run by `flush_periodically`) and before every scrape: a scrape sees its own
worker exactly and the others at most one second late.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from bisect import bisect_left
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus-client decides once, at import, whether values live in files: follow the same choice.
MULTIPROCESS = MULTIPROC_ENV in os.environ
CONTENT_TYPE = CONTENT_TYPE_LATEST

# `*_created` timestamps double the series for no use (Prometheus reads resets from the counters).
disable_created_metrics()  # type: ignore[no-untyped-call]

UNMATCHED_ROUTE = "unmatched"  # label of requests no route matched: raw paths would explode cardinality
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

REQUESTS = Counter(
    "gmsd_http_requests",
    "HTTP requests answered, by method, route template and status class.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "gmsd_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "gmsd_http_requests_in_flight",
    "HTTP requests being answered right now.",
    multiprocess_mode="livesum",  # the sum over live workers; a dead worker's requests are not in flight
)
REDIS_ERRORS = Counter(
    "gmsd_redis_errors",
    "Redis calls that failed: `unavailable` (unreachable, timed out) or `refused` (an error reply).",
    ["kind"],
)
SERVICES_CREATED = Counter(
    "gmsd_services_created",
    "GMS services created, by configured service name.",
    ["service"],
)
COMPOSITE_STARTS = Counter(
    "gmsd_cs_composite_starts",
    "Services of Context Services composite starts, `created` or `found` active.",
    ["result"],
)
STORED_BYTES = Counter(
    "gmsd_stored_bytes",
    "Bytes of user data written to GMS storage: `string` values (UTF-8) and `file` contents.",
    ["kind"],
)
ACCESS_NUMBERS = Counter(
    "gmsd_access_numbers",
    "Access-number requests: `reserved`, `exhausted` (503: no number free), `matched`, `unmatched` (404).",
    ["result"],
)

# Series that exist from the start, so that dashboards and alerts see 0 rather than nothing.
for _kind in ("unavailable", "refused"):
    REDIS_ERRORS.labels(_kind)
for _result in ("created", "found"):
    COMPOSITE_STARTS.labels(_result)
for _kind in ("string", "file"):
    STORED_BYTES.labels(_kind)
for _result in ("reserved", "exhausted", "matched", "unmatched"):
    ACCESS_NUMBERS.labels(_result)

_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
# Upper bounds of the histogram's buckets, +Inf last: the bucket of `s` is bisect_left(bounds, s),
# the first bound >= s, exactly the bucket `Histogram.observe` picks.
_BOUNDS: list[float] = list(REQUEST_SECONDS._upper_bounds)

# Observations not yet folded into prometheus-client:
# (method, route, status // 100) -> [count, sum of seconds, count per bucket…]
_requests: dict[tuple[str, str, int], list[float]] = {}
# (counter, label value) -> amount
_counts: dict[tuple[Counter, str], float] = {}
_in_flight = 0


def request_started() -> None:
    """One more request in flight in this process."""
    global _in_flight
    _in_flight += 1


def request_finished() -> None:
    """One request fewer in flight in this process."""
    global _in_flight
    _in_flight -= 1


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration under its route template."""
    if method not in _METHODS:
        method = "other"  # the label set must stay small
    key = (method, route, status // 100)
    pending = _requests.get(key)
    if pending is None:
        pending = _requests[key] = [0.0] * (2 + len(_BOUNDS))
    pending[0] += 1
    pending[1] += seconds
    pending[2 + bisect_left(_BOUNDS, seconds)] += 1


def _count(counter: Counter, label: str, amount: float = 1) -> None:
    key = (counter, label)
    _counts[key] = _counts.get(key, 0) + amount


def count_redis_error(kind: str) -> None:
    """Count a failed Redis call: `unavailable` or `refused`."""
    _count(REDIS_ERRORS, kind)


def count_service_created(service: str) -> None:
    """Count a GMS service created from the configured service `service`."""
    _count(SERVICES_CREATED, service)


def count_access_number(result: str) -> None:
    """Count an access-number request: `reserved`, `exhausted`, `matched` or `unmatched`."""
    _count(ACCESS_NUMBERS, result)


def count_composite_start(created: bool) -> None:
    """Count one service of a composite start: newly `created`, or an active one `found`."""
    _count(COMPOSITE_STARTS, "created" if created else "found")


def count_stored_bytes(string_bytes: int, file_bytes: int) -> None:
    """Count bytes of user data written: string values (UTF-8) and file contents."""
    if string_bytes:
        _count(STORED_BYTES, "string", string_bytes)
    if file_bytes:
        _count(STORED_BYTES, "file", file_bytes)


def flush() -> None:
    """Fold the observations gathered since the last flush into prometheus-client's values."""
    global _requests, _counts
    requests, counts = _requests, _counts
    _requests, _counts = {}, {}
    for (method, route, status), pending in requests.items():
        REQUESTS.labels(method, route, _STATUS_CLASSES.get(status, "other")).inc(pending[0])
        histogram: Any = REQUEST_SECONDS.labels(method, route)
        # prometheus-client has no "observe n at once": add to its bucket values directly, as
        # Histogram.observe does (tests/web/test_operations.py checks the resulting exposition).
        histogram._sum.inc(pending[1])
        for index, count in enumerate(pending[2:]):
            if count:
                histogram._buckets[index].inc(count)
    for (counter, label), amount in counts.items():
        counter.labels(label).inc(amount)
    IN_FLIGHT.set(_in_flight)


async def flush_periodically(interval: float = 1.0) -> None:
    """Run `flush` every `interval` seconds until cancelled (then once more)."""
    try:
        while True:
            await asyncio.sleep(interval)
            flush()
    finally:
        flush()


def exposition() -> bytes:
    """The metrics in Prometheus text format: this process's, or every worker's added up."""
    flush()
    if not MULTIPROCESS:
        return generate_latest(REGISTRY)
    # As prometheus-client documents it: a fresh registry per scrape, reading every worker's files.
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exit() -> None:
    """Drop this worker's live gauges (its in-flight requests) from the aggregated metrics."""
    if MULTIPROCESS:
        _multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def prepare_multiprocess_dir(workers: int, environ: dict[str, str] | os._Environ[str] = os.environ) -> Path | None:
    """Set up `PROMETHEUS_MULTIPROC_DIR` for `workers` processes; the directory to remove on exit.

    One process needs nothing. For several, a directory named by the environment is emptied
    (files of an earlier run would be added to this one's); otherwise a temporary directory is
    created (on a read-only root filesystem, `/tmp` must be a writable volume) and returned so
    that the caller removes it when the server stops.
    """
    named = environ.get(MULTIPROC_ENV)
    if named:
        path = Path(named)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return None
    if workers <= 1:
        return None
    created = Path(tempfile.mkdtemp(prefix="gmsd-metrics-"))
    environ[MULTIPROC_ENV] = str(created)
    return created


def remove_multiprocess_dir(path: Path | None) -> None:
    """Remove a directory made by `prepare_multiprocess_dir` (None: nothing to do)."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
