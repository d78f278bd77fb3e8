"""Which services a query answers (seed 004): filters over the service hashes, oldest first.

Pure functions over what the store read: the index narrows a query to one customer's (or one
contact key's) services; everything else is decided here, per service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from gmsd.cs.records import Hash, attached_text, type_text


class Which(Enum):
    """All services, only the active ones, or only the completed ones."""

    ALL = "all"
    ACTIVE = "active"
    COMPLETED = "completed"


@dataclass(frozen=True)
class ServiceFilter:
    """The filters of a service query; times in epoch ms, `*_from` inclusive, `*_to` exclusive.

    `completed_*` filters keep only completed services (they mean nothing for active ones and are
    ignored by an `/active` query). `types` compares by text (`5` matches `"5"`). `attached`:
    each key must be present and equal, as text, to the value.
    """

    which: Which = Which.ALL
    started_from: int | None = None
    started_to: int | None = None
    completed_from: int | None = None
    completed_to: int | None = None
    types: frozenset[str] | None = None
    attached: tuple[tuple[str, str], ...] = field(default=())

    def matches(self, svc: Hash) -> bool:
        """True if the service whose hash is `svc` passes every filter."""
        t0 = int(svc[b"t0"])
        ended = svc.get(b"t1")
        if self.which is Which.ACTIVE and ended is not None:
            return False
        if self.which is Which.COMPLETED and ended is None:
            return False
        if not _within(t0, self.started_from, self.started_to):
            return False
        completion = self.completed_from is not None or self.completed_to is not None
        if completion and self.which is not Which.ACTIVE and (
            ended is None or not _within(int(ended), self.completed_from, self.completed_to)
        ):
            return False
        if self.types is not None and type_text(svc.get(b"type")) not in self.types:
            return False
        return all(attached_text(svc, key) == value for key, value in self.attached)


def _within(millis: int, start: int | None, end: int | None) -> bool:
    return (start is None or millis >= start) and (end is None or millis < end)


T = TypeVar("T")


def oldest_first(found: list[tuple[str, Hash, T]]) -> list[tuple[str, Hash, T]]:
    """Services (id, service hash, what goes with it) by start time, oldest first (ties: by id, for
    a stable order), as states and tasks are: a public client takes the last element of a list as
    the most recent one (API.md §2)."""
    return sorted(found, key=lambda item: (int(item[1][b"t0"]), item[0]))
