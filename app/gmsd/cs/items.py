"""The states and tasks of a Context Services service: start, end, transition, read.

Ids are integers from one counter per service (states and tasks never share an id). A state or
task may be started in an ended service; ending one twice is a Conflict (409); an unknown id is
NotFound (400 on the CS side).
"""

from __future__ import annotations

from msgspec import Raw

from gmsd.cs.models import EndEvent, StateStartEvent, TaskStartEvent, TransitionEvent, integer, raw_fields
from gmsd.cs.queries import Which
from gmsd.cs.records import Hash, View, event_fields, render_state, render_task, split_items, type_text, typed_field
from gmsd.cs.services import ContextServicesBase, NewItem
from gmsd.errors import NotFound
from gmsd.timestamps import now_millis

STATES = "states"
TASKS = "tasks"


def _wanted(items: dict[int, Hash], which: Which, types: frozenset[str] | None) -> dict[int, Hash]:
    return {
        item_id: fields
        for item_id, fields in items.items()
        if (which is Which.ALL or (b"t1" in fields) == (which is Which.COMPLETED))
        and (types is None or type_text(fields.get(b"type")) in types)
    }


class ConversationItems(ContextServicesBase):
    """The state and task operations of `/genesys/1/cs/services/{id}/…`."""

    async def start_state(self, service_id: str, event: StateStartEvent, raws: dict[str, Raw]) -> int:
        """Start a state; its id."""
        return await self._start(service_id, STATES, None, event, raws, "state_type")

    async def start_task(self, service_id: str, event: TaskStartEvent, raws: dict[str, Raw]) -> int:
        """Start a task, attached to `state_id` if given (which must be a state of the service)."""
        return await self._start(service_id, TASKS, integer(event.state_id), event, raws, "task_type")

    async def _start(self, service_id: str, kind: str, state_id: int | None,
                     event: StateStartEvent | TaskStartEvent, raws: dict[str, Raw], type_name: str) -> int:
        self.check_service_id(service_id)
        now = now_millis()
        t0 = self.timestamp(event.timestamp, now)
        expire_at = self.expiry(event.ttl, event.expiration_time, now)
        item_type, fields = self.item_fields(raws, event, type_name)
        item = NewItem(item_type, t0, fields)
        reply = self.check(await self.mutate(
            service_id, expire_at,
            lambda token: self.store.start_item(service_id, kind, expire_at, token, state_id, item)),
            service_id, f"state {state_id}")
        return int(reply[1])

    async def end_state(self, service_id: str, state: str, event: EndEvent, raws: dict[str, Raw]) -> None:
        await self._end(service_id, STATES, self.item_id(state, "state"), event, raws)

    async def end_task(self, service_id: str, task: str, event: EndEvent, raws: dict[str, Raw]) -> None:
        await self._end(service_id, TASKS, self.item_id(task, "task"), event, raws)

    async def _end(self, service_id: str, kind: str, item_id: int, event: EndEvent, raws: dict[str, Raw]) -> None:
        self.check_service_id(service_id)
        now = now_millis()
        t1 = self.timestamp(event.timestamp, now)
        expire_at = self.expiry(event.ttl, event.expiration_time, now)
        fields = [*self.end_fields(raws, event), *self.attached(raws, event)]
        self.check(await self.mutate(
            service_id, expire_at,
            lambda token: self.store.end_item(service_id, kind, item_id, expire_at, token, t1, fields)),
            service_id, f"{kind[:-1]} {item_id}")

    async def transition(self, service_id: str, event: TransitionEvent, raws: dict[str, Raw]) -> int:
        """End state `from` (with its disposition) and start `to` at the same instant; the new id.

        The common event fields go to both; attached data goes to the new state.
        """
        self.check_service_id(service_id)
        now = now_millis()
        at = self.timestamp(event.timestamp, now)
        expire_at = self.expiry(event.ttl, event.expiration_time, now)
        from_raws = raw_fields(raws.get("from"))
        end_fields = [*event_fields(b"e:", raws, event),
                      *typed_field(b"e:disposition", from_raws, event.from_, "disposition"),
                      *typed_field(b"e:disposition_desc", from_raws, event.from_, "disposition_desc")]
        to_raws = raw_fields(raws.get("to"))
        type_raw = to_raws.get("state_type") if event.to.state_type is not None else None
        new_state = NewItem(type_text(type_raw), at,
                            [*typed_field(b"type", to_raws, event.to, "state_type"),
                             *typed_field(b"est", to_raws, event.to, "est_duration"),
                             *event_fields(b"s:", raws, event), *self.attached(raws, event)])
        from_id = int(event.from_.state_id)
        reply = self.check(await self.mutate(
            service_id, expire_at,
            lambda token: self.store.transition(service_id, from_id, expire_at, token, end_fields, new_state)),
            service_id, f"state {from_id}")
        return int(reply[1])

    # --- reads -------------------------------------------------------------------------------

    async def _read(self, service_id: str, tasks: bool) -> tuple[Hash, Hash]:
        self.check_service_id(service_id)
        found = await self.store.read(service_id, True, tasks)
        if found is None:
            raise NotFound(f"service {service_id!r} not found")
        return found.states, found.tasks

    async def states(self, service_id: str, which: Which, types: frozenset[str] | None, view: View) -> list[Raw]:
        """The states of a service (all, active or completed), with their tasks if asked."""
        states, tasks = await self._read(service_id, view.active_tasks or view.completed_tasks)
        task_items = split_items(tasks)
        return [render_state(service_id, sid, fields, task_items, view)
                for sid, fields in _wanted(split_items(states), which, types).items()]

    async def state(self, service_id: str, state: str, view: View) -> Raw:
        state_id = self.item_id(state, "state")
        states, tasks = await self._read(service_id, view.active_tasks or view.completed_tasks)
        fields = split_items(states).get(state_id)
        if fields is None:
            raise NotFound(f"state {state_id} not found in service {service_id!r}")
        return render_state(service_id, state_id, fields, split_items(tasks), view)

    async def _tasks(self, service_id: str) -> dict[int, Hash]:
        self.check_service_id(service_id)
        found = await self.store.read(service_id, False, True)
        if found is None:
            raise NotFound(f"service {service_id!r} not found")
        return split_items(found.tasks)

    async def tasks(self, service_id: str, which: Which, types: frozenset[str] | None, state_id: int | None,
                    view: View) -> list[Raw]:
        """The tasks of a service (all, active or completed), optionally of one state."""
        items = _wanted(await self._tasks(service_id), which, types)
        wanted_state = None if state_id is None else str(state_id).encode()
        return [render_task(service_id, tid, fields, view.extensions.task)
                for tid, fields in items.items()
                if wanted_state is None or fields.get(b"state") == wanted_state]

    async def task(self, service_id: str, task: str, view: View) -> Raw:
        task_id = self.item_id(task, "task")
        fields = (await self._tasks(service_id)).get(task_id)
        if fields is None:
            raise NotFound(f"task {task_id} not found in service {service_id!r}")
        return render_task(service_id, task_id, fields, view.extensions.task)

    async def set_attached(self, service_id: str, kind: str, item: str, key: str, value: bytes) -> None:
        """PUT …/states/{id}/extensions/{key} or …/tasks/{id}/extensions/{key} (deprecated)."""
        self.check_service_id(service_id)
        item_id = self.item_id(item, kind[:-1])
        self.check_attached_key(key)
        self.check(await self.mutate(
            service_id, None, lambda token: self.store.set_attached(service_id, kind, item_id, key, value, token)),
            service_id, f"{kind[:-1]} {item_id}")
