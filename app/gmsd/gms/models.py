"""The Service API's values: what a write stores, what a binary read serves, what a client sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from msgspec import Meta

from gmsd import metrics
from gmsd.config import MAX_TTL_SECONDS
from gmsd.types import StoredFile


@dataclass(frozen=True)
class StorageArea:
    """What one write puts into a service's storage: strings and files, keys unique."""

    strings: dict[str, str]
    files: dict[str, StoredFile]

    def __bool__(self) -> bool:
        return bool(self.strings or self.files)

    def count_bytes(self) -> None:
        """Add this area's size to the stored-bytes metric (string values as UTF-8, file contents)."""
        string_bytes = 0
        for text in self.strings.values():
            string_bytes += len(text) if text.isascii() else len(text.encode())
        metrics.count_stored_bytes(string_bytes, sum(len(file.data) for file in self.files.values()))


@dataclass(frozen=True)
class BinaryValue:
    """A stored value served as bytes (a string key is served as its UTF-8 text)."""

    data: bytes
    content_type: str
    filename: str | None
    # Set when the value is over the fast path's size: `data` is empty, and the bytes are read
    # again as a large value (`ServiceApi.read_binary(..., large=True)`).
    deferred_size: int | None = None


class ServiceExpirationUpdate(msgspec.Struct, forbid_unknown_fields=False):
    """Body of `PUT /genesys/1/service/{id}` (Update Conversation Expiration): `ttl` wins."""

    ttl: Annotated[int, Meta(gt=0, le=MAX_TTL_SECONDS)] | None = None
    expiration_time: Annotated[str, Meta(extra_json_schema={"format": "date-time"})] | None = None


@dataclass(frozen=True)
class Reservation:
    """What a service asks of a resource group: how to choose its number, how long to hold it."""

    service_id: str
    locking: bool  # one live reservation per number
    round_robin: bool  # else random
    lifetime: int  # seconds (`_booking_expiration_timeout`)
    code_length: int  # digits of the access code; 0: no code
    phone: str  # the device's phone number, "" if none
