"""Shared fixtures: a real `redis-server` on a free loopback port, fakeredis, and the ASGI app.

Every test that takes `gms` (or `redis_kind`) runs twice: on fakeredis and on a real Redis.
The real half needs `redis-server` on PATH; under CI (CI=true) its absence is a failure,
never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio
from starlette.testclient import TestClient

from app.auth import load_credentials
from app.config import SAMPLE_CONFIG, parse_config
from app.main import create_app
from app.settings import Settings


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A `redis-server` process started for the tests."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.2).ping():
                    return
            except (redis.AuthenticationError, redis.ResponseError):
                return  # it answers: it wants a password
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def start_redis(directory: Path, *extra: str) -> RedisServer:
    """Start a `redis-server` on a free port (fails the test run when the binary is missing in CI)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not on PATH: .ci/run must install it")
        pytest.skip("redis-server is not installed (CI installs it)")
    server = RedisServer(free_port(), directory, extra=extra)
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real Redis for the whole session, flushed before each test that uses it."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@dataclass
class Backend:
    """Where a test's data lives: an async client for the app, a sync one for assertions."""

    kind: str
    make_async: Callable[[], Any]
    sync: Any
    url: str | None = None


@pytest.fixture(params=["fakeredis", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The store under test: fakeredis, then a real redis-server."""
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        yield Backend(
            "fakeredis",
            lambda: fakeredis.FakeAsyncRedis(server=server),
            fakeredis.FakeRedis(server=server),
        )
        return
    real: RedisServer = request.getfixturevalue("redis_server")
    sync = redis.Redis(port=real.port)
    sync.flushall()
    yield Backend("redis", lambda: redis.asyncio.Redis(port=real.port), sync, real.url)
    sync.close()


AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(backend: Backend) -> Iterator[AppFactory]:
    """Build a TestClient for the app with an optional TOML configuration text."""
    clients: list[TestClient] = []

    def make(config_text: str = SAMPLE_CONFIG, auth: dict[str, str] | None = None, **kwargs: Any) -> TestClient:
        """`auth`: GMSD_AUTH_* variables for the credentials (None: authentication off)."""
        config = parse_config(config_text, "<test>")
        credentials = None if auth is None else load_credentials(config, auth)
        settings = Settings(redis_url=backend.url, config=config, credentials=credentials)
        client = TestClient(create_app(settings, backend.make_async()), **kwargs)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    """A TestClient on the sample configuration."""
    return make_client()
