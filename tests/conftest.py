"""Shared fixtures: a real `redis-server` on a free loopback port, a real 6-node Redis Cluster,
fakeredis, and the ASGI app.

Every test that takes `backend` (through `make_client`, `client` or `gms`) runs three times: on
fakeredis, on a real Redis and on a real Redis Cluster. The real runs need `redis-server` and
`redis-cli` on PATH; under CI (CI=true) their absence is a failure, never a silent skip.
Every Lua script call, on every backend, is checked to keep its keys in one cluster slot
(`tests/support/script_slots.py`).
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
import redis.asyncio.cluster
import redis.cluster
from starlette.testclient import TestClient

from gmsd.config import SAMPLE_CONFIG, parse_config
from gmsd.main import create_app
from gmsd.settings import Settings
from gmsd.web.auth import load_credentials
from tests.support.redis_topologies import LocalCluster, redis_binaries_required
from tests.support.script_slots import SlotRecorder


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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One real 6-node Redis Cluster (3 primaries, 3 replicas) for the session, flushed per test."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    with redis_binaries_required():
        cluster.start()
    yield cluster
    cluster.stop()


class WholeClusterClient(redis.cluster.RedisCluster):
    """A sync cluster client for assertions whose DBSIZE and KEYS cover every primary.

    redis-py sends both to one node by default, so `dbsize() == 0` would pass while other
    nodes hold keys; tests written against one server stay truthful on a cluster.
    """

    def dbsize(self, **kwargs: Any) -> Any:
        """Keys in the whole cluster (the sum over primaries)."""
        kwargs.setdefault("target_nodes", self.PRIMARIES)
        return super().dbsize(**kwargs)

    def keys(self, pattern: Any = "*", **kwargs: Any) -> Any:
        """Keys matching `pattern` on every primary."""
        kwargs.setdefault("target_nodes", self.PRIMARIES)
        return super().keys(pattern, **kwargs)


@dataclass
class Backend:
    """Where a test's data lives: an async client for the app, a sync one for assertions."""

    kind: str
    make_async: Callable[[], Any]
    sync: Any
    url: str | None = None


@pytest.fixture(params=["fakeredis", "redis", "cluster"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The store under test: fakeredis, a real redis-server, then a real Redis Cluster."""
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        yield Backend(
            "fakeredis",
            lambda: fakeredis.FakeAsyncRedis(server=server),
            fakeredis.FakeRedis(server=server),
        )
        return
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        whole = WholeClusterClient(startup_nodes=cluster.startup_nodes)
        whole.flushall()  # FLUSHALL goes to every primary
        nodes = [redis.asyncio.cluster.ClusterNode("127.0.0.1", node.port) for node in cluster.nodes]
        yield Backend("cluster", lambda: redis.asyncio.cluster.RedisCluster(startup_nodes=nodes), whole, cluster.url)
        whole.close()
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


# --- every Lua script call in one slot ------------------------------------------------------

_SLOTS = pytest.StashKey[SlotRecorder]()
_DESELECTED = pytest.StashKey[int]()
_UNEXERCISED = pytest.StashKey[list[str]]()
_REPORTS = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SLOTS] = SlotRecorder()
    config.stash[_DESELECTED] = 0
    config.stash[_REPORTS] = []


@pytest.fixture
def report(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Record a measurement (e.g. a failover window): printed now and in the terminal summary."""

    def add(line: str) -> None:
        print(line)
        pytestconfig.stash[_REPORTS].append(line)

    return add


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The soak runs only when asked for (`-m soak`); otherwise it is skipped, saying how to run
    it (skipped, not deselected: a complete run still checks every script's slots, below)."""
    if "soak" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="the soak takes over a minute: python3 -m pytest -m soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        items[0].config.stash[_DESELECTED] += len(items)


@pytest.fixture(scope="session", autouse=True)
def _record_script_slots(pytestconfig: pytest.Config) -> Iterator[SlotRecorder]:
    with pytestconfig.stash[_SLOTS].install() as recorder:
        yield recorder


@pytest.fixture(autouse=True)
def _scripts_stay_in_one_slot(_record_script_slots: SlotRecorder) -> Iterator[None]:
    """Fail the test whose Lua script calls named keys in more than one cluster slot."""
    _record_script_slots.take_violations()
    yield
    violations = _record_script_slots.take_violations()
    assert not violations, "Lua script keys must share one cluster slot:\n" + "\n".join(violations)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a complete, green run, fail if some script in lua/ was never called by any test."""
    config = session.config
    here = Path(__file__).resolve().parent
    whole_suite = all((config.invocation_params.dir / arg).resolve() == here for arg in config.args)
    complete = (
        whole_suite
        and config.stash[_DESELECTED] == 0
        and session.testscollected > 0
        and session.testsfailed == 0
        and not session.shouldstop
        and not session.shouldfail
    )
    missing = config.stash[_SLOTS].never_called() if complete else []
    config.stash[_UNEXERCISED] = missing
    if missing:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for line in config.stash[_REPORTS]:
        terminalreporter.write_line(f"measured: {line}")
    calls = config.stash[_SLOTS].calls
    if calls:
        counts = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
        terminalreporter.write_line(f"Lua script calls checked for one slot: {counts}")
    missing = config.stash.get(_UNEXERCISED, [])
    if missing:
        terminalreporter.write_line(
            f"FAILED: no test called these scripts, so their slots are unchecked: {', '.join(missing)}", red=True
        )
