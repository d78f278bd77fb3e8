"""Failover under light traffic: gmsd keeps serving a Redis Cluster that loses a primary, and
follows a Sentinel-managed primary to its replica, with no routing of its own.

Each test starts its own topology (so the session cluster stays intact), drives GMS creates and
reads over HTTP in a bounded loop, triggers the failover and measures the window in which
requests failed. Only bounded correctness is asserted: every error is a 503 (never a 500 or a
hang), gmsd serves again within the deadline, and no read ever returns wrong data. Writes
acknowledged just before a crash may be lost (Redis replicates asynchronously): such services
read as 404 and are counted, never passed off as another service's data.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from starlette.testclient import TestClient

from gmsd.config import parse_config
from gmsd.keys import gms_service
from gmsd.main import create_app
from gmsd.settings import Settings
from tests.support.redis_topologies import (
    LocalCluster,
    LocalSentinel,
    RedisProcess,
    redis_binaries_required,
    wait_until,
)

BASE = "/genesys/1/service"
CONFIG = """
[redis]
timeout = 0.5

[services.request-interaction]
_ttl = 600
"""
DEADLINE = 30.0  # seconds for the failover to complete and gmsd to serve again
SETTLED = 25  # consecutive successful steps that show gmsd serves again


@dataclass
class Traffic:
    """A bounded loop of GMS creates and reads through the app, recording every outcome."""

    client: TestClient
    written: dict[str, str] = field(default_factory=dict)  # service id -> its "n" value
    outcomes: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, status)
    wrong: list[str] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def seed(self, count: int) -> dict[str, str]:
        """Create `count` services before anything fails; return them."""
        before = set(self.written)
        for _ in range(count):
            assert self.step_create() == 200
        return {sid: n for sid, n in self.written.items() if sid not in before}

    def step_create(self) -> int:
        n = str(next(self.counter))
        started = time.monotonic()
        response = self.client.post(f"{BASE}/request-interaction", data={"n": n})
        self.outcomes.append((started, time.monotonic(), response.status_code))
        if response.status_code == 200:
            self.written[response.json()["id"]] = n
        return response.status_code

    def step_read(self, sid: str) -> int:
        started = time.monotonic()
        response = self.client.get(f"{BASE}/{sid}/storage")
        self.outcomes.append((started, time.monotonic(), response.status_code))
        if response.status_code == 200 and response.json() != {"n": self.written[sid]}:
            self.wrong.append(f"{sid}: {response.json()} instead of n={self.written[sid]}")
        return response.status_code

    def step(self) -> bool:
        """One create and one read of an earlier service; True if both succeeded."""
        created = self.step_create()
        ids = list(self.written)
        sid = ids[next(self.counter) % len(ids)]
        return created == 200 and self.step_read(sid) in (200, 404)

    def run_until(self, done: Callable[[], bool], since: float) -> bool:
        """Step until `done()` holds and the last SETTLED steps succeeded, or DEADLINE passes."""
        streak = 0
        while time.monotonic() - since < DEADLINE:
            streak = streak + 1 if self.step() else 0
            if streak >= SETTLED and done():
                return True
        return False

    def window(self, since: float) -> tuple[float, int, int]:
        """(seconds from the first failed request's start to the last one's end, errors, requests)."""
        after = [o for o in self.outcomes if o[1] >= since]
        failed = [o for o in after if o[2] not in (200, 404)]
        if not failed:
            return 0.0, 0, len(after)
        return failed[-1][1] - failed[0][0], len(failed), len(after)

    def error_statuses(self) -> set[int]:
        return {status for _, _, status in self.outcomes if status not in (200, 404)}

    def lost(self, survivors: dict[str, str]) -> list[str]:
        """Ids among `survivors` that now read as 404; fails on any read that is wrong."""
        missing = []
        for sid in survivors:
            status = self.step_read(sid)
            assert status in (200, 404), (sid, status)
            if status == 404:
                missing.append(sid)
        return missing


def app_for(url: str) -> TestClient:
    return TestClient(create_app(Settings(redis_url=url, config=parse_config(CONFIG, "<failover test>"))))


# --- Redis Cluster ----------------------------------------------------------------------------

@pytest.fixture
def failover_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A cluster of its own that detects a dead primary within about a second."""
    cluster = LocalCluster(tmp_path / "cluster", node_timeout_ms=1000)
    with redis_binaries_required():
        cluster.start()
    yield cluster
    cluster.stop()


def _replica_of(cluster: LocalCluster, primary: RedisProcess) -> RedisProcess:
    for node in cluster.nodes:
        with node.client() as client:
            info = client.info("replication")
        if info["role"] == "slave" and int(info["master_port"]) == primary.port:
            return node
    raise AssertionError(f"no replica of {primary.port}")


def test_cluster_keeps_serving_when_a_primary_dies(
    failover_cluster: LocalCluster, report: Callable[[str], None]
) -> None:
    victim = failover_cluster.primaries()[0]
    heir = _replica_of(failover_cluster, victim)
    with app_for(failover_cluster.url) as client:
        traffic = Traffic(client)
        seeded = traffic.seed(60)
        failover_cluster.wait_replicated()
        for _ in range(20):
            assert traffic.step()

        victim.kill()
        killed_at = time.monotonic()

        def promoted() -> bool:
            with heir.client() as direct:
                return bool(direct.info("replication")["role"] == "master")

        settled = traffic.run_until(promoted, killed_at)
        took = time.monotonic() - killed_at
        window, errors, requests = traffic.window(killed_at)
        lost = traffic.lost({sid: n for sid, n in traffic.written.items() if sid not in seeded})
        lost_seeded = traffic.lost(seeded)
        ready = client.get("/readyz").status_code
    report(f"cluster failover (primary SIGKILLed, cluster-node-timeout 1000 ms): errors for {window:.2f} s, "
           f"{errors} of {requests} requests failed (all 503), serving again {took:.1f} s after the kill, "
           f"{len(lost)} acknowledged creates lost")
    assert settled, f"gmsd did not serve again within {DEADLINE} s of the kill"
    assert traffic.error_statuses() <= {503}
    assert not traffic.wrong
    assert lost_seeded == []  # replicated before the crash: all there, unchanged
    assert ready == 200


# --- Redis Sentinel ---------------------------------------------------------------------------

@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[LocalSentinel]:
    """One primary, one replica, three sentinels (quorum 2); passwords on both, as charts set them."""
    group = LocalSentinel(tmp_path / "sentinel", password="data p@ss/w,rd", sentinel_password="sentinel&pass")
    with redis_binaries_required():
        group.start()
    yield group
    group.stop()


def test_sentinel_failover_is_followed(sentinel_group: LocalSentinel, report: Callable[[str], None]) -> None:
    old_port = sentinel_group.master_port()
    with app_for(sentinel_group.url) as client:
        traffic = Traffic(client)
        seeded = traffic.seed(30)
        for _ in range(20):
            assert traffic.step()
        _wait_replica_caught_up(sentinel_group.data[0])

        with sentinel_group.sentinels[0].client() as sentinel:
            assert sentinel.execute_command("SENTINEL", "FAILOVER", sentinel_group.master_name)
        triggered_at = time.monotonic()

        def writes_reach_the_new_primary() -> bool:
            # The old primary stays up (the sentinels demote it ~10 s later): only a create that
            # lands on the primary the sentinels now name shows that gmsd switched.
            new_port = sentinel_group.master_port()
            if new_port == old_port or traffic.step_create() != 200:
                return False
            latest = list(traffic.written)[-1]
            with redis.Redis(port=new_port, password=sentinel_group.password, socket_timeout=2) as direct:
                return bool(direct.exists(gms_service(latest)[0]))

        settled = traffic.run_until(writes_reach_the_new_primary, triggered_at)
        took = time.monotonic() - triggered_at
        window, errors, requests = traffic.window(triggered_at)
        lost = traffic.lost({sid: n for sid, n in traffic.written.items() if sid not in seeded})
        lost_seeded = traffic.lost(seeded)
        ready = client.get("/readyz").status_code
    report(f"sentinel failover (SENTINEL FAILOVER, old primary stays up): errors for {window:.2f} s, "
           f"{errors} of {requests} requests failed (all 503), writes on the new primary {took:.1f} s after "
           f"the command, {len(lost)} acknowledged creates lost (written to the old primary meanwhile)")
    assert settled, f"gmsd did not follow the new primary within {DEADLINE} s of SENTINEL FAILOVER"
    assert traffic.error_statuses() <= {503}
    assert not traffic.wrong
    assert lost_seeded == []
    assert ready == 200


def _wait_replica_caught_up(primary: RedisProcess) -> None:
    def caught_up() -> bool:
        with primary.client() as direct:
            info = direct.info("replication")
        offsets = [info[key]["offset"] for key in info if key.startswith("slave")]
        return bool(offsets) and min(offsets) >= info["master_repl_offset"]

    wait_until(caught_up, "the replica to catch up")
