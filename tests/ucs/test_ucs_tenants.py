"""Tenants: `ContactCenterId` selects a keyspace for profiles as it does for services. Knowing
another tenant's customer id, a client can neither read, identify, change, merge nor delete it;
schemas and interactions are per tenant too."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.support.ucs_support import BRUCE, CS, PHONE, assert_error, create, extension, identify, ids, key

A = {"ContactCenterId": "tenant-A"}
B = {"ContactCenterId": "tenant-B"}
DEFAULT: dict[str, str] = {}


def test_another_tenant_sees_nothing(client: TestClient) -> None:
    for tenant in (A, B, DEFAULT):
        extension(client, PHONE, tenant)
        key(client, tenant, name="idPhone", source="Phone", attributes=["PhoneNumber"], unique=True)
    mine = create(client, BRUCE, A)
    theirs = create(client, BRUCE, B)  # the same unique phone: another tenant, no conflict
    search = {"Phone.PhoneNumber": "3145926535"}
    assert ids(identify(client, A, **search)) == [mine]
    assert ids(identify(client, B, **search)) == [theirs]
    assert identify(client, DEFAULT, **search) == []
    for other in (B, DEFAULT):
        assert_error(client.get(f"{CS}/profiles/{mine}", headers=other), 404, "NotFoundException")
        assert_error(client.put(f"{CS}/profiles/{mine}", json={"FirstName": "x"}, headers=other),
                     404, "NotFoundException")
        assert_error(client.post(f"{CS}/profiles/{mine}/extensions", json={"Phone": []}, headers=other),
                     404, "NotFoundException")
        assert_error(client.delete(f"{CS}/profiles/{mine}", headers=other), 404, "NotFoundException")
    local = create(client, {"FirstName": "B-local"}, B)
    assert_error(client.put(f"{CS}/profiles/{local}/merge/{mine}", headers=B), 404, "NotFoundException")
    assert_error(client.put(f"{CS}/profiles/{mine}/merge/{local}", headers=B), 404, "NotFoundException")
    assert client.get(f"{CS}/profiles/{mine}", headers=A).json()["FirstName"] == "Bruce"
    # Schemas are per tenant: deleting B's key and extension leaves A's.
    assert client.delete(f"{CS}/metadata/identification-keys/idPhone", headers=B).status_code == 204
    assert client.delete(f"{CS}/metadata/profiles/extensions/Phone", headers=B).status_code == 204
    assert client.get(f"{CS}/metadata/profiles/extensions/Phone", headers=A).status_code == 200
    assert ids(identify(client, A, **search)) == [mine]
    # Interactions too.
    response = client.post(f"{CS}/interactions", json={"customer_id": mine, "media_type": "chat"}, headers=A)
    interaction = response.json()["interaction_id"]
    assert_error(client.get(f"{CS}/interactions/{interaction}", headers=B), 404, "NotFoundException")
    assert client.get(f"{CS}/customers/{mine}/interactions", headers=B).json() == []
    assert len(client.get(f"{CS}/customers/{mine}/interactions", headers=A).json()) == 1
    assert_error(client.get(f"{CS}/profiles/{mine}", headers={"ContactCenterId": "a{b}"}), 400,
                 "InvalidParameterException")
