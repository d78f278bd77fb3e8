"""HTTP handlers of Context Services (`/genesys/1/cs…`): parse, call the domain, answer.

Services, composite start and queries go to `ContextServices` (`app.cs`); states and tasks to
`ConversationItems` (`app.cs_items`). Errors are rendered by `app.responses.error_response`
with the `exception` class name Context Services clients expect.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import cs_composite
from app.cs import ContextServices
from app.cs_items import STATES, TASKS, ConversationItems
from app.cs_models import (
    RESERVED_NAMES,
    CompositeStart,
    EndEvent,
    ExpirationUpdate,
    ServiceStarted,
    ServiceStartEvent,
    StateStarted,
    StateStartEvent,
    TaskStarted,
    TaskStartEvent,
    TransitionEvent,
    compact,
    decode_event,
)
from app.cs_query import ServiceFilter, Which
from app.cs_records import Extensions, View
from app.exceptions import BadRequest
from app.request_body import read_body
from app.responses import empty_response, json_response
from app.timestamps import parse_timestamp

PREFIX = "/genesys/1/cs"
_OK: dict[str, str] = {}
_FLAGS = ("active_states", "completed_states", "active_tasks", "completed_tasks")
_QUERY_PARAMETERS = frozenset({*_FLAGS, "extensions", "started_from", "started_to", "completed_from",
                               "completed_to", "service_types"})
_WHICH = {None: Which.ALL, "active": Which.ACTIVE, "completed": Which.COMPLETED}

S = TypeVar("S", bound=msgspec.Struct)


def _services(request: Request) -> ContextServices:
    api: ContextServices = request.app.state.cs
    return api


def _items(request: Request) -> ConversationItems:
    api: ConversationItems = request.app.state.cs_items
    return api


async def _event(request: Request, kind: type[S]) -> tuple[S, dict[str, msgspec.Raw]]:
    body = await read_body(request, _services(request).limits)
    return decode_event(body, kind)


def _flag(params: QueryParams, name: str) -> bool:
    value = params.get(name)
    if value is None or value.lower() in ("false", "0", ""):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise BadRequest(f"`{name}` must be true or false")


def _view(params: QueryParams, top: str = "service") -> View:
    active_states, completed_states, active_tasks, completed_tasks = (_flag(params, name) for name in _FLAGS)
    return View(active_states, completed_states, active_tasks, completed_tasks,
                Extensions.parse(params.get("extensions"), top))


def _types(params: QueryParams, name: str) -> frozenset[str] | None:
    value = params.get(name)
    if value is None:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _time(params: QueryParams, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise BadRequest(f"`{name}` {value[:40]!r} is not an ISO 8601 timestamp") from None


def _which_of(request: Request) -> Which:
    # `…/active`, `…/completed` or nothing; any other last segment is not a route.
    which = _WHICH.get(request.path_params.get("which"))
    if which is None:
        raise HTTPException(404)
    return which


def _filter(request: Request) -> ServiceFilter:
    params = request.query_params
    return ServiceFilter(
        _which_of(request),
        _time(params, "started_from"), _time(params, "started_to"),
        _time(params, "completed_from"), _time(params, "completed_to"),
        _types(params, "service_types"),
        # any other parameter: attached data equality (reserved names can never be attached data)
        tuple((k, v) for k, v in params.multi_items() if k not in _QUERY_PARAMETERS and k not in RESERVED_NAMES),
    )


# --- services --------------------------------------------------------------------------------

async def start_service(request: Request) -> Response:
    """POST /services/start → 201 {"service_id"} with Location."""
    event, raws = await _event(request, ServiceStartEvent)
    service_id = await _services(request).start_service(event, raws)
    return json_response(ServiceStarted(service_id), 201, {"location": f"{PREFIX}/services/{service_id}"})


async def composite_start(request: Request) -> Response:
    """POST /services_composite/start → 200 {"services": […]}, Location of the first task or state."""
    body, _ = await _event(request, CompositeStart)
    if not body.services:
        raise BadRequest("`services` must have at least one element")
    answer = await cs_composite.start_composite(_services(request), body.services)
    first = answer.services[0]
    where = f"{PREFIX}/services/{first.service.service_id}"
    where += f"/tasks/{first.task.task_id}" if first.task is not None else f"/states/{first.state.state_id}"
    return json_response(answer, 200, {"location": where})


async def service(request: Request) -> Response:
    """GET, DELETE, PUT (new expiry) /services/{id}."""
    api = _services(request)
    service_id = request.path_params["id"]
    if request.method == "GET":
        return json_response(await api.get_service(service_id, _view(request.query_params)))
    if request.method == "DELETE":
        await api.delete_service(service_id)
        return json_response(_OK)
    update, _ = await _event(request, ExpirationUpdate)
    await api.expire_service(service_id, update.ttl, update.expiration_time)
    return json_response(_OK)


async def end_service(request: Request) -> Response:
    """POST /services/{id}/end → 204."""
    event, raws = await _event(request, EndEvent)
    await _services(request).end_service(request.path_params["id"], event, raws)
    return empty_response()


async def associate(request: Request) -> Response:
    """POST /customers/{customer_id}/services/{id} → 200."""
    event, raws = await _event(request, ServiceStartEvent)
    p = request.path_params
    await _services(request).associate(p["customer_id"], p["id"], event, raws)
    return json_response(_OK)


async def _json_value(request: Request) -> bytes:
    body = await read_body(request, _services(request).limits)
    try:
        return compact(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


async def service_extension(request: Request) -> Response:
    """PUT /services/{id}/extensions/{name} (deprecated): attached data `name` = the JSON body."""
    value = await _json_value(request)
    p = request.path_params
    await _services(request).set_service_attached(p["id"], p["name"], value)
    return json_response(_OK)


async def customer_services(request: Request) -> Response:
    """GET /customers/{customer_id}/services[/active|/completed] → Service[]."""
    found = await _services(request).customer_services(
        request.path_params["customer_id"], _filter(request), _view(request.query_params))
    return json_response(found)


async def anonymous_services(request: Request) -> Response:
    """GET /services/anonymous/{contact_key}[/active|/completed] → Service[]."""
    found = await _services(request).anonymous_services(
        request.path_params["contact_key"], _filter(request), _view(request.query_params))
    return json_response(found)


# --- states and tasks ------------------------------------------------------------------------

async def start_state(request: Request) -> Response:
    """POST /services/{id}/states/start → 201 {"state_id"} with Location."""
    event, raws = await _event(request, StateStartEvent)
    service_id = request.path_params["id"]
    state_id = await _items(request).start_state(service_id, event, raws)
    return json_response(StateStarted(state_id), 201,
                         {"location": f"{PREFIX}/services/{service_id}/states/{state_id}"})


async def transition(request: Request) -> Response:
    """POST /services/{id}/states/transition → 201 {"state_id": new} with Location."""
    event, raws = await _event(request, TransitionEvent)
    service_id = request.path_params["id"]
    state_id = await _items(request).transition(service_id, event, raws)
    return json_response(StateStarted(state_id), 201,
                         {"location": f"{PREFIX}/services/{service_id}/states/{state_id}"})


async def end_state(request: Request) -> Response:
    """POST /services/{id}/states/{state_id}/end → 204."""
    event, raws = await _event(request, EndEvent)
    p = request.path_params
    await _items(request).end_state(p["id"], p["state_id"], event, raws)
    return empty_response()


async def states(request: Request) -> Response:
    """GET /services/{id}/states[/active|/completed] → State[]; GET …/states/{state_id} → State."""
    params, p = request.query_params, request.path_params
    which = _WHICH.get(p.get("which"))
    if which is None:
        return json_response(await _items(request).state(p["id"], p["which"], _view(params, "state")))
    found = await _items(request).states(p["id"], which, _types(params, "state_types"), _view(params, "state"))
    return json_response(found)


async def start_task(request: Request) -> Response:
    """POST /services/{id}/tasks/start → 201 {"task_id"} with Location."""
    event, raws = await _event(request, TaskStartEvent)
    service_id = request.path_params["id"]
    task_id = await _items(request).start_task(service_id, event, raws)
    return json_response(TaskStarted(task_id), 201,
                         {"location": f"{PREFIX}/services/{service_id}/tasks/{task_id}"})


async def end_task(request: Request) -> Response:
    """POST /services/{id}/tasks/{task_id}/end → 204."""
    event, raws = await _event(request, EndEvent)
    p = request.path_params
    await _items(request).end_task(p["id"], p["task_id"], event, raws)
    return empty_response()


async def tasks(request: Request) -> Response:
    """GET /services/{id}/tasks[/active|/completed] → Task[]; GET …/tasks/{task_id} → Task."""
    params, p = request.query_params, request.path_params
    which = _WHICH.get(p.get("which"))
    if which is None:
        return json_response(await _items(request).task(p["id"], p["which"], _view(params, "task")))
    state_text = params.get("state_id")
    if state_text is not None and not state_text.isdigit():
        raise BadRequest("`state_id` must be an integer")
    found = await _items(request).tasks(
        p["id"], which, _types(params, "task_types"),
        None if state_text is None else int(state_text), _view(params, "task"))
    return json_response(found)


async def item_extension(request: Request) -> Response:
    """PUT /services/{id}/states|tasks/{item}/extensions/{name} (deprecated)."""
    p = request.path_params
    if p["kind"] not in (STATES, TASKS):
        raise HTTPException(404)
    value = await _json_value(request)
    await _items(request).set_attached(p["id"], p["kind"], p["item"], p["name"], value)
    return json_response(_OK)


def _which(path: str, endpoint: object) -> list[Route]:
    """`path`, `path/active` and `path/completed` (GET)."""
    return [
        Route(PREFIX + path, endpoint, methods=["GET"]),  # type: ignore[arg-type]
        Route(PREFIX + path + "/{which:str}", endpoint, methods=["GET"]),  # type: ignore[arg-type]
    ]


routes = [
    Route(PREFIX + "/services/start", start_service, methods=["POST"]),
    Route(PREFIX + "/services_composite/start", composite_start, methods=["POST"]),
    *_which("/services/anonymous/{contact_key}", anonymous_services),
    *_which("/customers/{customer_id}/services", customer_services),
    Route(PREFIX + "/customers/{customer_id}/services/{id}", associate, methods=["POST"]),
    Route(PREFIX + "/services/{id}", service, methods=["GET", "DELETE", "PUT"]),
    Route(PREFIX + "/services/{id}/end", end_service, methods=["POST"]),
    Route(PREFIX + "/services/{id}/extensions/{name}", service_extension, methods=["PUT"]),
    Route(PREFIX + "/services/{id}/states/start", start_state, methods=["POST"]),
    Route(PREFIX + "/services/{id}/states/transition", transition, methods=["POST"]),
    Route(PREFIX + "/services/{id}/states/{state_id}/end", end_state, methods=["POST"]),
    *_which("/services/{id}/states", states),
    Route(PREFIX + "/services/{id}/tasks/start", start_task, methods=["POST"]),
    Route(PREFIX + "/services/{id}/tasks/{task_id}/end", end_task, methods=["POST"]),
    *_which("/services/{id}/tasks", tasks),
    Route(PREFIX + "/services/{id}/{kind:str}/{item}/extensions/{name}", item_extension, methods=["PUT"]),
]
