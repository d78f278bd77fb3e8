"""States and tasks of a Context Services service through HTTP, on fakeredis and on a real Redis."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from tests.support.cs_support import CS, assert_error, get, post_ok, start_service, start_state, start_task


@pytest.fixture
def sid(client: TestClient) -> str:
    return start_service(client, customer_id="C-items", service_type="S")


def test_state_start_get_and_end(client: TestClient, sid: str) -> None:
    state = start_state(client, sid, state_type=8, est_duration=30, media_type="chat",
                        timestamp="2026-02-03T04:05:06.007Z", Feedback={"rating": 7, "ok": True}, tags=["a", 1])
    assert get(client, f"/services/{sid}/states/{state}") == {
        "state_id": state, "state_type": 8, "service_id": sid,
        "started": {"timestamp": "2026-02-03T04:05:06.007Z", "media_type": "chat"},
        "est_duration": 30, "Feedback": {"rating": 7, "ok": True}, "tags": ["a", 1],
    }
    post_ok(client, f"/services/{sid}/states/{state}/end",
            {"timestamp": "2026-02-03T04:05:16.007Z", "disposition": "done", "disposition_desc": "ok", "tags": []})
    ended = get(client, f"/services/{sid}/states/{state}")
    assert ended["completed"] == {"timestamp": "2026-02-03T04:05:16.007Z"}
    assert (ended["duration"], ended["disposition"], ended["disposition_desc"]) == (10000, "done", "ok")
    assert ended["tags"] == []
    assert_error(client.post(f"{CS}/services/{sid}/states/{state}/end", json={}), 409, "StateException")


def test_state_errors(client: TestClient, sid: str) -> None:
    for bad in ("99", "x", "-1"):
        assert_error(client.get(f"{CS}/services/{sid}/states/{bad}"), 400, "NotFoundException")
        assert_error(client.post(f"{CS}/services/{sid}/states/{bad}/end", json={}), 400, "NotFoundException")
    assert_error(client.post(f"{CS}/services/{sid}/states/start", json={"state_type": [1]}), 400,
                 "InvalidParameterException")
    assert_error(client.post(f"{CS}/services/{sid}/states/start", content=b"nope"), 400,
                 "InvalidParameterException")


def test_ids_are_integers_unique_within_the_service(client: TestClient, sid: str) -> None:
    made = [start_state(client, sid), start_task(client, sid), start_state(client, sid), start_task(client, sid)]
    assert made == [1, 2, 3, 4]
    other = start_service(client, customer_id="C-items")
    assert start_state(client, other) == 1


def test_states_and_tasks_can_start_on_an_ended_service(client: TestClient, sid: str) -> None:
    post_ok(client, f"/services/{sid}/end", {})
    state = start_state(client, sid, state_type="late")
    task = start_task(client, sid, task_type="late", state_id=state)
    assert get(client, f"/services/{sid}/states/active")[0]["state_id"] == state
    assert get(client, f"/services/{sid}/tasks/{task}")["state_id"] == state


def test_state_lists_active_completed_types_and_nested_tasks(client: TestClient, sid: str) -> None:
    a = start_state(client, sid, state_type="A")
    b = start_state(client, sid, state_type=2)
    c = start_state(client, sid, state_type="C")
    post_ok(client, f"/services/{sid}/states/{b}/end", {})
    ta = start_task(client, sid, task_type="t", state_id=a)
    tb = start_task(client, sid, task_type="t", state_id=a)
    post_ok(client, f"/services/{sid}/tasks/{tb}/end", {})
    start_task(client, sid, task_type="free")
    assert [s["state_id"] for s in get(client, f"/services/{sid}/states")] == [a, b, c]
    assert [s["state_id"] for s in get(client, f"/services/{sid}/states/active")] == [a, c]
    assert [s["state_id"] for s in get(client, f"/services/{sid}/states/completed")] == [b]
    assert [s["state_id"] for s in get(client, f"/services/{sid}/states", state_types="A,2")] == [a, b]
    nested = get(client, f"/services/{sid}/states/{a}", active_tasks="true", completed_tasks="true")
    assert [t["task_id"] for t in nested["active_tasks"]] == [ta]
    assert [t["task_id"] for t in nested["completed_tasks"]] == [tb]
    listed = get(client, f"/services/{sid}/states/active", active_tasks="true")
    assert [[t["task_id"] for t in s["active_tasks"]] for s in listed] == [[ta], []]
    assert "active_tasks" not in get(client, f"/services/{sid}/states/{a}")
    assert_error(client.get(f"{CS}/services/{sid}/states", params={"active_tasks": "maybe"}), 400,
                 "InvalidParameterException")


def test_transition_ends_from_and_starts_to_atomically(client: TestClient, sid: str) -> None:
    first = start_state(client, sid, state_type="greeting")
    response = client.post(f"{CS}/services/{sid}/states/transition", json={
        "from": {"state_id": first, "disposition": 3, "disposition_desc": "identified"},
        "to": {"state_type": "billing", "est_duration": 120},
        "timestamp": "2026-04-05T06:07:08.090Z", "interaction_id": "i-1", "Topic": {"name": "invoice", "n": 2},
    })
    assert response.status_code == 201, response.text
    new = response.json()["state_id"]
    assert response.headers["location"] == f"{CS}/services/{sid}/states/{new}"
    old = get(client, f"/services/{sid}/states/{first}")
    assert old["completed"] == {"timestamp": "2026-04-05T06:07:08.090Z", "interaction_id": "i-1"}
    assert (old["disposition"], old["disposition_desc"]) == (3, "identified")
    assert "Topic" not in old
    started = get(client, f"/services/{sid}/states/{new}")
    assert started["previous_state_id"] == first and started["state_type"] == "billing"
    assert started["est_duration"] == 120 and started["Topic"] == {"name": "invoice", "n": 2}
    assert started["started"] == {"timestamp": "2026-04-05T06:07:08.090Z", "interaction_id": "i-1"}
    assert "completed" not in started
    # `from` no longer active → 409, unknown → 400 NotFound, no `from` → 400
    again = {"from": {"state_id": first}, "to": {"state_type": "x"}}
    assert_error(client.post(f"{CS}/services/{sid}/states/transition", json=again), 409, "StateException")
    assert [s["state_id"] for s in get(client, f"/services/{sid}/states/active")] == [new]
    unknown = {"from": {"state_id": 77}, "to": {"state_type": "x"}}
    assert_error(client.post(f"{CS}/services/{sid}/states/transition", json=unknown), 400, "NotFoundException")
    assert_error(client.post(f"{CS}/services/{sid}/states/transition", json={"to": {}}), 400,
                 "InvalidParameterException")
    assert_error(client.post(f"{CS}/services/{sid}/states/transition", json={"from": {"state_id": "one"}}), 400,
                 "InvalidParameterException")


def test_task_start_get_end_and_state_link(client: TestClient, sid: str) -> None:
    state = start_state(client, sid, state_type="s")
    task = start_task(client, sid, task_type="callback", state_id=state, resource_id=1183, Payload={"n": [1.5]})
    assert get(client, f"/services/{sid}/tasks/{task}") == {
        "task_id": task, "task_type": "callback", "state_id": state, "service_id": sid,
        "started": get(client, f"/services/{sid}/tasks/{task}")["started"], "Payload": {"n": [1.5]},
    }
    assert get(client, f"/services/{sid}/tasks/{task}")["started"]["resource_id"] == 1183
    post_ok(client, f"/services/{sid}/tasks/{task}/end", {"disposition": 1})
    assert get(client, f"/services/{sid}/tasks/{task}")["disposition"] == 1
    assert_error(client.post(f"{CS}/services/{sid}/tasks/{task}/end", json={}), 409, "StateException")
    assert_error(client.post(f"{CS}/services/{sid}/tasks/start", json={"state_id": 42}), 400, "NotFoundException")
    assert_error(client.post(f"{CS}/services/{sid}/tasks/start", json={"state_id": "x1"}), 400,
                 "InvalidParameterException")  # a digit string is an id (API.md §0); other text is not
    assert_error(client.get(f"{CS}/services/{sid}/tasks/55"), 400, "NotFoundException")
    assert_error(client.post(f"{CS}/services/{sid}/tasks/55/end", json={}), 400, "NotFoundException")


def test_task_lists_filter_by_status_type_and_state(client: TestClient, sid: str) -> None:
    s1, s2 = start_state(client, sid), start_state(client, sid)
    t1 = start_task(client, sid, task_type="a", state_id=s1)
    t2 = start_task(client, sid, task_type=5, state_id=s2)
    t3 = start_task(client, sid, task_type="a")
    post_ok(client, f"/services/{sid}/tasks/{t2}/end", {})
    assert [t["task_id"] for t in get(client, f"/services/{sid}/tasks")] == [t1, t2, t3]
    assert [t["task_id"] for t in get(client, f"/services/{sid}/tasks/active")] == [t1, t3]
    assert [t["task_id"] for t in get(client, f"/services/{sid}/tasks/completed")] == [t2]
    assert [t["task_id"] for t in get(client, f"/services/{sid}/tasks", task_types="5")] == [t2]
    assert [t["task_id"] for t in get(client, f"/services/{sid}/tasks", state_id=str(s1))] == [t1]
    assert [t["task_id"] for t in get(client, f"/services/{sid}/tasks/active", task_types="a,b")] == [t1, t3]
    assert_error(client.get(f"{CS}/services/{sid}/tasks", params={"state_id": "x"}), 400,
                 "InvalidParameterException")


def test_ttl_in_state_and_task_events_moves_the_conversation(client: TestClient, sid: str) -> None:
    state = start_state(client, sid, ttl=1)
    start_task(client, sid)
    time.sleep(1.1)
    assert_error(client.get(f"{CS}/services/{sid}"), 400, "NotFoundException")
    assert_error(client.post(f"{CS}/services/{sid}/states/{state}/end", json={}), 400, "NotFoundException")
