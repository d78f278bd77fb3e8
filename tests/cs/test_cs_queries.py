"""Service queries (seed 004), association between lists, expiry and index hygiene."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from gmsd.cs.models import ServiceStartEvent, decode_event
from gmsd.cs.services import ContextServices
from gmsd.keys import (
    cs_anonymous_prefix,
    cs_customer_prefix,
    cs_index,
    cs_partition,
    cs_service_partition,
    cs_time_index,
)
from tests.conftest import Backend
from tests.support.cs_support import (
    CS,
    assert_error,
    get,
    ids,
    index_members,
    owner_in_partition,
    owner_not_in,
    post_ok,
    start_service,
    start_state,
    start_task,
)

CUSTOMER = "C-query"


@pytest.fixture
def history(client: TestClient) -> dict[str, str]:
    """Five services of one customer, started one day apart, some completed, with attached data."""
    made = {}
    for day, (name, kind, extra) in enumerate([
        ("old_done", "billing", {"channel": "voice", "vip": True}),
        ("old_active", "sales", {"channel": "chat", "level": 3}),
        ("mid_done", "billing", {"channel": "chat", "vip": False}),
        ("new_active", 7, {"channel": "voice", "level": 3}),
        ("new_done", "sales", {"channel": "voice", "nested": {"a": 1}}),
    ], start=1):
        made[name] = start_service(client, customer_id=CUSTOMER, service_type=kind,
                                   timestamp=f"2026-01-{day:02d}T10:00:00.000Z", **extra)
    for name, day in (("old_done", 6), ("mid_done", 8), ("new_done", 9)):
        post_ok(client, f"/services/{made[name]}/end", {"timestamp": f"2026-01-{day:02d}T12:00:00.000Z"})
    start_service(client, customer_id="C-someone-else", service_type="billing")
    return made


def query(client: TestClient, path: str = "", **params: Any) -> list[str]:
    return ids(get(client, f"/customers/{CUSTOMER}/services{path}", **params))


def test_all_active_completed_oldest_first(client: TestClient, history: dict[str, str]) -> None:
    h = history
    assert query(client) == [h["old_done"], h["old_active"], h["mid_done"], h["new_active"], h["new_done"]]
    assert query(client, "/active") == [h["old_active"], h["new_active"]]
    assert query(client, "/completed") == [h["old_done"], h["mid_done"], h["new_done"]]


def test_each_filter_alone(client: TestClient, history: dict[str, str]) -> None:
    h = history
    assert query(client, started_from="2026-01-03T10:00:00Z") == [h["mid_done"], h["new_active"], h["new_done"]]
    assert query(client, started_to="2026-01-03T10:00:00Z") == [h["old_done"], h["old_active"]]
    assert query(client, completed_from="2026-01-08T12:00:00Z") == [h["mid_done"], h["new_done"]]
    assert query(client, completed_to="2026-01-08T12:00:00Z") == [h["old_done"]]
    assert query(client, service_types="billing") == [h["old_done"], h["mid_done"]]
    assert query(client, service_types="7,sales") == [h["old_active"], h["new_active"], h["new_done"]]
    assert query(client, channel="chat") == [h["old_active"], h["mid_done"]]
    assert query(client, level="3") == [h["old_active"], h["new_active"]]  # a number matches its text
    assert query(client, vip="true") == [h["old_done"]]  # a boolean too
    assert query(client, nested='{"a":1}') == [h["new_done"]]  # an object by its JSON
    assert query(client, channel="fax") == []
    assert len(query(client, customer_id="someone", service_id="x")) == 5  # not attached data: ignored


def test_filters_combined(client: TestClient, history: dict[str, str]) -> None:
    h = history
    assert query(client, "/active", channel="voice", service_types="7") == [h["new_active"]]
    assert query(client, "/completed", service_types="billing,sales", channel="voice",
                 started_from="2026-01-01T00:00:00Z", started_to="2026-01-05T10:00:00Z") == [h["old_done"]]
    assert query(client, completed_from="2026-01-07T00:00:00Z", completed_to="2026-01-09T00:00:00Z",
                 channel="chat") == [h["mid_done"]]
    # completed_* mean nothing for active services: an /active query ignores them
    assert query(client, "/active", completed_from="2026-01-07T00:00:00Z") == [h["old_active"], h["new_active"]]
    assert query(client, channel="voice", level="3", service_types="sales") == []


def test_queries_survive_a_script_flush(client: TestClient, backend: Backend, history: dict[str, str]) -> None:
    assert len(query(client, active_states="true")) == 5
    backend.sync.script_flush()  # what a Redis restart or failover does to loaded scripts
    assert len(query(client, active_states="true")) == 5
    assert len(query(client)) == 5


def test_include_flags_and_extensions(client: TestClient, history: dict[str, str]) -> None:
    sid = history["new_active"]
    state = start_state(client, sid, state_type=8, note="s")
    task = start_task(client, sid, task_type="t", state_id=state)
    [plain] = get(client, f"/customers/{CUSTOMER}/services/active", service_types="7")
    assert not {"active_states", "completed_states", "active_tasks", "completed_tasks"} & plain.keys()
    [full] = get(client, f"/customers/{CUSTOMER}/services/active", service_types="7", active_states="true",
                 completed_states="true", active_tasks="true", completed_tasks="true", extensions="level")
    assert [s["state_id"] for s in full["active_states"]] == [state]
    assert "active_tasks" not in full["active_states"][0] and "note" not in full["active_states"][0]
    assert [t["task_id"] for t in full["active_tasks"]] == [task]
    assert full["completed_states"] == [] and full["completed_tasks"] == []
    assert full["level"] == 3 and "channel" not in full


def test_unknown_customer_or_contact_key_is_an_empty_list(client: TestClient, history: dict[str, str]) -> None:
    assert get(client, "/customers/nobody/services") == []
    assert get(client, "/customers/nobody/services/active") == []
    assert get(client, "/services/anonymous/000-000") == []
    assert get(client, "/customers/" + "x" * 4097 + "/services") == []


def test_query_parameter_errors(client: TestClient) -> None:
    url = f"{CS}/customers/{CUSTOMER}/services"
    assert_error(client.get(url, params={"started_from": "last week"}), 400, "InvalidParameterException")
    assert_error(client.get(url, params={"active_states": "perhaps"}), 400, "InvalidParameterException")


def test_anonymous_list_and_association_between_customers(client: TestClient, backend: Backend) -> None:
    contact = "408-832-7799"
    home = cs_partition(contact)
    sid = start_service(client, contact_key=contact, service_type="wireless", Offer={"months": 12})
    assert ids(get(client, f"/services/anonymous/{contact}")) == [sid]
    assert ids(get(client, f"/services/anonymous/{contact}/active")) == [sid]
    assert get(client, f"/services/anonymous/{contact}/completed") == []
    local, remote = owner_in_partition(home, "C-local"), owner_not_in(home, "C-remote")
    # associate with a customer of the same partition, then of another one, then back
    for customer in (local, remote, local):
        response = client.post(f"{CS}/customers/{customer}/services/{sid}", json={"media_type": "chat", "step": 1})
        assert response.status_code == 200 and response.json() == {}
        assert get(client, f"/services/anonymous/{contact}") == []
        assert ids(get(client, f"/customers/{customer}/services")) == [sid]
        other = remote if customer == local else local
        assert get(client, f"/customers/{other}/services") == []
        service = get(client, f"/services/{sid}")
        assert service["customer_id"] == customer and service["contact_key"] == contact
        assert service["started"]["media_type"] == "chat"
        assert service["step"] == 1 and service["Offer"] == {"months": 12}
    # no entry is left behind for the previous owners
    assert index_members(backend.sync, contact, cs_anonymous_prefix(contact)) == []
    assert index_members(backend.sync, remote, cs_customer_prefix(remote)) == []
    assert len(index_members(backend.sync, local, cs_customer_prefix(local))) == 1
    # associating again with the same customer changes nothing but the body's fields
    post_ok(client, f"/customers/{local}/services/{sid}", {"step": 2}, 200)
    assert get(client, f"/customers/{local}/services")[0]["step"] == 2
    post_ok(client, f"/services/{sid}/end", {})
    assert ids(get(client, f"/customers/{local}/services/completed")) == [sid]
    assert_error(client.post(f"{CS}/customers/{local}/services/{sid}", content=b"[["), 400,
                 "InvalidParameterException")
    # fields associate ignores are still checked (fuzzing: an `expiration_time` of garbage was a 200)
    for name in ("timestamp", "expiration_time"):
        assert_error(client.post(f"{CS}/customers/{local}/services/{sid}", json={name: "\u00c4q"}), 400,
                     "InvalidParameterException")
    post_ok(client, f"/customers/{local}/services/{sid}", {"expiration_time": "2001-01-01T00:00:00Z"}, 200)


def test_new_expiry_of_a_service_associated_elsewhere_raises_its_remote_entries(
    client: TestClient, backend: Backend
) -> None:
    sid = start_service(client, contact_key="ck-remote", ttl=60)
    customer = owner_not_in(cs_service_partition(sid) or 0, "C-far")
    post_ok(client, f"/customers/{customer}/services/{sid}", None, 200)
    ixexp = cs_index(cs_partition(customer))[1]
    [member] = index_members(backend.sync, customer, cs_customer_prefix(customer))
    assert 55_000 < backend.sync.zscore(ixexp, member) - time.time() * 1000 <= 60_000
    assert client.put(f"{CS}/services/{sid}", json={"ttl": 3600}).status_code == 200
    assert 3_595_000 < backend.sync.zscore(ixexp, member) - time.time() * 1000 <= 3_600_000
    start_state(client, sid, ttl=7200)
    assert 7_195_000 < backend.sync.zscore(ixexp, member) - time.time() * 1000 <= 7_200_000
    assert backend.sync.pttl(ixexp) >= 7_195_000
    assert ids(get(client, f"/customers/{customer}/services")) == [sid]


def test_expired_conversations_disappear_from_queries(client: TestClient, backend: Backend) -> None:
    keep = start_service(client, customer_id="C-ttl-q", service_type="a")
    gone = [start_service(client, customer_id="C-ttl-q", service_type="a", ttl=1) for _ in range(3)]
    gone.append(start_service(client, contact_key="ck-ttl-q", ttl=1))
    composite = client.post(f"{CS}/services_composite/start", json={"services": [
        {"service": {"customer_id": "C-ttl-q", "service_type": "b", "ttl": 1}, "state": {"state_type": "s"}}]})
    gone.append(composite.json()["services"][0]["service"]["service_id"])
    assert len(get(client, "/customers/C-ttl-q/services")) == 5
    time.sleep(1.1)
    assert ids(get(client, "/customers/C-ttl-q/services")) == [keep]
    assert get(client, "/customers/C-ttl-q/services/active", service_types="b") == []
    assert get(client, "/services/anonymous/ck-ttl-q") == []
    assert len(index_members(backend.sync, "C-ttl-q", cs_customer_prefix("C-ttl-q"))) == 1  # `keep`
    for sid in gone:
        assert_error(client.get(f"{CS}/services/{sid}"), 400, "NotFoundException")
    [again] = client.post(f"{CS}/services_composite/start", json={"services": [
        {"service": {"customer_id": "C-ttl-q", "service_type": "b"}, "state": {"state_type": "s"}}]}).json()[
        "services"]
    assert again["service"]["created"] == "true"


def test_index_hygiene_after_thousands_of_expired_conversations(client: TestClient, backend: Backend) -> None:
    """Create 3,000 conversations of one customer with a 1 s lifetime: once they have expired, a
    query answers only the live one, and the index holds no entry for the others."""
    customer, count = "C-hygiene", 3000
    api: ContextServices = client.app.state.cs  # type: ignore[attr-defined]
    event, raws = decode_event(b'{"customer_id": "C-hygiene", "service_type": "bulk", "ttl": 1}',
                               ServiceStartEvent)

    async def create_all() -> None:
        for first in range(0, count, 100):
            await asyncio.gather(*(api.start_service(event, raws) for _ in range(min(100, count - first))))

    live = start_service(client, customer_id=customer, service_type="keeper")
    client.portal.call(create_all)  # type: ignore[union-attr]
    ix, ixexp = cs_index(cs_partition(customer))
    assert backend.sync.zcard(ixexp) > 2  # the dead ones are still indexed until trimmed
    time.sleep(1.1)  # the last one created has expired
    assert ids(get(client, f"/customers/{customer}/services")) == [live]
    # only the live service's two entries remain (its customer entry and its match entry), and in
    # `ixexp` its time entry; the time index holds it alone
    assert backend.sync.zcard(ix) == 2 and backend.sync.zcard(ixexp) == 3
    ts, te, tu = cs_time_index(cs_partition(customer))
    assert backend.sync.zrange(ts, 0, -1) == [live.encode()]
    assert backend.sync.zcard(te) == backend.sync.zcard(tu) == 0
    [member] = index_members(backend.sync, customer, cs_customer_prefix(customer))
    assert member.decode().split("\0")[-1].startswith(live)
    assert list(backend.sync.scan_iter(match="cs:*:svc:*", count=1000)) == [
        f"cs:{{cs:{cs_partition(customer)}}}:svc:{live}".encode()]


def test_index_keys_expire_with_their_last_conversation(client: TestClient, backend: Backend) -> None:
    sid = start_service(client, customer_id="C-last", ttl=1)
    ix, ixexp = cs_index(cs_partition("C-last"))
    assert 0 < backend.sync.pttl(ix) <= 1000 and 0 < backend.sync.pttl(ixexp) <= 1000
    assert backend.sync.pexpiretime(ix) == backend.sync.pexpiretime(f"cs:{{cs:{cs_service_partition(sid)}}}:svc:{sid}")
    ts = cs_time_index(cs_partition("C-last"))[0]
    assert backend.sync.pexpiretime(ts) == backend.sync.pexpiretime(ix)
    time.sleep(1.1)
    assert backend.sync.exists(ix, ixexp, ts) == 0


def test_a_customer_with_more_services_than_one_read_call_takes(client: TestClient) -> None:
    # The query reads its conversations 64 per script call (gmsd.cs.store.READ_MANY_BATCH); some
    # of them were started anonymously in other partitions and associated with the customer.
    customer = "C-many-services"
    started = []
    for n in range(70):
        if n % 10 == 9:
            contact = owner_not_in(cs_partition(customer), f"contact-many-{n}")
            service_id = start_service(client, contact_key=contact, service_type=f"T{n}")
            post_ok(client, f"/customers/{customer}/services/{service_id}", {}, 200)
        else:
            service_id = start_service(client, customer_id=customer, service_type=f"T{n}")
        start_state(client, service_id, state_type=f"S{n}")
        started.append(service_id)
    listed = get(client, f"/customers/{customer}/services", active_states="true")
    assert ids(listed) == started  # every one, oldest first
    for n, service in enumerate(listed):
        assert service["service_type"] == f"T{n}"
        assert [s["state_type"] for s in service["active_states"]] == [f"S{n}"]
