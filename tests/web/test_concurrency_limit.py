"""The per-worker concurrency limit on a real `gmsd serve` (one worker, so the count is exact).

With `max_concurrent_requests` requests in progress, the next one is answered 503 at once (JSON,
`Retry-After`) on both APIs, the operations routes still answer, and once the requests in
progress finish everything is served again. Requests are held in progress the way real work is:
waiting for a dependency (an `ors` orchestration that answers only when the test lets it).

Waiting for the *client* is not work: requests whose bodies stall or trickle in hold no slot, so
256 of them (the default limit) do not deny the API to anyone, and the minimum body rate cuts
them off after one `body_rate_window` instead of the whole `body_timeout`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import RedisServer, start_redis
from tests.support.gmsd_process import GmsdProcess, gmsd_serving
from tests.support.orchestration import Orchestration

LIMIT = 3
CONFIG = """
[limits]
max_concurrent_requests = {limit}
body_timeout = 60.0
body_rate_window = {window}

[orchestration]
timeout = 60

[services.s]
_ttl = 600

[services.o]
_type = "ors"
_service = "{orchestration}/flow"
_ttl = 600
"""
WINDOW = 1.5  # `body_rate_window` of these tests: a stalled body is cut off after it


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def orchestration() -> Iterator[Orchestration]:
    played = Orchestration()
    yield played
    played.open.set()
    played.close()


def config(orchestration: Orchestration, limit: int) -> str:
    return CONFIG.format(limit=limit, window=WINDOW, orchestration=orchestration.url)


@pytest.fixture
def server(own_redis: RedisServer, orchestration: Orchestration, tmp_path: Path) -> Iterator[GmsdProcess]:
    with gmsd_serving(tmp_path, own_redis.url, config(orchestration, LIMIT), workers=1) as served:
        yield served


def request_bytes(target: str, body: bytes) -> bytes:
    return (f"POST {target} HTTP/1.1\r\nHost: gmsd\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def hold(server: GmsdProcess, oid: str) -> socket.socket:
    """A whole request that gmsd forwards to the orchestration, which does not answer yet."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(request_bytes(f"/genesys/1/service/{oid}/wait", b"held=yes"))
    return sock


def in_progress(server: GmsdProcess) -> float:
    metrics = httpx.get(f"{server.base}/metrics").text
    line = next(m for m in metrics.splitlines() if m.startswith("gmsd_http_requests_in_flight"))
    return float(line.split()[-1])


def test_requests_over_the_limit_are_503_until_the_ones_in_progress_finish(
    server: GmsdProcess, own_redis: RedisServer, orchestration: Orchestration
) -> None:
    stored = redis.Redis(port=own_redis.port)
    sid = httpx.post(f"{server.base}/genesys/1/service/s").json()["id"]
    oid = httpx.post(f"{server.base}/genesys/1/service/o").json()["id"]
    orchestration.open.clear()
    held = [hold(server, oid) for _ in range(LIMIT)]
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            for _ in range(100):  # until all of them wait for the orchestration
                if orchestration.waiting >= LIMIT:
                    break
                time.sleep(0.05)
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

            orchestration.open.set()  # the held requests finish normally
            for sock in held:
                sock.settimeout(10)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            assert http.get(f"/genesys/1/service/{sid}/storage").json() == {}
            assert http.post("/genesys/1/cs/services/start", json={"customer_id": "busy"}).status_code == 201
            assert len(http.get("/genesys/1/cs/customers/busy/services").json()) == 1  # the refused start: not there
    finally:
        for sock in held:
            sock.close()


STALLED = 256  # the default `max_concurrent_requests`


def test_stalled_bodies_hold_no_slot_and_are_cut_off_at_the_minimum_rate(
    own_redis: RedisServer, orchestration: Orchestration, tmp_path: Path
) -> None:
    with gmsd_serving(tmp_path, own_redis.url, config(orchestration, STALLED), workers=1) as server:
        sid = httpx.post(f"{server.base}/genesys/1/service/s", data={"kept": "yes"}).json()["id"]
        stalled = []
        try:
            for _ in range(STALLED):  # headers and the start of a body, then nothing
                sock = socket.create_connection(("127.0.0.1", server.port))
                sock.sendall(request_bytes(f"/genesys/1/service/{sid}/storage", b"a=" + b"x" * 9998)[:-9000])
                stalled.append(sock)
            began = time.monotonic()
            with httpx.Client(base_url=server.base, timeout=5) as http:
                while in_progress(server) < STALLED:  # all of them reached the app (which waits for the body)
                    assert time.monotonic() - began < 5, "the stalled requests did not start"
                    time.sleep(0.05)
                for _ in range(3):  # everyone else is served, at once
                    for call in (lambda: http.get(f"/genesys/1/service/{sid}/storage"),
                                 lambda: http.post("/genesys/1/service/s", data={"a": "1"}),
                                 lambda: http.post("/genesys/1/cs/services/start", json={"customer_id": "fast"})):
                        asked = time.monotonic()
                        response = call()
                        assert response.status_code in (200, 201), response.text
                        assert time.monotonic() - asked < 1.0
            for sock in stalled:  # cut off after one window without progress, long before body_timeout
                sock.settimeout(max(0.1, began + 4 * WINDOW - time.monotonic()))
                answer = sock.recv(65536)
                assert answer.startswith(b"HTTP/1.1 408 ") and b"slower than 1024 bytes" in answer, answer[:300]
            assert time.monotonic() - began < 4 * WINDOW + 1
            assert httpx.get(f"{server.base}/genesys/1/service/{sid}/storage").json() == {"kept": "yes"}
        finally:
            for sock in stalled:
                sock.close()
