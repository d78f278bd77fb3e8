"""The CS renderer (gmsd.cs.records) writes JSON text directly: it must stay the documents that
the resource Structs of gmsd.cs.models describe, key order included, for any stored field names."""

from __future__ import annotations

import json

import msgspec
import pytest

from gmsd.cs.models import Service, State, Task
from gmsd.cs.records import Conversation, Extensions, View, render_service, render_state, render_task
from gmsd.timestamps import format_timestamp

T0, T1 = 1_796_238_294_049, 1_796_238_299_100
# Every field a stored resource can have, attached data with names that need JSON escapes.
ENDED = {
    b"t0": str(T0).encode(), b"t1": str(T1).encode(), b"type": b'"Type1"', b"est": b"30",
    b"s:media_type": b'"voice"', b"s:interaction_id": b'"i-1"', b"e:resource_id": b"7",
    b"e:disposition": b'"done"', b"e:disposition_desc": b'"all good"',
    b"a:plain": b'{"x":[1,2]}', 'a:quote"back\\slash\u00e9\x01'.encode(): b"null",
    b"lu": b"1", b"mm": b"m\0internal",  # internal fields never show
}
ATTACHED = {"plain": {"x": [1, 2]}, 'quote"back\\slash\u00e9\x01': None}


def _keys(raw: msgspec.Raw) -> list[str]:
    return list(json.loads(bytes(raw)))


def _expected_order(struct: type[msgspec.Struct], present: set[str]) -> list[str]:
    return [name for name in struct.__struct_fields__ if name in present]


def test_service_keys_follow_the_struct_then_attached_data() -> None:
    svc = {**ENDED, b"cust": b'cust "1"', b"ck": b"key\\1"}
    states = {b"1:" + k: v for k, v in ENDED.items()} | {b"1:prev": b"2"}
    tasks = {b"4:" + k: v for k, v in ENDED.items()} | {b"4:state": b"1"}
    view = View(True, True, True, True)
    raw = render_service("12-abc", svc, states, tasks, view)
    doc = json.loads(bytes(raw))
    own = _expected_order(Service, set(doc))
    assert _keys(raw) == own + list(ATTACHED)
    assert set(own) == set(Service.__struct_fields__)  # every field of the Struct was rendered
    assert doc["customer_id"] == 'cust "1"' and doc["contact_key"] == "key\\1"
    assert doc["started"] == {"timestamp": format_timestamp(T0), "media_type": "voice", "interaction_id": "i-1"}
    assert doc["completed"] == {"timestamp": format_timestamp(T1), "resource_id": 7}
    assert (doc["duration"], doc["est_duration"], doc["disposition"], doc["disposition_desc"]) == (
        T1 - T0, 30, "done", "all good")
    assert [k for k in doc if k in ATTACHED] == list(ATTACHED) and all(doc[k] == v for k, v in ATTACHED.items())
    assert doc["active_states"] == [] and doc["active_tasks"] == []
    assert [s["state_id"] for s in doc["completed_states"]] == [1]
    assert [t["task_id"] for t in doc["completed_tasks"]] == [4]


def test_state_and_task_keys_follow_their_structs() -> None:
    tasks = {4: {k: v for k, v in ENDED.items()} | {b"state": b"1"}}
    state = render_state("12-abc", 1, {**ENDED, b"prev": b"2"}, tasks, View(completed_tasks=True))
    own = _expected_order(State, set(json.loads(bytes(state))))
    assert _keys(state) == own + list(ATTACHED)
    assert set(own) == set(State.__struct_fields__) - {"active_tasks"}
    task = render_task("12-abc", 4, tasks[4], None)
    own = _expected_order(Task, set(json.loads(bytes(task))))
    assert _keys(task) == own + list(ATTACHED) and set(own) == set(Task.__struct_fields__)
    assert json.loads(bytes(task))["state_id"] == 1


@pytest.mark.parametrize(("extensions", "kept"), [
    ("plain", ["plain"]), ("State.plain", []), ("*", list(ATTACHED)), ("nothing", []),
])
def test_extensions_select_the_attached_data(extensions: str, kept: list[str]) -> None:
    active = {k: v for k, v in ENDED.items() if not k.startswith((b"t1", b"e:"))}
    raw = render_service("12-abc", active, {}, {}, View(extensions=Extensions.parse(extensions)))
    doc = json.loads(bytes(raw))
    assert [k for k in doc if k in ATTACHED] == kept
    assert "completed" not in doc and "duration" not in doc and "disposition" not in doc


def test_a_conversation_read_from_its_answers_has_each_hash_as_read() -> None:
    svc = [b"t0", b"1", b"type", b'"billing"']
    states = [b"1:t0", b"2", b"active", b" 1 "]
    read = Conversation.read((svc, states, []))
    assert read.service == {b"t0": b"1", b"type": b'"billing"'}
    assert read.states == {b"1:t0": b"2", b"active": b" 1 "}
    assert read.states is read.states  # made once, when first used
    assert read.tasks == {}  # not asked for (an empty answer)
    assert read.source == (svc, states, [])
    given = Conversation({b"t0": b"1"}, {b"x": b"y"}, {})  # hashes given, no source
    assert (given.states, given.tasks, given.source) == ({b"x": b"y"}, {}, None)
