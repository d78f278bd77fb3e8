"""Durability with AOF: Redis is killed (SIGKILL, a crash) in the middle of write traffic to a real
`gmsd serve` (2 workers) and started again from its append-only file. Every write that was
answered 2xx is there afterwards, read back through both APIs; every write that was not answered
2xx is there entirely or not at all, never in part (checked in Redis itself).

`appendfsync always` is what makes "acknowledged" mean "on disk": Redis fsyncs a command before
it replies, and gmsd answers 2xx only after Redis replied. docs/security.md says what holds with
other settings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from gmsd.keys import gms_service
from tests.conftest import RedisServer, start_redis
from tests.support.gmsd_process import gmsd_serving

CONFIG = """
[redis]
timeout = 1.0

[services.s]
_ttl = 3600

[context_services]
default_ttl = "1d"
"""
GMS = "/genesys/1/service"
CS = "/genesys/1/cs"
GMS_WRITERS, CS_WRITERS = 6, 2
WRITES_PER_SERVICE = 3  # after the create; each write is 3 strings and 1 file
TARGET_KEYS, TARGET_CONVERSATIONS = 3000, 150  # acknowledged before the crash


@dataclass
class Ledger:
    """What gmsd acknowledged (2xx), and what it did not (503 or no answer), per writer."""

    strings: dict[str, dict[str, str]] = field(default_factory=dict)  # GMS service -> key -> value
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    failed_writes: list[tuple[str, int]] = field(default_factory=list)  # (service, write number)
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)  # CS service -> states, tasks, ended
    failed_customers: list[str] = field(default_factory=list)  # composite starts not acknowledged
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged_keys(self) -> int:
        with self.lock:
            return sum(map(len, self.strings.values())) + sum(map(len, self.files.values()))


def ok(response: httpx.Response | None, status: int) -> bool:
    return response is not None and response.status_code == status


def send(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
    """A request whose failure (503, no answer) the writers record instead of raising."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.HTTPError:
        return None
    assert response.status_code < 500 or response.status_code == 503, response.text
    return response


def gms_writer(base: str, number: int, ledger: Ledger, stop: threading.Event) -> None:
    """Create services and write to them; a failed call ends that service's chain."""
    with httpx.Client(base_url=base, timeout=30) as http:
        n = 0
        while not stop.is_set():
            n += 1
            tag = f"{number}.{n}"
            created = send(http, "POST", f"{GMS}/s", data={f"c{j}": f"{tag}-c{j}" for j in range(4)})
            if not ok(created, 200):
                continue
            assert created is not None
            sid = created.json()["id"]
            with ledger.lock:
                ledger.strings[sid] = {f"c{j}": f"{tag}-c{j}" for j in range(4)}
                ledger.files[sid] = {}
            for m in range(WRITES_PER_SERVICE):
                strings = {f"w{m}{part}": f"{tag}-w{m}{part}" for part in "abc"}
                content = f"{tag}-w{m}f".encode() + bytes(range(256))
                written = send(http, "POST", f"{GMS}/{sid}/storage", data=strings,
                               files={f"w{m}f": (f"{m}.bin", content, "application/x-test")})
                with ledger.lock:
                    if ok(written, 200):
                        ledger.strings[sid].update(strings)
                        ledger.files[sid][f"w{m}f"] = content
                    else:
                        ledger.failed_writes.append((sid, m))
                if not ok(written, 200):
                    break


def cs_writer(base: str, number: int, ledger: Ledger, stop: threading.Event) -> None:
    """Composite starts (service + state + task in one script), another state, and some ends."""
    with httpx.Client(base_url=base, timeout=30) as http:
        n = 0
        while not stop.is_set():
            n += 1
            customer = f"durable-{number}-{n}"
            element = {"service": {"customer_id": customer, "service_type": "t"},
                       "state": {"state_type": "s"}, "task": {"task_type": "k"}}
            started = send(http, "POST", f"{CS}/services_composite/start", json={"services": [element]})
            if not ok(started, 200):
                with ledger.lock:
                    ledger.failed_customers.append(customer)
                continue
            assert started is not None
            answer = started.json()["services"][0]
            sid = answer["service"]["service_id"]
            conversation = {"states": {answer["state"]["state_id"]}, "tasks": {answer["task"]["task_id"]},
                            "ended": False}
            with ledger.lock:
                ledger.conversations[sid] = conversation
            state = send(http, "POST", f"{CS}/services/{sid}/states/start", json={"state_type": "second"})
            if ok(state, 201):
                assert state is not None
                with ledger.lock:
                    conversation["states"].add(state.json()["state_id"])
            if n % 2 == 0 and ok(send(http, "POST", f"{CS}/services/{sid}/end", json={}), 204):
                with ledger.lock:
                    conversation["ended"] = True


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis that writes every command to its append-only file and fsyncs before replying."""
    server = start_redis(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    yield server
    server.stop()


def test_acknowledged_writes_survive_a_redis_crash_and_failed_ones_are_whole_or_absent(
    aof_redis: RedisServer, tmp_path: Path, report: Callable[[str], None]
) -> None:
    ledger = Ledger()
    stop = threading.Event()
    with gmsd_serving(tmp_path, aof_redis.url, CONFIG) as server:
        writers = [threading.Thread(target=gms_writer, args=(server.base, i, ledger, stop)) for i in range(GMS_WRITERS)]
        writers += [threading.Thread(target=cs_writer, args=(server.base, i, ledger, stop)) for i in range(CS_WRITERS)]
        for writer in writers:
            writer.start()
        try:
            deadline = time.monotonic() + 120
            while ledger.acknowledged_keys() < TARGET_KEYS or len(ledger.conversations) < TARGET_CONVERSATIONS:
                assert time.monotonic() < deadline, "the writers are too slow"
                time.sleep(0.05)
            assert aof_redis.process is not None
            aof_redis.process.kill()  # a crash, in the middle of the writes: no shutdown, no last fsync
            aof_redis.process.wait(10)
            aof_redis.process = None
            time.sleep(1.0)  # the writers meet the dead Redis (and record what failed)
        finally:
            stop.set()
            for writer in writers:
                writer.join(60)
        assert not any(writer.is_alive() for writer in writers)

        aof_redis.start()  # same port, same directory: Redis loads the append-only file
        server.wait_ready("/readyz")
        checked = check_acknowledged(server.base, ledger)
        whole_or_absent = check_failed_writes(server.base, redis.Redis(port=aof_redis.port), ledger)
    report(f"AOF crash: read back {checked} acknowledged items ({ledger.acknowledged_keys()} GMS keys of "
          f"{len(ledger.strings)} services; {len(ledger.conversations)} CS conversations with their states, tasks "
          f"and ends); {len(ledger.failed_writes)} GMS writes and {len(ledger.failed_customers)} composite "
          f"starts not acknowledged, each whole or absent ({whole_or_absent})")


def check_acknowledged(base: str, ledger: Ledger) -> int:
    """Read every acknowledged write back through the HTTP APIs; the number of items checked."""

    def gms(sid: str) -> int:
        with httpx.Client(base_url=base, timeout=30) as http:
            listed = http.get(f"{GMS}/{sid}/storage")
            assert listed.status_code == 200, listed.text
            stored = listed.json()
            assert {k: stored.get(k) for k in ledger.strings[sid]} == ledger.strings[sid]
            for key, content in ledger.files[sid].items():
                served = http.get(f"{GMS}/{sid}/storage/binary/{key}")
                assert served.status_code == 200 and served.content == content, key
                assert served.headers["content-type"] == "application/x-test"
            return len(ledger.strings[sid]) + len(ledger.files[sid])

    def cs(sid: str) -> int:
        expected = ledger.conversations[sid]
        with httpx.Client(base_url=base, timeout=30) as http:
            read = http.get(f"{CS}/services/{sid}", params={
                "active_states": "true", "completed_states": "true", "active_tasks": "true", "completed_tasks": "true"})
        assert read.status_code == 200, read.text
        service = read.json()
        states = {s["state_id"] for s in service["active_states"] + service["completed_states"]}
        tasks = {t["task_id"] for t in service["active_tasks"] + service["completed_tasks"]}
        assert states >= expected["states"] and tasks >= expected["tasks"], (sid, service)
        if expected["ended"]:
            assert "completed" in service, service
        return 1 + len(expected["states"]) + len(expected["tasks"]) + int(expected["ended"])

    with ThreadPoolExecutor(8) as pool:
        counts = [*pool.map(gms, list(ledger.strings)), *pool.map(cs, list(ledger.conversations))]
    assert sum(counts[:len(ledger.strings)]) >= TARGET_KEYS
    return sum(counts)


def check_failed_writes(base: str, stored: redis.Redis, ledger: Ledger) -> int:
    """In Redis itself: no write is there in part. The number of unacknowledged writes checked."""
    # Every GMS service in Redis has all four keys of its create (creates not acknowledged included).
    services = list(stored.scan_iter(match="gms:*:data", count=1000))
    assert len(services) >= len(ledger.strings)
    for key in services:
        fields = stored.hkeys(key)
        assert {b"c0", b"c1", b"c2", b"c3", b"_name", b"_exp"} <= set(fields), (key, fields)
    # Each unacknowledged write: its three strings and its file all there, or none of them.
    for sid, m in ledger.failed_writes:
        data, binary, types = gms_service(sid)
        present = [stored.hexists(data, f"w{m}{part}") for part in "abc"]
        present += [stored.hexists(binary, f"w{m}f"), stored.hexists(types, f"w{m}f")]
        assert all(present) or not any(present), (sid, m, present)
    # Each unacknowledged composite start: no service, or the service with its state and task.
    with httpx.Client(base_url=base, timeout=30) as http:
        for customer in ledger.failed_customers:
            found = http.get(f"{CS}/customers/{customer}/services",
                             params={"active_states": "true", "active_tasks": "true"})
            assert found.status_code == 200, found.text
            listed = found.json()
            assert listed == [] or (len(listed) == 1 and len(listed[0]["active_states"]) == 1
                                    and len(listed[0]["active_tasks"]) == 1), listed
    return len(ledger.failed_writes) + len(ledger.failed_customers)
