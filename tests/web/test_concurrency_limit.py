"""The per-worker concurrency limit on a real `gmsd serve` (one worker, so the count is exact):
with `max_concurrent_requests` requests in progress, the next one is answered 503 at once (JSON,
`Retry-After`) on both APIs, the operations routes still answer, and once the requests in
progress finish everything is served again. Requests are held in progress by sending their
bodies slowly, the way a real burst of slow uploads would."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import RedisServer, start_redis
from tests.support.gmsd_process import GmsdProcess, gmsd_serving

LIMIT = 3
CONFIG = f"""
[limits]
max_concurrent_requests = {LIMIT}
body_timeout = 60.0

[services.s]
_ttl = 600
"""
BODY = b"held=yes"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def server(own_redis: RedisServer, tmp_path: Path) -> Iterator[GmsdProcess]:
    with gmsd_serving(tmp_path, own_redis.url, CONFIG, workers=1) as served:
        yield served


def hold(server: GmsdProcess, sid: str) -> socket.socket:
    """A storage write whose headers and first body byte are sent, the rest not yet."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(f"POST /genesys/1/service/{sid}/storage HTTP/1.1\r\nHost: gmsd\r\n"
                 f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
                 + BODY[:1])
    return sock


def in_progress(server: GmsdProcess) -> float:
    metrics = httpx.get(f"{server.base}/metrics").text
    line = next(m for m in metrics.splitlines() if m.startswith("gmsd_http_requests_in_flight"))
    return float(line.split()[-1])


def test_requests_over_the_limit_are_503_until_the_ones_in_progress_finish(
    server: GmsdProcess, own_redis: RedisServer
) -> None:
    stored = redis.Redis(port=own_redis.port)
    sid = httpx.post(f"{server.base}/genesys/1/service/s").json()["id"]
    held = [hold(server, sid) for _ in range(LIMIT)]
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            for _ in range(100):  # until the server has begun all of them (each waits for its body)
                if in_progress(server) >= LIMIT + 1:  # the held ones and this /metrics request
                    break
            else:
                pytest.fail("the held requests did not start")
            keys_before = stored.dbsize()
            refused = [
                http.post("/genesys/1/service/s", data={"a": "1"}),
                http.get(f"/genesys/1/service/{sid}/storage"),
                http.post("/genesys/1/cs/services/start", json={"customer_id": "busy"}),
            ]
            for response in refused:
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "1"
                assert response.json()["message"] == "too many requests in progress; retry later"
            assert refused[2].json()["exception"].endswith(".ContextServicesException")
            for path in ("/healthz", "/readyz", "/metrics"):  # never refused
                assert http.get(path).status_code == 200, path
            assert stored.dbsize() == keys_before  # nothing of the refused requests was stored

            for sock in held:  # the held requests finish normally
                sock.sendall(BODY[1:])
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            assert http.get(f"/genesys/1/service/{sid}/storage").json() == {"held": "yes"}
            assert http.post("/genesys/1/cs/services/start", json={"customer_id": "busy"}).status_code == 201
            assert len(http.get("/genesys/1/cs/customers/busy/services").json()) == 1  # the refused start: not there
    finally:
        for sock in held:
            sock.close()
