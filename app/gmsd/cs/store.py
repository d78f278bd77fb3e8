"""Redis storage of Context Services conversations and their indexes (layout: docs/keys.md).

Every call is one round trip through the command queue (`gmsd.backend.batcher`): one EVALSHA, one
single-key command, or a batch of conversation reads that the queue sends together. Each script
touches the keys of one partition `{cs:<p>}` only, declared in KEYS. Scripts answer a status
first (`ok`, `nf`, `nfs`, `ended`, `retry`, `stale`); the domain (`gmsd.cs.services`) turns them into
answers or typed errors.

The store alone knows partitions, index members (`gmsd.keys`: `cs_member`, `cs_match_prefix`, …)
and the scripts' KEYS and ARGV: the domain speaks in customers, contact keys, types and service ids
(`gmsd.cs.services.ConversationStore`). The second steps of a change whose entries live in another
partition (link or drop them there) are the store's too.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.commands.core import AsyncScript

from gmsd.backend.batcher import CommandBatcher, hash_reply
from gmsd.backend.scripts import ScriptSet
from gmsd.cs.records import Conversation, Fields, Hash, Reply
from gmsd.cs.services import SLIDE_MARGIN_MS, NewItem, NewService
from gmsd.keys import (
    CS_TENANTS,
    cs_anonymous_prefix,
    cs_conversation,
    cs_customer_prefix,
    cs_index,
    cs_match_owner_prefix,
    cs_match_prefix,
    cs_match_suffix,
    cs_member,
    cs_member_service,
    cs_new_service_id,
    cs_owner_part,
    cs_partition,
    cs_service_partition,
    cs_time_index,
    cs_type_part,
)
from gmsd.timestamps import now_millis

# The tenants' set (CS_TENANTS) is refreshed by each process once a day per tenant it starts services
# in, and lives 30 days after the last refresh: a tenant that started nothing for 30 days leaves it.
TENANTS_REFRESH_S = 86_400
TENANTS_TTL_S = 30 * 86_400
# Conversations one read script reads at most (each three HGETALLs): bounds the script's time.
READ_MANY_BATCH = 64


@dataclass(frozen=True)
class CsScripts(ScriptSet):
    """The Context Services scripts: `lua/cs/<name>.lua`, each with `lua/cs/lib.lua` prepended."""

    area = "cs"

    service_start: AsyncScript
    composite_start: AsyncScript
    composite_join: AsyncScript
    service_end: AsyncScript
    service_delete: AsyncScript
    service_expire: AsyncScript
    service_associate: AsyncScript
    item_start: AsyncScript
    item_end: AsyncScript
    state_transition: AsyncScript
    attached_set: AsyncScript
    conversation_read: AsyncScript
    index_read: AsyncScript
    index_link: AsyncScript
    index_drop: AsyncScript
    maintenance_purge: AsyncScript
    auto_complete: AsyncScript


def _counted(fields: Fields) -> list[Any]:
    return [len(fields) // 2, *fields]


def _item_fields(item: NewItem, type_part: bytes | None = None) -> Fields:
    """The stored fields of a new state or task: `tk` (its type as composite start matches it,
    `type_part` when the caller has it) first."""
    return [b"tk", cs_type_part(item.item_type) if type_part is None else type_part, *item.fields]


def _items_args(state: NewItem, task: NewItem | None, attach: bool) -> list[Any]:
    state_type = cs_type_part(state.item_type)
    args: list[Any] = [state_type, state.t0, *_counted(_item_fields(state, state_type))]
    if task is None:
        return [*args, 0]
    task_type = cs_type_part(task.item_type)
    return [*args, 1, task_type, 1 if attach else 0, task.t0, *_counted(_item_fields(task, task_type))]


def _partition(service_id: str) -> int:
    partition = cs_service_partition(service_id)
    assert partition is not None, "the domain checks service ids"
    return partition


@dataclass(frozen=True)
class _Entries:
    """Where a new service goes and what it holds there: partition, index members, stored fields."""

    partition: int
    customer_member: bytes
    match_prefix: bytes
    match_member: bytes
    fields: Fields

    @classmethod
    def of(cls, new: NewService) -> _Entries:
        customer, contact = new.customer_id, new.contact_key
        prefix = cs_customer_prefix(customer) if customer is not None else cs_anonymous_prefix(contact or "")
        match_prefix = cs_match_prefix(customer, contact, new.service_type)
        # the partition new_service_id put in the id: its owner's (no parse of the id)
        partition = cs_partition(customer if customer is not None else contact or "")
        return cls(partition, cs_member(prefix, new.service_id), match_prefix,
                   cs_member(match_prefix, new.service_id),
                   [b"mk", cs_match_suffix(contact, new.service_type), *new.fields])


def _flags(states: bool, tasks: bool) -> tuple[int, int]:
    return (1 if states else 0, 1 if tasks else 0)


class CsStore:
    """Context Services conversations and indexes in Redis."""

    def __init__(self, pipeline: CommandBatcher, space: str = "") -> None:
        self.redis = pipeline
        self.scripts = CsScripts.register(pipeline.client)
        self.space = space  # the tenant's key prefix (`gmsd.keys.cs_space`); "" for the default tenant
        # when this process last recorded each tenant in CS_TENANTS (monotonic s; shared by copies)
        self._registered: dict[str, float] = {}

    def in_space(self, space: str) -> CsStore:
        """This store on another tenant's keyspace (same client and scripts)."""
        store = copy.copy(self)
        store.space = space
        return store

    def _conversation(self, service_id: str, partition: int) -> tuple[str, str, str]:
        return cs_conversation(service_id, partition, self.space)

    def _index(self, partition: int) -> tuple[str, str, str, str, str]:
        """ix, ixexp, then the time index ts, te, tu: every script that takes the index takes all five."""
        return (*cs_index(partition, self.space), *cs_time_index(partition, self.space))

    async def _eval(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self.redis.run_script(script, keys, args)

    async def _eval_many(self, script: AsyncScript, calls: list[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """Many EVALSHAs in one batch (each atomic by itself)."""
        return await self.redis.run_scripts(script, calls)

    def _keys(self, service_id: str) -> tuple[str, str, str]:
        return self._conversation(service_id, _partition(service_id))

    def _keys_and_index(self, service_id: str) -> list[str]:
        partition = _partition(service_id)
        return [*self._conversation(service_id, partition), *self._index(partition)]

    # --- services ----------------------------------------------------------------------------

    async def _register_tenant(self) -> None:
        """Record this store's tenant in CS_TENANTS (the sweeper walks those) at most once a day per
        process; the set lives `TENANTS_TTL_S` after the last one."""
        if not self.space:
            return
        last = self._registered.get(self.space)
        if last is not None and time.monotonic() - last < TENANTS_REFRESH_S:
            return
        self._registered[self.space] = time.monotonic()
        await asyncio.gather(self.redis.execute("SADD", CS_TENANTS, self.space),
                             self.redis.execute("EXPIRE", CS_TENANTS, TENANTS_TTL_S))

    def new_service_id(self, owner: str) -> str:
        """A fresh service id in the partition of `owner` (its customer id, else its contact key)."""
        return cs_new_service_id(cs_partition(owner))

    async def start_service(self, new: NewService) -> None:
        """Create a service with its index entries (one script, one partition)."""
        entries = _Entries.of(new)
        await self._register_tenant()
        svc = self._conversation(new.service_id, entries.partition)[0]
        await self._eval(self.scripts.service_start, [svc, *self._index(entries.partition)],
                         [now_millis(), new.expire_at, entries.customer_member, entries.match_member, new.t0,
                          *_counted(entries.fields)])

    async def composite_start(self, new: NewService, state: NewItem, task: NewItem | None,
                              attach: bool) -> tuple[Reply, str, bool] | None:
        """One attempt to find the open service matching `new` and its state/task, or create them:
        (reply, service id, joined in another partition), or None to try again.

        One script in the owner's partition creates the service if no match entry is there (a
        new customer: one round trip), else answers the first entry, the candidate. One that
        names no service gmsd issued is dropped; one of another partition (a service associated
        with this customer from there) is joined by a script in its own partition, or dropped if
        the service no longer holds it; otherwise the script runs again with the candidate's keys
        and re-checks it (or creates the service if no entry is left).
        """
        entries = _Entries.of(new)
        partition = entries.partition
        await self._register_tenant()
        reply = await self._composite_script(new, entries, state, task, attach, None)
        if reply[0] == b"ok":
            return reply, new.service_id, False
        candidate: bytes | None = reply[1] if len(reply) > 1 else None
        if candidate is None:
            return None
        candidate_id = cs_member_service(candidate)
        where = cs_service_partition(candidate_id)
        if where is None:  # not an id gmsd issued: never valid
            await self.index_drop(partition, [candidate])
            return None
        if where != partition:  # associated with this customer from another partition
            joined: Reply = await self._eval(
                self.scripts.composite_join, self._keys_and_index(candidate_id),
                [now_millis(), candidate, *_items_args(state, task, attach)])
            if joined[0] == b"ok":
                return joined, candidate_id, True
            await self.index_drop(partition, [candidate])
            return None
        reply = await self._composite_script(new, entries, state, task, attach, (candidate, candidate_id))
        if reply[0] != b"ok":
            return None
        return reply, new.service_id if reply[1] == 1 else candidate_id, False

    async def _composite_script(self, new: NewService, entries: _Entries, state: NewItem, task: NewItem | None,
                                attach: bool, candidate: tuple[bytes, str] | None) -> Reply:
        """composite_start.lua in the owner's partition, with the candidate (member, service id)
        of this partition to re-check, or none."""
        partition = entries.partition
        keys = [*self._index(partition), *self._conversation(new.service_id, partition)]
        if candidate is not None:
            keys += self._conversation(candidate[1], partition)
        args = [now_millis(), entries.match_prefix, b"" if candidate is None else candidate[0], new.expire_at,
                entries.customer_member, entries.match_member, new.t0, *_counted(entries.fields),
                *_items_args(state, task, attach)]
        reply: Reply = await self._eval(self.scripts.composite_start, keys, args)
        return reply

    async def raise_entries(self, service_id: str, expire_at: int) -> bytes | None:
        """Raise the service's index entries in another partition (if any) to `expire_at`; its owner's
        member (`cm`, the token a script checks), None if the service is gone."""
        cm, mm, ip = await self.redis.execute("HMGET", self._keys(service_id)[0], "cm", "mm", "ip")
        if cm is None:
            return None
        if ip is not None:
            await self.index_link(int(ip), expire_at, [m for m in (cm, mm) if m])
        customer_member: bytes = cm
        return customer_member

    async def end_service(self, service_id: str, expire_at: int | None, token: bytes, t1: int,
                          fields: Fields) -> Reply:
        """End a service (and its active states and tasks) at `t1`, and drop its match entry."""
        reply: Reply = await self._eval(
            self.scripts.service_end, self._keys_and_index(service_id),
            [now_millis(), "" if expire_at is None else expire_at, token, t1, *_counted(fields)])
        if reply[0] == b"ok":
            remote, match_member = reply[1], reply[2]
            if remote and match_member:  # the match entry lives in the customer's partition
                await self.index_drop(int(remote), [match_member])
        return reply

    async def delete_service(self, service_id: str) -> Reply:
        """Delete a conversation and its index entries (those of another partition right after)."""
        reply: Reply = await self._eval(self.scripts.service_delete, self._keys_and_index(service_id),
                                        [now_millis()])
        if reply[0] == b"ok":
            remote = reply[1]
            if remote:
                await self.index_drop(int(remote), [m for m in reply[2:] if m])
        return reply

    async def expire_service(self, service_id: str, expire_at: int, token: bytes) -> Reply:
        reply: Reply = await self._eval(self.scripts.service_expire, self._keys_and_index(service_id),
                                        [now_millis(), expire_at, token])
        return reply

    async def associate(self, service_id: str, customer_id: str, fields: Fields) -> Reply:
        """Attach a service to `customer_id`: its own partition's half in one script, then (when the
        customer's index is in another partition) the new entries there and the previous owner's
        remote entries dropped (docs/keys.md)."""
        partition = _partition(service_id)
        target = cs_partition(customer_id)
        keys = [*self._conversation(service_id, partition), *self._index(partition)]
        args = [now_millis(), service_id, cs_customer_prefix(customer_id), cs_owner_part(customer_id), customer_id,
                "" if target == partition else target, *_counted(fields)]
        reply: Reply = await self._eval(self.scripts.service_associate, keys, args)
        if reply[0] != b"ok":
            return reply
        expire_at, remote, members = int(reply[1]), reply[2], [m for m in reply[3:5] if m]
        if remote:  # second step: the customer's index lives in another partition
            await self.index_link(int(remote), expire_at, members)
        old_remote, old_members = reply[5], [m for m in reply[6:8] if m]
        if old_remote and old_members:  # left behind by the previous owner: stale for good
            await self.index_drop(int(old_remote), old_members)
        return reply

    # --- states and tasks --------------------------------------------------------------------

    async def start_item(self, service_id: str, kind: str, expire_at: int | None, token: bytes,
                         state_id: int | None, item: NewItem) -> Reply:
        """Start a state or task of a service."""
        args = [now_millis(), "" if expire_at is None else expire_at, token, kind,
                "" if state_id is None else state_id, item.t0, *_counted(_item_fields(item))]
        reply: Reply = await self._eval(self.scripts.item_start, self._keys_and_index(service_id), args)
        return reply

    async def end_item(self, service_id: str, kind: str, item_id: int, expire_at: int | None, token: bytes,
                       t1: int, fields: Fields) -> Reply:
        """End a state or task of a service."""
        args = [now_millis(), "" if expire_at is None else expire_at, token, kind, item_id, t1, *_counted(fields)]
        reply: Reply = await self._eval(self.scripts.item_end, self._keys_and_index(service_id), args)
        return reply

    async def transition(self, service_id: str, from_id: int, expire_at: int | None, token: bytes,
                         end_fields: Fields, new_state: NewItem) -> Reply:
        """End state `from_id` and start the next one atomically (at `new_state.t0`)."""
        args = [now_millis(), "" if expire_at is None else expire_at, token, from_id, new_state.t0,
                *_counted(end_fields), *_counted(_item_fields(new_state))]
        reply: Reply = await self._eval(self.scripts.state_transition, self._keys_and_index(service_id), args)
        return reply

    async def set_attached(self, service_id: str, kind: str | None, item_id: int | None, key: str,
                           value: bytes, token: bytes = b"") -> Reply:
        """Set attached data `key` of the service (kind None), or of state/task `item_id`."""
        prefix = "" if item_id is None else f"{item_id}:"
        reply: Reply = await self._eval(self.scripts.attached_set, self._keys_and_index(service_id),
                                        [now_millis(), token, kind or "", prefix, key, value])
        return reply

    # --- reads -------------------------------------------------------------------------------

    async def read(self, service_id: str, states: bool, tasks: bool) -> Conversation | None:
        """A conversation, or None if it does not exist (one HGETALL when only the service is needed)."""
        keys = self._keys(service_id)
        if not states and not tasks:
            svc: Hash = hash_reply(await self.redis.execute("HGETALL", keys[0]))
            return Conversation(svc, {}, {}) if svc else None
        reply = await self._eval(self.scripts.conversation_read, keys, _flags(states, tasks))
        return _conversation(reply[0])

    async def read_many(self, service_ids: list[str], states: bool, tasks: bool) -> list[Conversation | None]:
        """Many conversations, each read atomically: one MULTI/EXEC of HGETALLs (on one plain
        server: gmsd.backend.wire) or one `conversation_read.lua` call (Cluster, Sentinel, the
        embedded store) per partition and `READ_MANY_BATCH` conversations (a customer's services
        share its partition: usually one for the whole query), all in one pipeline."""
        return await self._read_many([(sid, _partition(sid)) for sid in service_ids], states, tasks)

    async def _read_many(self, located: list[tuple[str, int]], states: bool, tasks: bool) -> list[Conversation | None]:
        keys: list[list[str]] = []  # the KEYS of each call
        slots: list[tuple[int, int]] = []  # (call, place in its answer) of each id, in order
        open_call: dict[int, int] = {}  # partition -> the call still taking conversations
        for sid, partition in located:
            index = open_call.get(partition)
            if index is None or len(keys[index]) >= 3 * READ_MANY_BATCH:
                index = open_call[partition] = len(keys)
                keys.append([])
            slots.append((index, len(keys[index]) // 3))
            keys[index].extend(self._conversation(sid, partition))
        if self.redis.transactions:
            replies = await asyncio.gather(*(self._read_transaction(call_keys, states, tasks) for call_keys in keys))
        else:
            flags = _flags(states, tasks)
            calls: list[tuple[Sequence[str], Sequence[Any]]] = [(call_keys, flags) for call_keys in keys]
            replies = await self._eval_many(self.scripts.conversation_read, calls) if calls else []
        return [_conversation(replies[index][place]) for index, place in slots]

    async def _read_transaction(self, keys: list[str], states: bool, tasks: bool) -> list[Reply]:
        """What `conversation_read.lua` answers for `keys`, read with HGETALLs in one MULTI/EXEC:
        as atomic, and Redis spends a fifth of the CPU on it (no Lua tables built and unbuilt)."""
        commands = [("HGETALL", key) for i, key in enumerate(keys)
                    if i % 3 == 0 or (states if i % 3 == 1 else tasks)]
        replies = iter(await self.redis.transaction(commands))
        return [[next(replies), next(replies) if states else [], next(replies) if tasks else []]
                for _ in range(0, len(keys), 3)]

    async def services_of(self, customer_id: str | None, contact_key: str | None, states: bool,
                          tasks: bool) -> list[tuple[str, Conversation]]:
        """The live services of a customer (or the anonymous ones of `contact_key`) with their
        conversations, in index order. The owner's expired entries (match entries too) are trimmed
        on the way; an entry naming no service gmsd issued, a service that is gone, or one that no
        longer holds it (associated elsewhere since) is never valid again and is dropped."""
        if customer_id is not None:
            owner = customer_id
            prefix, match_prefix = cs_customer_prefix(owner), cs_match_owner_prefix(owner)
        else:
            owner = contact_key or ""
            prefix, match_prefix = cs_anonymous_prefix(owner), cs_match_owner_prefix(None, owner)
        partition = cs_partition(owner)
        members = await self.index_read(partition, prefix, match_prefix)
        stale: list[bytes] = []
        readable: list[bytes] = []
        located: list[tuple[str, int]] = []
        for member in members:
            sid = cs_member_service(member)
            where = cs_service_partition(sid)
            if where is None:
                stale.append(member)
            else:
                readable.append(member)
                located.append((sid, where))
        found = await self._read_many(located, states, tasks) if located else []
        live: list[tuple[str, Conversation]] = []
        for member, (sid, _), conversation in zip(readable, located, found, strict=True):
            if conversation is None or conversation.service.get(b"cm") != member:
                stale.append(member)
            else:
                live.append((sid, conversation))
        await self.index_drop(partition, stale)
        return live

    # --- indexes -----------------------------------------------------------------------------

    async def index_read(self, partition: int, prefix: bytes, also_trim: bytes = b"") -> list[bytes]:
        """The live members under `prefix`; expired ones are dropped on the way, under `also_trim` too."""
        members: list[bytes] = await self._eval(self.scripts.index_read, self._index(partition),
                                                [now_millis(), prefix, also_trim])
        return members

    async def index_link(self, partition: int, expire_at: int, members: list[bytes]) -> None:
        """Add (or raise the expiry of) entries for a service of another partition."""
        await self._eval(self.scripts.index_link, self._index(partition), [now_millis(), expire_at, *members])

    async def index_drop(self, partition: int, members: list[bytes]) -> None:
        """Drop entries that can never be valid again."""
        if members:
            await self._eval(self.scripts.index_drop, self._index(partition), members)

    # --- maintenance: the time index ------------------------------------------------------------

    async def time_page(self, partition: int, ended: bool, low: int | str, high: int | str, offset: int,
                        count: int) -> list[tuple[str, int]]:
        """(service id, time ms) of the time index of a partition, by time then id: services started
        (`ended` False) or ended in [low, high] (`(n` excludes n), `count` from `offset` on."""
        key = self._index(partition)[3 if ended else 2]
        flat: list[bytes] = await self.redis.execute("ZRANGEBYSCORE", key, low, high, "WITHSCORES",
                                                     "LIMIT", offset, count)
        if flat and isinstance(flat[0], (list, tuple)):  # RESP3 clients answer pairs
            return [(bytes(sid).decode(), int(float(score))) for sid, score in flat]
        return [(flat[i].decode(), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]

    async def service_times(self, service_ids: list[str]) -> list[tuple[int, int | None] | None]:
        """(start ms, end ms or None) of each service, None for one that is gone; one batch."""
        futures = [self.redis.execute("HMGET", self._keys(sid)[0], "t0", "t1") for sid in service_ids]
        out: list[tuple[int, int | None] | None] = []
        for t0, t1 in await asyncio.gather(*futures):
            out.append(None if t0 is None else (int(t0), None if t1 is None else int(t1)))
        return out

    async def purge_batch(self, partition: int, service_ids: list[str], state: str, anonymous: bool) -> str:
        """Delete those of `service_ids` (all of `partition`) that `state` ('any', 'active',
        'completed') and `anonymous` select, then their customer entries in other partitions; one
        mark per service: `p` purged, `k` kept, `g` gone."""
        keys: list[str] = list(self._index(partition))
        for sid in service_ids:
            keys += self._conversation(sid, partition)
        reply: Reply = await self._eval(self.scripts.maintenance_purge, keys,
                                        [now_millis(), state, 1 if anonymous else 0])
        marks = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        remote = reply[1:]
        for i in range(0, len(remote), 3):  # {ip, cm, mm} of customer entries in another partition
            members = [m for m in remote[i + 1:i + 3] if m]
            await self.index_drop(int(remote[i]), members)
        return marks

    # --- auto-complete ---------------------------------------------------------------------------

    async def tenants(self) -> list[str]:
        """The key prefixes of the tenants that started services ("" the default tenant not included)."""
        members: list[bytes] = await self.redis.execute("SMEMBERS", CS_TENANTS)
        return sorted(m.decode() for m in members)

    async def due(self, partitions: list[int], now: int, count: int) -> list[list[str]]:
        """Per partition, up to `count` active services whose auto-complete deadline is past; one batch."""
        futures = [self.redis.execute("ZRANGEBYSCORE", self._index(p)[4], "-inf", now, "LIMIT", 0, count)
                   for p in partitions]
        return [[m.decode() for m in found] for found in await asyncio.gather(*futures)]

    async def complete_idle(self, partition: int, service_ids: list[str]) -> int:
        """End those of `service_ids` still due, at their deadline, then fix their index entries in
        other partitions (match entries dropped, customer entries raised past a slid expiry); how many."""
        keys: list[str] = list(self._index(partition))
        for sid in service_ids:
            keys += self._conversation(sid, partition)
        reply: Reply = await self._eval(self.scripts.auto_complete, keys, [now_millis()])
        remote = reply[1:]
        for i in range(0, len(remote), 4):  # {ip, mm, cm, expiry} of index entries in another partition
            ip, match_member, customer_member, expiry = int(remote[i]), *remote[i + 1:i + 4]
            if match_member:  # an ended service is no longer matched
                await self.index_drop(ip, [match_member])
            if customer_member and expiry:  # the end slid its expiry
                await self.index_link(ip, int(expiry) + SLIDE_MARGIN_MS, [customer_member])
        return int(reply[0])


def _conversation(reply: Reply) -> Conversation | None:
    svc, states, tasks = reply
    if not svc:
        return None
    return Conversation.read((svc, states, tasks))
