"""Cluster-ready keys: every Context Services script touches the keys of one slot only, and `{`/`}`
in customer ids or contact keys cannot move keys between slots."""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Sequence
from typing import Any

import pytest
from redis.crc import key_slot
from starlette.testclient import TestClient

from gmsd.cs.store import CsScripts, CsStore
from gmsd.cs.sweeper import AutoCompleteSweeper
from gmsd.keys import (
    cs_conversation,
    cs_index,
    cs_member_service,
    cs_new_service_id,
    cs_partition,
    cs_service_partition,
    cs_space,
    cs_time_index,
)
from tests.conftest import Backend
from tests.support.cs_support import CS, get, owner_not_in, post_ok, start_service, start_state, start_task

# `cs:{cs:<p>}:…`, or for a tenant `cs:t:<tenant>:{cs:<p>}:…`
TAG = re.compile(rb"^cs:(?:t:[A-Za-z0-9._-]{1,64}:)?\{(cs:\d+)\}:")


def slot_of_partition(key: bytes) -> int:
    """The slot of the partition a key names in its tag (`cs:{cs:<p>}:…`)."""
    match = TAG.match(key)
    assert match is not None, key
    return key_slot(match.group(1))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[bytes]]]:
    """Every script call of the CS store: (script name, keys)."""
    recorded: list[tuple[str, list[bytes]]] = []
    names = {}
    original_eval, original_many = CsStore._eval, CsStore._eval_many

    def name_of(store: CsStore, script: Any) -> str:
        if not names:
            names.update({id(getattr(store.scripts, n)): n for n in (f.name for f in dataclasses.fields(CsScripts))})
        return names[id(script)]

    async def recording_eval(self: CsStore, script: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        recorded.append((name_of(self, script), [k.encode() for k in keys]))
        return await original_eval(self, script, keys, args)

    async def recording_many(self: CsStore, script: Any, batch: list[tuple[Sequence[str], Sequence[Any]]]) -> Any:
        recorded.extend((name_of(self, script), [k.encode() for k in keys]) for keys, _ in batch)
        return await original_many(self, script, batch)

    monkeypatch.setattr(CsStore, "_eval", recording_eval)
    monkeypatch.setattr(CsStore, "_eval_many", recording_many)
    return recorded


@pytest.mark.parametrize("tenant", [None, "acme.eu-1"])
def test_every_script_call_stays_in_one_slot(client: TestClient, backend: Backend,
                                             calls: list[tuple[str, list[bytes]]], tenant: str | None) -> None:
    if tenant is not None:  # every request of the scenario in that tenant's keyspace
        client.headers["ContactCenterId"] = tenant
    prefix = b"cs:" if tenant is None else f"cs:t:{tenant}:".encode()
    evil, contact = "{evil}x", "a{b}c}{"
    # services of a customer and of a contact key with braces, with states, tasks and extensions
    sid = start_service(client, customer_id=evil, contact_key="k{1}", service_type="{t}")
    assert cs_service_partition(sid) == cs_partition(evil)
    state = start_state(client, sid, state_type="s")
    task = start_task(client, sid, task_type="t", state_id=state)
    client.post(f"{CS}/services/{sid}/states/transition", json={"from": {"state_id": state}, "to": {}})
    post_ok(client, f"/services/{sid}/tasks/{task}/end", {"ttl": 600})
    assert client.put(f"{CS}/services/{sid}/extensions/x", json=1).status_code == 200
    assert client.put(f"{CS}/services/{sid}/states/{state}/extensions/x", json=1).status_code == 200
    get(client, f"/services/{sid}", active_states="true", active_tasks="true")
    # composite: create, then find in the same partition
    element = {"service": {"customer_id": evil, "service_type": "{c}"}, "state": {"state_type": "}"},
               "task": {"task_type": "{"}}
    for _ in range(2):
        assert client.post(f"{CS}/services_composite/start", json={"services": [element]}).status_code == 200
    # an anonymous service associated with customers of other partitions, found by composite there
    anonymous = start_service(client, contact_key=contact, service_type="{c}")
    far = owner_not_in(cs_partition(contact), "{far}")
    farther = owner_not_in(cs_partition(contact), "{farther}}")
    post_ok(client, f"/customers/{far}/services/{anonymous}", {}, 200)
    joined = {"service": {"customer_id": far, "contact_key": contact, "service_type": "{c}"},
              "state": {"state_type": "s"}}
    found = client.post(f"{CS}/services_composite/start", json={"services": [joined]}).json()
    assert found["services"][0]["service"] == {"service_id": anonymous, "created": "false"}
    assert client.put(f"{CS}/services/{anonymous}", json={"ttl": 900}).status_code == 200
    post_ok(client, f"/customers/{farther}/services/{anonymous}", {}, 200)
    # queries, including a stale entry (the service is deleted behind the index's back)
    assert [s["service_id"] for s in get(client, f"/customers/{farther}/services")] == [anonymous]
    get(client, f"/services/anonymous/{contact}", active_states="true")
    stale = cs_new_service_id(cs_partition(evil))
    space = cs_space(tenant)
    backend.sync.zadd(cs_index(cs_partition(evil), space)[0], {b"c\0%7Bevil%7Dx\0" + stale.encode() + b"#0": 0})
    backend.sync.zadd(cs_index(cs_partition(evil), space)[1],
                      {b"c\0%7Bevil%7Dx\0" + stale.encode() + b"#0": 2 ** 50})
    assert stale not in [s["service_id"] for s in get(client, f"/customers/{evil}/services")]
    live = list(backend.sync.scan_iter(match="cs:*", count=1000))
    assert len(live) >= 10 and all(backend.sync.pttl(key) > 0 for key in live)  # nothing is kept forever
    post_ok(client, f"/services/{anonymous}/end", {})
    assert client.delete(f"{CS}/services/{anonymous}").status_code == 200
    # maintenance: an export reads the time index, a purge deletes partition by partition
    assert sid in client.get(f"{CS}/maintenance/services/stream", params={"time_from": "2000-01-01T00:00:00Z"}).json()
    purged = client.post(f"{CS}/maintenance/purge", json={"limit": "2100-01-01T00:00:00Z",
                                                          "operation": "purge.service.completed"})
    assert purged.json() == {"purged": 0}  # what is left is active: all kept
    # auto-complete: the sweeper completes a service that is due (made due here by hand)
    backend.sync.zadd(cs_time_index(cs_partition(evil), space)[2], {sid: 1})
    sweeper = AutoCompleteSweeper(client.app.state.cs.store, 1)  # type: ignore[attr-defined]
    assert client.portal.call(sweeper.sweep) == 1  # type: ignore[union-attr]
    assert "completed" in get(client, f"/services/{sid}")
    assert client.delete(f"{CS}/services/{sid}").status_code == 200

    used = {name for name, _ in calls}
    assert used == {f.name for f in dataclasses.fields(CsScripts)}  # the scenario exercised every script
    for name, keys in calls:
        assert len({key_slot(k) for k in keys}) == 1, (name, keys)
        assert {slot_of_partition(k) for k in keys} == {key_slot(k) for k in keys}, (name, keys)
        assert all(k.startswith(prefix) and (tenant is not None or not k.startswith(b"cs:t:")) for k in keys)
    # what is stored: every key carries its partition's tag, whatever the braces in user text
    stored = list(backend.sync.scan_iter(match="cs:*", count=1000))
    assert stored
    for key in stored:
        assert key_slot(key) == slot_of_partition(key), key


def test_partitions_and_ids() -> None:
    assert cs_partition("C-1") == zlib.crc32(b"C-1") % 1024 == 94  # stable across processes and runs
    sid = cs_new_service_id(115)
    assert sid.startswith("115-") and cs_service_partition(sid) == 115
    for bad in ("", "115", "1024-" + sid[4:], "0115-" + sid[4:], sid.upper(), sid + "x", "-" + sid[4:]):
        assert cs_service_partition(bad) is None, bad
    svc, states, tasks = cs_conversation(sid, 115)
    assert {key_slot(k.encode()) for k in (svc, states, tasks, *cs_index(115))} == {key_slot(b"cs:115")}
    assert cs_member_service(b"c\0a%00b\0" + sid.encode() + b"#3") == sid


def test_a_tenant_id_cannot_choose_a_slot_nor_reach_another_keyspace() -> None:
    assert cs_space(None) == ""
    assert cs_space("acme.eu-1_2") == "t:acme.eu-1_2:"
    for bad in ("", "{x}", "a}b", "a:b", "a b", "é", "a\n", "x" * 65, "a/b", "a*"):
        with pytest.raises(ValueError):
            cs_space(bad)
    sid = cs_new_service_id(115)
    for space in ("", cs_space("A"), cs_space("x" * 64)):
        keys = (*cs_conversation(sid, 115, space), *cs_index(115, space))
        assert {key_slot(k.encode()) for k in keys} == {key_slot(b"cs:115")}  # the partition's slot, always
    assert not set(cs_conversation(sid, 115, cs_space("A"))) & set(cs_conversation(sid, 115, cs_space("B")))
    assert not set(cs_conversation(sid, 115)) & set(cs_conversation(sid, 115, cs_space("A")))

