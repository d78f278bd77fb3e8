"""Composite start (seed 003): find-or-create semantics, and the race against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.testclient import TestClient

from gmsd.keys import cs_partition
from tests.conftest import RedisServer, free_port
from tests.support.cs_support import CS, assert_error, get, owner_not_in, post_ok, start_service, start_state
from tests.support.paths import ROOT

URL = f"{CS}/services_composite/start"


def element(customer: str | None = "C-comp", contact: str | None = None, service_type: Any = "MyService1",
            state_type: Any = "MyState1", task_type: Any = "MyTask1", associate: Any = "true",
            with_task: bool = True) -> dict[str, Any]:
    """A composite element like seed 003's example (attached data with nested JSON)."""
    service: dict[str, Any] = {"service_type": service_type, "interaction_id": "123ABCAADFJ1259ACF",
                               "application_id": 40, "RelatedOffersService": [{"offer_name": "VIP", "type": 9}]}
    if customer is not None:
        service["customer_id"] = customer
    if contact is not None:
        service["contact_key"] = contact
    out: dict[str, Any] = {
        "service": service,
        "state": {"state_type": state_type, "FeedbackState": {"rating": 7, "usefull": True}},
        "associate_state_task": associate,
    }
    if with_task:
        out["task"] = {"task_type": task_type, "SatisfactionTask": [{"rating": 2, "usefull": False}]}
    return out


def composite(client: TestClient, *elements: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    response = client.post(URL, json={"services": list(elements)})
    assert response.status_code == 200, response.text
    return response.json()["services"], response.headers["location"]


def test_first_call_creates_all_three_then_finds_them(client: TestClient) -> None:
    [first], location = composite(client, element())
    sid = first["service"]["service_id"]
    assert first["service"]["created"] == first["state"]["created"] == first["task"]["created"] == "true"
    assert location == f"{CS}/services/{sid}/tasks/{first['task']['task_id']}"
    [again], location_again = composite(client, element())
    assert again == {k: {**v, "created": "false"} for k, v in first.items()}
    assert location_again == location
    service = get(client, f"/services/{sid}", active_states="true", active_tasks="true")
    assert service["RelatedOffersService"] == [{"offer_name": "VIP", "type": 9}]
    assert service["active_states"][0]["FeedbackState"] == {"rating": 7, "usefull": True}
    assert service["active_tasks"][0]["SatisfactionTask"] == [{"rating": 2, "usefull": False}]
    assert service["active_tasks"][0]["state_id"] == first["state"]["state_id"]


def test_without_task_location_names_the_state_and_no_task_is_answered(client: TestClient) -> None:
    [result], location = composite(client, element(with_task=False))
    assert "task" not in result
    assert location == f"{CS}/services/{result['service']['service_id']}/states/{result['state']['state_id']}"


def test_match_on_customer_type_and_contact_key_absent_matches_absent(client: TestClient) -> None:
    [base], _ = composite(client, element())
    [other_type], _ = composite(client, element(service_type="Other"))
    [with_contact], _ = composite(client, element(contact="555-1234"))
    [anonymous], _ = composite(client, element(customer=None, contact="555-1234"))
    sids = {r["service"]["service_id"] for r in (base, other_type, with_contact, anonymous)}
    assert len(sids) == 4
    [same_contact], _ = composite(client, element(contact="555-1234"))
    assert same_contact["service"] == {**with_contact["service"], "created": "false"}
    # a service started by /services/start is found too; numbers and strings are the same type
    started = start_service(client, customer_id="C-num", service_type=5)
    [found], _ = composite(client, element(customer="C-num", service_type="5"))
    assert found["service"] == {"service_id": started, "created": "false"}


def test_ended_service_is_not_matched_and_state_and_task_follow_activity(client: TestClient) -> None:
    [first], _ = composite(client, element())
    sid = first["service"]["service_id"]
    post_ok(client, f"/services/{sid}/tasks/{first['task']['task_id']}/end", {})
    [second], _ = composite(client, element())
    assert second["state"]["created"] == "false" and second["task"]["created"] == "true"
    post_ok(client, f"/services/{sid}/states/{first['state']['state_id']}/end", {})
    [third], _ = composite(client, element())
    assert third["state"]["created"] == "true" and third["task"]["created"] == "true"
    post_ok(client, f"/services/{sid}/end", {})
    [fourth], _ = composite(client, element())
    assert fourth["service"]["created"] == "true" and fourth["service"]["service_id"] != sid


def test_associate_state_task_decides_which_task_matches(client: TestClient) -> None:
    [first], _ = composite(client, element(associate=False))
    assert get(client, f"/services/{first['service']['service_id']}/tasks/{first['task']['task_id']}").get(
        "state_id") is None
    [unattached], _ = composite(client, element(associate="false"))
    assert unattached["task"]["created"] == "false"  # any active task of the type matches
    [attached], _ = composite(client, element(associate=True))
    assert attached["task"]["created"] == "true"  # the existing one is not attached to the state
    [again], _ = composite(client, element(associate="true"))
    assert again["task"] == {**attached["task"], "created": "false"}


def test_several_elements_in_one_request(client: TestClient) -> None:
    results, location = composite(client, element(customer="C-a"), element(customer="C-b", with_task=False))
    assert [r["service"]["created"] for r in results] == ["true", "true"]
    assert location.endswith(f"/tasks/{results[0]['task']['task_id']}")


def test_finds_a_service_associated_from_another_partition(client: TestClient) -> None:
    anonymous = start_service(client, contact_key="ani-4088327799", service_type="MyService1")
    state = start_state(client, anonymous, state_type="MyState1")
    customer = owner_not_in(cs_partition("ani-4088327799"), "C-assoc")
    post_ok(client, f"/customers/{customer}/services/{anonymous}", {}, 200)
    [found], _ = composite(client, element(customer=customer, contact="ani-4088327799"))
    assert found["service"] == {"service_id": anonymous, "created": "false"}
    assert found["state"] == {"state_id": state, "created": "false"}
    assert found["task"]["created"] == "true"
    post_ok(client, f"/services/{anonymous}/end", {})
    [fresh], _ = composite(client, element(customer=customer, contact="ani-4088327799"))
    assert fresh["service"]["created"] == "true"


def test_composite_errors(client: TestClient) -> None:
    assert_error(client.post(URL, json={}), 400, "InvalidParameterException")
    assert_error(client.post(URL, json={"services": []}), 400, "InvalidParameterException")
    assert_error(client.post(URL, content=b"{]"), 400, "InvalidParameterException")
    assert_error(client.post(URL, json={"services": [element(customer=None)]}), 400, "InvalidParameterException")
    assert_error(client.post(URL, json={"services": [element(associate="yes")]}), 400, "InvalidParameterException")
    assert_error(client.post(URL, json={"services": [{"service": {"customer_id": "c"}}]}), 400,
                 "InvalidParameterException")
    bad_state = element()
    bad_state["state"]["state_type"] = {"no": 1}
    assert_error(client.post(URL, json={"services": [bad_state]}), 400, "InvalidParameterException")
    # every element is checked before any is stored
    assert_error(client.post(URL, json={"services": [element(), element(associate=3)]}), 400,
                 "InvalidParameterException")
    assert get(client, "/customers/C-comp/services") == []


# --- the race, against a real server with two worker processes -------------------------------

@pytest.fixture
def live_server(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    """`gmsd serve --workers 2` on a free port, on the session's real Redis (flushed)."""
    redis.Redis(port=redis_server.port).flushall()
    port = free_port()
    env = {**os.environ, "GMSD_CONFIG": ""}
    log = (tmp_path / "gmsd.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gmsd.cli", "serve", "--port", str(port), "--redis-url", redis_server.url,
         "--workers", "2", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gmsd did not start: {(tmp_path / 'gmsd.log').read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def test_racing_identical_composite_starts_create_exactly_one_of_each(
    live_server: str, redis_server: RedisServer
) -> None:
    requests = 48
    body = {"services": [element(customer="C-race", contact="race-ck")]}
    barrier = threading.Barrier(requests)
    answers: list[dict[str, Any]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def fire() -> None:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            http.get("/healthz")  # connect before the barrier, so that the posts really race
            barrier.wait()
            response = http.post(URL, json=body)
        with lock:
            if response.status_code == 200:
                answers.append(response.json()["services"][0])
            else:
                failures.append(response.text)

    threads = [threading.Thread(target=fire) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and len(answers) == requests
    for part, key in (("service", "service_id"), ("state", "state_id"), ("task", "task_id")):
        assert len({a[part][key] for a in answers}) == 1, part
        assert [a[part]["created"] for a in answers].count("true") == 1, part
    sid = answers[0]["service"]["service_id"]
    with httpx.Client(base_url=live_server) as http:
        listed = http.get(f"{CS}/customers/C-race/services", params={
            "active_states": "true", "completed_states": "true", "active_tasks": "true", "completed_tasks": "true"})
    [service] = listed.json()
    assert service["service_id"] == sid
    assert len(service["active_states"]) == 1 and service["completed_states"] == []
    assert len(service["active_tasks"]) == 1 and service["completed_tasks"] == []
    stored = redis.Redis(port=redis_server.port)
    assert len(list(stored.scan_iter(match="cs:*:svc:*"))) == 1
