"""HTTP Basic authentication: off by default; on, every API route needs the right pair, per
configured service where one has its own; probes stay open; credentials are never logged."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gmsd.config import SAMPLE_CONFIG, parse_config
from gmsd.errors import ConfigError
from gmsd.web.auth import Credentials, load_credentials
from tests.conftest import AppFactory
from tests.support.gmsd_process import Served

GMS = "/genesys/1/service"
CS = "/genesys/1/cs"
STORAGE = "/genesys/1/storage"
PASSWORD = "s3cret-pässword"
ENV = {"GMSD_AUTH_USERNAME": "gmsd", "GMSD_AUTH_PASSWORD": PASSWORD}
CONFIG = """
[services.open-app]
_ttl = 600

[services.callback-app]
_ttl = 600
"""
CALLBACK_PASSWORD = "callback-only"


def basic(username: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


GOOD = basic("gmsd", PASSWORD)
CALLBACK = basic("callback", CALLBACK_PASSWORD)


def assert_refused(response: object, cs: bool = False) -> None:
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.headers["www-authenticate"] == 'Basic realm="gmsd"'  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["message"] == "authentication required"
    if cs:
        assert body["exception"] == "com.genesyslab.gsg.services.contextservices.exceptions.AuthenticationException"
    else:
        assert set(body) == {"message"}


@pytest.fixture
def protected(make_client: AppFactory) -> TestClient:
    return make_client(auth=ENV)


def test_off_by_default(client: TestClient) -> None:
    assert client.post(f"{GMS}/storage", data={"a": "1"}).status_code == 200
    assert client.post(f"{CS}/services/start", json={"customer_id": "c"}).status_code == 201
    assert "security" not in client.get("/openapi.json").text


def test_every_api_route_needs_the_pair(protected: TestClient) -> None:
    assert_refused(protected.post(f"{GMS}/storage", data={"a": "1"}))
    assert_refused(protected.post(f"{CS}/services/start", json={"customer_id": "c"}), cs=True)
    created = protected.post(f"{GMS}/storage", data={"a": "1"}, headers=GOOD)
    assert created.status_code == 200
    sid = created.json()["id"]
    for headers in ({}, basic("gmsd", "wrong"), basic("other", PASSWORD), {"authorization": "Bearer x"},
                    {"authorization": "Basic"}, {"authorization": "Basic !!!"}):
        assert_refused(protected.get(f"{GMS}/{sid}/storage", headers=headers))
        assert_refused(protected.delete(f"{GMS}/{sid}", headers=headers))
        assert_refused(protected.get(f"{CS}/customers/c/services", headers=headers), cs=True)
        assert_refused(protected.patch(f"{GMS}/{sid}/storage", headers=headers))  # before the 405
    assert protected.get(f"{GMS}/{sid}/storage", headers=GOOD).json() == {"a": "1"}
    # the scheme's case does not matter (RFC 7617); a non-ASCII password in UTF-8 (curl, browsers) or
    # in ISO-8859-1 (python-requests; the authenticated fuzz run found it refused) works
    lower = {"authorization": GOOD["authorization"].replace("Basic", "basic")}
    assert protected.get(f"{GMS}/{sid}/storage", headers=lower).status_code == 200
    latin = base64.b64encode(f"gmsd:{PASSWORD}".encode("latin-1")).decode()
    assert protected.get(f"{GMS}/{sid}/storage", headers={"authorization": f"Basic {latin}"}).status_code == 200
    started = protected.post(f"{CS}/services/start", json={"customer_id": "c"}, headers=GOOD)
    assert started.status_code == 201
    assert protected.patch(f"{GMS}/{sid}/storage", headers=GOOD).status_code == 405


def test_probes_and_the_document_stay_open_and_metrics_is_configurable(make_client: AppFactory) -> None:
    protected = make_client(auth=ENV)
    for path in ("/healthz", "/readyz", "/openapi.json", "/metrics"):
        assert protected.get(path).status_code == 200, path
    strict = make_client('[auth]\nmetrics = "protected"\n', auth=ENV)
    assert_refused(strict.get("/metrics"))
    assert strict.get("/metrics", headers=GOOD).status_code == 200
    assert strict.get("/healthz").status_code == 200


def test_the_document_says_which_operations_need_the_pair(protected: TestClient) -> None:
    document = protected.get("/openapi.json").json()
    assert document["components"]["securitySchemes"] == {"basic": {"type": "http", "scheme": "basic"}}
    for path, item in document["paths"].items():
        for operation in item.values():
            guarded = path.startswith(("/genesys/1/service/", "/genesys/1/cs/", "/genesys/1/storage/", "/console/"))
            assert ("security" in operation) == guarded, path
            assert ("401" in operation["responses"]) == guarded, path


def test_the_storage_api_needs_the_pair(protected: TestClient) -> None:
    storage = "/genesys/1/storage"
    assert_refused(protected.post(f"{storage}/600", data={"a": "1"}))
    assert_refused(protected.post(f"{storage}/custom/c/600", data={"a": "1"}, headers={"gms_user": "u"}))
    created = protected.post(f"{storage}/600", data={"a": "1"}, headers=GOOD)
    assert created.status_code == 200
    area = created.json()["id"]
    assert_refused(protected.get(f"{storage}/{area}"))
    assert protected.get(f"{storage}/{area}", headers=GOOD).json() == {"a": "1"}


def test_a_service_s_own_pair_also_guards_its_storage_api_routes(per_service: TestClient) -> None:
    client = per_service
    sid = client.post(f"{GMS}/callback-app", data={"a": "1"}, headers=CALLBACK).json()["id"]
    storage = "/genesys/1/storage"
    for method, path in (("GET", f"{storage}/{sid}"), ("GET", f"{storage}/{sid}/a"),
                         ("GET", f"{storage}/{sid}/binary/a"), ("POST", f"{storage}/{sid}/600"),
                         ("DELETE", f"{storage}/{sid}/b"), ("DELETE", f"{storage}/{sid}")):
        assert_refused(client.request(method, path, headers=GOOD))
        assert client.request(method, path, headers=CALLBACK).status_code == 200, (method, path)
    # Areas of the Storage API itself take the global pair.
    area = client.post(f"{storage}/600", data={"a": "1"}, headers=GOOD).json()["id"]
    assert_refused(client.get(f"{storage}/{area}", headers=CALLBACK))
    assert client.get(f"{storage}/{area}", headers=GOOD).json() == {"a": "1"}


@pytest.fixture
def per_service(make_client: AppFactory, tmp_path: Path) -> TestClient:
    path = tmp_path / "credentials.toml"
    path.write_text(f'[services.callback-app]\nusername = "callback"\npassword = "{CALLBACK_PASSWORD}"\n')
    return make_client(CONFIG, auth={**ENV, "GMSD_AUTH_FILE": str(path)})


def test_a_service_with_its_own_pair_takes_only_that_pair(per_service: TestClient) -> None:
    client = per_service
    # create: the {name} decides
    assert_refused(client.post(f"{GMS}/callback-app", data={"a": "1"}, headers=GOOD))
    own = client.post(f"{GMS}/callback-app", data={"a": "1"}, headers=CALLBACK)
    assert own.status_code == 200
    assert_refused(client.post(f"{GMS}/open-app", data={"a": "1"}, headers=CALLBACK))
    other = client.post(f"{GMS}/open-app", data={"a": "1"}, headers=GOOD)
    assert other.status_code == 200
    # every route of an instance: its configured service decides
    sid, oid = own.json()["id"], other.json()["id"]
    for method, path in (("GET", f"{GMS}/{sid}/storage"), ("GET", f"{GMS}/{sid}/storage/a"),
                         ("POST", f"{GMS}/{sid}/storage"), ("POST", f"{GMS}/{sid}/update"),
                         ("GET", f"{GMS}/{sid}/storage/binary/a"), ("PUT", f"{GMS}/{sid}")):
        assert_refused(client.request(method, path, headers=GOOD, json={"ttl": 60}))
        assert client.request(method, path, headers=CALLBACK, json={"ttl": 60}).status_code == 200, path
    assert_refused(client.get(f"{GMS}/{oid}/storage", headers=CALLBACK))
    assert client.get(f"{GMS}/{oid}/storage", headers=GOOD).status_code == 200
    # the Storage API on a service id is that service's storage: the same pair decides
    for method, path in (("GET", f"{STORAGE}/{sid}"), ("GET", f"{STORAGE}/{sid}/a"),
                         ("POST", f"{STORAGE}/{sid}/60"), ("GET", f"{STORAGE}/{sid}/binary/a")):
        assert_refused(client.request(method, path, headers=GOOD, data={"a": "2"}))
        assert client.request(method, path, headers=CALLBACK, data={"a": "2"}).status_code == 200, path
    assert_refused(client.get(f"{STORAGE}/{oid}", headers=CALLBACK))
    assert client.get(f"{STORAGE}/{oid}", headers=GOOD).status_code == 200
    assert_refused(client.delete(f"{GMS}/{sid}", headers=GOOD))
    assert client.delete(f"{GMS}/{sid}", headers=CALLBACK).status_code == 200
    # a gone or impossible id names no service: the global pair, then 404
    assert client.get(f"{GMS}/{sid}/storage", headers=GOOD).status_code == 404
    assert client.get(f"{GMS}/not-an-id/storage", headers=GOOD).status_code == 404
    # Context Services take the global pair
    assert_refused(client.post(f"{CS}/services/start", json={"contact_key": "k"}, headers=CALLBACK), cs=True)


# --- where the credentials come from ----------------------------------------------------------

def load(environ: dict[str, str], config_text: str = CONFIG) -> Credentials | None:
    return load_credentials(parse_config(config_text, "gmsd.toml"), environ)


def test_credentials_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert load({}) is None
    assert load({"GMSD_AUTH_USERNAME": "", "GMSD_AUTH_PASSWORD": ""}) is None  # empty = unset
    from_env = load(ENV)
    assert from_env is not None and from_env.services == {}
    path = tmp_path / "credentials.toml"
    path.write_text(f'username = "gmsd"\npassword = "{PASSWORD}"\n[services.open-app]\nusername = "o"\n'
                    'password = "p"\n')
    from_file = load({"GMSD_AUTH_FILE": str(path)})
    assert from_file is not None and from_file.default == from_env.default
    assert set(from_file.services) == {"open-app"}
    # the configuration may name the file; the environment's file wins
    in_config = load({}, CONFIG + f'\n[auth]\nfile = "{path}"\n')
    assert in_config == from_file


@pytest.mark.parametrize("environ, text, problem", [
    ({"GMSD_AUTH_USERNAME": "gmsd"}, None, "go together"),
    ({"GMSD_AUTH_PASSWORD": PASSWORD}, None, "go together"),
    (ENV, f'username = "gmsd"\npassword = "{PASSWORD}"\n', "given twice"),
    ({}, '[services.open-app]\nusername = "o"\npassword = "p"\n', "need global ones"),
    (ENV, '[services.nowhere]\nusername = "o"\npassword = "p"\n', "services.nowhere: not a service"),
    (ENV, '[services.open-app]\nusername = "o"\n', "password"),
    ({"GMSD_AUTH_USERNAME": "a:b", "GMSD_AUTH_PASSWORD": PASSWORD}, None, "without `:`"),
    ({}, 'username = "gmsd"\n', "go together"),
    ({}, "", "no credentials"),
    ({}, f'username = "gmsd"\npassword = "{PASSWORD}\n', "not a valid TOML"),
    ({}, f'username = "gmsd"\npassword = "{PASSWORD}"\nrealm = "x"\n', "realm"),
])
def test_bad_credentials_stop_start_up_without_showing_a_password(
        tmp_path: Path, environ: dict[str, str], text: str | None, problem: str) -> None:
    if text is not None:
        path = tmp_path / "credentials.toml"
        path.write_text(text)
        environ = {**environ, "GMSD_AUTH_FILE": str(path)}
    with pytest.raises(ConfigError) as error:
        load(environ)
    assert problem in str(error.value)
    assert PASSWORD not in str(error.value) and "pässword" not in str(error.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the credentials file"):
        load({"GMSD_AUTH_FILE": str(tmp_path / "nowhere.toml")}, SAMPLE_CONFIG)


# --- never logged -----------------------------------------------------------------------------

def test_credentials_are_never_logged(protected: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    protected.post(f"{GMS}/storage", data={"a": "1"}, headers=GOOD)
    protected.post(f"{GMS}/storage", data={"a": "1"}, headers=basic("gmsd", PASSWORD + "-wrong"))
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert "request" in logged
    for secret in (PASSWORD, GOOD["authorization"].split()[1], "wrong"):
        assert secret not in logged


def test_a_served_gmsd_takes_credentials_from_its_environment(tmp_path: Path) -> None:
    served = Served(tmp_path, env={**ENV, "GMSD_CONFIG": "", "GMSD_AUTH_FILE": ""})
    try:
        assert httpx.post(served.base + f"{GMS}/storage", data={"a": "1"}).status_code == 401
        assert httpx.post(served.base + f"{GMS}/storage", data={"a": "1"}, headers=GOOD).status_code == 200
        assert httpx.get(served.base + "/readyz").status_code == 200
    finally:
        served.stop()
    output = served.output()
    assert "authentication: HTTP Basic" in output
    assert PASSWORD not in output and GOOD["authorization"].split()[1] not in output


def test_a_value_decided_once_is_still_checked_against_every_other(protected: TestClient) -> None:
    token = GOOD["authorization"].split(" ", 1)[1]
    spellings = [f"Basic {token}", f"basic {token}", f"BASIC  {token}", f"Basic {token} "]
    for _ in range(2):  # the second time, each spelling is a value already decided
        for spelling in spellings:
            assert protected.get(f"{CS}/customers/c1/services", headers={"authorization": spelling}).status_code == 200
    # Decided values do not open the door to others: a wrong pair, a truncated token, another scheme.
    for wrong in (basic("gmsd", PASSWORD + "x")["authorization"], f"Basic {token[:-2]}", f"Bearer {token}"):
        assert_refused(protected.get(f"{CS}/customers/c1/services", headers={"authorization": wrong}), cs=True)


def test_the_decided_values_are_bounded(protected: TestClient) -> None:
    token = GOOD["authorization"].split(" ", 1)[1]
    # Any number of accepted spellings (spaces before the token are allowed): at most 64 are kept.
    for spaces in range(1, 101):
        spelling = "Basic" + " " * spaces + token
        assert protected.get(f"{CS}/customers/c1/services", headers={"authorization": spelling}).status_code == 200
    guards = {getattr(route.guard, "authenticator", route.guard)  # a route's guard, or the one it defers to
              for route in protected.app.router.routes if getattr(route, "guard", None)}  # type: ignore[attr-defined]
    (authenticator,) = guards
    assert len(authenticator.accepted_global) == 64
