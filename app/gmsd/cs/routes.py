"""HTTP handlers of Context Services (`/genesys/1/cs…`): services, composite start, queries, states, tasks.

Each handler parses its request, makes one call into the domain (`ContextServices` in
`gmsd.cs.services`, `ConversationItems` in `gmsd.cs.items`, `CompositeStarter` in
`gmsd.cs.composite`, `Maintenance` in `gmsd.cs.maintenance`) and answers. Errors are rendered by
`gmsd.web.responses.error_response` with the `exception` class name Context Services clients expect.
Each handler is described for the OpenAPI document (`gmsd.web.openapi`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gmsd.cs.composite import CompositeStarter
from gmsd.cs.items import STATES, TASKS, ConversationItems
from gmsd.cs.maintenance import ExportQuery, Maintenance, Purge
from gmsd.cs.models import (
    RESERVED_NAMES,
    CompositeAnswer,
    CompositeStart,
    EndEvent,
    ExpirationUpdate,
    FilesAnswer,
    OwnedServiceStartEvent,
    PurgeAnswer,
    PurgeRequest,
    Service,
    ServiceStarted,
    ServiceStartEvent,
    State,
    StateStarted,
    StateStartEvent,
    Task,
    TaskStarted,
    TaskStartEvent,
    TransitionEvent,
    compact,
    decode_document,
    decode_event,
)
from gmsd.cs.queries import ServiceFilter, Which
from gmsd.cs.records import Extensions, View
from gmsd.cs.services import ContextServices
from gmsd.errors import BadRequest
from gmsd.timestamps import instant
from gmsd.web.body import read_body, require_utf8
from gmsd.web.openapi import JSON, Answer, Api, Param
from gmsd.web.paths import CS_PREFIX
from gmsd.web.responses import CsErrorBody, empty_response, json_response
from gmsd.web.routing import Resource
from gmsd.web.tenants import tenant_space

# --- reading requests -------------------------------------------------------------------------

PREFIX = CS_PREFIX
FLAGS = ("active_states", "completed_states", "active_tasks", "completed_tasks")
_QUERY_PARAMETERS = frozenset({*FLAGS, "extensions", "started_from", "started_to", "completed_from",
                               "completed_to", "service_types"})

S = TypeVar("S", bound=msgspec.Struct)


def services(request: Request) -> ContextServices:
    """The service operations for this request, on its tenant's keyspace."""
    api: ContextServices = request.app.state.cs
    space = tenant_space(request)
    return api if space is None else api.in_space(space)


def composite(request: Request) -> CompositeStarter:
    """Composite start for this request, on its tenant's keyspace."""
    api: CompositeStarter = request.app.state.cs_composite
    space = tenant_space(request)
    return api if space is None else api.in_space(space)


def items(request: Request) -> ConversationItems:
    """The state and task operations for this request, on its tenant's keyspace."""
    api: ConversationItems = request.app.state.cs_items
    space = tenant_space(request)
    return api if space is None else api.in_space(space)


def maintenance(request: Request) -> Maintenance:
    """The maintenance operations for this request, on its tenant's keyspace only."""
    api: Maintenance = request.app.state.cs_maintenance
    space = tenant_space(request)
    return api if space is None else api.in_space(space)


async def event(request: Request, kind: type[S]) -> tuple[S, dict[str, msgspec.Raw]]:
    """The body as event `kind`, and all its top-level values as sent (attached data)."""
    body = await read_body(request, request.app.state.cs.limits)
    require_utf8(body)
    return decode_event(body, kind)


async def document(request: Request, kind: type[S]) -> S:
    """The body as `kind`, a document without attached data of its own."""
    body = await read_body(request, request.app.state.cs.limits)
    require_utf8(body)
    return decode_document(body, kind)


async def json_value(request: Request) -> bytes:
    """The body as one compact JSON value (the deprecated extension PUTs)."""
    body = await read_body(request, request.app.state.cs.limits)
    require_utf8(body)
    try:
        return compact(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _flag(params: QueryParams, name: str) -> bool:
    value = params.get(name)
    if value is None or value.lower() in ("false", "0", ""):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise BadRequest(f"`{name}` must be true or false")


def listed(params: QueryParams, name: str) -> str | None:
    """A list parameter as its comma form: given twice (`a=x&a=y`, as Java REST clients send
    lists) it means `a=x,y` (API.md §0); None if absent."""
    values = params.getlist(name)
    return ",".join(values) if values else None


def view(params: QueryParams, top: str = "service") -> View:
    """The include flags and the `extensions` selection of a read."""
    active_states, completed_states, active_tasks, completed_tasks = (_flag(params, name) for name in FLAGS)
    return View(active_states, completed_states, active_tasks, completed_tasks,
                Extensions.parse(listed(params, "extensions"), top))


def types(params: QueryParams, name: str) -> frozenset[str] | None:
    """A `*_types=a,b` filter (None: not given); repeated, the union of its values."""
    value = listed(params, name)
    if value is None:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _time(params: QueryParams, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    return instant(value, name)


def service_filter(params: QueryParams, which: Which) -> ServiceFilter:
    """The filters of a service query."""
    return ServiceFilter(
        which,
        _time(params, "started_from"), _time(params, "started_to"),
        _time(params, "completed_from"), _time(params, "completed_to"),
        types(params, "service_types"),
        # any other parameter: attached data equality (reserved names can never be attached data)
        tuple((k, v) for k, v in params.multi_items() if k not in _QUERY_PARAMETERS and k not in RESERVED_NAMES),
    )


# --- what the OpenAPI document says ----------------------------------------------------------

_STRING = {"type": "string"}
_TIMESTAMP = {"type": "string", "description": "ISO 8601, e.g. `2026-11-22T06:05:20.157Z`"}
_ITEM_ID = {"type": "string", "description": "an integer"}

_TENANT = Param("ContactCenterId", "header", {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                "the tenant: each has a keyspace of its own (absent: the default tenant)")

CS = Api("Context Services", CsErrorBody, {
    "id": Param("id", "path", _STRING, "a service id (`<partition>-<uuid>`), as answered by start"),
    "customer_id": Param("customer_id", "path", _STRING, "a customer id"),
    "contact_key": Param("contact_key", "path", _STRING, "a contact key"),
    "state_id": Param("state_id", "path", _ITEM_ID, "a state id of the service"),
    "task_id": Param("task_id", "path", _ITEM_ID, "a task id of the service"),
    "name": Param("name", "path", _STRING, "an attached data key"),
}, headers=(_TENANT,))

# What `_flag` accepts, spelled out (a JSON Schema boolean would not admit `1`, `0` or `TRUE`).
_BOOLEAN = {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)?$",
            "description": "true or false (any case), 1 or 0; empty: false"}
INCLUDE = {
    "active_states": Param("active_states", "query", _BOOLEAN, "include the active states"),
    "completed_states": Param("completed_states", "query", _BOOLEAN, "include the completed states"),
    "active_tasks": Param("active_tasks", "query", _BOOLEAN, "include the active tasks"),
    "completed_tasks": Param("completed_tasks", "query", _BOOLEAN, "include the completed tasks"),
}
EXTENSIONS = Param("extensions", "query", _STRING,
                   "attached data to return: `a,b`, `State.x`, `Task.x`, `*` (all; the default)")
QUERY = (
    *INCLUDE.values(), EXTENSIONS,
    Param("started_from", "query", _TIMESTAMP, "started at or after"),
    Param("started_to", "query", _TIMESTAMP, "started before"),
    Param("completed_from", "query", _TIMESTAMP, "completed at or after (completed services only)"),
    Param("completed_to", "query", _TIMESTAMP, "completed before (completed services only)"),
    Param("service_types", "query", _STRING, "service types, comma-separated"),
    Param("attached", "query", {"type": "object"},
          "any other parameter `k=v`: attached data `k` equals `v` (as text)"),
)


def created(schema: Any, what: str) -> dict[int, Answer]:
    """A 201 with a body and the Location of what was created."""
    return {201: Answer(f"{what} created", {JSON: schema}, {"Location": f"the URL of the new {what}"})}


OK = {200: Answer("done", {JSON: {"type": "object", "maxProperties": 0}})}
ENDED = {204: Answer("ended")}


_OK: dict[str, str] = {}


# --- services, composite start, queries ---------------------------------------------------------

_ANY_JSON: dict[str, object] = {"description": "any JSON value"}


@CS.operation("Start a service", body={JSON: OwnedServiceStartEvent}, answers=created(ServiceStarted, "service"),
              errors=(400, 413, 503),
              description="Needs `customer_id` or `contact_key`. Keys that are not fields of the event are "
                          "attached data, kept with their JSON type.")
async def start_service(request: Request) -> Response:
    """POST /services/start → 201 {"service_id"} with Location."""
    body, raws = await event(request, ServiceStartEvent)
    service_id = await services(request).start_service(body, raws)
    return json_response(ServiceStarted(service_id), 201, {"location": f"{PREFIX}/services/{service_id}"})


@CS.operation("Composite start: find or create, per element, the active service, its state and task",
              body={JSON: CompositeStart},
              answers={200: Answer("what was found or created", {JSON: CompositeAnswer},
                                   {"Location": "the URL of the first element's task, or of its state"})},
              errors=(400, 413, 503))
async def composite_start(request: Request) -> Response:
    """POST /services_composite/start → 200 {"services": […]}, Location of the first task or state."""
    body = await document(request, CompositeStart)
    if not body.services:
        raise BadRequest("`services` must have at least one element")
    answer = await composite(request).start(body.services)
    first = answer.services[0]
    where = f"{PREFIX}/services/{first.service.service_id}"
    where += f"/tasks/{first.task.task_id}" if first.task is not None else f"/states/{first.state.state_id}"
    return json_response(answer, 200, {"location": where})


@CS.operation("Read a service", params=(*INCLUDE.values(), EXTENSIONS),
              answers={200: Answer("the service", {JSON: Service})}, errors=(400, 503))
async def get_service(request: Request) -> Response:
    """GET /services/{id}."""
    found = await services(request).get_service(request.path_params["id"], view(request.query_params))
    return json_response(found)


@CS.operation("Delete a service with its states and tasks", answers=OK, errors=(400, 503))
async def delete_service(request: Request) -> Response:
    """DELETE /services/{id}."""
    await services(request).delete_service(request.path_params["id"])
    return json_response(_OK)


@CS.operation("Update the expiry of a conversation (the service, its states and tasks)",
              body={JSON: ExpirationUpdate}, answers=OK, errors=(400, 413, 503),
              description="`ttl`: seconds or a GMS duration (`30s`, `7d`, `6M`); wins over `expiration_time`.")
async def expire_service(request: Request) -> Response:
    """PUT /services/{id}: a new expiry."""
    update = await document(request, ExpirationUpdate)
    await services(request).expire_service(request.path_params["id"], update.ttl, update.expiration_time)
    return json_response(_OK)


@CS.operation("End a service, with its active states and tasks", body={JSON: EndEvent}, answers=ENDED,
              errors=(400, 409, 413, 503))
async def end_service(request: Request) -> Response:
    """POST /services/{id}/end → 204."""
    body, raws = await event(request, EndEvent)
    await services(request).end_service(request.path_params["id"], body, raws)
    return empty_response()


@CS.operation("Associate a service with a customer", body={JSON: ServiceStartEvent}, answers=OK,
              errors=(400, 413, 503),
              description="The optional body updates start event fields and attached data; the service "
                          "leaves its previous customer's (or the anonymous) lists.")
async def associate(request: Request) -> Response:
    """POST /customers/{customer_id}/services/{id} → 200."""
    body, raws = await event(request, ServiceStartEvent)
    p = request.path_params
    await services(request).associate(p["customer_id"], p["id"], body, raws)
    return json_response(_OK)


@CS.operation("Set one attached data key of a service (deprecated)", body={JSON: _ANY_JSON}, answers=OK,
              errors=(400, 413, 503))
async def service_extension(request: Request) -> Response:
    """PUT /services/{id}/extensions/{name}: attached data `name` = the JSON body."""
    value = await json_value(request)
    p = request.path_params
    await services(request).set_service_attached(p["id"], p["name"], value)
    return json_response(_OK)


_FOUND = {200: Answer("the matching services, oldest first (by start time, then id)", {JSON: list[Service]})}


@CS.operation("The services of a customer (all, active or completed)", params=QUERY, answers=_FOUND,
              errors=(400, 503))
async def customer_services(request: Request, which: Which) -> Response:
    """GET /customers/{customer_id}/services[/active|/completed] → Service[]."""
    found = await services(request).customer_services(
        request.path_params["customer_id"], service_filter(request.query_params, which), view(request.query_params))
    return json_response(found)


@CS.operation("The anonymous services of a contact key (all, active or completed)", params=QUERY, answers=_FOUND,
              errors=(400, 503))
async def anonymous_services(request: Request, which: Which) -> Response:
    """GET /services/anonymous/{contact_key}[/active|/completed] → Service[]."""
    found = await services(request).anonymous_services(
        request.path_params["contact_key"], service_filter(request.query_params, which), view(request.query_params))
    return json_response(found)


def which_routes(path: str, endpoint: Callable[..., Awaitable[Response]]) -> list[Resource]:
    """`path`, `path/active` and `path/completed` (GET), the endpoint told which one."""
    return [
        Resource(PREFIX + path + suffix, {"GET": partial(endpoint, which=which)})
        for suffix, which in (("", Which.ALL), ("/active", Which.ACTIVE), ("/completed", Which.COMPLETED))
    ]


# Concrete templates before templated ones: the first template a path fits is its resource.


# --- states and tasks -------------------------------------------------------------------------

_TASK_FLAGS = (INCLUDE["active_tasks"], INCLUDE["completed_tasks"], EXTENSIONS)


def _location(service_id: str, kind: str, item_id: int) -> dict[str, str]:
    return {"location": f"{PREFIX}/services/{service_id}/{kind}/{item_id}"}


@CS.operation("Start a state", body={JSON: StateStartEvent}, answers=created(StateStarted, "state"),
              errors=(400, 413, 503), description="Allowed on an ended service too.")
async def start_state(request: Request) -> Response:
    """POST /services/{id}/states/start → 201 {"state_id"} with Location."""
    body, raws = await event(request, StateStartEvent)
    service_id = request.path_params["id"]
    state_id = await items(request).start_state(service_id, body, raws)
    return json_response(StateStarted(state_id), 201, _location(service_id, STATES, state_id))


@CS.operation("End a state and start the next one, at the same instant", body={JSON: TransitionEvent},
              answers=created(StateStarted, "state"), errors=(400, 409, 413, 503))
async def transition(request: Request) -> Response:
    """POST /services/{id}/states/transition → 201 {"state_id": new} with Location."""
    body, raws = await event(request, TransitionEvent)
    service_id = request.path_params["id"]
    state_id = await items(request).transition(service_id, body, raws)
    return json_response(StateStarted(state_id), 201, _location(service_id, STATES, state_id))


@CS.operation("End a state", body={JSON: EndEvent}, answers=ENDED, errors=(400, 409, 413, 503))
async def end_state(request: Request) -> Response:
    """POST /services/{id}/states/{state_id}/end → 204."""
    body, raws = await event(request, EndEvent)
    p = request.path_params
    await items(request).end_state(p["id"], p["state_id"], body, raws)
    return empty_response()


@CS.operation("The states of a service (all, active or completed)",
              params=(Param("state_types", "query", {"type": "string"}, "state types, comma-separated"),
                      *_TASK_FLAGS),
              answers={200: Answer("the states", {JSON: list[State]})}, errors=(400, 503))
async def states(request: Request, which: Which) -> Response:
    """GET /services/{id}/states[/active|/completed] → State[]."""
    params = request.query_params
    found = await items(request).states(request.path_params["id"], which, types(params, "state_types"),
                                        view(params, "state"))
    return json_response(found)


@CS.operation("Read a state", params=_TASK_FLAGS, answers={200: Answer("the state", {JSON: State})},
              errors=(400, 503))
async def get_state(request: Request) -> Response:
    """GET /services/{id}/states/{state_id} → State."""
    p = request.path_params
    return json_response(await items(request).state(p["id"], p["state_id"], view(request.query_params, "state")))


@CS.operation("Start a task", body={JSON: TaskStartEvent}, answers=created(TaskStarted, "task"),
              errors=(400, 413, 503), description="An optional `state_id` must name a state of this service.")
async def start_task(request: Request) -> Response:
    """POST /services/{id}/tasks/start → 201 {"task_id"} with Location."""
    body, raws = await event(request, TaskStartEvent)
    service_id = request.path_params["id"]
    task_id = await items(request).start_task(service_id, body, raws)
    return json_response(TaskStarted(task_id), 201, _location(service_id, TASKS, task_id))


@CS.operation("End a task", body={JSON: EndEvent}, answers=ENDED, errors=(400, 409, 413, 503))
async def end_task(request: Request) -> Response:
    """POST /services/{id}/tasks/{task_id}/end → 204."""
    body, raws = await event(request, EndEvent)
    p = request.path_params
    await items(request).end_task(p["id"], p["task_id"], body, raws)
    return empty_response()


@CS.operation("The tasks of a service (all, active or completed)",
              params=(Param("task_types", "query", {"type": "string"}, "task types, comma-separated"),
                      Param("state_id", "query", {"type": "integer", "minimum": 0}, "only the tasks of this state"),
                      EXTENSIONS),
              answers={200: Answer("the tasks", {JSON: list[Task]})}, errors=(400, 503))
async def tasks(request: Request, which: Which) -> Response:
    """GET /services/{id}/tasks[/active|/completed] → Task[]."""
    params = request.query_params
    state_text = params.get("state_id")
    if state_text is not None and not state_text.isdigit():
        raise BadRequest("`state_id` must be an integer")
    found = await items(request).tasks(
        request.path_params["id"], which, types(params, "task_types"),
        None if state_text is None else int(state_text), view(params, "task"))
    return json_response(found)


@CS.operation("Read a task", params=(EXTENSIONS,), answers={200: Answer("the task", {JSON: Task})},
              errors=(400, 503))
async def get_task(request: Request) -> Response:
    """GET /services/{id}/tasks/{task_id} → Task."""
    p = request.path_params
    return json_response(await items(request).task(p["id"], p["task_id"], view(request.query_params, "task")))


@CS.operation("Set one attached data key of a state or task (deprecated)",
              body={JSON: {"description": "any JSON value"}}, answers=OK, errors=(400, 413, 503))
async def item_extension(request: Request, kind: str, item: str) -> Response:
    """PUT /services/{id}/states/{state_id}/extensions/{name} (or tasks/{task_id}/…)."""
    value = await json_value(request)
    p = request.path_params
    await items(request).set_attached(p["id"], kind, p[item], p["name"], value)
    return json_response(_OK)


# --- maintenance: purge and export (MAINTENANCE.md §5.1-5.3) --------------------------------------

_OPERATIONS = ("purge.service.all", "purge.service.started", "purge.service.started.anonymous",
               "purge.service.completed", "purge.service.completed.anonymous")
_PURGE_QUERY = (
    Param("limit", "query", _TIMESTAMP, "without a body: purge services started before this instant"),
    Param("operation", "query", {"type": "string", "enum": list(_OPERATIONS)}, "without a body: which services"),
)


def _any_case(*words: str) -> dict[str, str]:
    """A string schema for one of `words` in any case (what the handlers accept)."""
    spelled = ("".join(f"[{c.upper()}{c.lower()}]" for c in word) for word in words)
    return {"type": "string", "pattern": "^(" + "|".join(spelled) + ")$"}


_EVENTS = _any_case("any", "started", "completed")
_STATE = _any_case("any", "active", "inactive")
_TRUE_FALSE = _any_case("true", "false")
EXPORT_PARAMS = (
    Param("time_from", "query", _TIMESTAMP, "start of the range (inclusive)", required=True),
    Param("time_to", "query", _TIMESTAMP, "end of the range (inclusive; default: now)"),
    Param("filter_events", "query", _EVENTS,
          "`any` (default): a start or an end event in the range; `started`; `completed`"),
    Param("export_content", "query", _TRUE_FALSE, "`true`: whole services instead of their ids (default false)"),
    Param("filter_state", "query", _STATE,
          "`any` (default), `active` or `inactive`: the state now; only with `export_content=true`"),
)


def _single(params: QueryParams) -> dict[str, str]:
    """The query parameters by name (a repeated one counts with its last value)."""
    return {key: params.getlist(key)[-1] for key in params}


@CS.operation("Purge services started before a limit (with their states and tasks)",
              params=_PURGE_QUERY, body={JSON: PurgeRequest},
              answers={200: Answer("how many services were purged", {JSON: PurgeAnswer})},
              errors=(400, 413, 503),
              description="`operation`: " + ", ".join(f"`{name}`" for name in _OPERATIONS) + ". Fields in a "
                          "JSON body; without a body, in the query string. Works partition by partition in "
                          "bounded batches; only the request's tenant (`ContactCenterId`).")
async def purge(request: Request) -> Response:
    """POST /maintenance/purge → 200 {"purged": n}."""
    body = await read_body(request, request.app.state.cs.limits)
    require_utf8(body)
    if body.strip():
        given = decode_document(body, PurgeRequest)
        limit, operation = given.limit, given.operation
    else:
        limit, operation = request.query_params.get("limit"), request.query_params.get("operation")
    purged = await maintenance(request).purge(Purge.parse(limit, operation))
    return json_response(PurgeAnswer(purged))


_EXPORTED = {"anyOf": [{"type": "array", "items": {"type": "string"}},
                       {"type": "array", "items": {"$ref": "#/components/schemas/Service"}}]}


@CS.operation("Export the services with an event in a time range, as a JSON stream",
              params=EXPORT_PARAMS,
              answers={200: Answer("service ids, or with `export_content=true` whole services (all four "
                                   "arrays of states and tasks), oldest matching event first", {JSON: _EXPORTED})},
              errors=(400, 503),
              description="Streamed: the answer starts before the whole result is known, and gmsd's memory "
                          "does not grow with the number of services. Reads the time index partition by "
                          "partition (no keyspace scan); only the request's tenant.")
async def export_stream(request: Request) -> Response:
    """GET /maintenance/services/stream → 200 [ids] or [services], streamed."""
    query = ExportQuery.parse(_single(request.query_params))
    batches = maintenance(request).export(query).__aiter__()
    try:  # the first batch before the answer starts: a storage error is still a 503
        first = await batches.__anext__()
    except StopAsyncIteration:
        return Response(b"[]", 200, media_type="application/json")
    return StreamingResponse(json_array(first, batches), 200, media_type="application/json")


async def json_array(first: list[Any], rest: Any) -> Any:
    """A JSON array, written batch by batch (each element already JSON, or a string)."""
    opened = False
    batch = first
    while True:
        if batch:
            items = b",".join(bytes(item) if isinstance(item, msgspec.Raw) else msgspec.json.encode(item)
                              for item in batch)
            yield (b"," if opened else b"[") + items
            opened = True
        try:
            batch = await rest.__anext__()
        except StopAsyncIteration:
            break
    yield b"]" if opened else b"[]"


@CS.operation("Export the services with an event in a time range to three files (services, states, tasks)",
              params=(*EXPORT_PARAMS[:3], EXPORT_PARAMS[4],
                      Param("format", "query", _any_case("json", "csv"), "`json` (JSON Lines, the default) or `csv`")),
              answers={200: Answer("the names of the files written (services, states, tasks), without a "
                                   "directory: they are in `[context_services] export_dir`", {JSON: FilesAnswer})},
              errors=(400, 503),
              description="The parameters of the stream export, in the query string; `filter_state` needs no "
                          "`export_content` here (the files always hold whole services). Only the request's tenant.")
async def export_files(request: Request) -> Response:
    """POST /maintenance/services/files → 200 {"created": [services, states, tasks]}."""
    params = _single(request.query_params)
    query = ExportQuery.parse(params, files=True)
    created = await maintenance(request).export_files(query, params.get("format"))
    return json_response(FilesAnswer(created))


# Concrete templates before templated ones: the first template a path fits is its resource.


routes = [
    Resource(PREFIX + "/maintenance/purge", {"POST": purge}),
    Resource(PREFIX + "/maintenance/services/stream", {"GET": export_stream}),
    Resource(PREFIX + "/maintenance/services/files", {"POST": export_files}),
    Resource(PREFIX + "/services/start", {"POST": start_service}),
    Resource(PREFIX + "/services_composite/start", {"POST": composite_start}),
    *which_routes("/services/anonymous/{contact_key}", anonymous_services),
    *which_routes("/customers/{customer_id}/services", customer_services),
    Resource(PREFIX + "/customers/{customer_id}/services/{id}", {"POST": associate}),
    Resource(PREFIX + "/services/{id}", {"GET": get_service, "DELETE": delete_service, "PUT": expire_service}),
    Resource(PREFIX + "/services/{id}/end", {"POST": end_service}),
    Resource(PREFIX + "/services/{id}/extensions/{name}", {"PUT": service_extension}),
    Resource(PREFIX + "/services/{id}/states/start", {"POST": start_state}),
    Resource(PREFIX + "/services/{id}/states/transition", {"POST": transition}),
    *which_routes("/services/{id}/states", states),
    Resource(PREFIX + "/services/{id}/states/{state_id}", {"GET": get_state}),
    Resource(PREFIX + "/services/{id}/states/{state_id}/end", {"POST": end_state}),
    Resource(PREFIX + "/services/{id}/states/{state_id}/extensions/{name}",
             {"PUT": partial(item_extension, kind=STATES, item="state_id")}),
    Resource(PREFIX + "/services/{id}/tasks/start", {"POST": start_task}),
    *which_routes("/services/{id}/tasks", tasks),
    Resource(PREFIX + "/services/{id}/tasks/{task_id}", {"GET": get_task}),
    Resource(PREFIX + "/services/{id}/tasks/{task_id}/end", {"POST": end_task}),
    Resource(PREFIX + "/services/{id}/tasks/{task_id}/extensions/{name}",
             {"PUT": partial(item_extension, kind=TASKS, item="task_id")}),
]
