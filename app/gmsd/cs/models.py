"""Context Services documents as msgspec Structs: the events clients send, the resources answered.

Events are decoded twice from the same bytes, both in C: once into their Struct (which checks the
known fields' types) and once into `dict[str, msgspec.Raw]`, whose unknown keys are the attached
data, kept as the exact JSON the client sent (objects, arrays, numbers, booleans stay what they
are). Known fields are stored as that JSON text too, so `5` and `"5"` come back as given.
The resource Structs describe the answers (the OpenAPI document, the order of their keys); gmsd.cs.records
writes them as JSON text, with attached data as top-level keys after the resource's own fields.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta, Raw

from gmsd.config import DURATION_PATTERN, MAX_TTL_SECONDS
from gmsd.errors import BadRequest

# `*_type`, media_type, application_type, resource_type, disposition: a number or a string.
Typed = int | float | str
# An instant as clients send it (checked by `gmsd.timestamps.parse_timestamp`).
Timestamp = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
# A new expiry: seconds, or a GMS duration such as `7d` (checked when decoded, and in the document).
Ttl = Annotated[int, Meta(gt=0, le=MAX_TTL_SECONDS)] | Annotated[str, Meta(pattern=DURATION_PATTERN)]
# An integer field also accepts a string of digits (Java clients carry ids as strings; API.md §0):
# `"state_id": "1"` means 1, and the value is stored and returned as the number.
DIGITS_PATTERN = "^[0-9]{1,18}$"
Integer = int | Annotated[str, Meta(pattern=DIGITS_PATTERN)]
# The integer fields of events, by name (stored as numbers when sent as digit strings).
INTEGER_FIELDS = frozenset({"application_id", "resource_id", "est_duration", "state_id"})


def integer(value: int | str | None) -> int | None:
    """An `Integer` field's number (None if absent)."""
    return None if value is None else int(value)


# A service needs an owner: the document says so (the domain checks it, with a clearer message).
NEEDS_OWNER = {"anyOf": [{"required": [name], "properties": {name: {"type": "string"}}}
                         for name in ("customer_id", "contact_key")]}


def described_as(name: str) -> Meta:
    """For the OpenAPI document: a value kept as raw JSON is the Struct `name` of this module."""
    return Meta(extra_json_schema={"$ref": f"#/components/schemas/{name}"})


class EventFields(msgspec.Struct, forbid_unknown_fields=False):
    """Fields every start, end and transition event may carry."""

    timestamp: Timestamp | None = None
    interaction_id: str | None = None
    session_id: str | None = None
    media_type: Typed | None = None
    application_type: Typed | None = None
    application_id: int | str | None = None
    resource_type: Typed | None = None
    resource_id: int | str | None = None
    # The conversation's new expiry: seconds or a GMS duration (`7d`), or an ISO 8601 instant.
    ttl: Ttl | None = None
    expiration_time: Timestamp | None = None


# The event fields stored (as sent) in the `started` / `completed` objects of a resource.
EVENT_FIELDS = ("interaction_id", "session_id", "media_type", "application_type",
                "application_id", "resource_type", "resource_id")


class ServiceStartEvent(EventFields):
    """Body of POST /services/start, and the `service` of a composite element."""

    customer_id: str | None = None
    contact_key: str | None = None
    service_type: Typed | None = None
    est_duration: Integer | None = None
    # Seconds without an update after which the service is completed (MAINTENANCE.md §5.4):
    # overrides `[context_services] auto_complete_after`; neither stored as attached data nor returned.
    auto_complete_after: Annotated[int, Meta(gt=0, le=MAX_TTL_SECONDS)] | None = None


# What the document says a start needs (associate reads the same Struct without that need).
OwnedServiceStartEvent = Annotated[ServiceStartEvent, Meta(extra_json_schema=NEEDS_OWNER)]


class StateStartEvent(EventFields):
    """Body of POST /services/{id}/states/start, and the `state` of a composite element."""

    state_type: Typed | None = None
    est_duration: Integer | None = None


class TaskStartEvent(EventFields):
    """Body of POST /services/{id}/tasks/start, and the `task` of a composite element."""

    task_type: Typed | None = None
    est_duration: Integer | None = None
    state_id: Integer | None = None


class EndEvent(EventFields):
    """Body of the end of a service, state or task."""

    disposition: Typed | None = None
    disposition_desc: str | None = None


class TransitionFrom(msgspec.Struct, forbid_unknown_fields=False):
    """The state a transition ends."""

    state_id: Integer
    disposition: Typed | None = None
    disposition_desc: str | None = None


class TransitionTo(msgspec.Struct, forbid_unknown_fields=False):
    """The state a transition starts."""

    state_type: Typed | None = None
    est_duration: Integer | None = None


class TransitionEvent(EventFields, kw_only=True):
    """Body of POST /services/{id}/states/transition."""

    from_: TransitionFrom = msgspec.field(name="from")
    to: TransitionTo = msgspec.field(default_factory=TransitionTo)


class ExpirationUpdate(msgspec.Struct, forbid_unknown_fields=False):
    """Body of PUT /services/{id}: `ttl` (seconds or GMS duration) wins over `expiration_time`."""

    ttl: Ttl | None = None
    expiration_time: Timestamp | None = None


class CompositeElement(msgspec.Struct, forbid_unknown_fields=False):
    """One element of `services` in a composite start; the events are decoded on their own."""

    service: Annotated[Raw, Meta(extra_json_schema={"$ref": "#/components/schemas/ServiceStartEvent",
                                                    **NEEDS_OWNER})]
    state: Annotated[Raw, described_as("StateStartEvent")]
    # empty (absent) or `null`: no task
    task: Annotated[Raw, described_as("TaskStartEvent")] = msgspec.field(default_factory=Raw)
    associate_state_task: bool | Annotated[str, Meta(pattern="^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$")] = False

    @property
    def has_task(self) -> bool:
        return bytes(self.task) not in (b"", b"null")


class CompositeStart(msgspec.Struct, forbid_unknown_fields=False):
    """Body of POST /services_composite/start."""

    services: list[CompositeElement]


# --- maintenance (MAINTENANCE.md §5) -----------------------------------------------------------

class PurgeRequest(msgspec.Struct, forbid_unknown_fields=False):
    """Body of POST /maintenance/purge (without a body: the same names in the query string)."""

    limit: Timestamp | None = None
    operation: str | None = None


class PurgeAnswer(msgspec.Struct):
    purged: int


class FilesAnswer(msgspec.Struct):
    """The three files of a file export, bare names (services, states, tasks)."""

    created: list[str]


# Names a client may not use for attached data: they are fields of the resources answered.
# They are ignored in bodies (a client may send back a resource it read).
RESERVED_NAMES = frozenset({
    "service_id", "state_id", "task_id", "previous_state_id", "started", "completed",
    "duration", "active_states", "completed_states", "active_tasks", "completed_tasks",
    "customer_id", "contact_key", "service_type", "state_type", "task_type", "est_duration",
    "disposition", "disposition_desc", "from", "to", "associate_state_task",
})

E = TypeVar("E", bound=msgspec.Struct)

_raw_object = msgspec.json.Decoder(dict[str, Raw])
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind)
    for kind in (ServiceStartEvent, StateStartEvent, TaskStartEvent, EndEvent, TransitionEvent,
                 ExpirationUpdate, CompositeStart, PurgeRequest)
}


def decode_document(body: bytes, kind: type[E], what: str = "body") -> E:
    """The `kind` in `body`; 400 for bad JSON or types. An empty body is an empty object."""
    if not body.strip():
        body = b"{}"
    try:  # the usual case first: why a body was refused is worked out only for a refused one
        event: E = _decoders[kind].decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise _refusal(body, kind, what) from None
    return event


def decode_event(body: bytes, kind: type[E], what: str = "body") -> tuple[E, dict[str, Raw]]:
    """`decode_document`, and all the body's top-level values as sent (its attached data)."""
    event = decode_document(body, kind, what)
    # The Struct accepted a JSON object: its values decode as Raw too (the same parse).
    return event, _raw_object.decode(body) if body.strip() else {}


def _refusal(body: bytes, kind: type[Any], what: str) -> BadRequest:
    """Why `body`, which `kind`'s decoder refused, is not a `kind`: the JSON itself first, then
    the Struct's types."""
    try:
        _raw_object.decode(body)
    except msgspec.ValidationError:
        return BadRequest(f"the {what} must be a JSON object")
    except msgspec.DecodeError as exc:
        return BadRequest(f"the {what} is not valid JSON: {exc}")
    except RecursionError:  # msgspec's bound on nesting: a client mistake, not a server fault
        return BadRequest(f"the {what} nests objects and arrays too deeply")
    try:
        _decoders[kind].decode(body)
    except msgspec.ValidationError as exc:
        return BadRequest(f"invalid {what}: {exc}")
    except (msgspec.DecodeError, RecursionError) as exc:  # what the raw decode let through
        return BadRequest(f"the {what} is not valid JSON: {exc}")
    return BadRequest(f"the {what} was refused")  # not reached: the same decoder refused it just before


def raw_fields(raw: Raw | None) -> dict[str, Raw]:
    """The top-level values of a nested object that its Struct already accepted."""
    return {} if raw is None else _raw_object.decode(bytes(raw))


def compact(raw: Raw | bytes) -> bytes:
    """JSON text without insignificant whitespace (what is stored)."""
    return msgspec.json.format(bytes(raw), indent=-1)


# --- resources answered ----------------------------------------------------------------------

# {"timestamp": "…", other event fields as Raw JSON}
Event = Annotated[dict[str, Any], Meta(extra_json_schema={
    "required": ["timestamp"], "properties": {"timestamp": {"type": "string", "format": "date-time"}}})]
# Values kept as the JSON the client sent, with what the start events let them be.
TypedJson = Annotated[Raw, Meta(extra_json_schema={"anyOf": [{"type": "number"}, {"type": "string"}]})]
IntegerJson = Annotated[Raw, Meta(extra_json_schema={"type": "integer"})]
StringJson = Annotated[Raw, Meta(extra_json_schema={"type": "string"})]
StateJson = Annotated[Raw, described_as("State")]
TaskJson = Annotated[Raw, described_as("Task")]


class Task(msgspec.Struct, omit_defaults=True):
    """A task resource (attached data follows as top-level keys: gmsd.cs.records)."""

    task_id: int
    task_type: TypedJson | None = None
    state_id: int | None = None
    service_id: str | None = None
    started: Event | None = None
    completed: Event | None = None
    est_duration: IntegerJson | None = None
    duration: int | None = None
    disposition: TypedJson | None = None
    disposition_desc: StringJson | None = None


class State(msgspec.Struct, omit_defaults=True):
    """A state resource, with its tasks when asked for."""

    state_id: int
    state_type: TypedJson | None = None
    service_id: str | None = None
    previous_state_id: int | None = None
    started: Event | None = None
    completed: Event | None = None
    est_duration: IntegerJson | None = None
    duration: int | None = None
    disposition: TypedJson | None = None
    disposition_desc: StringJson | None = None
    active_tasks: list[TaskJson] | None = None
    completed_tasks: list[TaskJson] | None = None


class Service(msgspec.Struct, omit_defaults=True):
    """A service resource, with its states and tasks when asked for."""

    service_id: str
    service_type: TypedJson | None = None
    customer_id: str | None = None
    contact_key: str | None = None
    started: Event | None = None
    completed: Event | None = None
    est_duration: IntegerJson | None = None
    duration: int | None = None
    disposition: TypedJson | None = None
    disposition_desc: StringJson | None = None
    active_states: list[StateJson] | None = None
    completed_states: list[StateJson] | None = None
    active_tasks: list[TaskJson] | None = None
    completed_tasks: list[TaskJson] | None = None


class ServiceStarted(msgspec.Struct):
    service_id: str


class StateStarted(msgspec.Struct):
    state_id: int


class TaskStarted(msgspec.Struct):
    task_id: int


class CompositeService(msgspec.Struct):
    service_id: str
    created: str  # "true" / "false", as the seed shows


class CompositeState(msgspec.Struct):
    state_id: int
    created: str


class CompositeTask(msgspec.Struct):
    task_id: int
    created: str


class CompositeResult(msgspec.Struct, omit_defaults=True):
    """One element of a composite start's answer (`task` only when one was asked for)."""

    service: CompositeService
    state: CompositeState
    task: CompositeTask | None = None


class CompositeAnswer(msgspec.Struct):
    services: list[CompositeResult]
