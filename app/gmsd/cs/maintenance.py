"""Context Services maintenance (MAINTENANCE.md §5.1–5.3): purge and export of services.

Pure logic over `MaintenanceStore`. Neither purge nor export scans the keyspace: both read the
per-partition time index (`ts`: service ids by start time, `te`: by end time; docs/keys.md),
partition by partition, in bounded pages, so Redis is never blocked by one long command and gmsd
never holds the whole selection:

- a purge walks each partition's services started before the limit, a page at a time, and
  deletes in one script per page those the operation selects (`PURGE_BATCH` per script);
- an export merges the partitions' time index pages by event time (oldest first), checks each
  candidate against its service (a page at a time) and yields the answer in chunks; what it holds
  at any moment is bounded by the partitions' page buffers, whatever the number of services.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeVar

from msgspec import Raw

from gmsd.cs.files import FORMATS, ExportFiles
from gmsd.cs.records import Conversation, View, render_service
from gmsd.errors import BadRequest
from gmsd.keys import CS_PARTITIONS
from gmsd.timestamps import instant, now_millis

PURGE_BATCH = 100  # services examined (and at most deleted) per purge script
PURGE_PARALLEL = 8  # partitions purged at once
FIRST_PAGE = 16  # time index entries read per partition to start an export
NEXT_PAGE = 32  # and then, each time a partition's buffer runs dry
EXPORT_BATCH = 100  # candidates checked against their services per round trip


class MaintenanceStore(Protocol):
    """What maintenance needs of the store (`gmsd.cs.store.CsStore`)."""

    def in_space(self, space: str) -> MaintenanceStore:
        """This store on another tenant's keyspace."""
        ...

    async def time_page(self, partition: int, ended: bool, low: int | str, high: int | str, offset: int,
                        count: int) -> list[tuple[str, int]]:
        """(service id, time ms) started (or ended) in [low, high], by time then id."""
        ...

    async def service_times(self, service_ids: list[str]) -> list[tuple[int, int | None] | None]:
        """(start ms, end ms or None) of each service, None if gone."""
        ...

    async def purge_batch(self, partition: int, service_ids: list[str], state: str, anonymous: bool) -> str:
        """Delete the selected ones of `service_ids` (and their entries elsewhere); one mark per service:
        `p` purged, `k` kept, `g` gone."""
        ...

    async def read_many(self, service_ids: list[str], states: bool, tasks: bool) -> list[Conversation | None]:
        """Many conversations, each read atomically."""
        ...



# --- purge ---------------------------------------------------------------------------------------

# operation → (state of the services it purges, anonymous ones only)
PURGE_OPERATIONS: dict[str, tuple[str, bool]] = {
    "purge.service.all": ("any", False),
    "purge.service.started": ("active", False),
    "purge.service.started.anonymous": ("active", True),
    "purge.service.completed": ("completed", False),
    "purge.service.completed.anonymous": ("completed", True),
}


@dataclass(frozen=True)
class Purge:
    """A purge request: services started strictly before `limit` (ms) that `operation` selects."""

    limit: int
    state: str
    anonymous: bool

    @classmethod
    def parse(cls, limit: str | None, operation: str | None) -> Purge:
        """From the request's `limit` (ISO 8601) and `operation`; 400 if either is missing or bad."""
        if not limit:
            raise BadRequest("`limit` (an ISO 8601 instant) is mandatory")
        if not operation:
            raise BadRequest("`operation` is mandatory: one of " + ", ".join(PURGE_OPERATIONS))
        chosen = PURGE_OPERATIONS.get(operation)
        if chosen is None:
            raise BadRequest(f"unknown `operation` {operation[:60]!r}: one of " + ", ".join(PURGE_OPERATIONS))
        return cls(instant(limit, "limit"), *chosen)


# --- export --------------------------------------------------------------------------------------

class Events(Enum):
    """Which of a service's own events must fall in the range."""

    ANY = "any"
    STARTED = "started"
    COMPLETED = "completed"


class StateNow(Enum):
    """The service's state at query time."""

    ANY = "any"
    ACTIVE = "active"
    INACTIVE = "inactive"


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise BadRequest(f"`{name}` must be true or false")


E = TypeVar("E", bound=Enum)


def _choice(kind: type[E], value: str | None, name: str) -> E:
    if value is None:
        return kind("any")
    try:
        return kind(value.lower())
    except ValueError:
        allowed = ", ".join(str(item.value) for item in kind)
        raise BadRequest(f"`{name}` {value[:40]!r} must be one of {allowed}") from None


@dataclass(frozen=True)
class ExportQuery:
    """What an export selects (MAINTENANCE.md §5.2): services with a start (and/or end) event in
    [time_from, time_to] (inclusive), in the state `state` now; ids only, or whole services."""

    time_from: int
    time_to: int
    events: Events = Events.ANY
    state: StateNow = StateNow.ANY
    content: bool = False

    @classmethod
    def parse(cls, params: dict[str, str], files: bool = False) -> ExportQuery:
        """From the query parameters; `files`: the file export, where `filter_state` needs no content."""
        time_from = params.get("time_from")
        if not time_from:
            raise BadRequest("`time_from` (an ISO 8601 instant) is mandatory")
        start = instant(time_from, "time_from")
        time_to = params.get("time_to")
        end = now_millis() if not time_to else instant(time_to, "time_to")
        if end < start:
            raise BadRequest("`time_to` must not be before `time_from`")
        content = True if files else _flag(params.get("export_content"), "export_content")
        if not content and params.get("filter_state") is not None:
            raise BadRequest("`filter_state` is only allowed with `export_content=true`")
        return cls(start, end, _choice(Events, params.get("filter_events"), "filter_events"),
                   _choice(StateNow, params.get("filter_state"), "filter_state"), content)

    def keeps(self, ended_in_index: bool, times: tuple[int, int | None]) -> bool:
        """Whether a candidate found in the start (or end) index is exported, its service's times
        read now. A service with both events in the range is taken once, at its start."""
        t0, t1 = times
        if ended_in_index and self.events is Events.ANY and self.time_from <= t0 <= self.time_to:
            return False
        if self.state is StateNow.ACTIVE and t1 is not None:
            return False
        return not (self.state is StateNow.INACTIVE and t1 is None)


# Everything a content export shows: all four arrays, states without nested tasks.
EXPORT_VIEW = View(active_states=True, completed_states=True, active_tasks=True, completed_tasks=True)


class _Cursor:
    """A page-by-page read of one partition's time index (starts or ends) over a range.

    It resumes at the score it stopped at, past the entries of that score it already took: entries
    removed meanwhile before it (expired, purged) move nothing it has still to read.
    """

    def __init__(self, partition: int, ended: bool, low: int | str) -> None:
        self.partition = partition
        self.ended = ended
        self.buffer: deque[tuple[str, int]] = deque()
        self.low: int | str = low
        self.ties = 0  # entries of score `low` already taken
        self.done = False

    def passed(self, at: int) -> None:
        """One more entry of score `at` is behind the cursor."""
        if at == self.low:
            self.ties += 1
        else:
            self.low, self.ties = at, 1

    def take(self, page: list[tuple[str, int]], asked: int) -> None:
        self.buffer.extend(page)
        for _, at in page:
            self.passed(at)
        self.done = len(page) < asked

    def head(self, index: int) -> tuple[int, str, int]:
        sid, at = self.buffer[0]
        return at, sid, index


class Maintenance:
    """Purge and export of the services of one tenant's keyspace."""

    def __init__(self, store: MaintenanceStore, export_dir: str = "./export") -> None:
        self.store = store
        self.export_dir = export_dir  # where exports to files go (`[context_services] export_dir`)

    def in_space(self, space: str) -> Maintenance:
        """The same operations on a tenant's keyspace."""
        return Maintenance(self.store.in_space(space), self.export_dir)

    # --- purge -----------------------------------------------------------------------------------

    async def purge(self, purge: Purge) -> int:
        """Delete the services `purge` selects, partition by partition in bounded batches; how many."""
        partitions = iter(range(CS_PARTITIONS))
        counts: list[int] = []

        async def worker() -> None:
            for partition in partitions:  # the workers share the iterator: each partition once
                counts.append(await self._purge_partition(partition, purge))

        await asyncio.gather(*(worker() for _ in range(PURGE_PARALLEL)))
        return sum(counts)

    async def _purge_partition(self, partition: int, purge: Purge) -> int:
        purged = 0
        cursor = _Cursor(partition, False, "-inf")
        high = f"({purge.limit}"
        while True:
            page = await self.store.time_page(partition, False, cursor.low, high, cursor.ties, PURGE_BATCH)
            if not page:
                return purged
            marks = await self.store.purge_batch(partition, [sid for sid, _ in page], purge.state, purge.anonymous)
            purged += marks.count("p")
            for (_, at), mark in zip(page, marks, strict=True):
                if mark == "k":  # still there: the next read starts past it
                    cursor.passed(at)
            if len(page) < PURGE_BATCH:
                return purged

    # --- export ----------------------------------------------------------------------------------

    async def export(self, query: ExportQuery) -> AsyncIterator[list[Raw | str]]:
        """The exported services (ids, or rendered services with `content`), oldest event first, in
        bounded batches."""
        async for batch in self.selected(query):
            if query.content:
                yield [render_service(sid, found.service, found.states, found.tasks, EXPORT_VIEW)
                       for sid, found in batch if found is not None]
            else:
                yield [sid for sid, _ in batch]

    async def selected(self, query: ExportQuery) -> AsyncIterator[list[tuple[str, Conversation | None]]]:
        """The services `query` selects, oldest matching event first, in bounded batches: with
        `content` each with its conversation as read, else (id, None)."""
        kinds = {Events.ANY: (False, True), Events.STARTED: (False,), Events.COMPLETED: (True,)}[query.events]
        cursors = [_Cursor(p, ended, query.time_from) for p in range(CS_PARTITIONS) for ended in kinds]
        await self._fill(cursors, query, FIRST_PAGE)
        heap = [c.head(i) for i, c in enumerate(cursors) if c.buffer]
        heapq.heapify(heap)
        batch: list[tuple[str, bool]] = []
        while heap:
            _, sid, index = heapq.heappop(heap)
            cursor = cursors[index]
            cursor.buffer.popleft()
            batch.append((sid, cursor.ended))
            if not cursor.buffer and not cursor.done:
                await self._fill([cursor], query, NEXT_PAGE)
            if cursor.buffer:
                heapq.heappush(heap, cursor.head(index))
            if len(batch) >= EXPORT_BATCH:
                yield await self._resolve(batch, query)
                batch = []
        if batch:
            yield await self._resolve(batch, query)

    async def _fill(self, cursors: list[_Cursor], query: ExportQuery, count: int) -> None:
        pages = await asyncio.gather(*(
            self.store.time_page(c.partition, c.ended, c.low, query.time_to, c.ties, count)
            for c in cursors if not c.done))
        for cursor, page in zip([c for c in cursors if not c.done], pages, strict=True):
            cursor.take(page, count)

    async def _resolve(self, batch: list[tuple[str, bool]],
                       query: ExportQuery) -> list[tuple[str, Conversation | None]]:
        sids = [sid for sid, _ in batch]
        out: list[tuple[str, Conversation | None]] = []
        if not query.content:
            for (sid, ended), times in zip(batch, await self.store.service_times(sids), strict=True):
                if times is not None and query.keeps(ended, times):
                    out.append((sid, None))
            return out
        for (sid, ended), found in zip(batch, await self.store.read_many(sids, True, True), strict=True):
            if found is None:
                continue
            t1 = found.service.get(b"t1")
            times = (int(found.service[b"t0"]), None if t1 is None else int(t1))
            if query.keeps(ended, times):
                out.append((sid, found))
        return out

    # --- export to files -------------------------------------------------------------------------

    async def export_files(self, query: ExportQuery, form: str | None) -> list[str]:
        """Write the services `query` selects to three files (services, states, tasks) in the export
        directory, JSON Lines (`form` json, the default) or CSV; their bare names. Written to
        temporary files, given their names once complete (`gmsd.cs.files`)."""
        chosen = (form or "json").lower()
        if chosen not in FORMATS:
            raise BadRequest(f"`format` {(form or '')[:20]!r} must be json or csv")
        files = ExportFiles(self.export_dir, chosen, now_millis())
        with files.writing() as writers:
            async for batch in self.selected(query):
                for sid, found in batch:
                    if found is not None:
                        writers.add(sid, found)
        return writers.names  # named once the block is over
