"""Redis down, black-holed or restarted: bounded 503s, no partial writes, scripts reload."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from starlette.testclient import TestClient

from gmsd.config import parse_config
from gmsd.keys import gms_service
from gmsd.main import create_app
from gmsd.settings import Settings
from tests.conftest import RedisServer, free_port, start_redis

BASE = "/genesys/1/service"
CONFIG = "[redis]\ntimeout = 0.5\n\n[services.s]\n_ttl = 600\n"


def app_client(url: str) -> TestClient:
    return TestClient(create_app(Settings(redis_url=url, config=parse_config(CONFIG, "<test>"))))


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("where", ["closed port", "black hole"])
def test_unreachable_redis_answers_503_json_within_the_timeout(where: str, black_hole: int) -> None:
    port = free_port() if where == "closed port" else black_hole
    with app_client(f"redis://127.0.0.1:{port}/0") as client:
        for method, path, kwargs in [
            ("POST", f"{BASE}/s", {"data": {"a": "1"}}),
            ("GET", f"{BASE}/6f1c2a57-0a53-4c55-a0a3-5d8b5d3f3d3e/storage/a", {}),
            ("POST", f"{BASE}/6f1c2a57-0a53-4c55-a0a3-5d8b5d3f3d3e/storage", {"data": {"a": "1"}}),
        ]:
            started = time.monotonic()
            response = client.request(method, path, **kwargs)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.json() == {"message": "storage unavailable"}
            assert elapsed < 5, f"{method} {path} took {elapsed:.1f}s: bounded by the timeout, not a hang"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "redis" in ready.json()["checks"]
        assert client.get("/healthz").status_code == 200


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    server.stop()


def test_scripts_reload_after_script_flush(own_redis: RedisServer) -> None:
    with app_client(own_redis.url) as client:
        sid = client.post(f"{BASE}/s", data={"a": "1"}).json()["id"]
        redis.Redis(port=own_redis.port).script_flush()
        assert client.post(f"{BASE}/{sid}/storage", data={"b": "2"}).status_code == 200
        assert client.get(f"{BASE}/{sid}/storage").json() == {"a": "1", "b": "2"}


def test_a_create_with_files_after_script_flush_is_whole(own_redis: RedisServer) -> None:
    # On a plain server the file bytes go by a plain HSET in the MULTI that runs the script: EXEC
    # that finds the script gone has written them alone. The retry leaves one whole service.
    with app_client(own_redis.url) as client:
        sync = redis.Redis(port=own_redis.port)
        sync.script_flush()
        response = client.post(f"{BASE}/s", data={"a": "1"}, files={"f": ("f.bin", b"\x00\xff", "x/y")})
        assert response.status_code == 200, response.text
        sid = response.json()["id"]
        assert client.get(f"{BASE}/{sid}/storage/binary/f").content == b"\x00\xff"
        assert client.get(f"{BASE}/{sid}/storage").json() == {"a": "1"}
        assert sorted(sync.keys("*")) == sorted(key.encode() for key in gms_service(sid))
        assert len({sync.pexpiretime(key) for key in gms_service(sid)}) == 1


def test_redis_restart_between_writes(own_redis: RedisServer) -> None:
    with app_client(own_redis.url) as client:
        first = client.post(f"{BASE}/s", data={"a": "1"})
        assert first.status_code == 200
        own_redis.stop()
        down = client.post(f"{BASE}/s", data={"a": "1"})
        assert down.status_code == 503
        own_redis.start()  # same port, empty (no persistence): the scripts are gone too
        deadline = time.monotonic() + 10
        while True:
            response = client.post(f"{BASE}/s", data={"again": "yes"}, files={"f": ("f", b"\x00", "x/y")})
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert response.status_code == 200, response.text
        sid = response.json()["id"]
        assert client.post(f"{BASE}/{sid}/storage", data={"b": "2"}).status_code == 200
        assert client.get(f"{BASE}/{sid}/storage").json() == {"again": "yes", "b": "2"}
        assert client.get(f"{BASE}/{sid}/storage/binary/f").content == b"\x00"
        assert client.get("/readyz").status_code == 200
