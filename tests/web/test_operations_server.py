"""`gmsd serve` as a real process: JSON logs, graceful shutdown on SIGTERM, multi-worker metrics.

The server's stdout goes to a file (never an unread pipe that could fill up and stall it);
every wait below is event-driven with a generous deadline, never a timed assertion.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RedisServer
from tests.support.gmsd_process import Served, wait_for
from tests.support.paths import ROOT

BASE = "/genesys/1/service"




class HeldOrchestration:
    """An orchestration URL that answers only when the test releases it: a request held in flight."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.arrived.set()
                outer.release.wait(60)
                body = b'{"slow": "done"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # With credentials in the URL, as some orchestration endpoints need: they must never be logged.
        self.url = f"http://gmsd:orch-pass@127.0.0.1:{self.server.server_address[1]}/x"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def orchestration() -> Iterator[HeldOrchestration]:
    server = HeldOrchestration()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis.Redis(port=redis_server.port).flushall()
    return redis_server.url


def slow_config(tmp_path: Path, orchestration: HeldOrchestration) -> str:
    path = tmp_path / "gmsd.toml"
    path.write_text(f'[orchestration]\ntimeout = 60\n\n[services.slow]\n_type = "ors"\n'
                    f'_service = "{orchestration.url}"\n_ttl = 60\n')
    return str(path)


def in_background(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[Any]]:
    """Run `call` in a thread; its response (or exception) lands in the returned list."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_one_json_line_per_request_with_request_id_and_no_values(tmp_path: Path, redis_url: str) -> None:
    served = Served(tmp_path, "--redis-url", redis_url)
    try:
        created = httpx.post(served.base + f"{BASE}/storage", headers={"X-Request-ID": "rid-create"},
                             data={"password": "hunter2-secret"}, files={"f": ("f.bin", b"FILE-BYTES-xyz")})
        assert created.headers["x-request-id"] == "rid-create"
        service_id = created.json()["id"]
        read = httpx.get(f"{served.base}{BASE}/{service_id}/storage/password?token=query-secret-abc",
                         headers={"X-Request-ID": "rid-read"})
        assert read.json() == {"password": "hunter2-secret"}
        generated = httpx.get(f"{served.base}{BASE}/{service_id}/storage").headers["x-request-id"]
    finally:
        served.stop()
    lines = served.lines()  # every line of stdout is JSON, uvicorn's own included
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = {line["request_id"]: line for line in lines if line["logger"] == "gmsd.access"}
    assert access["rid-create"]["route"] == BASE + "/{name}"
    assert access["rid-create"]["method"] == "POST"
    assert access["rid-create"]["status"] == 200
    assert access["rid-read"]["route"] == BASE + "/{id}/storage/{key:path}"
    assert access[generated]["route"] == BASE + "/{id}/storage"
    assert all(isinstance(line["duration_ms"], float) for line in access.values())
    output = served.output()
    for secret in ("hunter2-secret", "query-secret-abc", "FILE-BYTES-xyz", "password"):
        assert secret not in output
    assert service_id not in output  # route templates, not raw paths


def test_log_level_warning_keeps_request_lines_out(tmp_path: Path, redis_url: str) -> None:
    served = Served(tmp_path, "--redis-url", redis_url, env={"GMSD_LOG_LEVEL": "warning"})
    try:
        assert httpx.post(served.base + f"{BASE}/storage").status_code == 200
    finally:
        served.stop()
    assert not [line for line in served.lines() if line["logger"] == "gmsd.access"]


def test_sigterm_fails_readiness_then_finishes_the_request_in_flight(
    tmp_path: Path, redis_url: str, orchestration: HeldOrchestration
) -> None:
    served = Served(tmp_path, "--redis-url", redis_url, "--config", slow_config(tmp_path, orchestration),
                    env={"GMSD_SHUTDOWN_DELAY": "1", "GMSD_SHUTDOWN_TIMEOUT": "30"})
    try:
        thread, result = in_background(lambda: httpx.post(served.base + f"{BASE}/slow", timeout=60))
        assert orchestration.arrived.wait(20), "the slow request never reached the orchestration"
        served.process.send_signal(signal.SIGTERM)

        # Readiness fails at once while the server still listens ...
        def readiness_failed() -> bool:
            return httpx.get(served.base + "/readyz", timeout=2).status_code != 200

        wait_for(readiness_failed, "readiness still answers 200 after SIGTERM")
        ready = httpx.get(served.base + "/readyz", timeout=2)
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"shutdown": "failing: draining"}
        assert httpx.get(served.base + "/healthz", timeout=2).status_code == 200  # alive: no restart

        # ... then it stops listening, while the request in flight is still held.
        wait_for(lambda: not served.answers("/healthz"), "the server kept listening past the delay")
        assert thread.is_alive() and served.process.poll() is None
        orchestration.release.set()
        thread.join(30)
        response = result[0]
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 200
        assert response.json()["slow"] == "done"
        served.process.wait(30)
    finally:
        served.stop()
    messages = [line["message"] for line in served.lines()]
    assert "SIGTERM: readiness answers 503 now; shutting down in 1 s" in messages
    assert "stopped: redis connections closed" in messages
    assert "orch-pass" not in served.output()
    # The request itself ran to completion and was logged as such.
    assert any(line.get("route") == BASE + "/{name}" and line.get("status") == 200 for line in served.lines())


def test_shutdown_timeout_bounds_a_request_that_never_ends(
    tmp_path: Path, redis_url: str, orchestration: HeldOrchestration
) -> None:
    served = Served(tmp_path, "--redis-url", redis_url, "--config", slow_config(tmp_path, orchestration),
                    "--shutdown-timeout", "1")
    try:
        thread, result = in_background(lambda: httpx.post(served.base + f"{BASE}/slow", timeout=60))
        assert orchestration.arrived.wait(20)
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(30)  # exits although the orchestration never answered
        assert not orchestration.release.is_set()
        thread.join(30)
        assert not (isinstance(result[0], httpx.Response) and result[0].status_code == 200)
    finally:
        served.stop()
    messages = [line["message"] for line in served.lines()]
    assert any("timeout graceful shutdown exceeded" in message for message in messages), messages
    assert "stopped: redis connections closed" in messages


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_two_workers_report_the_same_totals(tmp_path: Path, redis_url: str) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left over from an earlier run")
    served = Served(tmp_path, "--redis-url", redis_url, "--workers", "2", "--log-level", "debug",
                    env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    try:
        assert not (metrics_dir / "counter_1.db").exists()

        def pids(route: str) -> set[int]:
            return {line["pid"] for line in served.lines() if line.get("route") == route}

        def scrape_lines_at_least(count: int) -> bool:
            return sum(1 for line in served.lines() if line.get("route") == "/metrics") >= count

        # Fresh connections until both workers have created services (the kernel picks the worker).
        created = 0
        while len(pids(BASE + "/{name}")) < 2:
            assert created < 300, "one worker got every connection"
            response = httpx.post(served.base + f"{BASE}/storage", data={"k": "1234"})
            assert response.status_code == 200
            created += 1
        # Workers fold their counts into the shared files once a second: wait (bounded) until a
        # scrape sees both workers' work, then every scrape, whichever worker answers it, must.
        route = {"method": "POST", "route": BASE + "/{name}"}

        def totals_add_up(text: str) -> bool:
            return (metric(text, "gmsd_http_requests_total", **route, status="2xx") == created
                    and metric(text, "gmsd_http_request_duration_seconds_count", **route) == created
                    and metric(text, "gmsd_services_created_total", service="storage") == created
                    and metric(text, "gmsd_stored_bytes_total", kind="string") == 4 * created)

        deadline = time.monotonic() + 10
        while not totals_add_up(httpx.get(served.base + "/metrics").text):
            assert time.monotonic() < deadline, "the workers' counts never added up"
            time.sleep(0.1)
        scrapes = sum(1 for line in served.lines() if line.get("route") == "/metrics")
        first = scrapes
        while len(pids("/metrics")) < 2 or scrapes < first + 2:
            assert scrapes < first + 300, "one worker got every scrape"
            text = httpx.get(served.base + "/metrics").text
            scrapes += 1
            assert totals_add_up(text)
            assert metric(text, "gmsd_http_requests_in_flight") >= 1  # at least this scrape
            wait_for(partial(scrape_lines_at_least, scrapes), "a scrape was not logged")
    finally:
        code = served.stop()
    assert code == 0  # the supervisor stops its workers and exits cleanly


def test_shutdown_options_are_explained_and_checked() -> None:
    help_text = subprocess.run([sys.executable, "-m", "gmsd.cli", "serve", "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=30).stdout
    for name in ("--shutdown-timeout", "GMSD_SHUTDOWN_TIMEOUT", "--shutdown-delay", "GMSD_SHUTDOWN_DELAY",
                 "GMSD_WORKERS", "GMSD_LOG_LEVEL"):
        assert name in help_text
    for option, value in (("--shutdown-delay", "-1"), ("--shutdown-timeout", "nan")):
        refused = subprocess.run([sys.executable, "-m", "gmsd.cli", "serve", option, value], cwd=ROOT,
                                 capture_output=True, text=True, timeout=30)
        assert refused.returncode == 2
        assert "must not be negative" in refused.stderr
