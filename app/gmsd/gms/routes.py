"""HTTP handlers of the GMS Service API (`/genesys/1/service…`): parse, call `ServiceApi`, answer.

One handler per route and method, each described for the OpenAPI document (`gmsd.web.openapi`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gmsd.errors import BadRequest, CouldNotReadJson
from gmsd.gms.json_values import json_parameters
from gmsd.gms.models import BinaryValue, ServiceExpirationUpdate
from gmsd.gms.service_api import ServiceApi
from gmsd.gms.storage_api import StorageApi
from gmsd.timestamps import instant
from gmsd.types import Parameters
from gmsd.web.body import read_body, read_parameters, require_utf8
from gmsd.web.downloads import CHUNK_BYTES, DOWNLOAD_HEADERS, Download, DownloadLane, attachment
from gmsd.web.openapi import JSON, Answer, Api, Param
from gmsd.web.paths import GMS_PREFIX, STORAGE_PREFIX
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
_MATCH = {"type": "object", "required": ["_id", "_data_id"],
          "properties": {"_id": _STRING, "_data_id": _STRING}, "additionalProperties": _STRING}
_CREATED = {
    "type": "object",
    "properties": {"_id": _STRING, "id": _STRING, "_data_id": _STRING, "_access_number": _STRING,
                   "_access_code": _STRING, "_expiration_time": {"type": "integer"},
                   "matches": {"type": "array", "items": _MATCH}},
    "description": "the new service id (`_id` and `id`), plus what an `ors` orchestration answered. "
                   "`request-interaction` and `request-access` add `_access_number`, `_expiration_time` "
                   "(seconds the reservation lasts) and, when asked for, `_access_code`; `match-interaction` "
                   "answers the matched service's `_id` and `_data_id` (with `_return_user_data`, its string "
                   "keys too), or `matches`, a list of them, with `_return_multiple_matches`",
}
_CREATE_UNAVAILABLE = Answer("storage unavailable (Redis cannot be reached), or every access number of the "
                             "resource group is reserved (`request-interaction`, `request-access`)",
                             {JSON: GmsErrorBody})
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
               answers={200: Answer("created", {JSON: _CREATED}), 503: _CREATE_UNAVAILABLE},
               errors=(400, 404, 413, 415, 500, 502, 504),
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


_BINARY_ANSWER = {200: Answer("the exact bytes (a string key: its UTF-8 text)",
                             {"*/*": {"type": "string", "contentMediaType": "application/octet-stream"}},
                             {"Content-Disposition": "always `attachment`, with the file name when known",
                              "X-Content-Type-Options": "`nosniff`",
                              "Content-Security-Policy": "`default-src 'none'; sandbox`"})}
_LARGE_VALUES = ("Values over `[limits] large_value_bytes` are read on a connection of their own, at most "
                 "`large_reads` at once per worker; past `large_read_wait` without a place: 503.")


@GMS.operation("One key as bytes, with the content type and file name it was uploaded with",
               answers=_BINARY_ANSWER, errors=(503,), description=_LARGE_VALUES)
async def storage_binary(request: Request) -> Response:
    """GET /genesys/1/service/{id}/storage/binary/{key}: the exact bytes with their type."""
    p, api = request.path_params, _api(request)
    return await _binary(request, lambda large: api.read_binary(p["id"], p["key"], large))


async def _binary(request: Request, read: Callable[[bool], Awaitable[BinaryValue]]) -> Response:
    """Serve one value: small ones in one write, large ones on their own lane and connection."""
    value = await read(False)
    leave = None
    if value.deferred_size is not None:  # a large value: its own lane and Redis connection
        lane: DownloadLane = request.app.state.large_reads
        leave = await lane.enter()
        try:
            value = await read(True)
        except BaseException:
            leave()
            raise
    # The type exactly as uploaded (as `media_type`, Starlette would add a charset to text/*).
    # Whatever that type and the file name: a download, never a page a browser renders or runs
    # on gmsd's origin (a `text/html` upload is a stored script otherwise).
    headers = {"content-type": value.content_type, **DOWNLOAD_HEADERS,
               "content-disposition": attachment(value.filename)}
    if leave is None and len(value.data) <= CHUNK_BYTES:
        return Response(value.data, 200, headers)  # one write
    return Download(value.data, headers, leave)


# --- the Storage API (`/genesys/1/storage…`) -------------------------------------------------

_AREA_ID = {"type": "object", "required": ["id"], "properties": {"id": _STRING}}
_TTL_TEXT = ("the lifetime in seconds; anything but a whole number from 1 to 2147483647 means 30 s "
             "(GMS: an incorrect value is not an error)")
_GMS_USER = Param("gms_user", "header", _STRING, "the user a custom id belongs to (required: 400 without it)",
                  required=True)
STORAGE = Api("Storage API", GmsErrorBody, {
    "id": Param("id", "path", _STRING, "POST: the lifetime of the new area (" + _TTL_TEXT + "); GET and "
                "DELETE: an area id as answered by create, or a service id (its `_data_id`)"),
    "area": Param("area", "path", _STRING, "an area id as answered by create, or a service id (its `_data_id`)"),
    "key": Param("key", "path", _STRING, "GET and DELETE: a storage key; POST: " + _TTL_TEXT),
    "customId": Param("customId", "path", _STRING, "the client's own id for the area, scoped by `gms_user`"),
})
_UPDATED = {200: Answer("updated (no body)")}


def _storage(request: Request) -> StorageApi:
    api: StorageApi = request.app.state.storage
    return api


async def _storage_parameters(request: Request) -> tuple[StorageApi, Parameters]:
    api = _storage(request)
    return api, await read_parameters(request, api.limits, json_parameters)


def _custom_area(request: Request) -> str:
    return _storage(request).custom_area_id(request.headers.get("gms_user"), request.path_params["customId"])


@STORAGE.operation("Create a storage area with a lifetime", body=_PARAMETERS,
                   answers={200: Answer("created", {JSON: _AREA_ID})}, errors=(400, 413, 415, 500, 503))
async def storage_create(request: Request) -> Response:
    """POST /genesys/1/storage/{ttl}: a new area with the body's keys."""
    api, params = await _storage_parameters(request)
    return json_response(await api.create(request.path_params["id"], params))


@STORAGE.operation("Add or replace keys of an area; its lifetime starts again", body=_PARAMETERS,
                   answers=_UPDATED, errors=(400, 413, 415, 500, 503),
                   description="For a service's storage the `{ttl}` is ignored: service and storage expire together.")
async def storage_update(request: Request) -> Response:
    """POST /genesys/1/storage/{id}/{ttl}."""
    api, params = await _storage_parameters(request)
    p = request.path_params
    await api.update(api.area_id(p["id"]), p["key"], params)
    return Response(b"", 200)


@STORAGE.operation("Every string key of an area", answers={200: Answer("key -> value", {JSON: _STRINGS})},
                   errors=(503,))
async def storage_read(request: Request) -> Response:
    """GET /genesys/1/storage/{id}: every string key (files are not listed)."""
    api = _storage(request)
    return json_response(await api.read_all(api.area_id(request.path_params["id"])))


@STORAGE.operation("Delete an area (a service's storage: empty it, the service stays)", answers=_OK_ANSWER,
                   errors=(503,))
async def storage_delete(request: Request) -> Response:
    """DELETE /genesys/1/storage/{id}."""
    api = _storage(request)
    await api.delete(api.area_id(request.path_params["id"]))
    return json_response(_OK)


_ONE_KEY = {200: Answer("{key: value}", {JSON: _STRINGS | {"minProperties": 1, "maxProperties": 1}})}


@STORAGE.operation("One string key of an area", answers=_ONE_KEY, errors=(503,))
async def storage_read_key(request: Request) -> Response:
    """GET /genesys/1/storage/{id}/{key}."""
    api = _storage(request)
    p = request.path_params
    return json_response(await api.read_one(api.area_id(p["id"]), p["key"]))


@STORAGE.operation("Delete one key of an area, string or file (a missing key is not an error)",
                   answers=_OK_ANSWER, errors=(503,))
async def storage_delete_key(request: Request) -> Response:
    """DELETE /genesys/1/storage/{id}/{key}."""
    api = _storage(request)
    p = request.path_params
    await api.delete_key(api.area_id(p["id"]), p["key"])
    return json_response(_OK)


@STORAGE.operation("One key of an area as bytes, with the content type and file name it was uploaded with",
                   answers=_BINARY_ANSWER, errors=(503,))
async def storage_read_binary(request: Request) -> Response:
    """GET /genesys/1/storage/{area}/binary/{key}."""
    api = _storage(request)
    p = request.path_params
    area = api.area_id(p["area"])
    return await _binary(request, lambda large: api.read_binary(area, p["key"], large))


@STORAGE.operation("Create or update the area of a custom id, living 30 s", body=_PARAMETERS, params=(_GMS_USER,),
                   answers={200: Answer("stored", {JSON: _AREA_ID})}, errors=(400, 413, 415, 500, 503),
                   description="The given keys are written, other keys stay; the area lives 30 s from now.")
async def custom_store_default(request: Request) -> Response:
    """POST /genesys/1/storage/custom/{customId}: store-or-update, ttl 30."""
    api, params = await _storage_parameters(request)
    return json_response(await api.store_custom(request.headers.get("gms_user"), request.path_params["customId"],
                                                "", params))


@STORAGE.operation("Create or update the area of a custom id with a lifetime", body=_PARAMETERS,
                   params=(_GMS_USER,), answers={200: Answer("stored", {JSON: _AREA_ID})},
                   errors=(400, 413, 415, 500, 503),
                   description="The given keys are written, other keys stay; the area lives `{ttl}` from now.")
async def custom_store(request: Request) -> Response:
    """POST /genesys/1/storage/custom/{customId}/{ttl}: store-or-update."""
    api, params = await _storage_parameters(request)
    p = request.path_params
    return json_response(await api.store_custom(request.headers.get("gms_user"), p["customId"], p["key"], params))


@STORAGE.operation("Every string key of a custom id's area", params=(_GMS_USER,),
                   answers={200: Answer("key -> value", {JSON: _STRINGS})}, errors=(400, 503))
async def custom_read(request: Request) -> Response:
    """GET /genesys/1/storage/custom/{customId}."""
    return json_response(await _storage(request).read_all(_custom_area(request), request.path_params["customId"]))


@STORAGE.operation("Delete a custom id's area", params=(_GMS_USER,), answers=_OK_ANSWER, errors=(400, 503))
async def custom_delete(request: Request) -> Response:
    """DELETE /genesys/1/storage/custom/{customId}."""
    await _storage(request).delete(_custom_area(request), request.path_params["customId"])
    return json_response(_OK)


@STORAGE.operation("One string key of a custom id's area", params=(_GMS_USER,), answers=_ONE_KEY,
                   errors=(400, 503))
async def custom_read_key(request: Request) -> Response:
    """GET /genesys/1/storage/custom/{customId}/{key}."""
    p = request.path_params
    return json_response(await _storage(request).read_one(_custom_area(request), p["key"], p["customId"]))


@STORAGE.operation("Delete one key of a custom id's area (a missing key is not an error)", params=(_GMS_USER,),
                   answers=_OK_ANSWER, errors=(400, 503))
async def custom_delete_key(request: Request) -> Response:
    """DELETE /genesys/1/storage/custom/{customId}/{key}."""
    p = request.path_params
    await _storage(request).delete_key(_custom_area(request), p["key"], p["customId"])
    return json_response(_OK)


@STORAGE.operation("One key of a custom id's area as bytes", params=(_GMS_USER,), answers=_BINARY_ANSWER,
                   errors=(400, 503))
async def custom_read_binary(request: Request) -> Response:
    """GET /genesys/1/storage/custom/{customId}/binary/{key}."""
    api, area = _storage(request), _custom_area(request)
    return await _binary(request, lambda large: api.read_binary(area, request.path_params["key"], large))


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

STORAGE_ROUTES = [
    Resource(STORAGE_PREFIX + "/custom/{customId}", {"POST": custom_store_default, "GET": custom_read,
                                                     "DELETE": custom_delete}),
    Resource(STORAGE_PREFIX + "/custom/{customId}/binary/{key:path}", {"GET": custom_read_binary}),
    Resource(STORAGE_PREFIX + "/custom/{customId}/{key:path}", {"POST": custom_store, "GET": custom_read_key,
                                                                "DELETE": custom_delete_key}),
    # `{id}` is the new area's ttl for POST and an area id for GET and DELETE; under it, `{key}`
    # is the ttl for POST and a key for GET and DELETE: one name per position (see above).
    Resource(STORAGE_PREFIX + "/{id}", {"POST": storage_create, "GET": storage_read, "DELETE": storage_delete}),
    Resource(STORAGE_PREFIX + "/{area}/binary/{key:path}", {"GET": storage_read_binary}),
    Resource(STORAGE_PREFIX + "/{id}/{key:path}", {"POST": storage_update, "GET": storage_read_key,
                                                   "DELETE": storage_delete_key}),
]
routes += STORAGE_ROUTES
