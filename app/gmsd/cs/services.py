"""The Context Services domain: services, queries and expiry.

Pure logic over `ConversationStore`: it checks input, turns events into stored fields, and turns the
scripts' statuses into answers or the typed errors of `gmsd.errors`. It speaks in customers, contact
keys, types and service ids: partitions, index members and script arguments are the store's.
States and tasks are in `gmsd.cs.items`, composite start in `gmsd.cs.composite`. Nothing here
knows HTTP.

Expiry: every conversation expires as a whole at `exp` (epoch ms). A request with `ttl` or
`expiration_time` for a service whose index entries live in another partition (it was associated
with a customer there) must raise those entries first: the script refuses until the caller has
done so for the service's current owner (`mutate`). So an index entry never expires before its
conversation.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, Self

from msgspec import Raw

from gmsd.config import Config, parse_duration
from gmsd.cs.models import (
    RESERVED_NAMES,
    EndEvent,
    EventFields,
    ServiceStartEvent,
    StateStartEvent,
    TaskStartEvent,
)
from gmsd.cs.queries import ServiceFilter, oldest_first
from gmsd.cs.records import (
    Conversation,
    Fields,
    Reply,
    View,
    attached_data,
    attached_fields,
    check_name,
    event_fields,
    render_service,
    start_fields,
    start_plan,
    type_text,
    typed_field,
)
from gmsd.cs.rendered import RenderedServices
from gmsd.errors import BadRequest, Conflict, NotFound, StorageUnavailable
from gmsd.keys import is_cs_service_id
from gmsd.timestamps import instant, now_millis

# Each attempt means another request changed the same index or service meanwhile (and made
# progress); this many in a row only happens under pathological contention.
MAX_ATTEMPTS = 16
# Entries in another partition are raised this much past a sliding expiry (MAINTENANCE.md §5.5):
# the write that applies it slides from a later instant than the one that asked. An entry that
# outlives its conversation a little is harmless (readers check the service).
SLIDE_MARGIN_MS = 60_000
# How the start events of services, states and tasks are stored (gmsd.cs.records.start_fields).
_SERVICE_PLAN = start_plan(ServiceStartEvent, "service_type")
# A state's or task's plan, by the name of its type field.
_ITEM_PLANS = {"state_type": start_plan(StateStartEvent, "state_type"),
               "task_type": start_plan(TaskStartEvent, "task_type")}


@dataclass(frozen=True)
class NewService:
    """A service about to be created, in the domain's words: its id (`ConversationStore.new_service_id`),
    owner, type, expiry, start time and stored fields (the store adds its index entries)."""

    service_id: str
    customer_id: str | None
    contact_key: str | None
    service_type: str | None
    expire_at: int
    t0: int
    fields: Fields


@dataclass(frozen=True)
class NewItem:
    """A state or task about to be started: its type (what composite start matches), start ms, fields."""

    item_type: str | None
    t0: int
    fields: Fields


class ConversationStore(Protocol):
    """Where conversations and their indexes live (`gmsd.cs.store.CsStore` on Redis).

    The domain speaks in customers, contact keys, types and service ids; the store picks partitions
    and builds the index members and script arguments. Scripts answer a status first (`ok`, `nf`,
    `nfs`, `ended`, `retry`, `stale`), then their data; a `token` is the owner a script must see
    (`raise_entries`), opaque to the domain.
    """

    def in_space(self, space: str) -> ConversationStore:
        """This store on another tenant's keyspace (same client and scripts)."""
        ...

    def new_service_id(self, owner: str) -> str:
        """A fresh service id for a service of `owner` (its customer id, else its contact key)."""
        ...

    async def start_service(self, new: NewService) -> None:
        """Create a service with its index entries (one script, one partition)."""
        ...

    async def composite_start(self, new: NewService, state: NewItem, task: NewItem | None,
                              attach: bool) -> tuple[Reply, str, bool] | None:
        """One attempt to find the open service matching `new` (customer, contact key, type) and its
        state/task, or create them: (reply, service id, joined in another partition); None: try again."""
        ...

    async def raise_entries(self, service_id: str, expire_at: int) -> bytes | None:
        """Raise the service's index entries in another partition (if any) to `expire_at`; the token of
        its current owner, None if the service is gone."""
        ...

    async def end_service(self, service_id: str, expire_at: int | None, token: bytes, t1: int,
                          fields: Fields) -> Reply:
        """End a service (and its active states and tasks) at `t1`, and drop its match entry."""
        ...

    async def delete_service(self, service_id: str) -> Reply:
        """Delete a conversation and all its index entries."""
        ...

    async def expire_service(self, service_id: str, expire_at: int, token: bytes) -> Reply:
        """Give a conversation and its index entries a new expiry."""
        ...

    async def associate(self, service_id: str, customer_id: str, fields: Fields) -> Reply:
        """Attach a service to `customer_id`: its entries move to the customer's index."""
        ...

    async def start_item(self, service_id: str, kind: str, expire_at: int | None, token: bytes,
                         state_id: int | None, item: NewItem) -> Reply:
        """Start a state or task of a service."""
        ...

    async def end_item(self, service_id: str, kind: str, item_id: int, expire_at: int | None, token: bytes,
                       t1: int, fields: Fields) -> Reply:
        """End a state or task of a service."""
        ...

    async def transition(self, service_id: str, from_id: int, expire_at: int | None, token: bytes,
                         end_fields: Fields, new_state: NewItem) -> Reply:
        """End state `from_id` and start the next one atomically (at `new_state.t0`)."""
        ...

    async def set_attached(self, service_id: str, kind: str | None, item_id: int | None, key: str,
                           value: bytes, token: bytes = b"") -> Reply:
        """Set attached data `key` of the service (kind None), or of state/task `item_id`."""
        ...

    async def read(self, service_id: str, states: bool, tasks: bool) -> Conversation | None:
        """A conversation, or None if it does not exist (one HGETALL when only the service is needed)."""
        ...

    async def services_of(self, customer_id: str | None, contact_key: str | None, states: bool,
                          tasks: bool) -> list[tuple[str, Conversation]]:
        """The live services of a customer (or the anonymous ones of `contact_key`) with their
        conversations; stale and expired index entries are dropped on the way."""
        ...


def busy() -> StorageUnavailable:
    return StorageUnavailable("too many concurrent changes to the same service; try again")


class ContextServicesBase:
    """What services, states and tasks share: limits, ids, timestamps, expiry, status checks."""

    def __init__(self, store: ConversationStore, config: Config) -> None:
        self.store = store
        self.rendered = RenderedServices()  # shared by the tenants' copies: keyed by content
        self.limits = config.limits
        self.options = config.context_services
        self.default_ttl_ms = config.context_services.default_ttl_seconds * 1000

    def in_space(self, space: str) -> Self:
        """These operations on a tenant's keyspace (`gmsd.keys.cs_space`); a shallow copy."""
        other = copy.copy(self)
        other.store = self.store.in_space(space)
        return other

    # --- input -------------------------------------------------------------------------------

    @staticmethod
    def check_service_id(service_id: str) -> None:
        """NotFound for anything gmsd cannot have issued as a service id."""
        if not is_cs_service_id(service_id):
            raise NotFound(f"service {service_id[:80]!r} not found")

    def owner_text(self, text: str | None, what: str) -> str | None:
        """A customer id or contact key: non-empty, at most the key length limit."""
        if text is not None and not self.limits.fits_key(text):
            raise BadRequest(f"`{what}` must have 1 to {self.limits.key_bytes} bytes")
        return text

    @staticmethod
    def timestamp(text: str | None, now: int, name: str = "timestamp") -> int:
        """An event's time in ms: as given (ISO 8601), else the server's time."""
        return now if text is None else instant(text, name)

    @staticmethod
    def expiry(ttl: int | str | None, expiration_time: str | None, now: int) -> int | None:
        """A new expiry (ms) from `ttl` (seconds or GMS units; wins) or `expiration_time`; None if neither.

        A malformed `expiration_time` is a 400 even when `ttl` wins over it.
        """
        at = None if expiration_time is None else instant(expiration_time, "expiration_time")
        if ttl is not None:
            try:
                seconds = parse_duration(ttl)
            except ValueError as exc:
                raise BadRequest(f"`ttl` {ttl!r}: {exc}; give seconds or a duration such as 30s, 10m, 12h, "
                                 "7d, 2w, 6M or 5y") from None
            return now + seconds * 1000
        if at is not None and at <= now:
            raise BadRequest("`expiration_time` must be in the future")
        return at

    def attached(self, raws: dict[str, Raw], event: EventFields) -> Fields:
        return attached_fields(attached_data(raws, event, self.limits))

    def check_attached_key(self, key: str) -> None:
        """A key set through the deprecated extension PUTs."""
        check_name(key, self.limits)
        if key in RESERVED_NAMES:
            raise BadRequest(f"{key!r} is a field of the resource, not attached data")

    @staticmethod
    def item_id(text: str, what: str) -> int:
        """A state or task id from a URL; NotFound if it is not an integer."""
        if not text.isdigit() or len(text) > 18:
            raise NotFound(f"{what} {text[:40]!r} not found")
        return int(text)

    @staticmethod
    def check(reply: Reply, service_id: str, what: str = "") -> Reply:
        """The reply of a script that succeeded; typed errors for the other statuses."""
        status = reply[0]
        if status == b"ok":
            return reply
        if status == b"nf":
            raise NotFound(f"service {service_id!r} not found")
        if status == b"nfs":
            raise NotFound(f"{what} not found in service {service_id!r}")
        if status == b"ended":
            raise Conflict(f"{what or 'service'} is not active (already ended)")
        raise busy()

    async def mutate(self, service_id: str, expire_at: int | None,
                     call: Callable[[bytes], Awaitable[Reply]]) -> Reply:
        """Run a script that may set a new expiry (see the module's docstring).

        First as is: a service whose index entries are in its own partition needs nothing else.
        If they are elsewhere the script answers `retry`: raise them, then run it again with the
        owner seen (it refuses again if the owner changed meanwhile).
        """
        reply = await call(b"")
        for _ in range(MAX_ATTEMPTS):
            if reply[0] != b"retry":
                return reply
            # an explicit expiry as asked; a sliding one (the script's, `reply[1]`) a bit later, as the
            # next attempt slides from a later instant
            target = expire_at if expire_at is not None else int(reply[1]) + SLIDE_MARGIN_MS
            token = await self.store.raise_entries(service_id, target)
            if token is None:
                raise NotFound(f"service {service_id!r} not found")
            reply = await call(token)
        raise busy()

    @staticmethod
    def end_fields(raws: dict[str, Raw], event: EndEvent) -> Fields:
        return [*event_fields(b"e:", raws, event),
                *typed_field(b"e:disposition", raws, event, "disposition"),
                *typed_field(b"e:disposition_desc", raws, event, "disposition_desc")]

    def item_fields(self, raws: dict[str, Raw], event: StateStartEvent | TaskStartEvent,
                    type_name: str) -> tuple[str | None, Fields]:
        """The type of a new state or task (what composite start matches) and its stored fields."""
        type_raw = raws.get(type_name) if getattr(event, type_name) is not None else None
        return type_text(type_raw), start_fields(raws, event, _ITEM_PLANS[type_name], self.limits)

    def new_service(self, event: ServiceStartEvent, raws: dict[str, Raw], now: int) -> NewService:
        """A service about to be created from its start event (its id from the store)."""
        customer = self.owner_text(event.customer_id, "customer_id")
        contact = self.owner_text(event.contact_key, "contact_key")
        owner = customer if customer is not None else contact
        if owner is None:
            raise BadRequest("a service needs `customer_id` or `contact_key`")
        service_id = self.store.new_service_id(owner)
        t0 = self.timestamp(event.timestamp, now)
        kind = type_text(raws["service_type"]) if event.service_type is not None else None
        # Sliding expiration (MAINTENANCE.md §5.5): the period of its type, from every start or
        # update; an explicit `ttl`/`expiration_time` instead, until another explicit one (`xp`).
        period_ms = self.options.period_seconds(kind) * 1000
        explicit = self.expiry(event.ttl, event.expiration_time, now)
        expire_at = explicit or now + period_ms
        expiry_fields = [b"sl", str(period_ms).encode()] + ([b"xp", b"1"] if explicit is not None else [])
        # Auto-complete (§5.4): the start event's period, else the configured one; none when disabled.
        auto = event.auto_complete_after or self.options.auto_complete_after
        if self.options.auto_complete_enabled and auto is not None:
            expiry_fields += [b"ac", str(auto * 1000).encode()]
        fields = start_fields(raws, event, _SERVICE_PLAN, self.limits)
        fields += expiry_fields
        if customer is not None:
            fields += (b"cust", customer.encode())
        if contact is not None:
            fields += (b"ck", contact.encode())
        return NewService(service_id, customer, contact, kind, expire_at, t0, fields)


class ContextServices(ContextServicesBase):
    """The service operations of `/genesys/1/cs`."""

    async def start_service(self, event: ServiceStartEvent, raws: dict[str, Raw]) -> str:
        """Create a service; its id."""
        new = self.new_service(event, raws, now_millis())
        await self.store.start_service(new)
        return new.service_id

    async def end_service(self, service_id: str, event: EndEvent, raws: dict[str, Raw]) -> None:
        """End a service and its active states and tasks; 409 if it has ended already."""
        self.check_service_id(service_id)
        now = now_millis()
        t1 = self.timestamp(event.timestamp, now)
        expire_at = self.expiry(event.ttl, event.expiration_time, now)
        fields = [*self.end_fields(raws, event), *self.attached(raws, event)]
        self.check(await self.mutate(
            service_id, expire_at,
            lambda token: self.store.end_service(service_id, expire_at, token, t1, fields)), service_id)

    async def get_service(self, service_id: str, view: View) -> Raw:
        self.check_service_id(service_id)
        want_states = view.active_states or view.completed_states
        want_tasks = view.active_tasks or view.completed_tasks
        found = await self.store.read(service_id, want_states, want_tasks)
        if found is None:
            raise NotFound(f"service {service_id!r} not found")
        return render_service(service_id, found.service, found.states, found.tasks, view)

    async def delete_service(self, service_id: str) -> None:
        """Delete a service with its states and tasks (and its index entries)."""
        self.check_service_id(service_id)
        self.check(await self.store.delete_service(service_id), service_id)

    async def expire_service(self, service_id: str, ttl: int | str | None, expiration_time: str | None) -> None:
        """PUT /services/{id}: a new expiry for the whole conversation."""
        self.check_service_id(service_id)
        expire_at = self.expiry(ttl, expiration_time, now_millis())
        if expire_at is None:
            raise BadRequest("the body needs `ttl` (seconds) or `expiration_time` (ISO 8601)")
        self.check(await self.mutate(
            service_id, expire_at, lambda token: self.store.expire_service(service_id, expire_at, token)),
            service_id)

    async def associate(self, customer_id: str, service_id: str, event: ServiceStartEvent,
                        raws: dict[str, Raw]) -> None:
        """Associate a service with a customer; the body may update start event fields and attached data."""
        self.check_service_id(service_id)
        self.owner_text(customer_id, "customer_id")
        # `timestamp` and `expiration_time` are ignored here, but a malformed one is still a 400.
        for name in ("timestamp", "expiration_time"):
            text = getattr(event, name)
            if text is not None:
                self.timestamp(text, 0, name)
        fields = [*event_fields(b"s:", raws, event), *self.attached(raws, event)]
        self.check(await self.store.associate(service_id, customer_id, fields), service_id)

    async def set_service_attached(self, service_id: str, key: str, value: bytes) -> None:
        """PUT /services/{id}/extensions/{key} (deprecated): one attached data key."""
        self.check_service_id(service_id)
        self.check_attached_key(key)
        self.check(await self.mutate(
            service_id, None, lambda token: self.store.set_attached(service_id, None, None, key, value, token)),
            service_id)

    # --- queries -----------------------------------------------------------------------------

    async def customer_services(self, customer_id: str, where: ServiceFilter, view: View) -> list[Raw]:
        """The services of a customer that pass `where`, oldest first."""
        if not self.limits.fits_key(customer_id):
            return []
        return await self._query(customer_id, None, where, view)

    async def anonymous_services(self, contact_key: str, where: ServiceFilter, view: View) -> list[Raw]:
        """The anonymous services of a contact key that pass `where`, oldest first."""
        if not self.limits.fits_key(contact_key):
            return []
        return await self._query(None, contact_key, where, view)

    async def _query(self, customer_id: str | None, contact_key: str | None, where: ServiceFilter,
                     view: View) -> list[Raw]:
        want_states = view.active_states or view.completed_states
        want_tasks = view.active_tasks or view.completed_tasks
        found = await self.store.services_of(customer_id, contact_key, want_states, want_tasks)
        kept = [(sid, c.service, c) for sid, c in found if where.matches(c.service)]
        return self.rendered.render([(sid, c) for sid, _, c in oldest_first(kept)], view)
