"""Redis storage of customer profiles, their schema, identification index and interactions.

Every key of one tenant carries the same hash tag (`gmsd.keys.ucs_tenant`), so each script runs
on one Redis Cluster slot and every write is one atomic EVALSHA (layout: docs/keys.md "Customer
profiles"). Reads are single-key commands through the command queue.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.commands.core import AsyncScript

from gmsd.backend.batcher import CommandBatcher, hash_reply
from gmsd.backend.scripts import ScriptSet
from gmsd.keys import ucs_interaction_index, ucs_profile, ucs_tenant
from gmsd.ucs.plans import IndexFill, ProfileWrite, WriteOutcome


@dataclass(frozen=True)
class UcsScripts(ScriptSet):
    """The customer profile scripts: `lua/ucs/<name>.lua`, each with `lua/ucs/lib.lua` prepended."""

    area = "ucs"

    profile_write: AsyncScript
    schema_write: AsyncScript
    index_fill: AsyncScript
    interaction_write: AsyncScript
    interaction_delete: AsyncScript


def _outcome(reply: Sequence[Any]) -> WriteOutcome:
    status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    detail = reply[1] if len(reply) > 1 else b""
    return WriteOutcome(status, detail if isinstance(detail, bytes) else str(detail).encode())


class UcsStore:
    """Profiles, schema, index and interactions of one tenant in Redis."""

    def __init__(self, pipeline: CommandBatcher, space: str = "") -> None:
        self.redis = pipeline
        self.scripts = UcsScripts.register(pipeline.client)
        self.space = space

    def in_space(self, space: str) -> UcsStore:
        """This store on another tenant's keyspace (same client and scripts)."""
        store = copy.copy(self)
        store.space = space
        return store

    def _tenant(self) -> tuple[str, str, str, str]:
        return ucs_tenant(self.space)

    # --- schema ----------------------------------------------------------------------------

    async def read_schema(self) -> dict[bytes, bytes]:
        """The tenant's schema hash (extension schemas, keys, generation)."""
        return hash_reply(await self.redis.execute("HGETALL", self._tenant()[0]))

    async def write_schema(self, generation: str, changes: Sequence[tuple[str, bytes]],
                           fresh: Sequence[str]) -> WriteOutcome:
        """Apply `changes` (b"" deletes a field) unless the generation moved or a `fresh` field exists."""
        flat: list[Any] = [item for pair in changes for item in pair]
        reply = await self.redis.run_script(self.scripts.schema_write, [self._tenant()[0]],
                                            [generation, len(flat), *flat, len(fresh), *fresh])
        return _outcome(reply)

    # --- profiles --------------------------------------------------------------------------

    async def read_profile(self, customer_id: str) -> dict[bytes, bytes]:
        """A profile's hash ({} if there is none)."""
        return hash_reply(await self.redis.execute("HGETALL", ucs_profile(customer_id, self.space)))

    async def read_profiles(self, customer_ids: Sequence[str]) -> list[dict[bytes, bytes]]:
        """Many profiles' hashes in one batch."""
        futures = [self.redis.execute("HGETALL", ucs_profile(cid, self.space)) for cid in customer_ids]
        return [hash_reply(await future) for future in futures]

    async def read_field(self, customer_ids: Sequence[str], name: str) -> list[bytes | None]:
        """One field of many profiles in one batch."""
        futures = [self.redis.execute("HGET", ucs_profile(cid, self.space), name) for cid in customer_ids]
        return [await future for future in futures]

    async def write_profiles(self, generation: str, writes: Sequence[ProfileWrite],
                             move_interactions: tuple[str, str] | None = None) -> WriteOutcome:
        """Write every profile of `writes` and their index entries in one atomic script."""
        schema, ix, ids, interactions = self._tenant()
        keys = [schema, ix, ids, interactions, ucs_interaction_index(self.space)]
        args: list[Any] = [generation, len(writes)]
        for write in writes:
            keys.append(ucs_profile(write.customer_id, self.space))
            expected = b"" if write.expected_version is None else write.expected_version
            args += [write.customer_id, expected, "d" if write.delete else "w"]
            if not write.delete:
                flat = [item for pair in write.set_fields.items() for item in pair]
                args += [len(flat), *flat, len(write.delete_fields), *write.delete_fields,
                         len(write.members), *write.members, len(write.unique), *write.unique]
        args += list(move_interactions or ("", ""))
        return _outcome(await self.redis.run_script(self.scripts.profile_write, keys, args))

    async def fill_index(self, generation: str, fills: Sequence[IndexFill]) -> WriteOutcome:
        """Add one back-fill batch of index entries (profiles changed since their read are skipped)."""
        schema, ix, _, _ = self._tenant()
        keys = [schema, ix, *(ucs_profile(fill.customer_id, self.space) for fill in fills)]
        args: list[Any] = [generation, len(fills)]
        for fill in fills:
            args += [fill.customer_id, fill.version, len(fill.members), *fill.members, len(fill.unique), *fill.unique]
        return _outcome(await self.redis.run_script(self.scripts.index_fill, keys, args))

    async def index_range(self, prefix: bytes, limit: int) -> list[bytes]:
        """Up to `limit` index members starting with `prefix`, in order."""
        found: list[bytes] = await self.redis.execute(
            "ZRANGEBYLEX", self._tenant()[1], b"[" + prefix, b"[" + prefix + b"\xff", "LIMIT", 0, limit)
        return found

    async def index_drop(self, prefix: bytes, batch: int) -> int:
        """Remove up to `batch` index members starting with `prefix`; how many were removed."""
        found = await self.index_range(prefix, batch)
        if found:
            await self.redis.execute("ZREM", self._tenant()[1], *found)
        return len(found)

    async def customer_ids(self, after: str, count: int) -> list[str]:
        """Up to `count` customer ids after `after` ("" = from the first), in order."""
        low = b"-" if not after else b"(" + after.encode()
        found: list[bytes] = await self.redis.execute("ZRANGEBYLEX", self._tenant()[2], low, b"+", "LIMIT", 0, count)
        return [cid.decode() for cid in found]

    async def drop_field(self, customer_ids: Sequence[str], name: str) -> None:
        """HDEL `name` from many profiles (an extension's records, after its schema left)."""
        futures = [self.redis.execute("HDEL", ucs_profile(cid, self.space), name) for cid in customer_ids]
        for future in futures:
            await future

    async def profile_count(self) -> int:
        """How many profiles the tenant has."""
        count: int = await self.redis.execute("ZCARD", self._tenant()[2])
        return count

    # --- interactions ----------------------------------------------------------------------

    def _interaction_keys(self) -> list[str]:
        return [self._tenant()[3], ucs_interaction_index(self.space)]

    async def write_interaction(self, interaction_id: str, parts: Sequence[tuple[str, bytes]],
                                members: Sequence[bytes]) -> bool:
        """Store a new interaction; False if the id is taken (nothing written)."""
        flat: list[Any] = [item for pair in parts for item in pair]
        reply = await self.redis.run_script(self.scripts.interaction_write, self._interaction_keys(),
                                            [interaction_id, len(flat), *flat, len(members), *members])
        return _outcome(reply).status == "ok"

    async def delete_interaction(self, interaction_id: str) -> bool:
        """Delete an interaction; False if there is none."""
        reply = await self.redis.run_script(self.scripts.interaction_delete, self._interaction_keys(),
                                            [interaction_id])
        return bool(reply)

    async def read_interactions(self, interaction_ids: Sequence[str]) -> list[tuple[bytes | None, bytes | None]]:
        """(metadata JSON, customer id) of each interaction, None where there is none."""
        key = self._tenant()[3]
        futures = [self.redis.execute("HMGET", key, f"{iid}\0m", f"{iid}\0c") for iid in interaction_ids]
        return [tuple(await future) for future in futures]

    async def interaction_list(self, prefix: bytes, limit: int) -> list[bytes]:
        """Up to `limit` interaction list members starting with `prefix` (newest first)."""
        found: list[bytes] = await self.redis.execute(
            "ZRANGEBYLEX", ucs_interaction_index(self.space), b"[" + prefix, b"[" + prefix + b"\xff",
            "LIMIT", 0, limit)
        return found

    async def interaction_content(self, interaction_id: str, part: str) -> tuple[bytes | None, bytes | None]:
        """(content, its stored content type) of one part (`pt`, `st`, `bc`) of an interaction."""
        content, kind = await self.redis.execute("HMGET", self._tenant()[3], f"{interaction_id}\0{part}",
                                                 f"{interaction_id}\0{part}t")
        return content, kind
