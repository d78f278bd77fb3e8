"""CORS (API.md §0, "Browsers (CORS)") through the real ASGI application: the preflight of every
route, `Access-Control-Allow-Origin` on every answer for an allowed origin (200, 4xx, 401, 503 and
500 included), nothing for other origins, and nothing at all while `[cors]` is not configured."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from gmsd.config import parse_config
from gmsd.errors import ConfigError
from gmsd.main import create_app
from gmsd.settings import Settings
from gmsd.web.auth import load_credentials
from gmsd.web.cors import origin_pattern
from gmsd.web.routing import Resource
from tests.conftest import free_port

ALLOWED = "http://app.example.com"
OTHER = "http://evil.example.org"
CONFIG = f"""
[cors]
allowed_origins = ["{ALLOWED}", "https://*.example.net"]

[services.storage]
_ttl = 600
"""
GMS = "/genesys/1/service"
CS = "/genesys/1/cs"
BROWSER_HEADERS = "gms_user, contactcenterid, authorization, content-type"
ACAO = "access-control-allow-origin"


def app_client(config: str = CONFIG, auth: dict[str, str] | None = None, redis_url: str | None = None,
               **kwargs: Any) -> TestClient:
    parsed = parse_config(config, "<test>")
    credentials = None if auth is None else load_credentials(parsed, auth)
    return TestClient(create_app(Settings(redis_url, parsed, credentials=credentials)), **kwargs)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with app_client() as client:
        yield client


def preflight(client: TestClient, path: str, method: str, origin: str = ALLOWED) -> httpx.Response:
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": BROWSER_HEADERS})


def concrete(template: str) -> str:
    """A path that fits `template` (`{key:path}` and friends filled in)."""
    return re.sub(r"{[^}]+}", "x1", template)


def test_every_route_and_method_answers_the_preflight(client: TestClient) -> None:
    resources = [route for route in client.app.router.routes if isinstance(route, Resource)]  # type: ignore[attr-defined]
    assert len(resources) > 20
    for route in resources:
        for method in route.handlers:
            answer = preflight(client, concrete(route.path), method)
            assert answer.status_code == 200, (route.path, method, answer.text)
            assert answer.headers[ACAO] == ALLOWED
            assert method in answer.headers["access-control-allow-methods"]
            allowed = answer.headers["access-control-allow-headers"].lower()
            assert {"gms_user", "contactcenterid", "authorization", "groupid"} <= set(allowed.split(", "))
            assert answer.headers["access-control-max-age"] == "600"


def test_answers_carry_the_origin_for_allowed_origins_only(client: TestClient) -> None:
    created = client.post(f"{GMS}/storage", data={"a": "1"}, headers={"Origin": ALLOWED, "gms_user": "u1"})
    assert created.status_code == 200
    assert created.headers[ACAO] == ALLOWED
    assert "Origin" in created.headers["vary"]
    sid = created.json()["id"]
    read = client.get(f"{GMS}/{sid}/storage", headers={"Origin": ALLOWED})
    assert read.json() == {"a": "1"} and read.headers[ACAO] == ALLOWED
    started = client.post(f"{CS}/services/start", json={"customer_id": "C1"}, headers={"Origin": ALLOWED})
    assert started.status_code == 201 and started.headers["location"]
    # A page may read where the service is, the request id and a download's file name.
    exposed = started.headers["access-control-expose-headers"].split(", ")
    assert {"Location", "X-Request-ID", "Retry-After", "Content-Disposition"} <= set(exposed)
    errors = {
        404: client.post(f"{GMS}/no-such-service", headers={"Origin": ALLOWED}),
        400: client.post(f"{CS}/services/start", json={"customer_id": 5}, headers={"Origin": ALLOWED}),
        405: client.put(f"{GMS}/{sid}/storage", headers={"Origin": ALLOWED}),
    }
    for status, answer in errors.items():
        assert answer.status_code == status, answer.text
        assert answer.headers.get(ACAO) == ALLOWED, status
        assert "message" in answer.json(), status  # errors keep their JSON body
    other = client.get(f"{GMS}/{sid}/storage", headers={"Origin": OTHER})
    assert other.status_code == 200 and other.json() == {"a": "1"}  # the server serves; the browser refuses
    assert ACAO not in other.headers
    assert ACAO not in client.get(f"{GMS}/{sid}/storage").headers  # no Origin: not a CORS request


def test_a_preflight_from_another_origin_gets_no_allow_origin(client: TestClient) -> None:
    answer = preflight(client, f"{GMS}/storage", "POST", OTHER)
    assert answer.status_code == 400  # Starlette's plain-text refusal (the contract's one exception)
    assert ACAO not in answer.headers
    assert "origin" in answer.text


def test_a_preflight_asking_for_a_header_not_allowed_is_refused(client: TestClient) -> None:
    answer = client.options(f"{GMS}/storage", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST",
                                                       "Access-Control-Request-Headers": "x-secret-header"})
    assert answer.status_code == 400
    assert "headers" in answer.text


def test_wildcard_origins_match_subdomains_only(client: TestClient) -> None:
    for origin, allowed in [("https://a.example.net", True), ("https://a.b.example.net", True),
                            ("https://example.net", False), ("https://evil-example.net", False),
                            ("http://a.example.net", False), ("https://a.example.net.evil.org", False)]:
        answer = preflight(client, f"{GMS}/storage", "POST", origin)
        assert (answer.headers.get(ACAO) == origin) is allowed, origin
        assert answer.status_code == (200 if allowed else 400), origin


def test_401_carries_the_origin_and_the_preflight_needs_no_credentials() -> None:
    with app_client(auth={"GMSD_AUTH_USERNAME": "gmsd", "GMSD_AUTH_PASSWORD": "s3cret"}) as client:
        assert preflight(client, f"{GMS}/storage", "POST").status_code == 200  # browsers send no credentials
        refused = client.post(f"{GMS}/storage", data={"a": "1"}, headers={"Origin": ALLOWED})
        assert refused.status_code == 401
        assert refused.headers[ACAO] == ALLOWED
        assert "message" in refused.json()
        accepted = client.post(f"{GMS}/storage", data={"a": "1"}, headers={"Origin": ALLOWED},
                               auth=("gmsd", "s3cret"))
        assert accepted.status_code == 200 and accepted.headers[ACAO] == ALLOWED


def test_503_when_redis_is_unreachable_carries_the_origin() -> None:
    config = CONFIG + "\n[redis]\ntimeout = 0.3\n"
    with app_client(config, redis_url=f"redis://127.0.0.1:{free_port()}/0") as client:
        answer = client.post(f"{GMS}/storage", data={"a": "1"}, headers={"Origin": ALLOWED})
    assert answer.status_code == 503
    assert answer.headers[ACAO] == ALLOWED
    assert "message" in answer.json()


def test_500_of_an_unhandled_error_carries_the_origin() -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    client = app_client(raise_server_exceptions=False)
    client.app.router.routes.append(Resource("/boom", {"GET": boom}))  # type: ignore[attr-defined]
    with client:
        answer = client.get("/boom", headers={"Origin": ALLOWED})
    assert answer.status_code == 500
    assert answer.json() == {"message": "internal server error"}
    assert answer.headers[ACAO] == ALLOWED
    assert answer.headers["x-request-id"]


def test_503_of_the_concurrency_limit_carries_the_origin() -> None:
    parsed = parse_config(CONFIG + "\n[limits]\nmax_concurrent_requests = 1\n", "<test>")
    app = create_app(Settings(None, parsed))
    release = asyncio.Event()

    async def hold(request: Request) -> Response:
        await release.wait()
        return Response("held")

    app.router.routes.append(Resource("/hold", {"GET": hold}))

    async def run() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gmsd") as http:
            held = asyncio.ensure_future(http.get("/hold", headers={"Origin": ALLOWED}))
            for _ in range(100):  # until the held request is in progress
                await asyncio.sleep(0.01)
                if app.middleware_stack is not None and app.middleware_stack.in_progress == 1:  # type: ignore[attr-defined]
                    break
            refused = await http.get(f"{GMS}/x1/storage", headers={"Origin": ALLOWED})
            release.set()
            return await held, refused

    held, refused = asyncio.run(run())
    assert held.status_code == 200 and held.headers[ACAO] == ALLOWED
    assert refused.status_code == 503
    assert refused.headers[ACAO] == ALLOWED
    assert refused.headers["retry-after"] == "1"


def test_off_by_default_no_preflight_and_no_headers() -> None:
    with app_client("[services.storage]\n_ttl = 60\n") as client:
        answer = preflight(client, f"{GMS}/storage", "POST")
        assert answer.status_code == 405  # OPTIONS is no method of the resource
        assert ACAO not in answer.headers
        created = client.post(f"{GMS}/storage", headers={"Origin": ALLOWED})
        assert created.status_code == 200 and ACAO not in created.headers


def test_credentials_allowed_mirror_the_origin_even_for_a_star() -> None:
    config = '[cors]\nallowed_origins = ["*"]\nallow_credentials = true\nmax_age = 60\n'
    with app_client(config) as client:
        answer = preflight(client, f"{GMS}/storage", "POST", OTHER)
        assert answer.status_code == 200
        assert answer.headers[ACAO] == OTHER  # a browser refuses `*` with credentials
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert answer.headers["access-control-max-age"] == "60"
    with app_client('[cors]\nallowed_origins = ["*"]\n') as client:
        assert client.get("/healthz", headers={"Origin": OTHER}).headers[ACAO] == "*"


@pytest.mark.parametrize(("section", "problem"), [
    ('allowed_origins = ["app.example.com"]', "is not an origin"),
    ('allowed_origins = ["https://app.example.com/path"]', "is not an origin"),
    ('allowed_origins = ["https://a.*.example.com"]', "is not an origin"),
    ('allowed_origins = ["*"]\nallowed_headers = ["gms user"]', "not a header or method name"),
    ('allowed_origins = ["*"]\nmax_age = -1', "max_age"),
    ('allowed_origin = ["*"]', "allowed_origin"),
])
def test_an_invalid_cors_section_stops_the_start_naming_the_key(section: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        parse_config(f"[cors]\n{section}\n", "gmsd.toml")


def test_origin_pattern_is_none_without_wildcards() -> None:
    assert origin_pattern(("https://a.example.com", "*")) is None
    pattern = origin_pattern(("https://*.example.com",))
    assert pattern is not None and re.fullmatch(pattern, "https://x.example.com")
