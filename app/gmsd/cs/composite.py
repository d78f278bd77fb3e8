"""Composite start (seed 003): per element, find or create the active service, state and task.

Every element is checked before anything is stored, then run on its own, each attempt one call of
the store (`ConversationStore.composite_start`; `gmsd.cs.store` builds the members):
1. one script in the owner's partition creates the service if it holds no match entry of
   (customer, contact key, service type), then its state and task: a new customer's whole
   composite start is one round trip. Otherwise it answers the first entry (`retry`), the
   candidate: keys must be known before a script runs;
2. the script runs again with the candidate's keys: it checks the candidate (the service still
   holds the entry, so it is active with that owner), or creates the service if no entry is
   left, then finds or creates the state and the task. Identical requests racing each other
   serialise on that script: the first creates, the others see its entry and join it.
A candidate associated with the customer from another partition is joined by a script in its
own partition (`composite_join`); if it no longer holds the entry, the entry is dropped. A join
that slid the service's expiry raises its entries in the other partition (`raise_entries`).
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
from gmsd.cs.records import Reply
from gmsd.cs.services import MAX_ATTEMPTS, SLIDE_MARGIN_MS, ContextServicesBase, NewItem, NewService, busy
from gmsd.errors import BadRequest
from gmsd.timestamps import now_millis


@dataclass(frozen=True)
class Element:
    """One element, checked and ready to run."""

    service: NewService
    state: NewItem
    task: NewItem | None
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
    service = api.new_service(service_event, service_raws, now)
    state_event, state_raws = decode_event(bytes(element.state), StateStartEvent, "state")
    state_type, state_fields = api.item_fields(state_raws, state_event, "state_type")
    state = NewItem(state_type, api.timestamp(state_event.timestamp, now), state_fields)
    task: NewItem | None = None
    if element.has_task:
        task_event, task_raws = decode_event(bytes(element.task), TaskStartEvent, "task")
        task_type, task_fields = api.item_fields(task_raws, task_event, "task_type")
        task = NewItem(task_type, api.timestamp(task_event.timestamp, now), task_fields)
    return Element(service, state, task, _flag(element.associate_state_task))


class CompositeStarter(ContextServicesBase):
    """The composite start of `/genesys/1/cs/services_composite/start`."""

    async def start(self, elements: list[CompositeElement]) -> CompositeAnswer:
        """Find or create, per element, the active service, its state and its task."""
        now = now_millis()
        checked = [_element(self, element, now) for element in elements]
        return CompositeAnswer([await _run(self, element) for element in checked])


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


async def _find_or_create(api: ContextServicesBase, element: Element) -> tuple[Reply, str]:
    for _ in range(MAX_ATTEMPTS):
        found = await api.store.composite_start(element.service, element.state, element.task, element.attach)
        if found is not None:
            reply, service_id, joined = found
            if joined and reply[-1]:  # the join slid the expiry: raise its entries in the other partition
                await api.store.raise_entries(service_id, int(reply[-1]) + SLIDE_MARGIN_MS)
            return reply, service_id
    raise busy()
