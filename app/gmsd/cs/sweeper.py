"""Auto-complete of idle services (MAINTENANCE.md §5.4): the sweeper of one service process.

Every `auto_complete_sweep_interval` seconds it walks every partition of the default tenant and
of every tenant that started services: one batched read of the head of each partition's
auto-complete index (`tu`: active services by deadline = last update + period; docs/keys.md),
then, for the partitions with due services, one script per bounded batch that completes those
still due. No keyspace scan: the reads are of 1,024 small sorted sets, bounded by the batch.

Safe with several workers and replicas without coordination: the script checks each service's
deadline and state again and completes it atomically, so of several sweepers racing, exactly one
completes each service; the others find it done and skip it. A failed sweep (Redis away) is
logged and retried at the next interval.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from gmsd.keys import CS_PARTITIONS
from gmsd.timestamps import now_millis

log = logging.getLogger("gmsd")

SWEEP_BATCH = 100  # services completed per script
READ_PARTITIONS = 256  # partitions whose heads one batch reads


class SweepStore(Protocol):
    """What the sweeper needs of the store (`gmsd.cs.store.CsStore`)."""

    def in_space(self, space: str) -> SweepStore:
        """This store on another tenant's keyspace."""
        ...

    async def tenants(self) -> list[str]:
        """The key prefixes of the tenants that started services."""
        ...

    async def due(self, partitions: list[int], now: int, count: int) -> list[list[str]]:
        """Per partition, up to `count` services whose auto-complete deadline is past."""
        ...

    async def complete_idle(self, partition: int, service_ids: list[str]) -> int:
        """Complete those still due (and fix their index entries in other partitions); how many."""
        ...


class AutoCompleteSweeper:
    """Completes the services that received no update for their auto-complete period."""

    def __init__(self, store: SweepStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self.completed = 0  # in this process, since it started

    async def run(self) -> None:
        """Sweep every `interval` seconds until cancelled."""
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away or refusing: the next sweep tries again
                log.warning("auto-complete sweep failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.interval)

    async def sweep(self) -> int:
        """One sweep of every tenant's partitions; how many services it completed."""
        total = 0
        for space in ["", *await self.store.tenants()]:
            total += await self.sweep_space(self.store if not space else self.store.in_space(space))
        self.completed += total
        if total:
            log.info("auto-complete: completed %d services", total)
        return total

    async def sweep_space(self, store: SweepStore) -> int:
        """One sweep of one tenant's 1,024 partitions."""
        total = 0
        for first in range(0, CS_PARTITIONS, READ_PARTITIONS):
            partitions = list(range(first, min(first + READ_PARTITIONS, CS_PARTITIONS)))
            now = now_millis()
            for partition, due in zip(partitions, await store.due(partitions, now, SWEEP_BATCH), strict=True):
                while due:
                    total += await self._complete(store, partition, due)
                    if len(due) < SWEEP_BATCH:
                        break
                    [due] = await store.due([partition], now_millis(), SWEEP_BATCH)
        return total

    @staticmethod
    async def _complete(store: SweepStore, partition: int, due: list[str]) -> int:
        return await store.complete_idle(partition, due)
