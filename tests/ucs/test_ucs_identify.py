"""Identification keys and identify (PROFILES.md §3.1, §3.4): the index's left prefixes, each
key-choice rule, `include_profile`/`extensions`/`include_extensions`, unique keys as constraints,
back-fill at key creation, and what a key's existence forbids."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import Backend
from tests.support.ucs_support import (
    ADDRESS,
    BRUCE,
    CS,
    PHONE,
    assert_error,
    create,
    extension,
    identify,
    ids,
    key,
)

KEYS = f"{CS}/metadata/identification-keys"


@pytest.fixture
def phones(client: TestClient) -> TestClient:
    extension(client, PHONE)
    extension(client, ADDRESS)
    return client


def test_keys_are_listed_and_read_any_case(phones: TestClient) -> None:
    client = phones
    response = client.post(KEYS, json={"name": "idPhone", "source": "Phone", "attributes": ["PhoneNumber"]})
    assert response.status_code == 201 and response.content == b""
    assert response.headers["location"] == f"{KEYS}/idPhone"
    key(client, name="idName", attributes=["lastname", "FirstName"], unique="false")
    assert client.get(f"{KEYS}/IDPHONE").json() == {"name": "idPhone", "source": "Phone",
                                                   "attributes": ["Phone.PhoneNumber"], "unique": False}
    assert client.get(KEYS).json() == [
        {"name": "idPhone", "source": "Phone", "attributes": ["Phone.PhoneNumber"], "unique": False},
        {"name": "idName", "source": "profile", "attributes": ["LastName", "FirstName"], "unique": False}]
    assert_error(client.get(f"{KEYS}/nope"), 404, "NotFoundException")
    assert_error(client.delete(f"{KEYS}/nope"), 404, "NotFoundException")
    for taken in ({"name": "IDPHONE", "attributes": ["Title"]},):
        assert_error(client.post(KEYS, json=taken), 409, "ConflictException")
    for bad in ({"name": "k", "attributes": ["Nope"]}, {"name": "k", "source": "Nope", "attributes": ["a"]},
                {"name": "k", "source": "none", "attributes": ["a"]}, {"name": "k", "attributes": []},
                {"name": "k", "source": "Phone", "attributes": ["FirstName"]},
                {"name": "k", "attributes": ["FirstName", "Phone.PhoneNumber"]},
                {"name": "k_", "attributes": ["FirstName", "firstname"]}, {"name": "_k", "attributes": ["Title"]},
                {"name": "k", "attributes": ["Title"], "unique": "maybe"}, {"attributes": ["Title"]}):
        assert_error(client.post(KEYS, json=bad), 400, "BadRequestException")
    # A key naming an extension attribute with its prefix is the same key.
    key(client, name="idExt", source="phone", attributes=["Phone.prefix"])
    assert client.get(f"{KEYS}/idExt").json()["attributes"] == ["Phone.prefix"]


def test_identify_with_include_profile_extensions_and_include_extensions(phones: TestClient) -> None:
    client = phones
    key(client, name="idPhone", source="Phone", attributes=["PhoneNumber"])
    bruce = create(client, BRUCE)
    assert identify(client, **{"Phone.PhoneNumber": "3145926535"}) == [{"customer_id": bruce}]
    # Numbers compare as numbers: 3145926535 (JSON number or text) is the same value.
    assert ids(identify(client, **{"phone.phonenumber": "03145926535"})) == [bruce]
    full = identify(client, **{"Phone.PhoneNumber": "3145926535", "include_profile": "yes", "extensions": "Phone"})
    assert full == [{"customer_id": bruce, "FirstName": "Bruce", "LastName": "Banner",
                     "EmailAddress": BRUCE["EmailAddress"],
                     "Phone": [{"PhoneType": 0, "prefix": "+33", "PhoneNumber": "3145926535",
                                "description": "family phone"}]}]
    assert identify(client, **{"Phone.PhoneNumber": "0000"}) == []
    assert identify(client, **{"Phone.PhoneNumber": "not a number"}) == []
    other = create(client, {"FirstName": "Betty", "Phone": [{"PhoneNumber": 3145926535}]})
    both = identify(client, **{"Phone.PhoneNumber": "3145926535", "extensions": "Phone",
                               "include_extensions": "unique"})
    assert both == sorted([{"customer_id": bruce}, {"customer_id": other}], key=lambda c: c["customer_id"])
    always = identify(client, **{"Phone.PhoneNumber": "3145926535", "extensions": "Phone"})
    assert all("Phone" in item and "FirstName" not in item for item in always)
    for bad in ({}, {"include_profile": "yes"}, {"Phone.PhoneNumber": "1", "include_profile": "maybe"},
                {"Phone.PhoneNumber": "1", "include_extensions": "never"},
                {"Phone.PhoneNumber": "1", "extensions": "Nope"}, {"Phone.PhoneNumber": "1", "id_key": "nope"},
                {"Title": "x"}):
        assert_error(client.get(f"{CS}/profiles", params=bad), 400, "BadRequestException")
    assert_error(client.get(f"{CS}/profiles?Phone.PhoneNumber=1&phone.phonenumber=2"), 400, "BadRequestException")


def test_the_key_choice_rules(phones: TestClient) -> None:
    client = phones
    key(client, name="k1", attributes=["LastName", "FirstName", "Title"])  # number 1
    key(client, name="k2", attributes=["EmailAddress"])  # number 2
    key(client, name="k3", attributes=["LastName", "Title"])  # number 3
    key(client, name="k4", source="Address", attributes=["city", "zip"])  # number 4
    a = create(client, {"LastName": "Doe", "FirstName": "John", "Title": "Dr", "EmailAddress": "j@d.o",
                        "Address": {"city": "Paris", "zip": "75001"}})
    b = create(client, {"LastName": "Doe", "FirstName": "Jane", "Title": "Dr", "EmailAddress": "jane@d.o"})
    c = create(client, {"LastName": "Doe", "Title": "Mr", "Address": {"city": "Paris"}})
    # A key covered entirely is used at once, lowest number first.
    assert ids(identify(client, LastName="Doe", FirstName="John", Title="Dr")) == [a]
    assert ids(identify(client, EmailAddress="jane@d.o", LastName="Doe", FirstName="John", Title="Dr")) == [a]
    assert ids(identify(client, EmailAddress="jane@d.o")) == [b]
    # Otherwise the longest left prefix wins: k3 (LastName, Title) covers 2, k1 only 1.
    assert ids(identify(client, LastName="Doe", Title="Mr")) == [c]
    # Ties go to the lowest number: LastName alone scores 1 in k1 and k3 → k1 (every Doe).
    assert ids(identify(client, LastName="Doe")) == sorted([a, b, c])
    # (LastName, Title=Dr) — k3 is complete, so it is used though k1 comes first.
    assert ids(identify(client, LastName="Doe", Title="Dr")) == sorted([a, b])
    # A key whose first attribute is missing scores 0: FirstName alone matches no key → 400.
    assert_error(client.get(f"{CS}/profiles", params={"FirstName": "John"}), 400, "BadRequestException")
    # Extension keys: `ext.attr` names, a partial search by the left prefix.
    assert ids(identify(client, **{"Address.city": "Paris"})) == sorted([a, c])
    assert ids(identify(client, **{"address.CITY": "Paris", "Address.zip": "75001"})) == [a]
    # id_key: that key, with its left prefix present in the search; other parameters are ignored.
    assert ids(identify(client, LastName="Doe", Title="Dr", FirstName="Jane", id_key="K3")) == sorted([a, b])
    assert ids(identify(client, LastName="Doe", EmailAddress="x", id_key="k1")) == sorted([a, b, c])
    assert_error(client.get(f"{CS}/profiles", params={"Title": "Dr", "id_key": "k1"}), 400, "BadRequestException")


def test_multi_valued_core_attributes_index_every_value(phones: TestClient) -> None:
    client = phones
    key(client, name="idMail", attributes=["EmailAddress"])
    cid = create(client, BRUCE)
    assert ids(identify(client, EmailAddress="b.banner@hulk.dom")) == [cid]
    assert ids(identify(client, EmailAddress="bruce.banner@marvelous.com")) == [cid]
    assert identify(client, EmailAddress="B.BANNER@hulk.dom") == []  # case-sensitive strings
    client.put(f"{CS}/profiles/{cid}", json={"EmailAddress": "new@hulk.dom"})
    assert identify(client, EmailAddress="b.banner@hulk.dom") == []
    assert ids(identify(client, EmailAddress="new@hulk.dom")) == [cid]
    client.delete(f"{CS}/profiles/{cid}")
    assert identify(client, EmailAddress="new@hulk.dom") == []
    key(client, name="idPair", attributes=["FirstName", "EmailAddress"])
    too_many = {"FirstName": [f"f{i}" for i in range(9)], "EmailAddress": [f"e{i}" for i in range(8)]}
    assert_error(client.post(f"{CS}/profiles", json=too_many), 400, "BadRequestException")


def test_a_unique_key_is_a_constraint_across_customers(phones: TestClient, backend: Backend) -> None:
    client = phones
    key(client, name="idPhone", source="Phone", attributes=["PhoneNumber"], unique=True)
    first = create(client, BRUCE)
    before = backend.sync.dbsize()
    assert_error(client.post(f"{CS}/profiles", json={"Phone": {"PhoneNumber": 3145926535}}), 409, "ConflictException")
    assert backend.sync.dbsize() == before
    second = create(client, {"Phone": {"PhoneNumber": 1}})
    assert_error(client.post(f"{CS}/profiles/{second}/extensions", json={"Phone": {"PhoneNumber": "3145926535"}}),
                 409, "ConflictException")
    assert_error(client.put(f"{CS}/profiles/{second}", json={"Phone": [{"PhoneNumber": 3145926535}]}),
                 409, "ConflictException")
    assert client.put(f"{CS}/profiles/{second}/extensions/Phone/by/unique",
                      json={"PhoneNumber": 1, "PhoneType": 2}).status_code == 204
    assert ids(identify(client, **{"Phone.PhoneNumber": "3145926535"})) == [first]
    # The same customer may repeat its own values (a rewrite keeps them).
    assert client.put(f"{CS}/profiles/{first}", json={"Phone": BRUCE["Phone"]}).status_code == 200
    # Once the first customer lets the number go, another may take it.
    client.put(f"{CS}/profiles/{first}/extensions/Phone/delete/by/unique", json={"PhoneNumber": "3145926535"})
    assert client.post(f"{CS}/profiles/{second}/extensions",
                       json={"Phone": {"PhoneNumber": "3145926535"}}).status_code == 200
    assert ids(identify(client, **{"Phone.PhoneNumber": "3145926535"})) == [second]


def test_a_new_key_indexes_existing_profiles_and_a_unique_one_refuses_repeated_data(
        phones: TestClient, backend: Backend) -> None:
    client = phones
    made = sorted(create(client, {"LastName": "Doe", "Title": str(i % 3)}) for i in range(450))
    key(client, name="idTitle", attributes=["Title"])
    found = [ids(identify(client, Title=str(t))) for t in range(3)]
    assert [len(f) for f in found] == [150, 150, 150] and sorted(c for f in found for c in f) == made
    assert all(f == sorted(f) for f in found)  # ordered by customer_id
    assert_error(client.post(KEYS, json={"name": "idLast", "attributes": ["LastName"], "unique": True}),
                 409, "ConflictException")
    assert_error(client.get(f"{KEYS}/idLast"), 404, "NotFoundException")
    assert not [m for m in backend.sync.zrange("ucs:{ucs}:ix", 0, -1) if m.startswith(b"2.")]
    # The name is free again; a key that fits the data is created.
    key(client, name="idLast", attributes=["LastName"])
    assert len(identify(client, LastName="Doe")) == 450


def test_a_key_deletion_removes_its_index_and_frees_the_extension(phones: TestClient, backend: Backend) -> None:
    client = phones
    key(client, name="idPhone", source="Phone", attributes=["PhoneNumber"])
    cid = create(client, BRUCE)
    assert_error(client.delete(f"{CS}/metadata/profiles/extensions/Phone"), 409, "ConflictException")
    assert client.get(f"{CS}/metadata/profiles/extensions/Phone").status_code == 200
    assert client.delete(f"{KEYS}/idPhone").status_code == 204
    assert backend.sync.zcard("ucs:{ucs}:ix") == 0
    assert_error(client.get(f"{CS}/profiles", params={"Phone.PhoneNumber": "3145926535"}), 400,
                 "BadRequestException")
    assert client.delete(f"{CS}/metadata/profiles/extensions/Phone").status_code == 204
    assert_error(client.delete(f"{CS}/metadata/profiles/extensions/Phone"), 404, "NotFoundException")
    assert cid
