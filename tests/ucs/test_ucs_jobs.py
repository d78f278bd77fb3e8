"""Multi-step schema jobs (docs/keys.md "Multi-step jobs publish only when complete"): a crash
between two steps leaves a key or an extension in its transitional state, which no reader takes
for true, and repeating the DELETE finishes the job."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import Backend
from tests.support.ucs_support import BRUCE, CS, PHONE, assert_error, create, extension, identify, ids, key

SCHEMA = "ucs:{ucs}:schema"


def _set_state(backend: Backend, field: str, state: str) -> None:
    stored = json.loads(backend.sync.hget(SCHEMA, field))
    stored["state"] = state
    backend.sync.hset(SCHEMA, field, json.dumps(stored))


def test_a_key_left_building_is_invisible_and_can_be_deleted(client: TestClient, backend: Backend) -> None:
    extension(client, PHONE)
    key(client, name="idPhone", source="Phone", attributes=["PhoneNumber"])
    cid = create(client, BRUCE)
    _set_state(backend, "k:idphone", "building")  # as if gmsd died during the back-fill
    assert_error(client.get(f"{CS}/metadata/identification-keys/idPhone"), 404, "NotFoundException")
    assert client.get(f"{CS}/metadata/identification-keys").json() == []
    assert_error(client.get(f"{CS}/profiles", params={"Phone.PhoneNumber": "3145926535"}), 400,
                 "BadRequestException")
    # Its name stays taken until the job is finished by a DELETE.
    assert_error(client.post(f"{CS}/metadata/identification-keys",
                             json={"name": "idphone", "attributes": ["Title"]}), 409, "ConflictException")
    assert client.delete(f"{CS}/metadata/identification-keys/idPhone").status_code == 204
    assert backend.sync.zcard("ucs:{ucs}:ix") == 0
    key(client, name="idPhone", source="Phone", attributes=["PhoneNumber"])
    assert ids(identify(client, **{"Phone.PhoneNumber": "3145926535"})) == [cid]


def test_an_extension_left_dropping_is_invisible_and_its_delete_resumes(client: TestClient,
                                                                        backend: Backend) -> None:
    extension(client, PHONE)
    cid = create(client, BRUCE)
    _set_state(backend, "x:phone", "dropping")  # as if gmsd died while removing the records
    assert_error(client.get(f"{CS}/metadata/profiles/extensions/Phone"), 404, "NotFoundException")
    assert client.get(f"{CS}/metadata/profiles/extensions").json() == []
    assert_error(client.get(f"{CS}/profiles/{cid}", params={"extensions": "Phone"}), 400, "BadRequestException")
    assert_error(client.post(f"{CS}/profiles", json=BRUCE), 400, "BadRequestException")
    assert_error(client.post(f"{CS}/metadata/profiles/extensions", json=PHONE), 409, "ConflictException")
    assert client.delete(f"{CS}/metadata/profiles/extensions/Phone").status_code == 204
    assert not backend.sync.hexists(f"ucs:{{ucs}}:p:{cid}", "x:phone")
    extension(client, PHONE)
    assert client.get(f"{CS}/profiles/{cid}", params={"extensions": "Phone"}).json()["Phone"] == []


def test_a_write_computed_with_an_old_schema_is_recomputed(client: TestClient, backend: Backend,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Another worker creates a key between this write's read and its script: the script refuses
    # ('retry'), the domain reads the schema again, and the new key's entries are written too.
    extension(client, PHONE)
    store = client.app.state.ucs.store  # type: ignore[attr-defined]
    original = store.write_profiles
    calls: list[str] = []

    async def racing(generation: str, *args: Any, **kwargs: Any) -> Any:
        if not calls:
            other = json.dumps({"name": "idPhone", "number": 1, "source": "Phone", "attributes": ["PhoneNumber"],
                                "unique": False, "state": "ready"})
            backend.sync.hset(SCHEMA, mapping={"k:idphone": other, "kseq": "1"})
            backend.sync.hincrby(SCHEMA, "gen", 1)
        calls.append(generation)
        return await original(generation, *args, **kwargs)

    monkeypatch.setattr(store, "write_profiles", racing)
    cid = create(client, BRUCE)
    assert len(calls) == 2 and calls[0] != calls[1]
    assert ids(identify(client, **{"Phone.PhoneNumber": "3145926535"})) == [cid]
