"""gmsd on a real Redis Cluster through its URL, script reloads, and Redis deployments that cannot
take writes (unreachable, or a primary fenced by min-replicas-to-write): 503, promptly."""

from __future__ import annotations

import os
import socket
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
from tests.conftest import AppFactory, Backend, free_port, start_redis
from tests.support.redis_topologies import LocalCluster

BASE = "/genesys/1/service"
CONFIG = """
[redis]
timeout = 0.3

[services.request-interaction]
_ttl = 600
"""


def app_for(url: str) -> TestClient:
    """The app building its own Redis client from `url`, exactly as `gmsd serve` does."""
    settings = Settings(redis_url=url, config=parse_config(CONFIG, "<test>"))
    return TestClient(create_app(settings))


def test_gmsd_serves_from_a_cluster_url(redis_cluster: LocalCluster) -> None:
    redis_cluster.flush()
    picture = os.urandom(3000)
    with app_for(redis_cluster.url) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        created = client.post(f"{BASE}/request-interaction", data={"a": "1"},
                              files={"pic": ("p.png", picture, "image/png")})
        assert created.status_code == 200, created.text
        sid = created.json()["id"]
        assert client.get(f"{BASE}/{sid}/storage").json() == {"a": "1"}
        assert client.get(f"{BASE}/{sid}/storage/binary/pic").content == picture
        assert client.delete(f"{BASE}/{sid}").status_code == 200
        assert client.get(f"{BASE}/{sid}/storage").status_code == 404


def test_keys_spread_over_every_primary_and_each_service_stays_on_one(redis_cluster: LocalCluster) -> None:
    redis_cluster.flush()
    with app_for(redis_cluster.url) as client:
        ids = []
        for n in range(60):
            response = client.post(f"{BASE}/request-interaction", data={"n": str(n)},
                                   files={"f": ("f.bin", b"x", "application/octet-stream")})
            assert response.status_code == 200, response.text
            ids.append(response.json()["id"])
    counts: dict[int, int] = {}
    homes: dict[str, list[int]] = {sid: [] for sid in ids}
    for node in redis_cluster.primaries():
        with node.client() as direct:
            here = {key.decode() for key in direct.keys("*")}
        counts[node.port] = len(here)
        for sid in ids:
            if set(gms_service(sid)) <= here:
                homes[sid].append(node.port)
    print(f"\nkeys per primary after 60 services: {sorted(counts.values())}")
    assert len(counts) == 3
    assert all(count > 0 for count in counts.values()), counts
    assert sum(counts.values()) == 3 * len(ids)
    # All three keys of a service are on the same primary (one slot), and only there.
    assert all(len(ports) == 1 for ports in homes.values()), homes


def test_scripts_are_reloaded_after_script_flush(make_client: AppFactory, backend: Backend) -> None:
    client = make_client(CONFIG)
    sid = client.post(f"{BASE}/request-interaction", data={"a": "1"}).json()["id"]
    backend.sync.script_flush()  # on a cluster: every primary; as after a restart or failover
    assert client.post(f"{BASE}/{sid}/storage", data={"b": "2"}).status_code == 200
    assert client.get(f"{BASE}/{sid}/storage").json() == {"a": "1", "b": "2"}


# --- unreachable deployments answer 503, bounded ----------------------------------------------

@pytest.fixture
def silent_ports() -> Iterator[list[int]]:
    """Three loopback ports that accept TCP connections and never answer (a hung Redis)."""
    sockets = []
    for _ in range(3):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sockets.append(sock)
    yield [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()


@pytest.mark.parametrize("form", ["redis+cluster://{hosts}", "redis+sentinel://{hosts}/mymaster"])
@pytest.mark.parametrize("failure", ["silent", "refused"])
def test_unreachable_deployment_answers_503_promptly(form: str, failure: str, silent_ports: list[int]) -> None:
    ports = silent_ports if failure == "silent" else [free_port() for _ in range(3)]
    url = form.format(hosts=",".join(f"127.0.0.1:{port}" for port in ports))
    with app_for(url) as client:
        assert client.get("/healthz").status_code == 200
        for _ in range(2):  # the second request starts with redis-py's "needs a refresh" state
            started = time.monotonic()
            response = client.post(f"{BASE}/request-interaction", data={"a": "1"})
            elapsed = time.monotonic() - started
            print(f"\n{failure} {form.split(':')[0]}: 503 after {elapsed:.2f} s (timeout 0.3 s)")
            assert response.status_code == 503, response.text
            assert elapsed < 15  # bounded: never a hang (expected: about 2.5 x the timeout)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"].startswith("failing")


def test_a_primary_without_enough_replicas_answers_503(tmp_path: Path) -> None:
    # min-replicas-to-write fences a primary whose replicas are gone (e.g. one was promoted):
    # Redis answers NOREPLICAS, a transient state of the deployment, not a fault of the request.
    fenced = start_redis(tmp_path, "--min-replicas-to-write", "1")
    try:
        with app_for(fenced.url) as client:
            response = client.post(f"{BASE}/request-interaction", data={"a": "1"})
            assert response.status_code == 503, response.text
            assert response.json()["message"] == "storage unavailable"
            assert client.get("/readyz").status_code == 200  # it answers PING: reads still work
    finally:
        fenced.stop()


def test_cross_slot_keys_are_refused_by_redis_py_on_a_cluster(redis_cluster: LocalCluster) -> None:
    # What the single-slot rule guards against: the cluster client would refuse such a script.
    with redis.cluster.RedisCluster(startup_nodes=redis_cluster.startup_nodes) as client:
        script = client.register_script("return #KEYS")
        with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
            script(keys=["gms:{a}:data", "gms:{b}:data"])
        assert script(keys=list(gms_service("6f1c2a57-0a53-4c55-a0a3-5d8b5d3f3d3e"))) == 3
