"""The Context Services domain: services, queries and expiry.

Pure logic over `ConversationStore`: it checks input, picks partitions and ids, turns events into stored
fields, and turns the scripts' statuses into answers or the typed errors of `gmsd.errors`.
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
    ItemSpec,
    Reply,
    View,
    attached_data,
    attached_fields,
    check_name,
    event_fields,
    render_service,
    type_text,
    typed_field,
)
from gmsd.errors import BadRequest, Conflict, NotFound, StorageUnavailable
from gmsd.keys import (
    cs_anonymous_prefix,
    cs_customer_prefix,
    cs_match_owner_prefix,
    cs_match_prefix,
    cs_match_suffix,
    cs_member,
    cs_member_service,
    cs_new_service_id,
    cs_owner_part,
    cs_partition,
    cs_service_partition,
    cs_type_part,
)
from gmsd.timestamps import instant, now_millis

# Each attempt means another request changed the same index or service meanwhile (and made
# progress); this many in a row only happens under pathological contention.
MAX_ATTEMPTS = 16
# Entries in another partition are raised this much past a sliding expiry (MAINTENANCE.md §5.5):
# the write that applies it slides from a later instant than the one that asked. An entry that
# outlives its conversation a little is harmless (readers check the service).
SLIDE_MARGIN_MS = 60_000


class ConversationStore(Protocol):
    """Where conversations and their indexes live (`gmsd.cs.store.CsStore` on Redis).

    Scripts answer a status first (`ok`, `nf`, `nfs`, `ended`, `retry`, `stale`), then their data.
    """

    def in_space(self, space: str) -> ConversationStore:
        """This store on another tenant's keyspace (same client and scripts)."""
        ...

    async def start_service(self, service_id: str, partition: int, expire_at: int, customer_member: bytes,
                            match_member: bytes, t0: int, fields: Fields) -> None:
        """Create a service with its index entries (one script, one partition)."""
        ...

    async def match_candidate(self, partition: int, prefix: bytes) -> bytes | None:
        """The first index member under a match prefix (to be checked by the script using it)."""
        ...

    async def composite_start(self, partition: int, new_id: str, candidate: bytes, candidate_id: str | None,
                              service: tuple[int, bytes, bytes, int, Fields], prefix: bytes,
                              state: ItemSpec, task: ItemSpec | None, attach: bool) -> Reply:
        """Find the open service matching `prefix` and its state/task, or create them, in one script."""
        ...

    async def composite_join(self, service_id: str, candidate: bytes, state: ItemSpec, task: ItemSpec | None,
                             attach: bool) -> Reply:
        """Find or add the state/task of an existing candidate service, in one script."""
        ...

    async def owner(self, service_id: str) -> tuple[bytes, bytes | None, bytes | None] | None:
        """(customer/anonymous member, match member, index partition if remote), None if gone."""
        ...

    async def end_service(self, service_id: str, expire_at: int | None, token: bytes, t1: int,
                          fields: Fields) -> Reply:
        """End a service (and its active states and tasks) at `t1`."""
        ...

    async def delete_service(self, service_id: str) -> Reply:
        """Delete a conversation and its index entries in its own partition."""
        ...

    async def expire_service(self, service_id: str, expire_at: int, token: bytes) -> Reply:
        """Give a conversation and its index entries a new expiry."""
        ...

    async def associate(self, service_id: str, customer_id: str, member_prefix: bytes, owner_part: bytes,
                        remote_partition: int | None, fields: Fields) -> Reply:
        """Attach an anonymous service to `customer_id` (its own partition's half)."""
        ...

    async def start_item(self, service_id: str, kind: str, expire_at: int | None, token: bytes,
                         state_id: int | None, t0: int, fields: Fields) -> Reply:
        """Start a state or task of a service."""
        ...

    async def end_item(self, service_id: str, kind: str, item_id: int, expire_at: int | None, token: bytes,
                       t1: int, fields: Fields) -> Reply:
        """End a state or task of a service."""
        ...

    async def transition(self, service_id: str, from_id: int, expire_at: int | None, token: bytes, at: int,
                         end_fields: Fields, new_fields: Fields) -> Reply:
        """End state `from_id` and start the next one atomically."""
        ...

    async def set_attached(self, service_id: str, kind: str | None, item_id: int | None, key: str,
                           value: bytes, token: bytes = b"") -> Reply:
        """Set attached data `key` of the service (kind None), or of state/task `item_id`."""
        ...

    async def read(self, service_id: str, states: bool, tasks: bool) -> Conversation | None:
        """A conversation, or None if it does not exist (one HGETALL when only the service is needed)."""
        ...

    async def read_many(self, service_ids: list[str], states: bool, tasks: bool) -> list[Conversation | None]:
        """Many conversations in one pipeline, each read atomically."""
        ...

    async def index_read(self, partition: int, prefix: bytes, also_trim: bytes = b"") -> list[bytes]:
        """The live members under `prefix`; expired ones are dropped on the way, under `also_trim` too."""
        ...

    async def index_link(self, partition: int, expire_at: int, members: list[bytes]) -> None:
        """Add (or raise the expiry of) entries for a service of another partition."""
        ...

    async def index_drop(self, partition: int, members: list[bytes]) -> None:
        """Drop entries that can never be valid again."""
        ...


def busy() -> StorageUnavailable:
    return StorageUnavailable("too many concurrent changes to the same service; try again")


class ContextServicesBase:
    """What services, states and tasks share: limits, ids, timestamps, expiry, status checks."""

    def __init__(self, store: ConversationStore, config: Config) -> None:
        self.store = store
        self.limits = config.limits
        self.options = config.context_services
        self.default_ttl_ms = config.context_services.default_ttl_seconds * 1000

    def in_space(self, space: str) -> Self:
        """These operations on a tenant's keyspace (`gmsd.keys.cs_space`); a shallow copy."""
        other = copy.copy(self)
        other.store = self.store.in_space(space)
        return other

    # --- input -------------------------------------------------------------------------------

    def check_service_id(self, service_id: str) -> int:
        """The partition of a service id; NotFound for anything gmsd cannot have issued."""
        partition = cs_service_partition(service_id)
        if partition is None:
            raise NotFound(f"service {service_id[:80]!r} not found")
        return partition

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
            owner = await self.store.owner(service_id)
            if owner is None:
                raise NotFound(f"service {service_id!r} not found")
            customer_member, match_member, remote = owner
            if remote is not None:
                await self.store.index_link(int(remote), target, [m for m in (customer_member, match_member) if m])
            reply = await call(customer_member)
        raise busy()

    @staticmethod
    def end_fields(raws: dict[str, Raw], event: EndEvent) -> Fields:
        return [*event_fields(b"e:", raws, event),
                *typed_field(b"e:disposition", raws, event, "disposition"),
                *typed_field(b"e:disposition_desc", raws, event, "disposition_desc")]

    def item_fields(self, raws: dict[str, Raw], event: StateStartEvent | TaskStartEvent,
                    type_name: str) -> tuple[Fields, bytes]:
        """The stored fields of a new state or task, and its type part (what composite matches)."""
        type_raw = raws.get(type_name) if getattr(event, type_name) is not None else None
        part = cs_type_part(type_text(type_raw))
        fields = [b"tk", part, *typed_field(b"type", raws, event, type_name),
                  *typed_field(b"est", raws, event, "est_duration"),
                  *event_fields(b"s:", raws, event), *self.attached(raws, event)]
        return fields, part


class NewService:
    """A service about to be created: its id, partition, index members and stored fields."""

    def __init__(self, api: ContextServicesBase, event: ServiceStartEvent, raws: dict[str, Raw], now: int) -> None:
        customer = api.owner_text(event.customer_id, "customer_id")
        contact = api.owner_text(event.contact_key, "contact_key")
        owner = customer if customer is not None else contact
        if owner is None:
            raise BadRequest("a service needs `customer_id` or `contact_key`")
        self.partition = cs_partition(owner)
        self.service_id = cs_new_service_id(self.partition)
        self.t0 = api.timestamp(event.timestamp, now)
        kind = type_text(raws["service_type"]) if event.service_type is not None else None
        # Sliding expiration (MAINTENANCE.md §5.5): the period of its type, from every start or
        # update; an explicit `ttl`/`expiration_time` instead, until another explicit one (`xp`).
        period_ms = api.options.period_seconds(kind) * 1000
        explicit = api.expiry(event.ttl, event.expiration_time, now)
        self.expire_at = explicit or now + period_ms
        expiry_fields = [b"sl", str(period_ms).encode()] + ([b"xp", b"1"] if explicit is not None else [])
        # Auto-complete (§5.4): the start event's period, else the configured one; none when disabled.
        auto = event.auto_complete_after or api.options.auto_complete_after
        if api.options.auto_complete_enabled and auto is not None:
            expiry_fields += [b"ac", str(auto * 1000).encode()]
        prefix = cs_customer_prefix(customer) if customer is not None else cs_anonymous_prefix(contact or "")
        self.customer_member = cs_member(prefix, self.service_id)
        self.match_prefix = cs_match_prefix(customer, contact, kind)
        self.match_member = cs_member(self.match_prefix, self.service_id)
        self.fields: Fields = [b"mk", cs_match_suffix(contact, kind),
                               *typed_field(b"type", raws, event, "service_type"),
                               *typed_field(b"est", raws, event, "est_duration"),
                               *event_fields(b"s:", raws, event), *api.attached(raws, event), *expiry_fields]
        if customer is not None:
            self.fields += (b"cust", customer.encode())
        if contact is not None:
            self.fields += (b"ck", contact.encode())

    def script_args(self) -> tuple[int, bytes, bytes, int, Fields]:
        return self.expire_at, self.customer_member, self.match_member, self.t0, self.fields


class ContextServices(ContextServicesBase):
    """The service operations of `/genesys/1/cs`."""

    async def start_service(self, event: ServiceStartEvent, raws: dict[str, Raw]) -> str:
        """Create a service; its id."""
        new = NewService(self, event, raws, now_millis())
        await self.store.start_service(new.service_id, new.partition, *new.script_args())
        return new.service_id

    async def end_service(self, service_id: str, event: EndEvent, raws: dict[str, Raw]) -> None:
        """End a service and its active states and tasks; 409 if it has ended already."""
        self.check_service_id(service_id)
        now = now_millis()
        t1 = self.timestamp(event.timestamp, now)
        expire_at = self.expiry(event.ttl, event.expiration_time, now)
        fields = [*self.end_fields(raws, event), *self.attached(raws, event)]
        reply = self.check(await self.mutate(
            service_id, expire_at,
            lambda token: self.store.end_service(service_id, expire_at, token, t1, fields)), service_id)
        remote, match_member = reply[1], reply[2]
        if remote and match_member:
            await self.store.index_drop(int(remote), [match_member])

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
        reply = self.check(await self.store.delete_service(service_id), service_id)
        remote = reply[1]
        if remote:
            await self.store.index_drop(int(remote), [m for m in reply[2:] if m])

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
        partition = self.check_service_id(service_id)
        self.owner_text(customer_id, "customer_id")
        # `timestamp` and `expiration_time` are ignored here, but a malformed one is still a 400.
        for name in ("timestamp", "expiration_time"):
            text = getattr(event, name)
            if text is not None:
                self.timestamp(text, 0, name)
        target = cs_partition(customer_id)
        fields = [*event_fields(b"s:", raws, event), *self.attached(raws, event)]
        reply = self.check(await self.store.associate(
            service_id, customer_id, cs_customer_prefix(customer_id), cs_owner_part(customer_id),
            None if target == partition else target, fields), service_id)
        expire_at, remote, members = int(reply[1]), reply[2], [m for m in reply[3:5] if m]
        if remote:  # second step: the customer's index lives in another partition
            await self.store.index_link(int(remote), expire_at, members)
        old_remote, old_members = reply[5], [m for m in reply[6:8] if m]
        if old_remote and old_members:  # left behind by the previous owner: stale for good
            await self.store.index_drop(int(old_remote), old_members)

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
        return await self._query(cs_partition(customer_id), cs_customer_prefix(customer_id),
                                 cs_match_owner_prefix(customer_id), where, view)

    async def anonymous_services(self, contact_key: str, where: ServiceFilter, view: View) -> list[Raw]:
        """The anonymous services of a contact key that pass `where`, oldest first."""
        if not self.limits.fits_key(contact_key):
            return []
        return await self._query(cs_partition(contact_key), cs_anonymous_prefix(contact_key),
                                 cs_match_owner_prefix(None, contact_key), where, view)

    async def _query(self, partition: int, prefix: bytes, match_prefix: bytes, where: ServiceFilter,
                     view: View) -> list[Raw]:
        # The owner's expired match entries are trimmed on the way (index hygiene, docs/keys.md).
        members = await self.store.index_read(partition, prefix, match_prefix)
        readable = [(m, cs_member_service(m)) for m in members]
        stale = [m for m, sid in readable if cs_service_partition(sid) is None]
        readable = [(m, sid) for m, sid in readable if cs_service_partition(sid) is not None]
        want_states = view.active_states or view.completed_states
        want_tasks = view.active_tasks or view.completed_tasks
        found = await self.store.read_many([sid for _, sid in readable], want_states, want_tasks) if readable else []
        kept = []
        for (member, sid), conversation in zip(readable, found, strict=True):
            if conversation is None or conversation.service.get(b"cm") != member:
                stale.append(member)  # deleted, or associated elsewhere since: never valid again
            elif where.matches(conversation.service):
                kept.append((sid, conversation))
        await self.store.index_drop(partition, stale)
        by_id = dict(kept)
        ordered = oldest_first([(sid, c.service) for sid, c in kept])
        return [render_service(sid, svc, by_id[sid].states, by_id[sid].tasks, view) for sid, svc in ordered]
