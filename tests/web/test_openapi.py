"""The OpenAPI document: served at /openapi.json, valid, and describing exactly the routes that exist."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from gmsd.config import load_config
from gmsd.cs.routes import CS
from gmsd.main import create_app
from gmsd.settings import Settings
from gmsd.web.openapi import Answer, build_document, openapi_path, path_parameter_names
from gmsd.web.routing import Resource

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    found: dict[str, Any] = response.json()
    return found


def test_the_document_is_valid_openapi_and_built_once(client: TestClient) -> None:
    served = document(client)
    validate(served)  # raises with the first problem
    assert served["openapi"].startswith("3.1")
    assert client.get("/openapi.json").content == client.app.state.openapi  # the bytes encoded at start-up


def test_every_route_is_described_and_nothing_else(client: TestClient) -> None:
    served = document(client)
    routed = {(openapi_path(route.path), method.lower())
              for route in client.app.routes for method in route.methods if method != "HEAD"}
    described = {(path, method) for path, item in served["paths"].items() for method in item if method in HTTP_METHODS}
    assert routed == described
    assert len(routed) > 40
    for route in client.app.routes:
        for method, operation in served["paths"][openapi_path(route.path)].items():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            assert names == path_parameter_names(route.path), (route.path, method)
            assert operation["responses"], (route.path, method)


def test_every_error_answer_has_the_side_s_error_body(client: TestClient) -> None:
    served = document(client)
    schemas = served["components"]["schemas"]
    assert schemas["GmsErrorBody"]["required"] == ["message"]
    assert schemas["CsErrorBody"]["required"] == ["message", "exception"]
    for path, item in served["paths"].items():
        error = "CsErrorBody" if path.startswith("/genesys/1/cs") else "GmsErrorBody"
        for operation in item.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and path != "/readyz":
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref == f"#/components/schemas/{error}", (path, status)


def test_the_documented_gms_500_is_only_where_json_is_read(client: TestClient) -> None:
    served = document(client)
    with_500 = {(path, method) for path, item in served["paths"].items()
                for method, operation in item.items() if "500" in operation["responses"]}
    assert with_500 == {
        ("/genesys/1/service/{name}", "post"), ("/genesys/1/service/{name}", "put"),
        ("/genesys/1/service/{id}/storage", "post"), ("/genesys/1/service/{id}/{request}", "post"),
        ("/genesys/1/storage/{id}", "post"), ("/genesys/1/storage/{id}/{key}", "post"),
        ("/genesys/1/storage/custom/{customId}", "post"), ("/genesys/1/storage/custom/{customId}/{key}", "post"),
    }


def test_context_services_bodies_are_the_msgspec_structs(client: TestClient) -> None:
    served = document(client)
    start = served["paths"]["/genesys/1/cs/services/start"]["post"]
    body = start["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/ServiceStartEvent"
    assert {"customer_id", "contact_key", "service_type", "ttl"} <= served["components"]["schemas"][
        "ServiceStartEvent"]["properties"].keys()
    answer = start["responses"]["201"]
    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ServiceStarted"}
    assert "Location" in answer["headers"]
    listed = served["paths"]["/genesys/1/cs/customers/{customer_id}/services/active"]["get"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/Service"}}


async def _undescribed(request: Request) -> Response:
    return Response()


async def _described(request: Request) -> Response:
    return Response()


def test_a_route_without_a_description_stops_the_build() -> None:
    with pytest.raises(ValueError, match="no description"):
        build_document([Resource("/nowhere", {"GET": _undescribed})], title="t", version="0")
    described = CS.operation("somewhere", answers={200: Answer("ok")})(_described)
    with pytest.raises(ValueError, match="not described"):
        build_document([Resource("/x/{unknown}", {"GET": described})], title="t", version="0")


def test_starting_the_app_fails_if_a_route_is_not_described(monkeypatch: pytest.MonkeyPatch) -> None:
    from gmsd.web import ops as ops_routes

    monkeypatch.setattr(ops_routes, "routes", [*ops_routes.routes, Resource("/extra", {"GET": _undescribed})])
    with pytest.raises(ValueError, match="/extra"):
        create_app(Settings(None, load_config(None)))
