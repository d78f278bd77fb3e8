"""Redis storage of Context Services conversations and their indexes (layout: docs/keys.md).

Every call is one round trip through the command queue (`gmsd.backend.batcher`): one EVALSHA, one
single-key command, or a batch of conversation reads that the queue sends together. Each script
touches the keys of one partition `{cs:<p>}` only, declared in KEYS. Scripts answer a status
first (`ok`, `nf`, `nfs`, `ended`, `retry`, `stale`); the domain (`gmsd.cs.services`) turns them into
answers or typed errors.
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
from gmsd.cs.records import Conversation, Fields, Hash, ItemSpec, Reply, hash_of
from gmsd.keys import CS_TENANTS, cs_conversation, cs_index, cs_service_partition, cs_time_index
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


def _items_args(state: ItemSpec, task: ItemSpec | None, attach: bool) -> list[Any]:
    args: list[Any] = [state.type_part, state.t0, *_counted(state.fields)]
    if task is None:
        return [*args, 0]
    return [*args, 1, task.type_part, 1 if attach else 0, task.t0, *_counted(task.fields)]


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
        partition = cs_service_partition(service_id)
        assert partition is not None, "the domain checks service ids"
        return self._conversation(service_id, partition)

    def _keys_and_index(self, service_id: str) -> list[str]:
        partition = cs_service_partition(service_id)
        assert partition is not None, "the domain checks service ids"
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

    async def start_service(self, service_id: str, partition: int, expire_at: int, customer_member: bytes,
                            match_member: bytes, t0: int, fields: Fields) -> None:
        await self._register_tenant()
        svc = self._conversation(service_id, partition)[0]
        await self._eval(self.scripts.service_start, [svc, *self._index(partition)],
                         [now_millis(), expire_at, customer_member, match_member, t0, *_counted(fields)])

    async def match_candidate(self, partition: int, prefix: bytes) -> bytes | None:
        """The first index member under a match prefix (to be checked by the script using it)."""
        found: list[bytes] = await self.redis.execute(
            "ZRANGEBYLEX", self._index(partition)[0], b"[" + prefix, b"[" + prefix + b"\xff", "LIMIT", 0, 1)
        return found[0] if found else None

    async def composite_start(self, partition: int, new_id: str, candidate: bytes, candidate_id: str | None,
                              service: tuple[int, bytes, bytes, int, Fields], prefix: bytes,
                              state: ItemSpec, task: ItemSpec | None, attach: bool) -> Reply:
        expire_at, customer_member, match_member, t0, fields = service
        await self._register_tenant()
        keys = [*self._index(partition), *self._conversation(new_id, partition)]
        if candidate_id is not None:
            keys += self._conversation(candidate_id, partition)
        args = [now_millis(), prefix, candidate, expire_at, customer_member, match_member, t0,
                *_counted(fields), *_items_args(state, task, attach)]
        reply: Reply = await self._eval(self.scripts.composite_start, keys, args)
        return reply

    async def composite_join(self, service_id: str, candidate: bytes, state: ItemSpec, task: ItemSpec | None,
                             attach: bool) -> Reply:
        reply: Reply = await self._eval(self.scripts.composite_join, self._keys_and_index(service_id),
                                        [now_millis(), candidate, *_items_args(state, task, attach)])
        return reply

    async def owner(self, service_id: str) -> tuple[bytes, bytes | None, bytes | None] | None:
        """(customer/anonymous member, match member, index partition if remote), None if gone."""
        cm, mm, ip = await self.redis.execute("HMGET", self._keys(service_id)[0], "cm", "mm", "ip")
        return None if cm is None else (cm, mm, ip)

    async def end_service(self, service_id: str, expire_at: int | None, token: bytes, t1: int,
                          fields: Fields) -> Reply:
        reply: Reply = await self._eval(
            self.scripts.service_end, self._keys_and_index(service_id),
            [now_millis(), "" if expire_at is None else expire_at, token, t1, *_counted(fields)])
        return reply

    async def delete_service(self, service_id: str) -> Reply:
        reply: Reply = await self._eval(self.scripts.service_delete, self._keys_and_index(service_id),
                                        [now_millis()])
        return reply

    async def expire_service(self, service_id: str, expire_at: int, token: bytes) -> Reply:
        reply: Reply = await self._eval(self.scripts.service_expire, self._keys_and_index(service_id),
                                        [now_millis(), expire_at, token])
        return reply

    async def associate(self, service_id: str, customer_id: str, member_prefix: bytes, owner_part: bytes,
                        remote_partition: int | None, fields: Fields) -> Reply:
        partition = cs_service_partition(service_id)
        assert partition is not None
        keys = [*self._conversation(service_id, partition), *self._index(partition)]
        args = [now_millis(), service_id, member_prefix, owner_part, customer_id,
                "" if remote_partition is None else remote_partition, *_counted(fields)]
        reply: Reply = await self._eval(self.scripts.service_associate, keys, args)
        return reply

    # --- states and tasks --------------------------------------------------------------------

    async def start_item(self, service_id: str, kind: str, expire_at: int | None, token: bytes,
                         state_id: int | None, t0: int, fields: Fields) -> Reply:
        args = [now_millis(), "" if expire_at is None else expire_at, token, kind,
                "" if state_id is None else state_id, t0, *_counted(fields)]
        reply: Reply = await self._eval(self.scripts.item_start, self._keys_and_index(service_id), args)
        return reply

    async def end_item(self, service_id: str, kind: str, item_id: int, expire_at: int | None, token: bytes,
                       t1: int, fields: Fields) -> Reply:
        args = [now_millis(), "" if expire_at is None else expire_at, token, kind, item_id, t1, *_counted(fields)]
        reply: Reply = await self._eval(self.scripts.item_end, self._keys_and_index(service_id), args)
        return reply

    async def transition(self, service_id: str, from_id: int, expire_at: int | None, token: bytes, at: int,
                         end_fields: Fields, new_fields: Fields) -> Reply:
        args = [now_millis(), "" if expire_at is None else expire_at, token, from_id, at,
                *_counted(end_fields), *_counted(new_fields)]
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
        """Many conversations, each read atomically: one script call per partition and
        `READ_MANY_BATCH` conversations (a customer's services share its partition: usually one
        call for the whole query), all calls in one pipeline."""
        flags = _flags(states, tasks)
        keys: list[list[str]] = []  # the KEYS of each call
        slots: list[tuple[int, int]] = []  # (call, place in its answer) of each id, in order
        open_call: dict[int, int] = {}  # partition -> the call still taking conversations
        for sid in service_ids:
            partition = cs_service_partition(sid)
            assert partition is not None, "the domain checks service ids"
            index = open_call.get(partition)
            if index is None or len(keys[index]) >= 3 * READ_MANY_BATCH:
                index = open_call[partition] = len(keys)
                keys.append([])
            slots.append((index, len(keys[index]) // 3))
            keys[index].extend(self._conversation(sid, partition))
        calls: list[tuple[Sequence[str], Sequence[Any]]] = [(call_keys, flags) for call_keys in keys]
        replies = await self._eval_many(self.scripts.conversation_read, calls) if calls else []
        return [_conversation(replies[index][place]) for index, place in slots]

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

    async def purge_batch(self, partition: int, service_ids: list[str], state: str, anonymous: bool) -> Reply:
        """Delete those of `service_ids` (all of `partition`) that `state` ('any', 'active',
        'completed') and `anonymous` select; {purged, kept, ip, cm, mm of remote entries…}."""
        keys: list[str] = list(self._index(partition))
        for sid in service_ids:
            keys += self._conversation(sid, partition)
        reply: Reply = await self._eval(self.scripts.maintenance_purge, keys,
                                        [now_millis(), state, 1 if anonymous else 0])
        return reply

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

    async def complete_idle(self, partition: int, service_ids: list[str]) -> Reply:
        """End those of `service_ids` still due, at their deadline; {completed, ip, mm, cm, expiry…}."""
        keys: list[str] = list(self._index(partition))
        for sid in service_ids:
            keys += self._conversation(sid, partition)
        reply: Reply = await self._eval(self.scripts.auto_complete, keys, [now_millis()])
        return reply


def _conversation(reply: Reply) -> Conversation | None:
    svc, states, tasks = reply
    if not svc:
        return None
    return Conversation(hash_of(svc), hash_of(states), hash_of(tasks))
