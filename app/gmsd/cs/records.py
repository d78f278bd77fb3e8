"""How CS resources are stored in the conversation hashes, both ways (layout: docs/keys.md).

Writing: an event becomes flat field/value pairs for the Lua scripts (`s:<field>` start event
fields, `e:<field>` end event fields, `a:<key>` attached data, all JSON text as sent).
Reading: the hashes become rendered resources, with the `extensions` selection applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec
from msgspec import Raw

from gmsd.config import Limits
from gmsd.cs.models import (
    EVENT_FIELDS,
    INTEGER_FIELDS,
    RESERVED_NAMES,
    EventFields,
    compact,
)
from gmsd.errors import BadRequest, PayloadTooLarge
from gmsd.timestamps import timestamp_json

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


# How a start event's top-level names are stored (`start_fields`): under a field of their own
# (`type`, `est`, `s:<event field>`), or not at all (None: fields the domain reads itself, such as
# `timestamp` or `ttl`, and reserved names). Any other name is attached data.
StartPlan = dict[str, bytes | None]


def start_plan(kind: type[EventFields], type_name: str) -> StartPlan:
    """The plan of `start_fields` for a start event of `kind` whose type field is `type_name`."""
    plan: StartPlan = dict.fromkeys((*kind.__struct_encode_fields__, *RESERVED_NAMES))
    plan[type_name] = b"type"
    plan["est_duration"] = b"est"
    for name in EVENT_FIELDS:
        plan[name] = b"s:" + name.encode()
    return plan


def start_fields(raws: dict[str, Raw], event: EventFields, plan: StartPlan, limits: Limits) -> Fields:
    """The stored fields of a start event, in one pass over what was sent: its type and estimated
    duration, its event fields (`s:`) and its attached data (`a:`), in the order sent."""
    out: Fields = []
    attached: list[str] = []
    for name, raw in raws.items():
        if name not in plan:
            attached.append(name)
            out += (b"a:" + name.encode(), compact(raw))
            continue
        field = plan[name]
        if field is not None:
            value = _given(raws, event, name)
            if value is not None:
                out += (field, value)
    if len(attached) > limits.fields:
        raise PayloadTooLarge(f"too many attached data keys: the limit is {limits.fields}")
    for key in attached:
        check_name(key, limits)
    return out


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


# Rendering writes the JSON text directly: stored values are already the compact JSON the client
# sent (checked when written), so a resource is its stored values between the right names. The
# order of the keys is that of the resource's Struct in gmsd.cs.models (what the OpenAPI document
# describes), with the attached data last. A query renders hundreds of hashes: one pass over each,
# no Struct or dict per resource.

_END_OWN = frozenset((b"disposition", b"disposition_desc"))  # end event fields shown beside the event
_ATTACHED, _STARTED, _ENDED = ord("a"), ord("s"), ord("e")  # first bytes of `a:`, `s:`, `e:` fields
_encode_text = msgspec.json.Encoder().encode


@lru_cache(maxsize=4096)  # names repeat across resources; bounded: attached data names are the clients' choice
def _name(raw: bytes) -> bytes:
    """The JSON string of a stored (UTF-8) field name."""
    return _encode_text(raw.decode())


def _timestamp(millis: int) -> bytes:
    return b'{"timestamp":' + timestamp_json(millis)


def _write(out: list[bytes], fields: Hash, keep: frozenset[str] | None) -> list[bytes]:
    """Append a resource's common fields (started, completed, est_duration, duration, disposition,
    disposition_desc), read in one pass over its hash with its attached data, which is returned:
    it goes last, after the nested lists."""
    t0 = int(fields[b"t0"])
    t1_text = fields.get(b"t1")
    started = [b',"started":', _timestamp(t0)]
    ended = None if t1_text is None else [b',"completed":', _timestamp(int(t1_text))]
    attached: list[bytes] = []
    for field, value in fields.items():
        if field[1:2] != b":":  # not an `s:`, `e:` or `a:` field (one-byte slices are not allocated)
            continue
        kind, name = field[0], field[2:]
        if kind == _ATTACHED:
            if keep is None or name.decode() in keep:
                attached += (b",", _name(name), b":", value)
        elif kind == _STARTED:
            if name not in _END_OWN:
                started += (b",", _name(name), b":", value)
        elif kind == _ENDED and ended is not None and name not in _END_OWN:
            ended += (b",", _name(name), b":", value)
    out += started
    out.append(b"}")
    if ended is not None:
        out += ended
        out.append(b"}")
    est = fields.get(b"est")
    if est is not None:
        out += (b',"est_duration":', est)
    if t1_text is not None:
        out += (b',"duration":', str(int(t1_text) - t0).encode())
        for field_name, json_name in ((b"e:disposition", b',"disposition":'),
                                      (b"e:disposition_desc", b',"disposition_desc":')):
            end_value = fields.get(field_name)
            if end_value is not None:
                out += (json_name, end_value)
    return attached


def _close(out: list[bytes], nested: list[bytes], attached: list[bytes]) -> Raw:
    """The resource's text: what `out` holds, the nested lists (`,"name":[…]` pieces), its attached data."""
    out += nested
    out += attached
    out.append(b"}")
    return Raw(b"".join(out))


def _list(name: bytes, items: list[Raw]) -> list[bytes]:
    return [b',"', name, b'":[', b",".join(items), b"]"]


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
    """A task resource (`Task`) with the attached data `keep` selects (None: all)."""
    out = [b'{"task_id":', str(task_id).encode()]
    task_type = fields.get(b"type")
    if task_type is not None:
        out += (b',"task_type":', task_type)
    state = fields.get(b"state")
    if state is not None:
        out += (b',"state_id":', str(int(state)).encode())
    out += (b',"service_id":', _encode_text(service_id))
    attached = _write(out, fields, keep)
    return _close(out, [], attached)


def _task_lists(service_id: str, tasks: dict[int, Hash], view: View, state_id: int | None = None) -> list[bytes]:
    out: list[bytes] = []
    state = None if state_id is None else str(state_id).encode()
    for name, want, ended in ((b"active_tasks", view.active_tasks, False),
                              (b"completed_tasks", view.completed_tasks, True)):
        if want:
            out += _list(name, [
                render_task(service_id, tid, t, view.extensions.task)
                for tid, t in tasks.items()
                if (b"t1" in t) == ended and (state is None or t.get(b"state") == state)
            ])
    return out


def render_state(service_id: str, state_id: int, fields: Hash, tasks: dict[int, Hash], view: View) -> Raw:
    """A state resource (`State`), with the tasks of `tasks` that the view asks for."""
    return _state(service_id, state_id, fields, view.extensions.state, tasks, view)


def _state(service_id: str, state_id: int, fields: Hash, keep: frozenset[str] | None,
           tasks: dict[int, Hash], view: View | None) -> Raw:
    out = [b'{"state_id":', str(state_id).encode()]
    state_type = fields.get(b"type")
    if state_type is not None:
        out += (b',"state_type":', state_type)
    out += (b',"service_id":', _encode_text(service_id))
    prev = fields.get(b"prev")
    if prev is not None:
        out += (b',"previous_state_id":', str(int(prev)).encode())
    attached = _write(out, fields, keep)
    return _close(out, [] if view is None else _task_lists(service_id, tasks, view, state_id), attached)


def render_service(service_id: str, svc: Hash, states: Hash, tasks: Hash, view: View) -> Raw:
    """A service (`Service`) with the states and tasks the view asks for."""
    out = [b'{"service_id":', _encode_text(service_id)]
    service_type = svc.get(b"type")
    if service_type is not None:
        out += (b',"service_type":', service_type)
    for field, json_name in ((b"cust", b',"customer_id":'), (b"ck", b',"contact_key":')):
        owner = svc.get(field)
        if owner is not None:
            out += (json_name, _encode_text(owner.decode()))
    attached = _write(out, svc, view.extensions.service)
    nested: list[bytes] = []
    if view.active_states or view.completed_states:
        keep = view.extensions.state
        state_items = split_items(states)
        for name, want, ended in ((b"active_states", view.active_states, False),
                                  (b"completed_states", view.completed_states, True)):
            if want:
                nested += _list(name, [
                    _state(service_id, sid, s, keep, {}, None)  # states nested in a service: no tasks inside
                    for sid, s in state_items.items() if (b"t1" in s) == ended
                ])
    if view.active_tasks or view.completed_tasks:
        nested += _task_lists(service_id, split_items(tasks), view)
    return _close(out, nested, attached)


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
    pairs = iter(flat)  # one iterator twice: no slices copied; strict: an odd length raises
    return dict(zip(pairs, pairs, strict=True))


Source = tuple[list[bytes], list[bytes], list[bytes]]  # the flat HGETALL answers of svc, states, tasks


class Conversation:
    """A conversation as read at one instant (states/tasks empty when not asked for).

    `source`: the three HGETALL answers it was made from, flat, as read (None: not known). Equal
    sources make equal hashes in the same order, so they render to the same text
    (gmsd.cs.rendered). Read from a source, the states and tasks become hashes only when used:
    a query whose texts were rendered before never needs them.
    """

    __slots__ = ("_states", "_tasks", "service", "source")

    def __init__(self, service: Hash, states: Hash | None = None, tasks: Hash | None = None,
                 source: Source | None = None) -> None:
        self.service = service
        self.source = source
        self._states = states
        self._tasks = tasks

    @classmethod
    def read(cls, source: Source) -> Conversation:
        """The conversation of three HGETALL answers (the service's must not be empty)."""
        return cls(hash_of(source[0]), None, None, source)

    @property
    def states(self) -> Hash:
        if self._states is None:
            self._states = self._read(1)
        return self._states

    @property
    def tasks(self) -> Hash:
        if self._tasks is None:
            self._tasks = self._read(2)
        return self._tasks

    def _read(self, part: int) -> Hash:
        """The hash of the source's answer `part` (1: states, 2: tasks); empty if not read."""
        flat = self.source[part] if self.source is not None else None
        return hash_of(flat) if flat else {}
