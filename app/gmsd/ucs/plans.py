"""What the profile domain asks its store to write in one atomic step (pure values)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProfileWrite:
    """One profile of a write: its new fields and index members, or its deletion.

    `expected_version` is the version the domain read (None: the profile must not exist yet);
    the store refuses the whole write ('retry') if it changed since.
    """

    customer_id: str
    expected_version: bytes | None
    delete: bool = False
    set_fields: dict[str, bytes] = field(default_factory=dict)
    delete_fields: tuple[str, ...] = ()
    members: tuple[bytes, ...] = ()
    unique: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class IndexFill:
    """One profile of an identification key's back-fill: its entries for that key."""

    customer_id: str
    version: bytes
    members: tuple[bytes, ...]
    unique: tuple[bytes, ...]


@dataclass(frozen=True)
class WriteOutcome:
    """What the store answered: `ok`, `retry`, `nf` (with the customer id) or `taken` (a prefix)."""

    status: str
    detail: bytes = b""
