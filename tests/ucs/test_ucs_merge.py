"""Merge (PROFILES.md §3.5), rule by rule: core attributes, single-valued extensions, unique records
(kept or taken from the source), plain multi-valued records, interactions, the index rebuilt, the
source gone; all or nothing."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import Backend
from tests.support.ucs_support import (
    ADDRESS,
    CS,
    PHONE,
    assert_error,
    create,
    extension,
    identify,
    ids,
    key,
    profile,
)

NOTES = {"name": "Notes", "type": "multi-valued", "attributes": [{"name": "text", "type": "string"}]}


@pytest.fixture
def merging(client: TestClient) -> TestClient:
    for schema in (PHONE, ADDRESS, NOTES):
        extension(client, schema)
    key(client, name="idMail", attributes=["EmailAddress"])
    key(client, name="idPhone", source="Phone", attributes=["PhoneNumber"])
    return client


def merge(client: TestClient, destination: str, source: str, body: object = None) -> int:
    response = client.put(f"{CS}/profiles/{destination}/merge/{source}", json=body)
    return response.status_code


def test_core_attributes_keep_the_destination_s_values_then_the_source_s_new_ones(merging: TestClient) -> None:
    client = merging
    dest = create(client, {"FirstName": "Bruce", "EmailAddress": ["a@x", "b@x"], "Title": "Dr"})
    src = create(client, {"FirstName": "bruce", "EmailAddress": ["b@x", "c@x"], "LastName": "Banner"})
    assert merge(client, dest, src) == 204
    assert profile(client, dest) == {"customer_id": dest, "FirstName": ["Bruce", "bruce"],
                                     "EmailAddress": ["a@x", "b@x", "c@x"], "Title": "Dr", "LastName": "Banner"}
    assert_error(client.get(f"{CS}/profiles/{src}"), 404, "NotFoundException")
    # The index is rebuilt: the source's values now identify the destination only.
    assert ids(identify(client, EmailAddress="c@x")) == [dest]
    assert ids(identify(client, EmailAddress="b@x")) == [dest]


def test_single_valued_extensions_and_unique_records(merging: TestClient) -> None:
    client = merging
    for keep, expected_city, expected_description in ((False, "Dest", "dest"), (True, "Src", "src")):
        dest = create(client, {"Address": {"city": "Dest"}, "Phone": [{"PhoneNumber": 1, "description": "dest"}]})
        src = create(client, {"Address": {"city": "Src"},
                              "Phone": [{"PhoneNumber": 1, "description": "src"}, {"PhoneNumber": 2}]})
        assert merge(client, dest, src, {"keep_uniq_from_src": "true" if keep else False,
                                         "keep_active_service_only": False}) == 204
        found = profile(client, dest, "Address,Phone")
        assert found["Address"] == {"city": expected_city}
        assert [(p["PhoneNumber"], p.get("description")) for p in found["Phone"]] == [
            (1, expected_description), (2, None)]
        assert ids(identify(client, **{"Phone.PhoneNumber": "2"})) == [dest]
        client.delete(f"{CS}/profiles/{dest}")
    # A destination without the extension takes the source's record.
    dest = create(client, {"FirstName": "A"})
    src = create(client, {"Address": {"city": "Src"}})
    assert merge(client, dest, src, {"agent_id": "x", "force_merge": True}) == 204
    assert profile(client, dest, "Address")["Address"] == {"city": "Src"}


def test_records_without_unique_attributes_are_copied(merging: TestClient) -> None:
    client = merging
    dest = create(client, {"Notes": [{"text": "one"}]})
    src = create(client, {"Notes": [{"text": "one"}, {"text": "two"}]})
    assert merge(client, dest, src) == 204
    assert profile(client, dest, "Notes")["Notes"] == [{"text": "one"}, {"text": "one"}, {"text": "two"}]


def test_interactions_move_to_the_destination(merging: TestClient) -> None:
    client = merging
    dest, src = create(client, {"FirstName": "D"}), create(client, {"FirstName": "S"})
    for cid, when in ((dest, "2020-01-01T00:00:00.000Z"), (src, "2021-01-01T00:00:00.000Z")):
        response = client.post(f"{CS}/interactions", json={"customer_id": cid, "media_type": "chat",
                                                          "established_date": when})
        assert response.status_code == 201
    assert merge(client, dest, src) == 204
    moved = client.get(f"{CS}/customers/{dest}/interactions").json()
    assert [i["customer_id"] for i in moved] == [dest, dest]
    assert [i["established_date"] for i in moved] == ["2021-01-01T00:00:00.000Z", "2020-01-01T00:00:00.000Z"]
    assert client.get(f"{CS}/customers/{src}/interactions").json() == []


def test_errors_and_all_or_nothing(merging: TestClient, backend: Backend) -> None:
    client = merging
    dest = create(client, {"FirstName": "D", "Phone": {"PhoneNumber": 7}})
    src = create(client, {"FirstName": "S"})
    assert_error(client.put(f"{CS}/profiles/{dest}/merge/{dest}"), 400, "BadRequestException")
    assert_error(client.put(f"{CS}/profiles/{dest}/merge/0004Va58A92T0017"), 404, "NotFoundException")
    assert_error(client.put(f"{CS}/profiles/0004Va58A92T0017/merge/{src}"), 404, "NotFoundException")
    assert_error(client.put(f"{CS}/profiles/{dest}/merge/{src}", json={"keep_uniq_from_src": "perhaps"}),
                 400, "BadRequestException")
    assert_error(client.put(f"{CS}/profiles/{dest}/merge/{src}", json=[]), 400, "BadRequestException")
    # More than 64 values of one attribute after the merge: refused, both profiles intact.
    many_dest = create(client, {"EmailAddress": [f"d{i}@x" for i in range(40)]})
    many_src = create(client, {"EmailAddress": [f"s{i}@x" for i in range(40)]})
    before = {k: backend.sync.dump(k) for k in backend.sync.keys("ucs:*")}
    assert_error(client.put(f"{CS}/profiles/{many_dest}/merge/{many_src}"), 400, "BadRequestException")
    assert {k: backend.sync.dump(k) for k in backend.sync.keys("ucs:*")} == before
    assert profile(client, many_src)["EmailAddress"][0] == "s0@x"
    assert merge(client, dest, src) == 204
    assert_error(client.put(f"{CS}/profiles/{dest}/merge/{src}"), 404, "NotFoundException")


def test_a_unique_key_clash_with_a_third_customer_is_409_and_changes_nothing(merging: TestClient,
                                                                             backend: Backend) -> None:
    client = merging
    key(client, name="idName", attributes=["LastName", "FirstName"], unique=True)
    dest = create(client, {"LastName": "Doe", "FirstName": "John"})
    src = create(client, {"FirstName": "Jane", "Title": "Dr"})
    third = create(client, {"LastName": "Doe", "FirstName": "Jane"})
    before = {k: backend.sync.dump(k) for k in backend.sync.keys("ucs:*")}
    assert_error(client.put(f"{CS}/profiles/{dest}/merge/{src}"), 409, "ConflictException")
    assert {k: backend.sync.dump(k) for k in backend.sync.keys("ucs:*")} == before
    # Genesys' advice: update the destination first, then merge.
    client.delete(f"{CS}/profiles/{third}")
    assert merge(client, dest, src) == 204
    assert ids(identify(client, LastName="Doe", FirstName="Jane")) == [dest]
