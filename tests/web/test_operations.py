"""Operations through the ASGI app: health, readiness, metrics, request ids and access-log records.

Metrics are process-wide (prometheus-client keeps them in module-level objects), so each test
reads them before and after and asserts the difference.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from gmsd import metrics
from gmsd.config import parse_config
from gmsd.main import create_app
from gmsd.settings import Settings
from tests.conftest import AppFactory, Backend, free_port

BASE = "/genesys/1/service"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    """Every sample of GET /metrics, keyed by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_healthz_and_readyz_when_redis_answers(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"redis": "ok"}}


def test_readyz_names_redis_when_it_is_down_and_healthz_does_not_care() -> None:
    settings = Settings(f"redis://127.0.0.1:{free_port()}/0", parse_config("[redis]\ntimeout = 0.5\n", "<test>"))
    with TestClient(create_app(settings)) as client:
        before = scrape(client)
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"redis": "failing: ConnectionError"}
        after = scrape(client)
    unavailable = "gmsd_redis_errors_total"
    assert value(after, unavailable, kind="unavailable") - value(before, unavailable, kind="unavailable") == 1


def test_requests_are_counted_per_route_template_and_status_class(client: TestClient) -> None:
    before = scrape(client)
    service_id = client.post(f"{BASE}/storage", data={"a": "1"}).json()["id"]
    for _ in range(2):
        assert client.post(f"{BASE}/{service_id}/storage", data={"b": "2"}).status_code == 200
    assert client.get(f"{BASE}/{service_id}/storage/a").status_code == 200
    assert client.get(f"{BASE}/{service_id}/storage/missing").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "gmsd_http_requests_total"
    assert delta(requests, method="POST", route=BASE + "/{name}", status="2xx") == 1
    assert delta(requests, method="POST", route=BASE + "/{id}/storage", status="2xx") == 2
    assert delta(requests, method="GET", route=BASE + "/{id}/storage/{key:path}", status="2xx") == 1
    assert delta(requests, method="GET", route=BASE + "/{id}/storage/{key:path}", status="4xx") == 1
    assert delta(requests, method="GET", route="unmatched", status="4xx") == 1
    seconds = "gmsd_http_request_duration_seconds_count"
    assert delta(seconds, method="POST", route=BASE + "/{id}/storage") == 2
    # Raw paths (ids, keys) never become labels.
    assert not any(service_id in dict(labels).get("route", "") for _, labels in after)
    # The scrape itself is in flight while it is answered.
    assert value(after, "gmsd_http_requests_in_flight") == 1


def test_operator_counters_services_created_and_bytes_stored(client: TestClient) -> None:
    before = scrape(client)
    picture = os.urandom(3000)
    created = client.post(f"{BASE}/request-interaction", data={"city": "Zürich"},
                          files={"photo": ("p.png", picture, "image/png")})
    service_id = created.json()["id"]
    client.post(f"{BASE}/{service_id}/storage", json={"n": 7})
    client.post(f"{BASE}/{service_id}/update", data={"z": "last"})
    after = scrape(client)
    assert value(after, "gmsd_services_created_total", service="request-interaction") - value(
        before, "gmsd_services_created_total", service="request-interaction") == 1
    stored = "gmsd_stored_bytes_total"
    assert value(after, stored, kind="string") - value(before, stored, kind="string") == len(
        "Zürich".encode()) + len("7") + len("last")
    assert value(after, stored, kind="file") - value(before, stored, kind="file") == 3000
    # Composite starts are counted by the Context Services side; both series exist from the start.
    assert ("gmsd_cs_composite_starts_total", frozenset({("result", "created")})) in after
    assert ("gmsd_cs_composite_starts_total", frozenset({("result", "found")})) in after


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": "req-42.a:b"})
    assert echoed.headers["x-request-id"] == "req-42.a:b"
    generated = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz").headers["x-request-id"] != generated  # one per request
    for unusable in ("has space", "x" * 129):
        replaced = client.get("/healthz", headers={"X-Request-ID": unusable}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced), unusable
    # Error answers carry it too.
    missing = client.get(f"{BASE}/not-an-id/storage", headers={"X-Request-ID": "r-404"})
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "r-404"


def test_one_access_line_per_request_formatted_as_json(client: TestClient, caplog: pytest.LogCaptureFixture,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG, logger="gmsd.access")  # probe lines are written at DEBUG
    capfd.readouterr()
    client.post(f"{BASE}/storage", data={"secret": "hunter2"}, headers={"X-Request-ID": "rid-1"})
    client.get("/healthz", headers={"X-Request-ID": "rid-2"})
    written = capfd.readouterr().out
    lines = [json.loads(text) for text in written.splitlines()]
    access = [line for line in lines if line["logger"] == "gmsd.access"]
    assert len(access) == 2
    create, probe = access
    assert create["level"] == "info"
    assert probe["level"] == "debug"  # probes and scrapes stay out of the info-level log
    assert probe["request_id"] == "rid-2" and probe["route"] == "/healthz"
    assert list(create) == ["time", "level", "logger", "pid", "message", "method", "route", "status",
                            "duration_ms", "request_id"]  # the fields and order of JsonFormatter's lines
    assert create["method"] == "POST"
    assert create["route"] == BASE + "/{name}"
    assert create["status"] == 200
    assert create["request_id"] == "rid-1"
    assert create["pid"] == os.getpid()
    assert create["message"] == "request"
    assert isinstance(create["duration_ms"], float) and create["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", create["time"])
    assert "hunter2" not in written


def test_access_lines_escape_what_the_client_chose(client: TestClient, caplog: pytest.LogCaptureFixture,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO, logger="gmsd.access")
    capfd.readouterr()
    # A request id may hold quotes and backslashes (printable ASCII); a method is the client's text.
    client.get(f"{BASE}/not-an-id/storage", headers={"X-Request-ID": 'r"\\x'})
    client.request("PRO\"PFIND", f"{BASE}/not-an-id/storage")
    lines = [json.loads(text) for text in capfd.readouterr().out.splitlines()]  # every line valid JSON
    access = [line for line in lines if line["logger"] == "gmsd.access"]
    assert access[0]["request_id"] == 'r"\\x'
    assert access[1]["method"] == 'PRO"PFIND'


def test_access_lines_follow_the_access_loggers_level(client: TestClient, caplog: pytest.LogCaptureFixture,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.WARNING, logger="gmsd.access")
    capfd.readouterr()
    client.post(f"{BASE}/storage", data={"a": "b"})
    assert "gmsd.access" not in capfd.readouterr().out


def test_unhandled_error_is_a_counted_500_with_the_request_id(backend: Backend) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = create_app(Settings(backend.url, parse_config("", "<test>")), backend.make_async())
    app.router.routes.append(Route("/boom", boom))
    with TestClient(app, raise_server_exceptions=False) as client:
        before = scrape(client)
        response = client.get("/boom", headers={"X-Request-ID": "rid-boom"})
        after = scrape(client)
    assert response.status_code == 500
    assert response.json() == {"message": "internal server error"}
    assert response.headers["x-request-id"] == "rid-boom"
    labels = {"method": "GET", "route": "/boom", "status": "5xx"}
    assert value(after, "gmsd_http_requests_total", **labels) - value(before, "gmsd_http_requests_total", **labels) == 1


def test_multiprocess_directory_is_prepared_for_several_workers_only(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert metrics.prepare_multiprocess_dir(1, environ) is None
    assert environ == {}
    created = metrics.prepare_multiprocess_dir(2, environ)
    assert created is not None and created.is_dir()
    assert environ[metrics.MULTIPROC_ENV] == str(created)
    metrics.remove_multiprocess_dir(created)
    assert not created.exists()
    # A directory named by the operator is kept, but emptied of an earlier run's files.
    named = tmp_path / "metrics"
    named.mkdir()
    (named / "counter_123.db").write_bytes(b"stale")
    (named / "keep.txt").write_text("not ours")
    assert metrics.prepare_multiprocess_dir(2, {metrics.MULTIPROC_ENV: str(named)}) is None
    assert sorted(p.name for p in named.iterdir()) == ["keep.txt"]


def test_probe_and_metrics_routes_exist(make_client: AppFactory) -> None:
    client = make_client()
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_unusual_methods_share_one_label(client: TestClient) -> None:
    before = scrape(client)
    for method in ("PROPFIND", "MKCOL"):
        assert client.request(method, "/healthz").status_code == 405
    after = scrape(client)
    labels = {"method": "other", "route": "/healthz", "status": "4xx"}
    assert value(after, "gmsd_http_requests_total", **labels) - value(before, "gmsd_http_requests_total", **labels) == 2
