"""What real clients send (API.md §0): repeated list parameters, digit strings for integer fields,
unpadded timestamps, and query answers oldest first (the last element is the most recent)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.support.cs_support import CS, get, ids, post_ok, start_service, start_state, start_task

CUSTOMER = "C-real-client"


def test_a_repeated_list_parameter_means_the_comma_list(client: TestClient) -> None:
    a = start_service(client, customer_id=CUSTOMER, service_type="A", channel="x")
    b = start_service(client, customer_id=CUSTOMER, service_type="B", channel="x")
    start_service(client, customer_id=CUSTOMER, service_type="C")
    path = f"{CS}/customers/{CUSTOMER}/services"
    repeated = client.get(f"{path}?service_types=A&service_types=B")
    assert repeated.status_code == 200
    assert sorted(ids(repeated.json())) == sorted([a, b])
    assert sorted(ids(client.get(f"{path}?service_types=A,B").json())) == sorted([a, b])
    # `extensions` given twice: both keys come back
    start_state(client, a, state_type="s")
    found = client.get(f"{CS}/services/{a}?extensions=channel&extensions=service_type").json()
    assert found["channel"] == "x"
    states = client.get(f"{CS}/services/{a}/states?state_types=s&state_types=t").json()
    assert [s["state_type"] for s in states] == ["s"]


def test_integer_fields_accept_digit_strings_and_come_back_as_numbers(client: TestClient) -> None:
    service_id = start_service(client, customer_id=CUSTOMER, est_duration="30", application_id="12",
                               resource_id="7", ttl="600")
    service = get(client, f"/services/{service_id}")
    assert service["est_duration"] == 30
    assert service["started"]["application_id"] == 12
    assert service["started"]["resource_id"] == 7
    state_id = start_state(client, service_id, state_type="s", est_duration="5")
    task_id = start_task(client, service_id, task_type="t", state_id=str(state_id))
    task = get(client, f"/services/{service_id}/tasks/{task_id}")
    assert task["state_id"] == state_id
    response = client.post(f"{CS}/services/{service_id}/states/transition",
                           json={"from": {"state_id": str(state_id)}, "to": {"state_type": "n", "est_duration": "9"}})
    assert response.status_code == 201, response.text
    new = get(client, f"/services/{service_id}/states/{response.json()['state_id']}")
    assert new["previous_state_id"] == state_id and new["est_duration"] == 9
    # not digits: still a 400
    for body in ({"state_id": "1.5"}, {"state_id": "one"}, {"state_id": "-1"}):
        assert client.post(f"{CS}/services/{service_id}/tasks/start", json=body).status_code == 400


def test_unpadded_timestamps_are_accepted(client: TestClient) -> None:
    service_id = start_service(client, customer_id=CUSTOMER, timestamp="2016-3-7T4:5:6.634Z")
    assert get(client, f"/services/{service_id}")["started"]["timestamp"] == "2016-03-07T04:05:06.634Z"
    post_ok(client, f"/services/{service_id}/end", {"timestamp": "2016-3-7T4:6:0.5Z"})
    assert get(client, f"/services/{service_id}")["completed"]["timestamp"] == "2016-03-07T04:06:00.500Z"
    found = get(client, f"/customers/{CUSTOMER}/services", started_from="2016-3-7T0:0:0Z")
    assert ids(found) == [service_id]


def test_query_answers_are_oldest_first(client: TestClient) -> None:
    made = [start_service(client, customer_id=CUSTOMER, timestamp=f"2026-01-0{day}T10:00:00.000Z")
            for day in (3, 1, 2)]
    assert ids(get(client, f"/customers/{CUSTOMER}/services")) == [made[1], made[2], made[0]]
    anonymous = [start_service(client, contact_key="k-real", timestamp=f"2026-02-0{day}T10:00:00.000Z")
                 for day in (2, 1)]
    assert ids(get(client, "/services/anonymous/k-real")) == [anonymous[1], anonymous[0]]
