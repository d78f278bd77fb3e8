"""Tenant isolation: the `ContactCenterId` header selects a keyspace of its own. Knowing another
tenant's ids, a client can neither read, query, end, associate, transition, change nor delete
its services; the default tenant (no header) is one tenant like the others."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import Backend
from tests.support.cs_support import CS, assert_error

A = {"ContactCenterId": "tenant-A"}
B = {"ContactCenterId": "tenant-B"}
DEFAULT: dict[str, str] = {}
CUSTOMER, CONTACT = "C-shared", "contact-shared"


def start(client: TestClient, tenant: dict[str, str], **body: Any) -> str:
    response = client.post(f"{CS}/services/start", json=body, headers=tenant)
    assert response.status_code == 201, response.text
    return str(response.json()["service_id"])


def conversation(client: TestClient, tenant: dict[str, str]) -> tuple[str, int, int]:
    """A service of CUSTOMER with an active state and a task attached to it, in `tenant`."""
    sid = start(client, tenant, customer_id=CUSTOMER, contact_key=CONTACT, service_type="care", level=1)
    state = client.post(f"{CS}/services/{sid}/states/start", json={"state_type": "s"}, headers=tenant)
    task = client.post(f"{CS}/services/{sid}/tasks/start", json={"task_type": "t", "state_id": 1}, headers=tenant)
    return sid, int(state.json()["state_id"]), int(task.json()["task_id"])


def snapshot(client: TestClient, tenant: dict[str, str], sid: str) -> Any:
    response = client.get(f"{CS}/services/{sid}", headers=tenant,
                          params={"active_states": "true", "completed_states": "true",
                                  "active_tasks": "true", "completed_tasks": "true"})
    assert response.status_code == 200, response.text
    return response.json()


def not_found(response: Any) -> None:
    assert_error(response, 400, "NotFoundException")


@pytest.mark.parametrize("owner, intruder", [(A, B), (A, DEFAULT), (DEFAULT, A)])
def test_a_tenant_cannot_touch_another_tenant_s_service_even_knowing_its_ids(
        client: TestClient, owner: dict[str, str], intruder: dict[str, str]) -> None:
    sid, state, task = conversation(client, owner)
    before = snapshot(client, owner, sid)
    s = f"{CS}/services/{sid}"
    # read
    not_found(client.get(s, headers=intruder))
    for path in ("/states", "/states/active", f"/states/{state}", "/tasks", "/tasks/completed", f"/tasks/{task}"):
        not_found(client.get(s + path, headers=intruder))
    # query: the customer and the contact key are the intruder's own (empty) ones
    for path in (f"/customers/{CUSTOMER}/services", f"/customers/{CUSTOMER}/services/active",
                 f"/services/anonymous/{CONTACT}"):
        response = client.get(CS + path, headers=intruder)
        assert response.status_code == 200 and sid not in response.text, path
    # end, transition, start and end states and tasks
    not_found(client.post(s + "/end", json={}, headers=intruder))
    not_found(client.post(s + "/states/transition", json={"from": {"state_id": state}, "to": {}}, headers=intruder))
    not_found(client.post(s + f"/states/{state}/end", json={}, headers=intruder))
    not_found(client.post(s + f"/tasks/{task}/end", json={}, headers=intruder))
    not_found(client.post(s + "/states/start", json={}, headers=intruder))
    not_found(client.post(s + "/tasks/start", json={}, headers=intruder))
    # associate, new expiry (PUT), attached data (PUT), delete
    not_found(client.post(f"{CS}/customers/thief/services/{sid}", json={}, headers=intruder))
    not_found(client.put(s, json={"ttl": 5}, headers=intruder))
    not_found(client.put(s + "/extensions/x", json=1, headers=intruder))
    not_found(client.put(s + f"/states/{state}/extensions/x", json=1, headers=intruder))
    not_found(client.put(s + f"/tasks/{task}/extensions/x", json=1, headers=intruder))
    not_found(client.delete(s, headers=intruder))
    # composite start finds nothing of the owner's: it creates in the intruder's keyspace
    element = {"service": {"customer_id": CUSTOMER, "contact_key": CONTACT, "service_type": "care"},
               "state": {"state_type": "s"}, "task": {"task_type": "t"}}
    found = client.post(f"{CS}/services_composite/start", json={"services": [element]}, headers=intruder)
    assert found.status_code == 200
    assert found.json()["services"][0]["service"]["created"] == "true"
    assert found.json()["services"][0]["service"]["service_id"] != sid
    # the owner's service is exactly as it was, and still the only one its customer has there
    assert snapshot(client, owner, sid) == before
    listed = client.get(f"{CS}/customers/{CUSTOMER}/services", headers=owner).json()
    assert [service["service_id"] for service in listed] == [sid]


def test_the_same_customer_in_two_tenants_has_two_separate_histories(client: TestClient) -> None:
    in_a = start(client, A, customer_id=CUSTOMER)
    in_b = start(client, B, customer_id=CUSTOMER)
    in_default = start(client, DEFAULT, customer_id=CUSTOMER)
    for tenant, sid in ((A, in_a), (B, in_b), (DEFAULT, in_default)):
        listed = client.get(f"{CS}/customers/{CUSTOMER}/services", headers=tenant).json()
        assert [service["service_id"] for service in listed] == [sid]
    assert client.delete(f"{CS}/services/{in_a}", headers=A).status_code == 200
    assert client.get(f"{CS}/services/{in_b}", headers=B).status_code == 200
    assert client.get(f"{CS}/services/{in_default}").status_code == 200


def test_keys_of_a_tenant_carry_its_prefix_and_their_partition_s_slot(client: TestClient, backend: Backend) -> None:
    conversation(client, A)
    conversation(client, DEFAULT)
    keys = sorted(backend.sync.scan_iter(match="cs:*", count=1000))
    mine = [k for k in keys if k.startswith(b"cs:t:tenant-A:{cs:")]
    default = [k for k in keys if k.startswith(b"cs:{cs:")]
    assert mine and default and len(mine) + len(default) == len(keys)


@pytest.mark.parametrize("tenant", ["", "{evil}", "a}b", "a:b", "x" * 65, "tenant A", "caf\u00e9"])
def test_a_tenant_id_outside_the_alphabet_is_refused_and_nothing_is_stored(
        client: TestClient, backend: Backend, tenant: str) -> None:
    headers = [(b"ContactCenterId", tenant.encode())]  # raw bytes: UTF-8 on the wire
    response = client.post(f"{CS}/services/start", json={"customer_id": "c"}, headers=headers)
    assert_error(response, 400, "InvalidParameterException")
    assert "ContactCenterId" in response.json()["message"]
    assert_error(client.get(f"{CS}/customers/c/services", headers=headers), 400, "InvalidParameterException")
    assert list(backend.sync.scan_iter(match="cs:*")) == []


def test_the_gms_service_api_ignores_the_header(client: TestClient) -> None:
    created = client.post("/genesys/1/service/storage", data={"a": "1"}, headers=A)
    assert created.status_code == 200
    assert client.get(f"/genesys/1/service/{created.json()['id']}/storage").json() == {"a": "1"}
