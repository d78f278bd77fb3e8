"""HTTP handlers of the GMS Service API (`/genesys/1/service…`): parse, call `ServiceApi`, answer."""

from __future__ import annotations

import re
from urllib.parse import quote

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.exceptions import BadRequest, CouldNotReadJson
from app.gms import ServiceApi
from app.request_body import read_body, read_parameters
from app.responses import json_response
from app.timestamps import parse_timestamp

_OK: dict[str, str] = {}


class ExpirationUpdate(msgspec.Struct, forbid_unknown_fields=False):
    """Body of `PUT /genesys/1/service/{id}` (Update Conversation Expiration)."""

    ttl: int | None = None
    expiration_time: str | None = None


_expiration = msgspec.json.Decoder(ExpirationUpdate)


def _api(request: Request) -> ServiceApi:
    api: ServiceApi = request.app.state.gms
    return api


async def create_service(request: Request) -> Response:
    """POST /genesys/1/service/{name}: create an instance of a configured service."""
    api = _api(request)
    params = await read_parameters(request, api.limits)
    return json_response(await api.create(request.path_params["name"], params))


async def service_request(request: Request) -> Response:
    """POST /genesys/1/service/{id}/{request}: a service-specific request."""
    api = _api(request)
    params = await read_parameters(request, api.limits)
    p = request.path_params
    return json_response(await api.request(p["id"], p["request"], params))


async def update_expiration(request: Request) -> Response:
    """PUT /genesys/1/service/{id}: new expiry from `ttl` (seconds) or `expiration_time`."""
    api = _api(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = {k: v for k, v in await read_parameters(request, api.limits) if isinstance(v, str)}
        try:
            update = msgspec.convert(form, ExpirationUpdate, strict=False)
        except msgspec.ValidationError as exc:
            raise BadRequest(f"invalid expiration update: {exc}") from None
    else:
        body = await read_body(request, api.limits)
        try:
            update = _expiration.decode(body)
        except msgspec.ValidationError as exc:
            raise BadRequest(f"invalid expiration update: {exc}") from None
        except msgspec.DecodeError as exc:
            raise CouldNotReadJson(str(exc)) from None
    expire_at = None
    if update.ttl is None and update.expiration_time is not None:
        try:
            expire_at = parse_timestamp(update.expiration_time)
        except ValueError:
            raise BadRequest(f"`expiration_time` {update.expiration_time!r} is not ISO 8601") from None
    await api.expire(request.path_params["id"], update.ttl, expire_at)
    return json_response(_OK)


async def delete_service(request: Request) -> Response:
    """DELETE /genesys/1/service/{id}: the service and its storage."""
    await _api(request).delete_service(request.path_params["id"])
    return json_response(_OK)


async def storage(request: Request) -> Response:
    """GET, POST, DELETE /genesys/1/service/{id}/storage."""
    api = _api(request)
    service_id = request.path_params["id"]
    if request.method == "GET":
        return json_response(await api.read_all(service_id))
    if request.method == "POST":
        await api.write(service_id, await read_parameters(request, api.limits))
    else:
        await api.clear(service_id)
    return json_response(_OK)


async def storage_key(request: Request) -> Response:
    """GET, DELETE /genesys/1/service/{id}/storage/{key}."""
    api = _api(request)
    p = request.path_params
    if request.method == "GET":
        return json_response(await api.read_one(p["id"], p["key"]))
    await api.delete_key(p["id"], p["key"])
    return json_response(_OK)


async def storage_binary(request: Request) -> Response:
    """GET /genesys/1/service/{id}/storage/binary/{key}: the exact bytes with their type."""
    p = request.path_params
    value = await _api(request).read_binary(p["id"], p["key"])
    headers = {}
    if value.filename is not None:
        headers["content-disposition"] = _disposition(value.filename)
    return Response(value.data, 200, headers, media_type=value.content_type)


def _disposition(filename: str) -> str:
    quoted = quote(filename, safe=" !#$&+-.^_`|~")
    if quoted == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


def _keys_may_span_lines(route: Route) -> Route:
    """Let the route's `{key:path}` match line breaks too: Starlette's `path` stops at one, and a
    key that can be written must be readable. (The template, hence the metrics label, is kept.)"""
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


PREFIX = "/genesys/1/service"

routes = [
    Route(PREFIX + "/{id}/storage", storage, methods=["GET", "POST", "DELETE"]),
    _keys_may_span_lines(Route(PREFIX + "/{id}/storage/binary/{key:path}", storage_binary, methods=["GET"])),
    _keys_may_span_lines(Route(PREFIX + "/{id}/storage/{key:path}", storage_key, methods=["GET", "DELETE"])),
    Route(PREFIX + "/{name}", create_service, methods=["POST"]),
    Route(PREFIX + "/{id}", update_expiration, methods=["PUT"]),
    Route(PREFIX + "/{id}", delete_service, methods=["DELETE"]),
    Route(PREFIX + "/{id}/{request}", service_request, methods=["POST"]),
]
