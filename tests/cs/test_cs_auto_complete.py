"""Auto-complete of idle services (MAINTENANCE.md §5.4): the sweeper completes services that got
no update for their period, with their active states and tasks, as an explicit end would; each
exactly once, whatever the number of sweeping processes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
from starlette.testclient import TestClient

from gmsd.bench.maintenance import fill
from gmsd.keys import cs_partition, cs_time_index
from gmsd.timestamps import parse_timestamp
from tests.conftest import AppFactory, Backend, RedisServer
from tests.support.cs_support import CS, assert_error, conversation_keys, get, start_service, start_state, start_task
from tests.support.gmsd_process import gmsd_serving

CONFIG = """
[context_services]
auto_complete_enabled = true
auto_complete_after = 1
auto_complete_sweep_interval = 0.1
"""
PER_SERVICE_ONLY = """
[context_services]
auto_complete_enabled = true
auto_complete_sweep_interval = 0.1
"""


def wait_until(condition: Callable[[], bool], what: str, deadline: float = 20, pause: float = 0.2) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, what
        time.sleep(pause)


def read(client: TestClient, sid: str) -> Any:
    return get(client, f"/services/{sid}", active_states="true", completed_states="true", active_tasks="true",
               completed_tasks="true")


def test_the_idle_service_is_completed_with_its_states_and_tasks_the_busy_one_is_not(
    make_client: AppFactory, backend: Backend
) -> None:
    client = make_client(CONFIG)
    idle = start_service(client, customer_id="C-idle")
    state = start_state(client, idle, state_type="s")
    task = start_task(client, idle, task_type="t", state_id=state)
    ended_before = start_task(client, idle, task_type="done")
    assert client.post(f"{CS}/services/{idle}/tasks/{ended_before}/end", json={}).status_code == 204
    busy = start_service(client, customer_id="C-busy")

    def touch_busy_until_idle_completed() -> bool:  # the busy one: an update every 0.2 s, period 1 s
        start_state(client, busy, state_type="s")
        return "completed" in read(client, idle)

    wait_until(touch_busy_until_idle_completed, "the idle service is completed")
    for _ in range(6):  # and some more
        start_state(client, busy, state_type="s")
        time.sleep(0.2)
    assert "completed" not in read(client, busy)
    found = read(client, idle)
    last_update = int(backend.sync.hget(conversation_keys(idle)[0], "lu"))
    completed = parse_timestamp(found["completed"]["timestamp"])
    assert completed == last_update + 1000  # last update + period, not the sweep's time
    assert "disposition" not in found
    assert found["active_states"] == [] and found["active_tasks"] == []
    assert [s["state_id"] for s in found["completed_states"]] == [state]
    assert found["completed_states"][0]["completed"]["timestamp"] == found["completed"]["timestamp"]
    by_id = {t["task_id"]: t for t in found["completed_tasks"]}
    assert by_id[task]["completed"]["timestamp"] == found["completed"]["timestamp"]
    assert by_id[ended_before]["completed"]["timestamp"] != found["completed"]["timestamp"]
    # completed: composite start no longer matches it; the customer's completed list has it
    assert [s["service_id"] for s in get(client, "/customers/C-idle/services/completed")] == [idle]
    # and left alone, the busy one is completed in turn
    wait_until(lambda: "completed" in read(client, busy), "the busy service is completed once idle")


def test_a_pinned_service_completed_by_the_sweeper_leaves_no_time_key_without_expiry(
    make_client: AppFactory, backend: Backend
) -> None:
    client = make_client(CONFIG)
    customer = "C-idle-pinned"
    sid = start_service(client, customer_id=customer, ttl=3600)  # its completion moves no expiry
    _, te, _ = cs_time_index(cs_partition(customer))
    assert backend.sync.exists(te) == 0  # made by the completion
    wait_until(lambda: "completed" in read(client, sid), "the idle pinned service is completed")
    assert backend.sync.zscore(te, sid.encode()) is not None
    assert 3_500_000 < backend.sync.pttl(te) <= 3_600_000


def test_a_per_service_period_in_start_and_composite_start(make_client: AppFactory) -> None:
    client = make_client(PER_SERVICE_ONLY)
    started = start_service(client, customer_id="C-own", auto_complete_after=1)
    forever = start_service(client, customer_id="C-own")  # neither value: only an explicit end
    answer = client.post(f"{CS}/services_composite/start", json={"services": [
        {"service": {"customer_id": "C-own-c", "auto_complete_after": 1}, "state": {"state_type": "s"}}]})
    assert answer.status_code == 200, answer.text
    composite = answer.json()["services"][0]["service"]["service_id"]
    wait_until(lambda: "completed" in read(client, started) and "completed" in read(client, composite),
               "both completed")
    assert "completed" not in read(client, forever)
    assert "auto_complete_after" not in read(client, started)  # not attached data, not returned
    for bad in (0, -5, "x", 1.5, True):
        assert_error(client.post(f"{CS}/services/start", json={"customer_id": "C-bad", "auto_complete_after": bad}),
                     400, "InvalidParameterException")


def test_disabled_auto_complete_ignores_the_start_events_period(make_client: AppFactory) -> None:
    client = make_client('[context_services]\nauto_complete_sweep_interval = 0.1\n')
    sid = start_service(client, customer_id="C-disabled", auto_complete_after=1)
    time.sleep(1.5)
    assert "completed" not in read(client, sid)


_COMPLETED = re.compile(r"auto-complete: completed (\d+) services")


def test_two_processes_sweeping_the_same_redis_complete_each_service_once(
    redis_server: RedisServer, tmp_path: Path, report: Callable[[str], None]
) -> None:
    sync = redis.Redis(port=redis_server.port)
    sync.flushall()
    count = 300
    config = CONFIG.replace("auto_complete_after = 1", "auto_complete_after = 2")
    with gmsd_serving(tmp_path, redis_server.url, config, workers=2, log_level="info") as first, \
         gmsd_serving(tmp_path, redis_server.url, config, workers=2, log_level="info") as second:
        made = set(fill(redis_server.url, count, config_text=config))
        query = {"time_from": "2000-01-01T00:00:00Z", "filter_events": "completed"}

        def all_completed() -> bool:
            found = httpx.get(f"{first.base}{CS}/maintenance/services/stream", params=query, timeout=30).json()
            return set(found) == made

        wait_until(all_completed, "every idle service completed", deadline=60)
        time.sleep(0.5)  # a sweep or two more: nothing is completed again
        logs = first.output() + second.output()
    counted = sum(int(n) for n in _COMPLETED.findall(logs))
    report(f"auto-complete: {count} idle services, 4 sweepers in 2 processes: {counted} completions")
    assert counted == count
