"""Context Services maintenance (MAINTENANCE.md §5.1, §5.2): purge and the stream export, on every
backend, within the request's tenant only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from starlette.testclient import TestClient

from gmsd.bench.maintenance import fill, stream_export
from gmsd.keys import cs_index, cs_partition, cs_service_partition, cs_time_index
from tests.conftest import Backend, RedisServer
from tests.support.cs_support import (
    CS,
    assert_error,
    conversation_keys,
    get,
    owner_not_in,
    post_ok,
    start_service,
    start_state,
    start_task,
)
from tests.support.gmsd_process import gmsd_serving

BEFORE, LIMIT, AFTER = "2020-01-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z", "2030-01-01T00:00:00.000Z"
# (active or completed, anonymous or customer, before or after the limit) → name
MATRIX = [(state, owner, when) for state in ("active", "completed") for owner in ("anonymous", "customer")
          for when in ("before", "after")]


def make_matrix(client: TestClient, headers: dict[str, str] | None = None, tag: str = "") -> dict[str, str]:
    """One service of each kind, each with a state and a task; names like `completed/anonymous/before`."""
    made: dict[str, str] = {}
    for n, (state, owner, when) in enumerate(MATRIX):
        body: dict[str, Any] = {"timestamp": BEFORE if when == "before" else AFTER, "service_type": "m"}
        body["customer_id" if owner == "customer" else "contact_key"] = f"owner-{tag}{n}"
        response = client.post(f"{CS}/services/start", json=body, headers=headers)
        assert response.status_code == 201, response.text
        sid = response.json()["service_id"]
        for kind in ("states", "tasks"):
            assert client.post(f"{CS}/services/{sid}/{kind}/start", json={}, headers=headers).status_code == 201
        if state == "completed":
            assert client.post(f"{CS}/services/{sid}/end", json={}, headers=headers).status_code == 204
        made[f"{state}/{owner}/{when}"] = sid
    return made


PURGED = {
    "purge.service.all": {"active/anonymous/before", "active/customer/before", "completed/anonymous/before",
                          "completed/customer/before"},
    "purge.service.started": {"active/anonymous/before", "active/customer/before"},
    "purge.service.started.anonymous": {"active/anonymous/before"},
    "purge.service.completed": {"completed/anonymous/before", "completed/customer/before"},
    "purge.service.completed.anonymous": {"completed/anonymous/before"},
}


def exists(client: TestClient, sid: str, headers: dict[str, str] | None = None) -> bool:
    return client.get(f"{CS}/services/{sid}", headers=headers).status_code == 200


@pytest.mark.parametrize("operation", sorted(PURGED))
def test_each_purge_operation_selects_exactly_its_services(client: TestClient, backend: Backend,
                                                           operation: str) -> None:
    made = make_matrix(client)
    response = client.post(f"{CS}/maintenance/purge", json={"limit": LIMIT, "operation": operation})
    assert response.status_code == 200, response.text
    assert response.json() == {"purged": len(PURGED[operation])}
    for name, sid in made.items():
        assert exists(client, sid) == (name not in PURGED[operation]), name
        if name in PURGED[operation]:  # states, tasks, index and time entries go with it
            assert backend.sync.exists(*conversation_keys(sid)) == 0
            partition = cs_service_partition(sid) or 0
            ts, te, _ = cs_time_index(partition)
            assert backend.sync.zscore(ts, sid) is None and backend.sync.zscore(te, sid) is None
            assert backend.sync.zscore(cs_index(partition)[1], b"t\0" + sid.encode()) is None
    left = {name for name in made if name not in PURGED[operation]}
    for n, (state, owner, when) in enumerate(MATRIX):  # the customers' lists keep what is left
        if owner == "customer":
            listed = [s["service_id"] for s in get(client, f"/customers/owner-{n}/services")]
            assert listed == ([made[f"{state}/{owner}/{when}"]] if f"{state}/{owner}/{when}" in left else [])
    # again: nothing left to purge
    again = client.post(f"{CS}/maintenance/purge", json={"limit": LIMIT, "operation": operation})
    assert again.json() == {"purged": 0}


def test_purge_reads_the_query_string_without_a_body_and_checks_its_input(client: TestClient) -> None:
    made = make_matrix(client)
    response = client.post(f"{CS}/maintenance/purge",
                           params={"limit": LIMIT, "operation": "purge.service.completed.anonymous"})
    assert response.json() == {"purged": 1}
    assert not exists(client, made["completed/anonymous/before"])
    for body in ({"operation": "purge.service.all"}, {"limit": LIMIT}, {"limit": "yesterday", "operation":
                 "purge.service.all"}, {"limit": LIMIT, "operation": "purge.everything"}, {"limit": 5}):
        assert_error(client.post(f"{CS}/maintenance/purge", json=body), 400, "InvalidParameterException")
    assert_error(client.post(f"{CS}/maintenance/purge"), 400, "InvalidParameterException")
    assert_error(client.post(f"{CS}/maintenance/purge", content=b"[1]"), 400, "InvalidParameterException")


def test_purge_drops_the_entries_of_a_service_associated_in_another_partition(client: TestClient,
                                                                            backend: Backend) -> None:
    sid = start_service(client, contact_key="ck-far-purge", timestamp=BEFORE)
    customer = owner_not_in(cs_service_partition(sid) or 0, "C-far-purge")
    post_ok(client, f"/customers/{customer}/services/{sid}", None, 200)
    ix = cs_index(cs_partition(customer))[0]
    assert backend.sync.zcard(ix) > 0
    response = client.post(f"{CS}/maintenance/purge", json={"limit": LIMIT, "operation": "purge.service.all"})
    assert response.json() == {"purged": 1}
    assert backend.sync.zcard(ix) == 0
    assert get(client, f"/customers/{customer}/services") == []


def test_purge_and_export_touch_the_tenant_of_the_request_only(client: TestClient) -> None:
    tenant = {"ContactCenterId": "tenant-a"}
    mine = make_matrix(client, tenant, "a")
    other = make_matrix(client, None, "b")
    everything = {"time_from": "2000-01-01T00:00:00Z", "time_to": "2040-01-01T00:00:00Z"}
    exported = client.get(f"{CS}/maintenance/services/stream", params=everything, headers=tenant).json()
    assert sorted(exported) == sorted(mine.values())
    response = client.post(f"{CS}/maintenance/purge", json={"limit": LIMIT, "operation": "purge.service.all"},
                           headers=tenant)
    assert response.json() == {"purged": 4}
    assert all(exists(client, sid) for sid in other.values())
    assert sorted(client.get(f"{CS}/maintenance/services/stream", params=everything).json()) == sorted(
        other.values())


def test_purge_walks_past_a_page_of_services_it_keeps(client: TestClient) -> None:
    """More kept services than one purge batch in one partition: those after them are still purged."""
    kept = [start_service(client, customer_id="C-one-partition", timestamp=f"2020-01-01T00:00:{n // 10:02d}."
                          f"{n % 10}00Z") for n in range(130)]
    purged = []
    for n in range(20):
        sid = start_service(client, customer_id="C-one-partition", timestamp=f"2020-06-01T00:00:{n:02d}.000Z")
        post_ok(client, f"/services/{sid}/end", {})
        purged.append(sid)
    response = client.post(f"{CS}/maintenance/purge", json={"limit": LIMIT, "operation": "purge.service.completed"})
    assert response.json() == {"purged": 20}
    assert len(get(client, "/customers/C-one-partition/services")) == len(kept)


# --- the stream export --------------------------------------------------------------------------

RANGE = {"time_from": "2026-01-10T00:00:00.000Z", "time_to": "2026-01-20T00:00:00.000Z"}


@pytest.fixture
def scenario(client: TestClient) -> dict[str, str]:
    """MAINTENANCE.md's S1 (started in the range, ended after it), S2 (started in it, active), S3
    (started before it, ended in it), and two outside it (S0 before, S4 after)."""
    made = {}
    for name, start, end in (("S0", "2026-01-01", "2026-01-02"), ("S1", "2026-01-11", "2026-01-25"),
                             ("S2", "2026-01-15", None), ("S3", "2026-01-05", "2026-01-12"),
                             ("S4", "2026-01-21", None)):
        sid = start_service(client, customer_id=f"C-export-{name}", timestamp=f"{start}T08:00:00.000Z",
                            service_type="export", note=name)
        if end is not None:
            post_ok(client, f"/services/{sid}/end", {"timestamp": f"{end}T08:00:00.000Z"})
        made[name] = sid
    return made


def export(client: TestClient, **params: Any) -> Any:
    response = client.get(f"{CS}/maintenance/services/stream", params={**RANGE, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


# MAINTENANCE.md §5.2's filter table; each list oldest matching event first (S1 11th, S3 12th, S2 15th)
FILTER_TABLE = [
    ("any", "any", ["S1", "S3", "S2"]),
    ("any", "active", ["S2"]),
    ("any", "inactive", ["S1", "S3"]),
    ("started", "any", ["S1", "S2"]),
    ("started", "active", ["S2"]),
    ("started", "inactive", ["S1"]),
    ("completed", "any", ["S3"]),
    ("completed", "active", []),
    ("completed", "inactive", ["S3"]),
]


@pytest.mark.parametrize(("events", "state", "expected"), FILTER_TABLE)
def test_every_row_of_the_filter_table(client: TestClient, scenario: dict[str, str], events: str, state: str,
                                       expected: list[str]) -> None:
    found = export(client, filter_events=events, filter_state=state, export_content="true")
    assert [s["service_id"] for s in found] == [scenario[name] for name in expected]
    assert [s["note"] for s in found] == expected
    if state == "any":
        assert export(client, filter_events=events) == [scenario[name] for name in expected]


def test_an_export_with_content_has_every_array(client: TestClient, scenario: dict[str, str]) -> None:
    sid = scenario["S2"]
    state = start_state(client, sid, state_type="s", extra=1)
    task = start_task(client, sid, task_type="t", state_id=state)
    [found] = export(client, filter_events="started", filter_state="active", export_content="true")
    assert found == get(client, f"/services/{sid}", active_states="true", completed_states="true",
                        active_tasks="true", completed_tasks="true")
    assert found["active_states"][0]["state_id"] == state and "active_tasks" not in found["active_states"][0]
    assert found["active_tasks"][0]["task_id"] == task
    assert found["completed_states"] == [] and found["completed_tasks"] == []


def test_export_ranges_are_inclusive_and_time_to_defaults_to_now(client: TestClient,
                                                                 scenario: dict[str, str]) -> None:
    exact = {"time_from": "2026-01-11T08:00:00.000Z", "time_to": "2026-01-11T08:00:00.000Z"}
    assert client.get(f"{CS}/maintenance/services/stream", params=exact).json() == [scenario["S1"]]
    since = client.get(f"{CS}/maintenance/services/stream", params={"time_from": "2026-01-20T12:00:00Z"}).json()
    assert since == [scenario["S4"], scenario["S1"]]  # S4 by its start on the 21st, S1 by its end on the 25th
    empty = client.get(f"{CS}/maintenance/services/stream", params={"time_from": "2031-01-01T00:00:00Z",
                                                                    "time_to": "2032-01-01T00:00:00Z"})
    assert empty.status_code == 200 and empty.json() == []


def test_export_refuses_bad_parameters(client: TestClient) -> None:
    stream = f"{CS}/maintenance/services/stream"
    for params in ({}, {"time_from": "soon"}, {**RANGE, "filter_events": "ended"},
                   {**RANGE, "filter_state": "active"}, {**RANGE, "export_content": "maybe"},
                   {**RANGE, "export_content": "true", "filter_state": "asleep"},
                   {"time_from": "2026-01-20T00:00:00Z", "time_to": "2026-01-10T00:00:00Z"}):
        assert_error(client.get(stream, params=params), 400, "InvalidParameterException")


# --- a real `gmsd serve`, so that the streaming is real -------------------------------------------

EXPORT_COUNT = 20_000
# Generous: the export's buffers are bounded (1,024 partitions x a 32-entry page, plus one batch of
# 100 rendered services), whatever the number of services; 20,000 with content are about 9 MiB
# of JSON, which a buffered answer would hold (several times over) on top of the baseline.
RSS_GROWTH_BOUND_MIB = 60


def test_a_large_export_with_content_streams_every_id_once(redis_server: RedisServer, tmp_path: Path,
                                                           report: Callable[[str], None]) -> None:
    redis.Redis(port=redis_server.port).flushall()
    made = fill(redis_server.url, EXPORT_COUNT)
    with gmsd_serving(tmp_path, redis_server.url, "", workers=1) as server:
        measured = stream_export(server.base, server.process.pid, {
            "time_from": "2026-01-01T00:00:00Z", "time_to": "2026-12-31T00:00:00Z", "export_content": "true"})
    assert measured["chunked"] and measured["chunks"] > 1  # streamed, not one buffered body
    services = msgspec.json.decode(measured["body"])  # a valid JSON array
    assert isinstance(services, list) and len(services) == EXPORT_COUNT
    assert sorted(s["service_id"] for s in services) == sorted(made)  # every id once
    assert all(len(s["active_states"]) == 1 and len(s["active_tasks"]) == 1 for s in services)
    growth = measured["peak_rss_mib"] - measured["baseline_rss_mib"]
    report(f"export of {EXPORT_COUNT} services with content: {measured['bytes'] / 2**20:.1f} MiB, RSS "
           f"{measured['baseline_rss_mib']} -> {measured['peak_rss_mib']} MiB")
    assert growth < RSS_GROWTH_BOUND_MIB
