"""How CS resources are stored in the conversation hashes, both ways (layout: docs/keys.md).

Writing: an event becomes flat field/value pairs for the Lua scripts (`s:<field>` start event
fields, `e:<field>` end event fields, `a:<key>` attached data, all JSON text as sent).
Reading: the hashes become rendered resources, with the `extensions` selection applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import Raw

from gmsd.config import Limits
from gmsd.cs.models import (
    EVENT_FIELDS,
    INTEGER_FIELDS,
    RESERVED_NAMES,
    EventFields,
    Service,
    State,
    Task,
    compact,
    render,
)
from gmsd.errors import BadRequest, PayloadTooLarge
from gmsd.timestamps import format_timestamp

Fields = list[bytes]  # flat field/value pairs, as the scripts take them
Hash = dict[bytes, bytes]
Reply = list[Any]  # a script's answer: status (bytes) first

ALL: frozenset[str] | None = None  # an extensions selection that keeps everything


def type_text(raw: Raw | bytes | None) -> str | None:
    """The text a `*_type` is matched and filtered by: `5` and `"5"` are the same type."""
    if raw is None:
        return None
    data = bytes(raw)
    if data.startswith(b'"'):
        text: str = msgspec.json.decode(data)
        return text
    return data.decode()


def attached_data(raws: dict[str, Raw], event: EventFields, limits: Limits) -> dict[str, bytes]:
    """The attached data of an event: top-level keys that are neither its fields nor reserved."""
    known = type(event).__struct_encode_fields__
    attached = {
        key: compact(value)
        for key, value in raws.items()
        if key not in known and key not in RESERVED_NAMES
    }
    if len(attached) > limits.fields:
        raise PayloadTooLarge(f"too many attached data keys: the limit is {limits.fields}")
    for key in attached:
        check_name(key, limits)
    return attached


def check_name(key: str, limits: Limits) -> None:
    """An attached data key must be non-empty and at most `limits.key_bytes` UTF-8 bytes."""
    if not limits.fits_key(key):
        raise BadRequest(f"attached data key {key[:40]!r} must have 1 to {limits.key_bytes} bytes")


def _given(raws: dict[str, Raw], event: EventFields, name: str) -> bytes | None:
    # A field's JSON as sent, when the typed decode accepted it and it is not null; an integer
    # field sent as a string of digits is stored as the number (API.md §0).
    value = getattr(event, name)
    if value is None:
        return None
    if name in INTEGER_FIELDS and isinstance(value, str) and value.isascii() and value.isdigit():
        return str(int(value)).encode()
    return compact(raws[name])


def event_fields(prefix: bytes, raws: dict[str, Raw], event: EventFields) -> Fields:
    """The common event fields given in an event (`s:` start, `e:` end)."""
    out: Fields = []
    for name in EVENT_FIELDS:
        value = _given(raws, event, name)
        if value is not None:
            out += (prefix + name.encode(), value)
    return out


def typed_field(field: bytes, raws: dict[str, Raw], event: Any, name: str) -> Fields:
    """One typed field (type, est, disposition…) as sent, or nothing if absent."""
    value = _given(raws, event, name)
    return [] if value is None else [field, value]


def attached_fields(attached: dict[str, bytes]) -> Fields:
    out: Fields = []
    for key, value in attached.items():
        out += (b"a:" + key.encode(), value)
    return out


# --- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Extensions:
    """Which attached data comes back: per level a set of keys, or None for all of them."""

    service: frozenset[str] | None = ALL
    state: frozenset[str] | None = ALL
    task: frozenset[str] | None = ALL

    @classmethod
    def parse(cls, text: str | None, top: str = "service") -> Extensions:
        """`a,b`, `State.x`, `Task.x`, `*` (all), `State.*`, `Task.*`; plain names select the
        attached data of the resources the route answers (`top`)."""
        if text is None:
            return cls()
        levels: dict[str, set[str] | None] = {"service": set(), "state": set(), "task": set()}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            if item == "*":
                return cls()
            level, name = top, item
            head, dot, rest = item.partition(".")
            if dot and head in ("State", "Task"):
                level, name = head.lower(), rest
            chosen = levels[level]
            if name == "*":
                levels[level] = None
            elif chosen is not None:
                chosen.add(name)
        return cls(*(None if s is None else frozenset(s) for s in levels.values()))


_END_OWN = (b"disposition", b"disposition_desc")  # end event fields shown beside the event, not in it


def _read(fields: Hash, keep: frozenset[str] | None) -> tuple[dict[str, Any], dict[str, Raw]]:
    """A resource's common fields (started, completed, est_duration, duration, disposition,
    disposition_desc) and its attached data, in one pass over its hash (a query renders
    hundreds of hashes: one loop each, not one per kind of field)."""
    t0 = int(fields[b"t0"])
    started: dict[str, Any] = {"timestamp": format_timestamp(t0)}
    ended: dict[str, Any] | None = None
    t1 = fields.get(b"t1")
    if t1 is not None:
        ended = {"timestamp": format_timestamp(int(t1))}
    attached: dict[str, Raw] = {}
    for field, value in fields.items():
        kind = field[:2]
        if kind == b"a:":
            name = field[2:].decode()
            if keep is None or name in keep:
                attached[name] = Raw(value)
        elif kind == b"s:":
            if field[2:] not in _END_OWN:
                started[field[2:].decode()] = Raw(value)
        elif kind == b"e:" and ended is not None and field[2:] not in _END_OWN:
            ended[field[2:].decode()] = Raw(value)
    common: dict[str, Any] = {"started": started, "est_duration": _raw(fields, b"est")}
    if ended is not None and t1 is not None:
        common.update(
            completed=ended,
            duration=int(t1) - t0,
            disposition=_raw(fields, b"e:disposition"),
            disposition_desc=_raw(fields, b"e:disposition_desc"),
        )
    return common, attached


def _raw(fields: Hash, name: bytes) -> Raw | None:
    value = fields.get(name)
    return None if value is None else Raw(value)


def split_items(fields: Hash) -> dict[int, Hash]:
    """The states (or tasks) of a conversation hash, by id, in id order."""
    items: dict[int, Hash] = {}
    for field, value in fields.items():
        head, sep, rest = field.partition(b":")
        if sep and head.isdigit():
            items.setdefault(int(head), {})[rest] = value
    return {key: items[key] for key in sorted(items) if b"t0" in items[key]}


@dataclass(frozen=True)
class View:
    """What a read answers besides the resource itself."""

    active_states: bool = False
    completed_states: bool = False
    active_tasks: bool = False
    completed_tasks: bool = False
    extensions: Extensions = Extensions()


def render_task(service_id: str, task_id: int, fields: Hash, keep: frozenset[str] | None) -> Raw:
    state = fields.get(b"state")
    common, attached = _read(fields, keep)
    task = Task(task_id, _raw(fields, b"type"), None if state is None else int(state), service_id, **common)
    return render(task, attached)


def _task_lists(service_id: str, tasks: dict[int, Hash], view: View,
                state_id: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, want, ended in (("active_tasks", view.active_tasks, False),
                              ("completed_tasks", view.completed_tasks, True)):
        if want:
            out[name] = [
                render_task(service_id, tid, t, view.extensions.task)
                for tid, t in tasks.items()
                if (b"t1" in t) == ended and (state_id is None or t.get(b"state") == str(state_id).encode())
            ]
    return out


def render_state(service_id: str, state_id: int, fields: Hash, tasks: dict[int, Hash], view: View) -> Raw:
    prev = fields.get(b"prev")
    common, attached = _read(fields, view.extensions.state)
    state = State(state_id, _raw(fields, b"type"), service_id, None if prev is None else int(prev),
                  **common, **_task_lists(service_id, tasks, view, state_id))
    return render(state, attached)


def render_service(service_id: str, svc: Hash, states: Hash, tasks: Hash, view: View) -> Raw:
    """A service with the states and tasks the view asks for."""
    cust, contact = svc.get(b"cust"), svc.get(b"ck")
    nested: dict[str, Any] = {}
    task_items = split_items(tasks) if view.active_tasks or view.completed_tasks else {}
    if view.active_states or view.completed_states:
        state_view = View(extensions=view.extensions)  # states nested in a service: no tasks inside
        state_items = split_items(states)
        for name, want, ended in (("active_states", view.active_states, False),
                                  ("completed_states", view.completed_states, True)):
            if want:
                nested[name] = [
                    render_state(service_id, sid, s, {}, state_view)
                    for sid, s in state_items.items() if (b"t1" in s) == ended
                ]
    nested.update(_task_lists(service_id, task_items, view))
    common, attached = _read(svc, view.extensions.service)
    service = Service(
        service_id, _raw(svc, b"type"),
        None if cust is None else cust.decode(), None if contact is None else contact.decode(),
        **common, **nested,
    )
    return render(service, attached)


def attached_text(fields: Hash, key: str) -> str | None:
    """An attached value as a query parameter compares to it: a string as itself, anything else
    as its JSON text; None if the key is absent."""
    value = fields.get(b"a:" + key.encode())
    if value is None:
        return None
    if value.startswith(b'"'):
        text: str = msgspec.json.decode(value)
        return text
    return value.decode()


def hash_of(flat: list[bytes]) -> Hash:
    """An HGETALL answer (a flat list inside a script's reply) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass(frozen=True)
class Conversation:
    """A conversation as read at one instant (states/tasks empty when not asked for)."""

    service: Hash
    states: Hash
    tasks: Hash
