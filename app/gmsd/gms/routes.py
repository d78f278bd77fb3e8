"""HTTP handlers of the GMS Service API (`/genesys/1/service…`): parse, call `ServiceApi`, answer.

One handler per route and method, each described for the OpenAPI document (`gmsd.web.openapi`).
"""

from __future__ import annotations

from urllib.parse import quote

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gmsd.errors import BadRequest, CouldNotReadJson
from gmsd.gms.json_values import json_parameters
from gmsd.gms.models import ServiceExpirationUpdate
from gmsd.gms.service_api import ServiceApi
from gmsd.timestamps import instant
from gmsd.web.body import read_body, read_parameters, require_utf8
from gmsd.web.downloads import CHUNK_BYTES, Download, DownloadLane
from gmsd.web.openapi import JSON, Answer, Api, Param
from gmsd.web.paths import GMS_PREFIX
from gmsd.web.responses import GmsErrorBody, json_response
from gmsd.web.routing import Resource

_OK: dict[str, str] = {}


_expiration = msgspec.json.Decoder(ServiceExpirationUpdate)

# --- what the OpenAPI document says ----------------------------------------------------------

_STRING = {"type": "string"}
# Form fields are text on the wire whatever they hold: any name, any value.
_PARAMETERS = {
    "multipart/form-data": {
        "type": "object",
        "description": "text parts are stored as strings, parts with a filename as files (bytes, "
                       "content type, file name); names starting with `_` are not stored",
    },
    "application/x-www-form-urlencoded": {
        "type": "object",
        "description": "stored as strings; names starting with `_` are not stored",
    },
    JSON: {
        "type": "object",
        "description": "values are stored as their GMS string form: a number as its JSON text, "
                       "`true`/`false`/`null` as words, objects as `{k=v, …}`, arrays as `[a, b]`",
    },
}
_EMPTY = {"type": "object", "maxProperties": 0}
_STRINGS = {"type": "object", "additionalProperties": _STRING}
_OK_ANSWER = {200: Answer("done", {JSON: _EMPTY})}
_CREATED = {
    "type": "object", "required": ["_id", "id"],
    "properties": {"_id": _STRING, "id": _STRING},
    "description": "the new service id (twice), plus what an `ors` orchestration answered",
}
_EXPIRATION = {
    JSON: ServiceExpirationUpdate,
    "application/x-www-form-urlencoded": ServiceExpirationUpdate,
    "multipart/form-data": ServiceExpirationUpdate,
}

GMS = Api("Service API", GmsErrorBody, {
    "name": Param("name", "path", _STRING, "POST: the name of a configured service (`[services.<name>]`); "
                  "PUT and DELETE: a service id"),
    "id": Param("id", "path", _STRING, "a service id, as answered by create"),
    "key": Param("key", "path", _STRING, "a storage key"),
    "request": Param("request", "path", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
                     "`update`, or a request an `ors` service forwards (one segment of its URL)"),
})


def _api(request: Request) -> ServiceApi:
    api: ServiceApi = request.app.state.gms
    return api


@GMS.operation("Create an instance of a configured service", body=_PARAMETERS,
               answers={200: Answer("created", {JSON: _CREATED})}, errors=(400, 404, 413, 415, 500, 502, 503, 504),
               description="Parameters not starting with `_` are stored as the service's user data; "
                           "configured parameters replace same-named request parameters.")
async def create_service(request: Request) -> Response:
    """POST /genesys/1/service/{name}: create an instance of a configured service."""
    api = _api(request)
    params = await read_parameters(request, api.limits, json_parameters)
    return json_response(await api.create(request.path_params["name"], params))


@GMS.operation("A service-specific request (`update`, or forwarded by an `ors` service)", body=_PARAMETERS,
               answers={200: Answer("done: `{}` for `update`, else the orchestration's answer",
                                    {JSON: {"type": "object"}})},
               errors=(400, 413, 415, 500, 502, 503, 504))
async def service_request(request: Request) -> Response:
    """POST /genesys/1/service/{id}/{request}: a service-specific request."""
    api = _api(request)
    params = await read_parameters(request, api.limits, json_parameters)
    p = request.path_params
    return json_response(await api.request(p["id"], p["request"], params))


@GMS.operation("Update the expiry of a service and all its storage", body=_EXPIRATION,
               answers=_OK_ANSWER, errors=(400, 413, 500, 503),
               description="`ttl` (seconds from now) wins over `expiration_time` (ISO 8601, in the future).")
async def update_expiration(request: Request) -> Response:
    """PUT /genesys/1/service/{id}: new expiry from `ttl` (seconds) or `expiration_time`."""
    api = _api(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = {k: v for k, v in await read_parameters(request, api.limits, json_parameters) if isinstance(v, str)}
        try:
            update = msgspec.convert(form, ServiceExpirationUpdate, strict=False)
        except msgspec.ValidationError as exc:
            raise BadRequest(f"invalid expiration update: {exc}") from None
    else:
        body = await read_body(request, api.limits)
        require_utf8(body)
        try:
            update = _expiration.decode(body)
        except msgspec.ValidationError as exc:
            raise BadRequest(f"invalid expiration update: {exc}") from None
        except msgspec.DecodeError as exc:
            raise CouldNotReadJson(str(exc)) from None
        except RecursionError:  # msgspec's bound on nesting: a client mistake, not a server fault
            raise CouldNotReadJson("the body nests objects and arrays too deeply") from None
    expire_at = None
    if update.expiration_time is not None:  # checked even when `ttl` wins over it
        expire_at = instant(update.expiration_time, "expiration_time")
    await api.expire(request.path_params["name"], update.ttl, expire_at)
    return json_response(_OK)


@GMS.operation("Delete a service and its storage", answers=_OK_ANSWER, errors=(503,))
async def delete_service(request: Request) -> Response:
    """DELETE /genesys/1/service/{id}: the service and its storage."""
    await _api(request).delete_service(request.path_params["name"])
    return json_response(_OK)


@GMS.operation("Every string key of a service's storage", answers={200: Answer("key -> value", {JSON: _STRINGS})},
               errors=(503,))
async def read_storage(request: Request) -> Response:
    """GET /genesys/1/service/{id}/storage: every string key (files are not listed)."""
    return json_response(await _api(request).read_all(request.path_params["id"]))


@GMS.operation("Add or replace keys of a service's storage, all at once", body=_PARAMETERS, answers=_OK_ANSWER,
               errors=(400, 413, 415, 500, 503))
async def write_storage(request: Request) -> Response:
    """POST /genesys/1/service/{id}/storage."""
    api = _api(request)
    await api.write(request.path_params["id"], await read_parameters(request, api.limits, json_parameters))
    return json_response(_OK)


@GMS.operation("Delete every key of a service's storage (the service stays)", answers=_OK_ANSWER, errors=(503,))
async def clear_storage(request: Request) -> Response:
    """DELETE /genesys/1/service/{id}/storage."""
    await _api(request).clear(request.path_params["id"])
    return json_response(_OK)


@GMS.operation("One string key of a service's storage",
               answers={200: Answer("{key: value}", {JSON: _STRINGS | {"minProperties": 1, "maxProperties": 1}})},
               errors=(503,))
async def read_key(request: Request) -> Response:
    """GET /genesys/1/service/{id}/storage/{key}."""
    p = request.path_params
    return json_response(await _api(request).read_one(p["id"], p["key"]))


@GMS.operation("Delete one key, string or file (a missing key is not an error)", answers=_OK_ANSWER, errors=(503,))
async def delete_key(request: Request) -> Response:
    """DELETE /genesys/1/service/{id}/storage/{key}."""
    p = request.path_params
    await _api(request).delete_key(p["id"], p["key"])
    return json_response(_OK)


@GMS.operation("One key as bytes, with the content type and file name it was uploaded with",
               answers={200: Answer("the exact bytes (a string key: its UTF-8 text)",
                                    {"*/*": {"type": "string", "contentMediaType": "application/octet-stream"}},
                                    {"Content-Disposition": "always `attachment`, with the file name when known",
                                     "X-Content-Type-Options": "`nosniff`",
                                     "Content-Security-Policy": "`default-src 'none'; sandbox`"})},
               errors=(503,),
               description="Values over `[limits] large_value_bytes` are read on a connection of their own, at most "
                           "`large_reads` at once per worker; past `large_read_wait` without a place: 503.")
async def storage_binary(request: Request) -> Response:
    """GET /genesys/1/service/{id}/storage/binary/{key}: the exact bytes with their type."""
    p = request.path_params
    api = _api(request)
    value = await api.read_binary(p["id"], p["key"])
    leave = None
    if value.deferred_size is not None:  # a large value: its own lane and Redis connection
        lane: DownloadLane = request.app.state.large_reads
        leave = await lane.enter()
        try:
            value = await api.read_binary(p["id"], p["key"], large=True)
        except BaseException:
            leave()
            raise
    # The type exactly as uploaded (as `media_type`, Starlette would add a charset to text/*).
    # Whatever that type and the file name: a download, never a page a browser renders or runs
    # on gmsd's origin (a `text/html` upload is a stored script otherwise).
    headers = {"content-type": value.content_type, **_DOWNLOAD,
               "content-disposition": _disposition(value.filename) if value.filename else "attachment"}
    if leave is None and len(value.data) <= CHUNK_BYTES:
        return Response(value.data, 200, headers)  # one write
    return Download(value.data, headers, leave)


_DOWNLOAD = {"x-content-type-options": "nosniff", "content-security-policy": "default-src 'none'; sandbox"}


def _disposition(filename: str) -> str:
    quoted = quote(filename, safe=" !#$&+-.^_`|~")
    if quoted == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


PREFIX = GMS_PREFIX

# Concrete templates before templated ones: the first template a path fits is its resource.
routes = [
    Resource(PREFIX + "/{id}/storage", {"GET": read_storage, "POST": write_storage, "DELETE": clear_storage}),
    Resource(PREFIX + "/{id}/storage/binary/{key:path}", {"GET": storage_binary}),
    Resource(PREFIX + "/{id}/storage/{key:path}", {"GET": read_key, "DELETE": delete_key}),
    # `{name}` is a configured service's name for POST and a service id for PUT and DELETE: one
    # name per position, or OpenAPI would call the paths identical and the document invalid.
    Resource(PREFIX + "/{name}", {"POST": create_service, "PUT": update_expiration, "DELETE": delete_service}),
    Resource(PREFIX + "/{id}/{request}", {"POST": service_request}),
]
