"""HTTP handlers of the states and tasks of a Context Services service (`…/services/{id}/states|tasks…`).

Parse, call `ConversationItems` (`app.cs_items`), answer; each handler is described for the
OpenAPI document (`app.openapi`).
"""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from app.cs_items import STATES, TASKS
from app.cs_models import (
    EndEvent,
    State,
    StateStarted,
    StateStartEvent,
    Task,
    TaskStarted,
    TaskStartEvent,
    TransitionEvent,
)
from app.cs_query import Which
from app.cs_requests import CS, ENDED, EXTENSIONS, INCLUDE, OK, PREFIX, created, event, items, json_value, types, view
from app.cs_routes import which_routes
from app.exceptions import BadRequest
from app.openapi import JSON, Answer, Param
from app.resources import Resource
from app.responses import empty_response, json_response

_OK: dict[str, str] = {}
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


# Concrete templates before templated ones: the first template a path fits is its resource.
routes = [
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
