"""Reading Context Services requests: the domain objects to call, events, flags, views, filters.

Shared by the handlers of `app.cs_routes` (services, composite start, queries) and
`app.cs_item_routes` (states and tasks), with what the OpenAPI document says about them.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request

from app.cs import ContextServices
from app.cs_items import ConversationItems
from app.cs_models import RESERVED_NAMES, compact, decode_event
from app.cs_query import ServiceFilter, Which
from app.cs_records import Extensions, View
from app.exceptions import BadRequest
from app.keys import cs_space
from app.openapi import JSON, Answer, Api, Param
from app.request_body import read_body
from app.responses import CsErrorBody
from app.timestamps import parse_timestamp

PREFIX = "/genesys/1/cs"
FLAGS = ("active_states", "completed_states", "active_tasks", "completed_tasks")
_QUERY_PARAMETERS = frozenset({*FLAGS, "extensions", "started_from", "started_to", "completed_from",
                               "completed_to", "service_types"})

S = TypeVar("S", bound=msgspec.Struct)


TENANT_HEADER = "contactcenterid"  # `ContactCenterId`: the tenant (absent: the default tenant)


def _space(request: Request) -> str | None:
    """The key prefix of the request's tenant; None for the default tenant."""
    tenant = request.headers.get(TENANT_HEADER)
    if tenant is None:
        return None
    try:
        return cs_space(tenant)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def services(request: Request) -> ContextServices:
    """The service operations for this request, on its tenant's keyspace."""
    api: ContextServices = request.app.state.cs
    space = _space(request)
    return api if space is None else api.in_space(space)


def items(request: Request) -> ConversationItems:
    """The state and task operations for this request, on its tenant's keyspace."""
    api: ConversationItems = request.app.state.cs_items
    space = _space(request)
    return api if space is None else api.in_space(space)


async def event(request: Request, kind: type[S]) -> tuple[S, dict[str, msgspec.Raw]]:
    """The body as event `kind`, and all its top-level values as sent (attached data)."""
    body = await read_body(request, request.app.state.cs.limits)
    return decode_event(body, kind)


async def json_value(request: Request) -> bytes:
    """The body as one compact JSON value (the deprecated extension PUTs)."""
    body = await read_body(request, request.app.state.cs.limits)
    try:
        return compact(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _flag(params: QueryParams, name: str) -> bool:
    value = params.get(name)
    if value is None or value.lower() in ("false", "0", ""):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise BadRequest(f"`{name}` must be true or false")


def view(params: QueryParams, top: str = "service") -> View:
    """The include flags and the `extensions` selection of a read."""
    active_states, completed_states, active_tasks, completed_tasks = (_flag(params, name) for name in FLAGS)
    return View(active_states, completed_states, active_tasks, completed_tasks,
                Extensions.parse(params.get("extensions"), top))


def types(params: QueryParams, name: str) -> frozenset[str] | None:
    """A `*_types=a,b` filter (None: not given)."""
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
