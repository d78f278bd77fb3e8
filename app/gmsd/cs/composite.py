"""Composite start (seed 003): per element, find or create the active service, state and task.

Every element is checked before anything is stored, then run on its own:
1. read the first match entry of (customer, contact key, service type) in the owner's partition
   (one ZRANGEBYLEX; the script re-checks it, since keys must be known before a script runs);
2. one script in that partition checks the candidate (the service still holds the entry, so it
   is active with that owner), or creates the service if no entry is left, then finds or creates
   the state and the task. Identical requests racing each other serialise on that script: the
   first creates, the others see its entry (`retry`) and join it.
A candidate associated with the customer from another partition is joined by a script in its
own partition (`composite_join`); if it no longer holds the entry, the entry is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from gmsd import metrics
from gmsd.cs.models import (
    CompositeAnswer,
    CompositeElement,
    CompositeResult,
    CompositeService,
    CompositeState,
    CompositeTask,
    ServiceStartEvent,
    StateStartEvent,
    TaskStartEvent,
    decode_event,
)
from gmsd.cs.records import ItemSpec, Reply
from gmsd.cs.services import MAX_ATTEMPTS, SLIDE_MARGIN_MS, ContextServicesBase, NewService, busy
from gmsd.errors import BadRequest
from gmsd.keys import cs_member_service, cs_service_partition
from gmsd.timestamps import now_millis


@dataclass(frozen=True)
class Element:
    """One element, checked and ready to run."""

    service: NewService
    state: ItemSpec
    task: ItemSpec | None
    attach: bool


def _flag(value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest("`associate_state_task` must be true or false")


def _created(flag: int) -> str:
    return "true" if flag == 1 else "false"


def _element(api: ContextServicesBase, element: CompositeElement, now: int) -> Element:
    service_event, service_raws = decode_event(bytes(element.service), ServiceStartEvent, "service")
    service = NewService(api, service_event, service_raws, now)
    state_event, state_raws = decode_event(bytes(element.state), StateStartEvent, "state")
    state_fields, state_part = api.item_fields(state_raws, state_event, "state_type")
    state = ItemSpec(state_part, api.timestamp(state_event.timestamp, now), state_fields)
    task: ItemSpec | None = None
    if element.has_task:
        task_event, task_raws = decode_event(bytes(element.task), TaskStartEvent, "task")
        task_fields, task_part = api.item_fields(task_raws, task_event, "task_type")
        task = ItemSpec(task_part, api.timestamp(task_event.timestamp, now), task_fields)
    return Element(service, state, task, _flag(element.associate_state_task))


async def start_composite(api: ContextServicesBase, elements: list[CompositeElement]) -> CompositeAnswer:
    """Find or create, per element, the active service, its state and its task."""
    now = now_millis()
    checked = [_element(api, element, now) for element in elements]
    return CompositeAnswer([await _run(api, element) for element in checked])


async def _run(api: ContextServicesBase, element: Element) -> CompositeResult:
    reply, service_id = await _find_or_create(api, element)
    metrics.count_composite_start(reply[1] == 1)
    result = CompositeResult(
        CompositeService(service_id, _created(reply[1])),
        CompositeState(int(reply[2]), _created(reply[3])),
    )
    if element.task is not None:
        result.task = CompositeTask(int(reply[4]), _created(reply[5]))
    return result


async def _raise_slid(api: ContextServicesBase, service_id: str, partition: int, expiry: bytes) -> None:
    """After a join slid the expiry of a service whose entries are in `partition`: raise them."""
    if not expiry:
        return
    owner = await api.store.owner(service_id)
    if owner is not None and owner[2] is not None:
        members = [m for m in owner[:2] if m]
        await api.store.index_link(int(owner[2]), int(expiry) + SLIDE_MARGIN_MS, members)


async def _find_or_create(api: ContextServicesBase, element: Element) -> tuple[Reply, str]:
    new, store = element.service, api.store
    for _ in range(MAX_ATTEMPTS):
        candidate = await store.match_candidate(new.partition, new.match_prefix)
        local: str | None = None
        if candidate is not None:
            candidate_id = cs_member_service(candidate)
            where = cs_service_partition(candidate_id)
            if where is None:  # not an id gmsd issued: never valid
                await store.index_drop(new.partition, [candidate])
                continue
            if where != new.partition:  # associated with this customer from another partition
                reply = await store.composite_join(candidate_id, candidate, element.state, element.task,
                                                   element.attach)
                if reply[0] == b"ok":
                    await _raise_slid(api, candidate_id, new.partition, reply[-1])
                    return reply, candidate_id
                await store.index_drop(new.partition, [candidate])
                continue
            local = candidate_id
        reply = await store.composite_start(
            new.partition, new.service_id, candidate or b"", local, new.script_args(),
            new.match_prefix, element.state, element.task, element.attach)
        if reply[0] == b"ok":
            return reply, new.service_id if reply[1] == 1 else str(local)
    raise busy()
