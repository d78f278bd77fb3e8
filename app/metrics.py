"""Prometheus metrics: per-route HTTP traffic, Redis errors and the counters operators watch.

Every metric is a module-level prometheus-client object, so handlers and domain code call the
small `count_*` functions below. With several uvicorn workers, prometheus-client's
multiprocess mode keeps one set of files per worker in `PROMETHEUS_MULTIPROC_DIR` and a scrape
adds them up (`exposition`). That variable must be set before `prometheus_client` is first
imported in a worker, which is why `gmsd serve` prepares the directory (`prepare_multiprocess_dir`)
before uvicorn starts any worker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

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

# Series that exist from the start, so that dashboards and alerts see 0 rather than nothing.
for _kind in ("unavailable", "refused"):
    REDIS_ERRORS.labels(_kind)
for _result in ("created", "found"):
    COMPOSITE_STARTS.labels(_result)
for _kind in ("string", "file"):
    STORED_BYTES.labels(_kind)

_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
# (method, route, status // 100) -> (counter child, histogram child): `labels()` validates and
# locks on every call, which this cache keeps off the request path.
_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration under its route template."""
    if method not in _METHODS:
        method = "other"  # before the cache too: it must stay as small as the label set
    key = (method, route, status // 100)
    children = _children.get(key)
    if children is None:
        status_class = _STATUS_CLASSES.get(status // 100, "other")
        children = (REQUESTS.labels(method, route, status_class), REQUEST_SECONDS.labels(method, route))
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def count_redis_error(kind: str) -> None:
    """Count a failed Redis call: `unavailable` or `refused`."""
    REDIS_ERRORS.labels(kind).inc()


def count_service_created(service: str) -> None:
    """Count a GMS service created from the configured service `service`."""
    SERVICES_CREATED.labels(service).inc()


def count_composite_start(created: bool) -> None:
    """Count one service of a composite start: newly `created`, or an active one `found`."""
    COMPOSITE_STARTS.labels("created" if created else "found").inc()


def count_stored_bytes(string_bytes: int, file_bytes: int) -> None:
    """Count bytes of user data written: string values (UTF-8) and file contents."""
    if string_bytes:
        STORED_BYTES.labels("string").inc(string_bytes)
    if file_bytes:
        STORED_BYTES.labels("file").inc(file_bytes)


def exposition() -> bytes:
    """The metrics in Prometheus text format: this process's, or every worker's added up."""
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
