"""HTTP handlers of Context Services services (`/genesys/1/cs…`): lifecycle, composite start, queries.

Parse, call `ContextServices` (`app.cs`), answer. States and tasks are in `app.cs_item_routes`.
Errors are rendered by `app.responses.error_response` with the `exception` class name Context
Services clients expect. Each handler is described for the OpenAPI document (`app.openapi`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from app import cs_composite
from app.cs_models import (
    CompositeAnswer,
    CompositeStart,
    EndEvent,
    ExpirationUpdate,
    OwnedServiceStartEvent,
    Service,
    ServiceStarted,
    ServiceStartEvent,
)
from app.cs_query import Which
from app.cs_requests import (
    CS,
    ENDED,
    EXTENSIONS,
    INCLUDE,
    OK,
    PREFIX,
    QUERY,
    created,
    event,
    json_value,
    service_filter,
    services,
    view,
)
from app.exceptions import BadRequest
from app.openapi import JSON, Answer
from app.resources import Resource
from app.responses import empty_response, json_response

_OK: dict[str, str] = {}
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
    body, _ = await event(request, CompositeStart)
    if not body.services:
        raise BadRequest("`services` must have at least one element")
    answer = await cs_composite.start_composite(services(request), body.services)
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
    update, _ = await event(request, ExpirationUpdate)
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


_FOUND = {200: Answer("the matching services, newest first", {JSON: list[Service]})}


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
routes = [
    Resource(PREFIX + "/services/start", {"POST": start_service}),
    Resource(PREFIX + "/services_composite/start", {"POST": composite_start}),
    *which_routes("/services/anonymous/{contact_key}", anonymous_services),
    *which_routes("/customers/{customer_id}/services", customer_services),
    Resource(PREFIX + "/customers/{customer_id}/services/{id}", {"POST": associate}),
    Resource(PREFIX + "/services/{id}", {"GET": get_service, "DELETE": delete_service, "PUT": expire_service}),
    Resource(PREFIX + "/services/{id}/end", {"POST": end_service}),
    Resource(PREFIX + "/services/{id}/extensions/{name}", {"PUT": service_extension}),
]
