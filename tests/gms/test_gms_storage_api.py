"""The GMS Storage API (`/genesys/1/storage…`) through the ASGI app, on every backend."""

from __future__ import annotations

import os
import time

import pytest
from starlette.testclient import TestClient

from gmsd.gms.storage_api import storage_ttl
from gmsd.keys import gms_service, storage_custom_area
from tests.conftest import AppFactory, Backend

STORAGE = "/genesys/1/storage"
SERVICE = "/genesys/1/service"

CONFIG = """
[services.app]
_ttl = 600
"""


@pytest.fixture
def api(make_client: AppFactory) -> TestClient:
    return make_client(CONFIG)


def create(client: TestClient, ttl: str | int = 600, **kwargs: object) -> str:
    response = client.post(f"{STORAGE}/{ttl}", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["id"]
    return str(body["id"])


def remaining_ms(backend: Backend, area_id: str) -> int:
    return int(backend.sync.pttl(gms_service(area_id)[0]))


# --- create and read ------------------------------------------------------------------------

def test_create_multipart_with_a_file_then_read_all_one_and_binary(api: TestClient) -> None:
    picture = os.urandom(3000)
    area = create(api, data={"firstname": "Ada", "city": "Paris", "_hidden": "x"},
                  files={"photo": ("me.png", picture, "image/png")})
    assert api.get(f"{STORAGE}/{area}").json() == {"firstname": "Ada", "city": "Paris"}
    assert api.get(f"{STORAGE}/{area}/city").json() == {"city": "Paris"}
    binary = api.get(f"{STORAGE}/{area}/binary/photo")
    assert binary.status_code == 200
    assert binary.content == picture
    assert binary.headers["content-type"] == "image/png"
    assert 'filename="me.png"' in binary.headers["content-disposition"]
    text = api.get(f"{STORAGE}/{area}/binary/firstname")
    assert (text.content, text.headers["content-type"]) == (b"Ada", "text/plain; charset=utf-8")


def test_create_urlencoded_and_json(api: TestClient) -> None:
    form = create(api, data={"Key1": "Value1"})
    assert api.get(f"{STORAGE}/{form}").json() == {"Key1": "Value1"}
    as_json = create(api, json={"n": 7, "ok": True, "address": {"city": "Lyon"}, "_skip": 1})
    assert api.get(f"{STORAGE}/{as_json}").json() == {"n": "7", "ok": "true", "address": "{city=Lyon}"}


def test_a_json_text_posted_as_one_urlencoded_key_is_stored(api: TestClient) -> None:
    # A browser client posting its JSON text as a form: the whole text is one key (4,096 bytes allowed).
    text = '{"firstName":"Ada","notes":"' + "x" * 3000 + '"}'
    area = create(api, content=text.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    stored = api.get(f"{STORAGE}/{area}").json()
    assert list(stored) == [text]


def test_unknown_ids_and_keys_are_404(api: TestClient) -> None:
    area = create(api, data={"a": "1"})
    missing = "00000000-0000-4000-8000-000000000000"
    for path in (f"{STORAGE}/{missing}", f"{STORAGE}/{missing}/a", f"{STORAGE}/{missing}/binary/a",
                 f"{STORAGE}/not-an-id", f"{STORAGE}/{area}/nope", f"{STORAGE}/{area}/binary/nope",
                 f"{STORAGE}/{area}/_name"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert "message" in response.json()
    assert api.post(f"{STORAGE}/{missing}/60", data={"a": "1"}).status_code == 404
    assert api.delete(f"{STORAGE}/{missing}").status_code == 404


# --- TTL ------------------------------------------------------------------------------------

def test_ttl_rule_incorrect_values_mean_30_seconds() -> None:
    assert storage_ttl("600") == 600
    assert storage_ttl("2147483647") == 2147483647
    for incorrect in ("abc", "0", "-5", "1.5", "", "2147483648", " 10", "\uff11\uff10"):
        assert storage_ttl(incorrect) == 30, incorrect


@pytest.mark.parametrize("ttl", ["abc", "0", "-5", "2.5", "99999999999"])
def test_an_incorrect_ttl_is_not_an_error_the_area_lives_30_s(api: TestClient, backend: Backend, ttl: str) -> None:
    area = create(api, ttl, data={"a": "1"})
    assert 28_000 < remaining_ms(backend, area) <= 30_000


def test_the_area_is_gone_when_its_ttl_runs_out(api: TestClient) -> None:
    area = create(api, 1, data={"a": "1"})
    assert api.get(f"{STORAGE}/{area}/a").json() == {"a": "1"}
    time.sleep(1.3)
    assert api.get(f"{STORAGE}/{area}").status_code == 404


def test_update_adds_keys_and_restarts_the_lifetime(api: TestClient, backend: Backend) -> None:
    area = create(api, 5, data={"a": "1", "b": "2"}, files={"f": ("f.bin", b"old", "application/x-old")})
    response = api.post(f"{STORAGE}/{area}/600", data={"b": "two", "c": "3"}, files={"f": ("g.bin", b"new")})
    assert response.status_code == 200
    assert response.content == b""
    assert api.get(f"{STORAGE}/{area}").json() == {"a": "1", "b": "two", "c": "3"}
    assert api.get(f"{STORAGE}/{area}/binary/f").content == b"new"
    for key in gms_service(area):
        assert 598_000 < backend.sync.pttl(key) <= 600_000, key
    # An incorrect ttl on update: 30 s, not an error.
    assert api.post(f"{STORAGE}/{area}/soon", data={"d": "4"}).status_code == 200
    assert 28_000 < remaining_ms(backend, area) <= 30_000


def test_a_refused_write_stores_nothing(make_client: AppFactory) -> None:
    client = make_client(CONFIG.replace("[services.app]", "[limits]\nkey_bytes = 8\n\n[services.app]"))
    area = create(client, data={"a": "1"})
    response = client.post(f"{STORAGE}/{area}/60", data={"b": "2", "much-too-long": "x"})
    assert response.status_code == 400
    assert client.get(f"{STORAGE}/{area}").json() == {"a": "1"}
    assert client.post(f"{STORAGE}/60", data={"much-too-long": "x"}).status_code == 400


# --- deletes --------------------------------------------------------------------------------

def test_delete_a_key_then_the_area(api: TestClient, backend: Backend) -> None:
    area = create(api, data={"a": "1", "b": "2"}, files={"f": ("f", b"bytes")})
    assert api.delete(f"{STORAGE}/{area}/a").status_code == 200
    assert api.delete(f"{STORAGE}/{area}/f").status_code == 200
    assert api.delete(f"{STORAGE}/{area}/never-there").status_code == 200
    assert api.get(f"{STORAGE}/{area}").json() == {"b": "2"}
    assert api.get(f"{STORAGE}/{area}/binary/f").status_code == 404
    assert api.delete(f"{STORAGE}/{area}").status_code == 200
    assert api.get(f"{STORAGE}/{area}").status_code == 404
    assert backend.sync.exists(*gms_service(area)) == 0


# --- custom ids -----------------------------------------------------------------------------

def test_custom_ids_are_scoped_by_gms_user(api: TestClient, backend: Backend) -> None:
    alice, bob = {"gms_user": "alice"}, {"gms_user": "bob"}
    response = api.post(f"{STORAGE}/custom/chat-42/600", data={"who": "alice"}, headers=alice)
    assert response.status_code == 200
    assert response.json() == {"id": "chat-42"}
    assert api.post(f"{STORAGE}/custom/chat-42/600", data={"who": "bob"}, headers=bob).json() == {"id": "chat-42"}
    assert api.get(f"{STORAGE}/custom/chat-42", headers=alice).json() == {"who": "alice"}
    assert api.get(f"{STORAGE}/custom/chat-42/who", headers=bob).json() == {"who": "bob"}
    assert api.get(f"{STORAGE}/custom/chat-42", headers={"gms_user": "carol"}).status_code == 404
    # The derived area id is not reachable as a plain id.
    assert api.get(f"{STORAGE}/{storage_custom_area('alice', 'chat-42')}").status_code == 404
    # Deleting bob's area leaves alice's.
    assert api.delete(f"{STORAGE}/custom/chat-42", headers=bob).status_code == 200
    assert api.get(f"{STORAGE}/custom/chat-42", headers=bob).status_code == 404
    assert api.get(f"{STORAGE}/custom/chat-42", headers=alice).json() == {"who": "alice"}
    assert backend.sync.exists(gms_service(storage_custom_area("alice", "chat-42"))[0]) == 1


def test_a_missing_custom_area_is_named_by_its_custom_id(api: TestClient) -> None:
    carol = {"gms_user": "carol"}
    derived = storage_custom_area("carol", "chat-7")
    for method, path in (("GET", "/custom/chat-7"), ("DELETE", "/custom/chat-7"), ("GET", "/custom/chat-7/who"),
                         ("DELETE", "/custom/chat-7/who")):
        response = api.request(method, f"{STORAGE}{path}", headers=carol)
        assert response.status_code == 404, (method, path)
        message = response.json()["message"]
        assert "'chat-7'" in message and derived not in message, (method, path, message)


def test_posting_a_custom_id_again_updates_it(api: TestClient, backend: Backend) -> None:
    user = {"gms_user": "default"}
    api.post(f"{STORAGE}/custom/session/5", data={"a": "1", "b": "2"}, headers=user)
    assert api.post(f"{STORAGE}/custom/session/900", data={"b": "two"},
                    files={"doc": ("d.txt", b"doc", "text/plain")}, headers=user).status_code == 200
    assert api.get(f"{STORAGE}/custom/session", headers=user).json() == {"a": "1", "b": "two"}
    binary = api.get(f"{STORAGE}/custom/session/binary/doc", headers=user)
    assert (binary.content, binary.headers["content-type"]) == (b"doc", "text/plain")
    for key in gms_service(storage_custom_area("default", "session")):
        assert 898_000 < backend.sync.pttl(key) <= 900_000
    assert api.delete(f"{STORAGE}/custom/session/a", headers=user).status_code == 200
    assert api.get(f"{STORAGE}/custom/session/a", headers=user).status_code == 404
    # Without a ttl: 30 s.
    api.post(f"{STORAGE}/custom/short", json={"x": 1}, headers=user)
    assert 28_000 < backend.sync.pttl(gms_service(storage_custom_area("default", "short"))[0]) <= 30_000


def test_custom_ids_need_the_gms_user_header(api: TestClient) -> None:
    for method, path in (("POST", "/custom/c/60"), ("POST", "/custom/c"), ("GET", "/custom/c"),
                         ("GET", "/custom/c/k"), ("GET", "/custom/c/binary/k"), ("DELETE", "/custom/c"),
                         ("DELETE", "/custom/c/k")):
        response = api.request(method, STORAGE + path, data={"k": "v"} if method == "POST" else None)
        assert response.status_code == 400, (method, path)
        assert "gms_user" in response.json()["message"]


# --- a service's own storage ----------------------------------------------------------------

def test_storage_of_a_service_id_is_the_service_storage(api: TestClient, backend: Backend) -> None:
    created = api.post(f"{SERVICE}/app", data={"firstname": "Ada"})
    service_id = created.json()["_id"]
    before = remaining_ms(backend, service_id)
    assert api.get(f"{STORAGE}/{service_id}").json() == {"firstname": "Ada"}
    # A write through the Storage API: its ttl is ignored, the service keeps its expiry.
    assert api.post(f"{STORAGE}/{service_id}/5", data={"lastname": "Lovelace"}).status_code == 200
    assert api.get(f"{SERVICE}/{service_id}/storage").json() == {"firstname": "Ada", "lastname": "Lovelace"}
    assert before - 5_000 < remaining_ms(backend, service_id) <= before
    assert api.delete(f"{STORAGE}/{service_id}/firstname").status_code == 200
    assert api.get(f"{STORAGE}/{service_id}/lastname").json() == {"lastname": "Lovelace"}
    # DELETE empties it; the service stays.
    assert api.delete(f"{STORAGE}/{service_id}").status_code == 200
    assert api.get(f"{STORAGE}/{service_id}").json() == {}
    assert api.get(f"{SERVICE}/{service_id}/storage").json() == {}
    assert api.delete(f"{SERVICE}/{service_id}").status_code == 200
    assert api.get(f"{STORAGE}/{service_id}").status_code == 404


def test_wrong_methods_are_405_with_allow(api: TestClient) -> None:
    area = create(api, data={"a": "1"})
    response = api.put(f"{STORAGE}/{area}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST, DELETE"
    assert api.post(f"{STORAGE}/{area}/binary/a").status_code == 405


def test_large_values_of_areas_and_custom_ids_are_read_on_the_large_values_lane(make_client: AppFactory) -> None:
    # The Storage API's binary reads take the Service API's path for large values: read again on
    # the large values' connection and sent in chunks, byte-exact, on every backend.
    api = make_client(CONFIG + "\n[limits]\nlarge_value_bytes = 10\n")
    big = os.urandom(300 * 1024)  # over one 256 KiB chunk: sent in two
    area = create(api, files={"photo": ("me.png", big, "image/png")})
    served = api.get(f"{STORAGE}/{area}/binary/photo")
    assert (served.status_code, served.content, served.headers["content-type"]) == (200, big, "image/png")
    assert served.headers["x-content-type-options"] == "nosniff"
    user = {"gms_user": "ada"}
    assert api.post(f"{STORAGE}/custom/big-one", files={"photo": ("me.png", big, "image/png")},
                    headers=user).status_code == 200
    custom = api.get(f"{STORAGE}/custom/big-one/binary/photo", headers=user)
    assert (custom.status_code, custom.content) == (200, big)
    assert api.get(f"{STORAGE}/{area}/binary/missing").status_code == 404
