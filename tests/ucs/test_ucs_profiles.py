"""Customer profiles (PROFILES.md §3.2, §3.3): every profile route and its error codes, on
fakeredis, Redis and the cluster; the schema's types and naming rules; nothing written on a refusal."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import AppFactory, Backend
from tests.support.ucs_support import ADDRESS, BRUCE, CS, PHONE, assert_error, create, extension, profile


@pytest.fixture
def phones(client: TestClient) -> TestClient:
    extension(client, PHONE)
    extension(client, ADDRESS)
    return client


def test_create_read_replace_delete(phones: TestClient) -> None:
    client = phones
    cid = create(client, {**BRUCE, "customer_id": "ignored", "DOB": None})
    assert len(cid) == 16 and cid.isalnum()
    found = profile(client, cid)
    assert found == {"customer_id": cid, "FirstName": "Bruce", "LastName": "Banner",
                     "EmailAddress": ["bruce.banner@marvelous.com", "b.banner@hulk.dom"]}
    with_phone = profile(client, cid, "Phone,address")
    assert with_phone["Phone"] == [{"PhoneType": 0, "prefix": "+33", "PhoneNumber": "3145926535",
                                    "description": "family phone"}]
    assert "Address" not in with_phone  # a single-valued extension without a record is omitted
    # PUT: core attributes replaced as a whole, extensions absent from the body untouched.
    response = client.put(f"{CS}/profiles/{cid}", json={"firstname": "Robert", "Address": {"city": "Dayton"}})
    assert response.status_code == 200 and response.content == b""
    after = profile(client, cid, "Phone,Address")
    assert after == {"customer_id": cid, "FirstName": "Robert", "Phone": with_phone["Phone"],
                     "Address": {"city": "Dayton"}}
    assert_error(client.put(f"{CS}/profiles/{cid}", json={"customer_id": "other"}), 400, "BadRequestException")
    response = client.delete(f"{CS}/profiles/{cid}")
    assert response.status_code == 200 and response.content == b""
    assert_error(client.get(f"{CS}/profiles/{cid}"), 404, "NotFoundException")
    assert_error(client.delete(f"{CS}/profiles/{cid}"), 404, "NotFoundException")
    assert_error(client.put(f"{CS}/profiles/{cid}", json={"FirstName": "x"}), 404, "NotFoundException")


def test_unknown_customers_are_404_and_unknown_extensions_400(phones: TestClient) -> None:
    client = phones
    for cid in ("0004Va58A92T0017", "not-an-id", "x" * 300):
        assert_error(client.get(f"{CS}/profiles/{cid}"), 404, "NotFoundException")
        assert_error(client.post(f"{CS}/profiles/{cid}/extensions", json={"Phone": []}), 404, "NotFoundException")
    cid = create(client, {"FirstName": "A"})
    assert_error(client.get(f"{CS}/profiles/{cid}", params={"extensions": "Nope"}), 400, "BadRequestException")


@pytest.mark.parametrize(("body", "why"), [
    ({"Nickname": "x"}, "unknown attribute"),
    ({"FirstName": 3}, "wrong type"),
    ({"FirstName": ["a", 2]}, "wrong type in an array"),
    ({"FirstName": []}, "an empty array"),
    ({"FirstName": ["a"] * 65}, "too many values"),
    ({"FirstName": "x" * 4097}, "a string over the limit"),
    ({"Phone": [{"PhoneNumber": "12ab"}]}, "integer expected"),
    ({"Phone": [{"PhoneNumber": 2**63}]}, "beyond 64 bits"),
    ({"Phone": [{"prefix": "+331"}]}, "longer than its length; and no PhoneNumber"),
    ({"Phone": [{"PhoneNumber": 1, "prefix": "+3311"}]}, "longer than its length"),
    ({"Phone": [{"PhoneType": 1}]}, "the mandatory (and unique) PhoneNumber is missing"),
    ({"Phone": [{"PhoneNumber": 1}, {"PhoneNumber": "1"}]}, "two records with the same unique values"),
    ({"Phone": [{"PhoneNumber": 1, "start_availabilty": "yesterday"}]}, "not a datetime"),
    ({"Phone": [{"PhoneNumber": 1, "colour": "red"}]}, "unknown extension attribute"),
    ({"Address": [{"city": "x"}]}, "a single-valued extension is one object"),
    ({"Phone": "3145926535"}, "a record is an object"),
])
def test_bad_values_are_400_and_nothing_is_written(phones: TestClient, backend: Backend, body: object,
                                                   why: str) -> None:
    before = backend.sync.dbsize()
    assert_error(phones.post(f"{CS}/profiles", json=body), 400, "BadRequestException")
    assert backend.sync.dbsize() == before, why


def test_bodies_must_be_json_objects(phones: TestClient) -> None:
    client = phones
    assert_error(client.post(f"{CS}/profiles", content=b"FirstName=x",
                             headers={"content-type": "application/x-www-form-urlencoded"}),
                 415, "InvalidParameterException")
    assert_error(client.post(f"{CS}/profiles", content=b"{", headers={"content-type": "application/json"}),
                 400, "BadRequestException")
    assert_error(client.post(f"{CS}/profiles", json=[1]), 400, "BadRequestException")
    assert_error(client.post(f"{CS}/profiles"), 400, "BadRequestException")


def test_values_of_every_type_are_kept_as_sent(make_client: AppFactory) -> None:
    config = """
[[profiles.attributes]]
name = "Name"
type = "string"
length = 5
mandatory = true
[[profiles.attributes]]
name = "Age"
type = "Integer"
[[profiles.attributes]]
name = "Balance"
type = "currency"
[[profiles.attributes]]
name = "Vip"
type = "boolean"
default = false
[[profiles.attributes]]
name = "Born"
type = "date"
[[profiles.attributes]]
name = "Seen"
type = "datetime"
[[profiles.attributes]]
name = "Score"
type = "double"
[[profiles.attributes]]
name = "Big"
type = "long"
"""
    client = make_client(config)
    schema = client.get(f"{CS}/metadata/profiles").json()
    assert schema[0] == {"name": "Name", "type": "string", "mandatory": True, "length": 5}
    assert schema[1] == {"name": "Age", "type": "integer", "mandatory": False}
    assert schema[3] == {"name": "Vip", "type": "boolean", "mandatory": False, "default": False}
    body = {"Name": "Ann", "Age": "42", "Balance": 1.5, "Born": "1962-05-10", "Seen": "2009-12-18T18:30:00.000Z",
            "Score": "2.5", "Big": 9007199254740993}
    cid = create(client, body)
    assert profile(client, cid) == {"customer_id": cid, **body, "Vip": False}
    assert_error(client.post(f"{CS}/profiles", json={"Age": 1}), 400, "BadRequestException")  # Name mandatory
    for bad in ({"Born": "1962-13-10"}, {"Vip": "yes"}, {"Score": "abc"}, {"Name": "toolong"},
                {"Balance": True}, {"Age": 1.5}):
        assert_error(client.post(f"{CS}/profiles", json={"Name": "A", **bad}), 400, "BadRequestException")
    assert create(client, {"Name": "B", "Vip": "true", "Age": -3})


def test_an_empty_profile_schema_forbids_creating_and_disabled_profiles_forbid_everything(
        make_client: AppFactory) -> None:
    empty = make_client("[profiles]\nattributes = []\n")
    assert_error(empty.post(f"{CS}/profiles", json={}), 403, "ForbiddenException")
    assert empty.get(f"{CS}/metadata/profiles").json() == []
    off = make_client("[profiles]\nenabled = false\n")
    for method, path in (("GET", "/profiles?a=1"), ("POST", "/profiles"), ("GET", "/metadata"),
                         ("GET", "/metadata/identification-keys"), ("GET", "/interactions/x"),
                         ("GET", "/customers/x/interactions")):
        body = assert_error(off.request(method, CS + path), 403, "ForbiddenException")
        assert body["message"] == "customer profiles are not enabled"


def test_insert_update_and_delete_extension_records(phones: TestClient) -> None:
    client = phones
    cid = create(client, BRUCE)
    # POST …/extensions: same unique values replace, others are added; defaults fill in.
    response = client.post(f"{CS}/profiles/{cid}/extensions",
                           json={"customer_id": cid, "Phone": [{"PhoneNumber": 3145926535, "description": "new"},
                                                               {"PhoneNumber": "5551234"}],
                                 "Address": {"city": "Paris"}})
    assert response.status_code == 200 and response.content == b""
    found = profile(client, cid, "Phone,Address")
    assert found["Phone"] == [{"PhoneNumber": 3145926535, "description": "new", "PhoneType": 0, "prefix": "555"},
                              {"PhoneNumber": "5551234", "PhoneType": 0, "prefix": "555"}]
    assert found["Address"] == {"city": "Paris"}
    assert_error(client.post(f"{CS}/profiles/{cid}/extensions", json={"FirstName": "x"}), 400, "BadRequestException")
    assert_error(client.post(f"{CS}/profiles/{cid}/extensions", json={"Nope": {}}), 400, "BadRequestException")
    # by/unique: the unique values select the record, the others given are updated.
    url = f"{CS}/profiles/{cid}/extensions/phone/by/unique"
    response = client.put(url, json={"PhoneNumber": "5551234", "description": "home"})
    assert response.status_code == 204 and response.content == b""
    assert profile(client, cid, "Phone")["Phone"][1] == {"PhoneNumber": "5551234", "PhoneType": 0, "prefix": "555",
                                                         "description": "home"}
    assert_error(client.put(url, json={"PhoneNumber": "999"}), 404, "NotFoundException")
    assert_error(client.put(url, json={"description": "no unique value"}), 400, "BadRequestException")
    assert_error(client.put(url, json={"PhoneNumber": "5551234", "prefix": "toolong"}), 400, "BadRequestException")
    assert_error(client.put(f"{CS}/profiles/{cid}/extensions/Address/by/unique", json={"city": "x"}),
                 400, "BadRequestException")
    assert_error(client.put(f"{CS}/profiles/0004Va58A92T0017/extensions/Phone/by/unique",
                            json={"PhoneNumber": "1"}), 404, "NotFoundException")
    # delete/by/unique: other attributes are ignored; again → 404.
    url = f"{CS}/profiles/{cid}/extensions/Phone/delete/by/unique"
    response = client.put(url, json={"PhoneNumber": "5551234", "description": "ignored", "colour": "ignored"})
    assert response.status_code == 204
    assert [r["PhoneNumber"] for r in profile(client, cid, "Phone")["Phone"]] == [3145926535]
    assert_error(client.put(url, json={"PhoneNumber": "5551234"}), 404, "NotFoundException")
    assert client.put(url, json={"PhoneNumber": "3145926535"}).status_code == 204
    assert profile(client, cid, "Phone")["Phone"] == []
    assert_error(client.put(url, json=[]), 400, "BadRequestException")


def test_extension_schemas(client: TestClient, backend: Backend) -> None:
    base = f"{CS}/metadata/profiles/extensions"
    response = client.post(base, json=PHONE)
    assert response.status_code == 201 and response.headers["location"] == f"{base}/Phone"
    assert client.get(base).json() == [client.get(f"{base}/PHONE").json()]
    phone = client.get(f"{base}/phone").json()
    assert phone["name"] == "Phone" and phone["unique"] == ["PhoneNumber"] and phone["required"] is False
    assert phone["attributes"][0] == {"name": "PhoneType", "type": "integer", "mandatory": True, "default": 0}
    for taken in (PHONE, {**PHONE, "name": "phone"}, {**ADDRESS, "name": "FirstName"},
                  {**ADDRESS, "name": "Customer_Id"}):
        assert_error(client.post(base, json=taken), 409, "ConflictException")
    for bad in ({**ADDRESS, "name": "1x"}, {**ADDRESS, "name": "a" * 27}, {**ADDRESS, "type": "classifier"},
                {**ADDRESS, "unique": ["nope"]}, {**ADDRESS, "attributes": [{"name": "a", "type": "blob"}]},
                {**ADDRESS, "attributes": [{"name": "a", "type": "string", "length": 0}]},
                {**ADDRESS, "attributes": [{"name": "a", "type": "integer", "default": "x"}]},
                {**ADDRESS, "attributes": [{"name": "a", "type": "string"}, {"name": "A", "type": "string"}]},
                {**ADDRESS, "colour": 1}, [ADDRESS]):
        assert_error(client.post(base, json=bad), 400, "BadRequestException")
    assert client.post(base, json={**ADDRESS, "name": "a" * 26}).status_code == 201
    assert_error(client.get(f"{base}/Nope"), 404, "NotFoundException")
    assert_error(client.delete(f"{base}/Nope"), 404, "NotFoundException")
    cid = create(client, {"FirstName": "A", "Phone": {"PhoneNumber": 1}})
    assert client.delete(f"{base}/Phone").status_code == 204
    assert_error(client.get(f"{base}/Phone"), 404, "NotFoundException")
    assert_error(client.get(f"{CS}/profiles/{cid}", params={"extensions": "Phone"}), 400, "BadRequestException")
    # Deleting the schema deleted every customer's records: a new Phone starts empty.
    extension(client, PHONE)
    assert profile(client, cid, "Phone")["Phone"] == []
    assert not any(b"x:phone" in field for field in backend.sync.hkeys(f"ucs:{{ucs}}:p:{cid}"))


def test_metadata(client: TestClient) -> None:
    expected = {"profiles schema": "http://testserver/genesys/1/cs/metadata/profiles",
                "profiles extensions": "http://testserver/genesys/1/cs/metadata/profiles/extensions",
                "identification-keys schemas": "http://testserver/genesys/1/cs/metadata/identification-keys"}
    response = client.get(f"{CS}/metadata", headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json() == expected
    page = client.get(f"{CS}/metadata", headers={"content-type": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<html><body><h1>Available Resources</h1>")
    assert all(f'<a href="{url}">{name}</a>' in page.text for name, url in expected.items())
    assert client.get(f"{CS}/metadata", headers={"accept": "text/html"}).text == page.text
    schema = client.get(f"{CS}/metadata/profiles").json()
    assert [a["name"] for a in schema] == ["FirstName", "LastName", "PhoneNumber", "EmailAddress", "Title"]
    assert {a["type"] for a in schema} == {"string"}
