"""Odd characters and lengths in ids, keys, customer ids and contact keys: `{`/`}` (hash tags),
NUL and `%00`, `..`, separators, very long text. Each is stored and found exactly as sent, or
refused with a JSON 4xx; none reaches another key. The assertions read what is in Redis.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from gmsd.keys import cs_partition, gms_service
from tests.conftest import AppFactory, Backend, RedisServer
from tests.support.cs_support import CS, start_service
from tests.support.gmsd_process import GmsdProcess, gmsd_serving

GMS = "/genesys/1/service"
CONFIG = "[limits]\nkey_bytes = 32\n\n[services.s]\n_ttl = 600\n"
ODD = ["{x}", "}{", "{gms:{x}}:data", "..", "../..", "a\0b", "%00", "%2e%2e", "a b", "*?[", "\u202eevil", "é🎉",
       "line\nbreak", "semi;colon=\"q\""]
CS_KEY = re.compile(rb"^cs:\{cs:(\d+)\}:(?:(?:svc|states|tasks):\1-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}"
                    rb"-[0-9a-f]{12}|ix|ixexp|ts|te|tu)$")


@pytest.fixture
def gms(make_client: AppFactory) -> TestClient:
    return make_client(CONFIG)


def path_of(text: str) -> str:
    """`text` as one URL path segment. Dots too are escaped: HTTP clients drop `.` and `..`
    segments before sending (RFC 3986), so a key `..` must travel as `%2E%2E`."""
    return quote(text, safe="").replace(".", "%2E")


def test_odd_storage_keys_stay_fields_of_their_own_service(gms: TestClient, backend: Backend) -> None:
    values = {key: f"value of {key!r}" for key in ODD}
    longest = "k" * 32
    values[longest] = "at the limit"
    sid = gms.post(f"{GMS}/s", json={**values, "_name": "hijack", "_exp": "1"}).json()["id"]
    other = gms.post(f"{GMS}/s", json={"x": "other"}).json()["id"]
    assert gms.get(f"{GMS}/{sid}/storage").json() == values
    for key, value in values.items():
        if "%" in key:  # the test client decodes a path twice; test_percent_escapes_… uses a real server
            continue
        assert gms.get(f"{GMS}/{sid}/storage/{path_of(key)}").json() == {key: value}, key
        assert gms.get(f"{GMS}/{sid}/storage/binary/{path_of(key)}").content == value.encode(), key
    # In Redis: the two services' keys and nothing else; the odd keys are fields of one hash, and
    # `_`-keys did not replace the service's own name and expiry.
    assert {k.decode() for k in backend.sync.keys("*")} == {gms_service(sid)[0], gms_service(other)[0]}
    data = backend.sync.hgetall(gms_service(sid)[0])
    assert {k.decode() for k in data} == {*values, "_name", "_exp"}
    assert data[b"_name"] == b"s" and int(data[b"_exp"]) > 10 ** 12
    assert 0 < backend.sync.pttl(gms_service(sid)[0]) <= 600_000
    for key in ODD:
        assert gms.delete(f"{GMS}/{sid}/storage/{path_of(key)}").status_code == 200
    assert gms.get(f"{GMS}/{sid}/storage").json() == {k: v for k, v in values.items() if "%" in k or k == longest}
    assert gms.get(f"{GMS}/{other}/storage").json() == {"x": "other"}


@pytest.mark.parametrize("key", ["k" * 33, "é" * 17, "🎉" * 9])  # 33, 34 and 36 bytes of UTF-8
def test_keys_over_the_length_limit_are_refused_and_never_found(gms: TestClient, backend: Backend, key: str) -> None:
    sid = gms.post(f"{GMS}/s", json={"kept": "yes"}).json()["id"]
    response = gms.post(f"{GMS}/{sid}/storage", json={key: "v", "other": "w"})
    assert response.status_code == 400 and "limit" in response.json()["message"]
    assert gms.get(f"{GMS}/{sid}/storage/{path_of(key)}").status_code == 404
    assert set(backend.sync.hkeys(gms_service(sid)[0])) == {b"kept", b"_name", b"_exp"}


def test_odd_file_names_are_served_in_a_safe_header(gms: TestClient) -> None:
    name = 'a";\r\nx-injected: 1;.png'
    sid = gms.post(f"{GMS}/s", files={"{f}/../g": (name, b"\x89PNG", "image/png")}).json()["id"]
    served = gms.get(f"{GMS}/{sid}/storage/binary/{path_of('{f}/../g')}")
    assert served.content == b"\x89PNG"
    assert "x-injected" not in served.headers
    disposition = served.headers["content-disposition"]
    assert disposition.startswith("attachment; filename*=UTF-8''") and '"' not in disposition


ODD_IDS = ["{x}", "..", "%00", "a\0b", "x" * 5000, str(uuid.uuid4()).upper(), "{" + str(uuid.uuid4()) + "}",
           "gms:{" + str(uuid.uuid4()) + "}:data", "1-" + str(uuid.uuid4()), "cs:{cs:1}:svc:x"]


def test_odd_service_ids_are_unknown_everywhere_and_touch_nothing(gms: TestClient, backend: Backend) -> None:
    sid = gms.post(f"{GMS}/s", json={"kept": "yes"}).json()["id"]
    started = start_service(gms, customer_id="kept")
    before = sorted(backend.sync.keys("*"))
    for odd in ODD_IDS:
        p = path_of(odd)
        for method, path in [("GET", f"{GMS}/{p}/storage"), ("POST", f"{GMS}/{p}/storage"), ("PUT", f"{GMS}/{p}"),
                             ("GET", f"{GMS}/{p}/storage/kept"), ("DELETE", f"{GMS}/{p}"),
                             ("POST", f"{GMS}/{p}/update")]:
            response = gms.request(method, path, json={"ttl": 60, "k": "v"})
            assert response.status_code == 404 and response.json()["message"], (odd, method, path)
        for method, path in [("GET", f"{CS}/services/{p}"), ("POST", f"{CS}/services/{p}/end"),
                             ("DELETE", f"{CS}/services/{p}"), ("POST", f"{CS}/services/{p}/states/start"),
                             ("POST", f"{CS}/customers/kept/services/{p}")]:
            response = gms.request(method, path, json={})
            assert response.status_code == 400, (odd, method, path, response.text)
            assert response.json()["exception"].endswith(".NotFoundException")
    assert sorted(backend.sync.keys("*")) == before
    assert gms.get(f"{GMS}/{sid}/storage").json() == {"kept": "yes"}
    assert gms.get(f"{CS}/services/{started}").status_code == 200


# Owners whose text, without escaping, would share a prefix or a separator with another one's.
OWNERS = ["a", "a\0", "a\0c", "a%00c", "a%", "{cs:7}", "}{", "..", "a b", "é🎉", "o" * 32]


def test_odd_customer_ids_and_contact_keys_find_exactly_their_own_services(
    make_client: AppFactory, backend: Backend
) -> None:
    cs = make_client(CONFIG)
    customers = {owner: start_service(cs, customer_id=owner, service_type="t") for owner in OWNERS}
    anonymous = {owner: start_service(cs, contact_key=owner, service_type="t") for owner in OWNERS}
    for owner in OWNERS:
        if "%" in owner:  # the test client decodes a path twice: see the real server's test below
            continue
        listed = cs.get(f"{CS}/customers/{path_of(owner)}/services").json()
        assert [s["service_id"] for s in listed] == [customers[owner]], owner
        assert listed[0]["customer_id"] == owner
        listed = cs.get(f"{CS}/services/anonymous/{path_of(owner)}").json()
        assert [s["service_id"] for s in listed] == [anonymous[owner]], owner
        assert listed[0]["contact_key"] == owner
    # Composite start finds each owner's service, not a look-alike's.
    for owner in OWNERS:
        element = {"service": {"customer_id": owner, "service_type": "t"}, "state": {"state_type": "s"}}
        found = cs.post(f"{CS}/services_composite/start", json={"services": [element]}).json()["services"][0]
        assert found["service"] == {"service_id": customers[owner], "created": "false"}, owner
    # In Redis: key names are built from gmsd's ids and partitions only, never from the text.
    for key in backend.sync.keys("*"):
        match = CS_KEY.match(key)
        assert match is not None, key
    partitions = {int(CS_KEY.match(k).group(1)) for k in backend.sync.keys("*")}  # type: ignore[union-attr]
    assert partitions == {cs_partition(owner) for owner in OWNERS}


@pytest.mark.parametrize("field", ["customer_id", "contact_key"])
def test_owner_text_over_the_length_limit_is_refused(make_client: AppFactory, backend: Backend, field: str) -> None:
    cs = make_client(CONFIG)
    response = cs.post(f"{CS}/services/start", json={field: "o" * 33})
    assert response.status_code == 400 and response.json()["exception"].endswith(".InvalidParameterException")
    assert backend.sync.dbsize() == 0
    which = "customers" if field == "customer_id" else "services/anonymous"
    suffix = "/services" if field == "customer_id" else ""
    assert cs.get(f"{CS}/{which}/{'o' * 33}{suffix}").json() == []


# --- through a real server: what an HTTP client sends is decoded exactly once ----------------

@pytest.fixture(scope="module")
def served(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GmsdProcess]:
    with gmsd_serving(tmp_path_factory.mktemp("odd"), redis_server.url, CONFIG, workers=1) as server:
        yield server


ESCAPED = ["%00", "%2e%2e", "%2F", "a%2Fb", "100%", "%", "%%", "a\0b", "\0", "..", "a\nb"]


def test_percent_escapes_in_urls_are_decoded_once(served: GmsdProcess) -> None:
    keys = ESCAPED
    with httpx.Client(base_url=served.base) as http:
        sid = http.post(f"{GMS}/s", json={k: f"<{k}>" for k in keys}).json()["id"]
        for key in keys:
            assert http.get(f"{GMS}/{sid}/storage/{path_of(key)}").json() == {key: f"<{key}>"}, key
        owners = [k for k in keys if k not in ("%2F",)]
        started = {owner: http.post(f"{CS}/services/start", json={"customer_id": owner, "contact_key": owner}).json()[
            "service_id"] for owner in owners}
        for owner in owners:
            listed = http.get(f"{CS}/customers/{path_of(owner)}/services").json()
            assert [s["service_id"] for s in listed] == [started[owner]], owner
