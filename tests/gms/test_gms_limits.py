"""Limits and malformed input: a clear JSON error, nothing stored, and the server keeps serving."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import AppFactory, Backend

BASE = "/genesys/1/service"

LIMITS = """
[limits]
body_bytes = 20000
file_bytes = 10000
fields = 5
key_bytes = 16

[services.s]
_ttl = 600
"""


@pytest.fixture
def gms(make_client: AppFactory) -> TestClient:
    return make_client(LIMITS)


@pytest.fixture
def sid(gms: TestClient) -> str:
    response = gms.post(f"{BASE}/s", data={"kept": "yes"})
    assert response.status_code == 200
    return str(response.json()["id"])


def assert_unchanged(gms: TestClient, sid: str) -> None:
    assert gms.get(f"{BASE}/{sid}/storage").json() == {"kept": "yes"}
    assert gms.get(f"{BASE}/{sid}/storage/binary/ok").status_code == 404


def test_one_oversize_file_stores_none_of_the_keys(gms: TestClient, sid: str) -> None:
    response = gms.post(f"{BASE}/{sid}/storage", data={"a": "1"},
                        files={"ok": ("ok", b"x" * 100, "text/plain"), "big": ("big", b"x" * 10001, "text/plain")})
    assert response.status_code == 413
    assert "big" in response.json()["message"]
    assert_unchanged(gms, sid)


def test_oversize_file_on_create_creates_nothing(gms: TestClient, backend: Backend) -> None:
    response = gms.post(f"{BASE}/s", data={"a": "1"}, files={"big": ("big", b"x" * 10001, "text/plain")})
    assert response.status_code == 413
    assert backend.sync.dbsize() == 0


def test_file_at_the_limit_is_accepted(gms: TestClient, sid: str) -> None:
    assert gms.post(f"{BASE}/{sid}/storage", files={"f": ("f", b"y" * 10000, "text/plain")}).status_code == 200
    assert gms.get(f"{BASE}/{sid}/storage/binary/f").content == b"y" * 10000


@pytest.mark.parametrize("kind", ["multipart", "urlencoded", "json"])
def test_too_many_fields_is_413(gms: TestClient, sid: str, kind: str) -> None:
    fields = {f"k{i}": "v" for i in range(6)}
    if kind == "multipart":
        response = gms.post(f"{BASE}/{sid}/storage", data=fields, files={"f": ("f", b"1", "text/plain")})
    elif kind == "urlencoded":
        response = gms.post(f"{BASE}/{sid}/storage", data=fields)
    else:
        response = gms.post(f"{BASE}/{sid}/storage", json=fields)
    assert response.status_code == 413
    assert "too many fields" in response.json()["message"]
    assert_unchanged(gms, sid)


def test_body_over_the_limit_is_413(gms: TestClient, sid: str) -> None:
    response = gms.post(f"{BASE}/{sid}/storage", data={"a": "x" * 20001})
    assert response.status_code == 413
    assert_unchanged(gms, sid)


def test_declared_content_length_over_the_limit_is_413_at_once(gms: TestClient, sid: str) -> None:
    response = gms.post(f"{BASE}/{sid}/storage", content=b"a=1",
                        headers={"content-type": "application/x-www-form-urlencoded", "content-length": "999999999"})
    assert response.status_code == 413


def test_default_limits_are_the_contracts(client: TestClient) -> None:
    from gmsd.config import Limits

    limits = Limits()
    assert (limits.body_bytes, limits.file_bytes, limits.fields, limits.key_bytes) == (
        16 * 1024 * 1024, 10 * 1024 * 1024, 1000, 4096)
    sid = client.post(f"{BASE}/storage").json()["id"]
    response = client.post(f"{BASE}/{sid}/storage", files={"f": ("f", b"z" * (10 * 1024 * 1024 + 1), "x/y")})
    assert response.status_code == 413
    assert client.get(f"{BASE}/{sid}/storage/binary/f").status_code == 404


def test_the_default_key_limit_is_4096_bytes(client: TestClient) -> None:
    sid = client.post(f"{BASE}/storage").json()["id"]
    longest = "k" * 4094 + "é"  # 4,096 bytes of UTF-8
    assert client.post(f"{BASE}/{sid}/storage", data={longest: "v"}).status_code == 200
    assert client.get(f"{BASE}/{sid}/storage").json() == {longest: "v"}
    response = client.post(f"{BASE}/{sid}/storage", data={"a": "1", "k" + longest: "v"})
    assert response.status_code == 400
    assert client.get(f"{BASE}/{sid}/storage").json() == {longest: "v"}


@pytest.mark.parametrize("key", ["k" * 17, "é" * 9])  # 17 bytes; 18 bytes of UTF-8
def test_key_over_the_limit_is_400(gms: TestClient, sid: str, key: str) -> None:
    response = gms.post(f"{BASE}/{sid}/storage", data={"a": "1", key: "v"})
    assert response.status_code == 400
    assert "limit" in response.json()["message"]
    assert_unchanged(gms, sid)


def test_empty_key_is_400(gms: TestClient, sid: str) -> None:
    response = gms.post(f"{BASE}/{sid}/storage", content=b"=v&a=1",
                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert_unchanged(gms, sid)


MALFORMED = [
    ("multipart/form-data", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n"),  # no boundary
    ("multipart/form-data; boundary=b", b"garbage that is not multipart"),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunfinished"),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Type: text/plain\r\n\r\nno name\r\n--b--\r\n"),
    ("multipart/form-data; boundary=b",
     b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\xfe\r\n--b--\r\n"),
    ("application/x-www-form-urlencoded", b"a=%FF%FE"),
    ("application/x-www-form-urlencoded", b"\xff=1"),
]


@pytest.mark.parametrize("content_type,body", MALFORMED)
def test_malformed_bodies_are_400_and_store_nothing(gms: TestClient, sid: str, content_type: str, body: bytes) -> None:
    response = gms.post(f"{BASE}/{sid}/storage", content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["message"]
    assert_unchanged(gms, sid)
    # The server keeps serving.
    assert gms.post(f"{BASE}/{sid}/storage", data={"after": "1"}).status_code == 200


def test_body_without_content_type_is_415(gms: TestClient, sid: str) -> None:
    response = gms.post(f"{BASE}/{sid}/storage", content=b"a=1")
    assert response.status_code == 415
    assert_unchanged(gms, sid)


def test_unknown_route_and_wrong_method_are_json(gms: TestClient) -> None:
    response = gms.get("/genesys/1/nothing/here")
    assert response.status_code == 404
    assert response.json() == {"message": "not found"}
    response = gms.patch(f"{BASE}/s")
    assert response.status_code == 405
    assert response.json() == {"message": "method not allowed"}
    assert response.headers["allow"] == "POST, PUT, DELETE"
    response = gms.put(f"{BASE}/s/storage")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, POST, DELETE"
