"""What the console's own endpoints answer."""

from __future__ import annotations

import msgspec


class ConfiguredService(msgspec.Struct, frozen=True):
    """A `[services.<name>]` of the configuration, as far as a console user needs it."""

    name: str
    type: str  # builtin | ors
    ttl: int  # seconds an instance lives


class StoredFile(msgspec.Struct, frozen=True):
    """A binary key of a service's storage, without its bytes."""

    key: str
    content_type: str
    size: int  # bytes
    filename: str | None = None


class StorageInventory(msgspec.Struct, frozen=True):
    """What a GMS service's storage holds beside its string values (`GET …/storage` lists those)."""

    service_id: str
    name: str  # the configured service it was created from
    expires_in: int | None  # milliseconds left (None: no expiry)
    file_count: int  # every file, even those past `files`' limit
    files: list[StoredFile]


class RawInventory(msgspec.Struct, frozen=True):
    """What the store read, before the domain checked and shaped it."""

    name: str
    ttl_millis: int
    file_count: int
    files: list[StoredFile]
