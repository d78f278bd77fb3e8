"""Lua scripts stay in one Redis Cluster slot: the key layout, the script inventory, the checker.

Every script call made by any test is checked as it happens (`tests/support/script_slots.py`, installed
by conftest for the whole session); a complete run also fails if a script was never called.
These tests cover what that check relies on.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid

import fakeredis
import pytest
from redis.crc import key_slot

import gmsd
from gmsd.backend.scripts import PRELUDE, ScriptSet, lua_directory, script_names, script_text
from gmsd.keys import access_pool, gms_service, is_service_id, storage_custom_area
from tests.support.script_slots import SlotRecorder

ODD_IDS = ["", "{", "}", "{}", "}{", "{x}", "a}b{c", "gms:{1}", "6f1c2a57-0a53-4c55-a0a3-5d8b5d3f3d3e}",
           "{6f1c2a57-0a53-4c55-a0a3-5d8b5d3f3d3e", "6F1C2A57-0A53-4C55-A0A3-5D8B5D3F3D3E", "é", "\x00"]


def _script_sets() -> list[type[ScriptSet]]:
    for module in pkgutil.walk_packages(gmsd.__path__, "gmsd."):
        if not module.name.endswith("__main__"):  # that one runs the command
            importlib.import_module(module.name)  # every store's ScriptSet gets defined
    found: list[type[ScriptSet]] = []
    pending = list(ScriptSet.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_lua_file_is_registered_by_a_script_set() -> None:
    registered = {name for cls in _script_sets() for name in script_names(cls)}
    on_disk = {f"{path.parent.name}/{path.stem}" for path in lua_directory().glob("*/*.lua") if path.stem != PRELUDE}
    assert registered == on_disk  # so every script runs through register_script, and is checked


@pytest.mark.parametrize("seed", range(4))
def test_the_keys_of_a_gms_service_share_one_slot(seed: int) -> None:
    for _ in range(500):
        service_id = str(uuid.UUID(int=uuid.uuid4().int ^ seed))
        assert is_service_id(service_id)
        assert len({key_slot(key.encode()) for key in gms_service(service_id)}) == 1


@pytest.mark.parametrize("odd", ODD_IDS)
def test_a_custom_storage_area_keeps_one_slot_whatever_the_client_sends(odd: str) -> None:
    # The user and custom id are hashed into the area id: `{` and `}` in them cannot pick a slot,
    # and the area is never one `/storage/{id}` can name.
    area = storage_custom_area(odd, odd + "}{")
    assert not is_service_id(area)
    assert len({key_slot(key.encode()) for key in gms_service(area)}) == 1
    assert area != storage_custom_area(odd + "x", "}{")  # (user, id) pairs never run together


@pytest.mark.parametrize("group", ["DNIS", "a.b-c_d", "x" * 64])
def test_the_keys_of_an_access_pool_share_one_slot(group: str) -> None:
    assert len({key_slot(key.encode()) for key in access_pool(group)}) == 1


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_ids_never_name_a_service(odd: str) -> None:
    # Only ids gmsd generated reach the key functions: a client cannot pick or split a slot
    # (an empty tag `gms:{}:…` would hash each whole key to a different slot).
    assert not is_service_id(odd)


def test_the_checker_flags_keys_in_several_slots_and_calls_without_keys() -> None:
    client = fakeredis.FakeAsyncRedis()
    name = "gms/storage_write"  # registered as the file text alone (no prelude)
    text = script_text("gms", "storage_write")
    script = client.register_script(text)
    recorder = SlotRecorder()
    recorder.record(script, ["gms:{a}:data", b"gms:{a}:bin"])
    assert recorder.take_violations() == []
    recorder.record(script, ["gms:{a}:data", "gms:{b}:data"])
    recorder.record(script, [])
    found = recorder.take_violations()
    assert len(found) == 2
    assert found[0].startswith(f"{name}: keys in 2 slots")
    assert "without keys" in found[1]
    assert recorder.calls[name] == 3
    assert name not in recorder.never_called()
    unknown = client.register_script("return 1")
    recorder.record(unknown, ["k"])
    assert any(key.startswith("<unregistered script") for key in recorder.calls)
