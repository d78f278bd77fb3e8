"""Interactions (PROFILES.md §4): the contact history of customers and services.

Read through the three Context Services queries and the content sub-URLs; written through gmsd's
own import routes (`POST`/`DELETE /genesys/1/cs/interactions`, a gmsd extension), since gmsd has
no UCS or Interaction Server to take them from. Interactions do not expire and are not deleted
with a profile; a merge re-assigns the source's to the destination (`gmsd.ucs.profiles`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Protocol

import msgspec

from gmsd.config import Limits
from gmsd.timestamps import EARLIEST, format_timestamp, now_millis, parse_timestamp
from gmsd.ucs.errors import ProfileConflict, ProfileNotFound, ProfileRefused
from gmsd.ucs.models import Interaction, InteractionImport, InteractionRecord
from gmsd.ucs.profiles import new_customer_id
from gmsd.ucs.schema import member_text

_INTERACTION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_TEXT = 256  # characters of an id, a media type, a subject, a content type
MAX_UDATA = 100  # udata pairs
LIST_LIMIT = 1000  # interactions one list answers (the newest)
CONTENTS = {"plain_text": "pt", "structured_text": "st", "binary_content": "bc"}
DEFAULT_TYPES = {"pt": "text/plain; charset=utf-8", "st": "text/html; charset=utf-8", "bc": "application/octet-stream"}
_ORDER_DIGITS = 15  # the newest first: 10^15 - 1 - (ms - EARLIEST), zero-padded
_encode = msgspec.json.encode


class InteractionStorage(Protocol):
    """What the interactions need from Redis (`gmsd.ucs.store.UcsStore`)."""

    async def write_interaction(self, interaction_id: str, parts: Sequence[tuple[str, bytes]],
                                members: Sequence[bytes]) -> bool: ...
    async def delete_interaction(self, interaction_id: str) -> bool: ...
    async def read_interactions(self, interaction_ids: Sequence[str]) -> list[tuple[bytes | None, bytes | None]]: ...
    async def interaction_list(self, prefix: bytes, limit: int) -> list[bytes]: ...
    async def interaction_content(self, interaction_id: str, part: str) -> tuple[bytes | None, bytes | None]: ...
    def in_space(self, space: str) -> InteractionStorage: ...


def _text(value: str | None, name: str, limit: int = MAX_TEXT) -> None:
    if value is not None and not 0 < len(value) <= limit:
        raise ProfileRefused(f"`{name}` must be 1 to {limit} characters")


def _content_type(value: str | None, name: str) -> bytes | None:
    if value is None:
        return None
    _text(value, name)
    if not value.isascii() or not value.isprintable():
        raise ProfileRefused(f"`{name}` must be printable ASCII (it is served as the Content-Type)")
    return value.encode()


def _order(millis: int) -> bytes:
    return f"{10**_ORDER_DIGITS - 1 - (millis - EARLIEST):0{_ORDER_DIGITS}d}".encode()


def _list_prefix(kind: bytes, owner: str) -> bytes:
    return kind + b"\0" + member_text(owner) + b"\0"


class Interactions:
    """The interactions of one tenant."""

    def __init__(self, store: InteractionStorage, limits: Limits) -> None:
        self.store = store
        self.limits = limits

    def in_space(self, space: str) -> Interactions:
        """These operations on another tenant's keyspace."""
        return Interactions(self.store.in_space(space), self.limits)

    async def add(self, body: InteractionImport) -> str:
        """Import one interaction; its id (generated when the body has none). 409 if the id is taken."""
        interaction_id = body.interaction_id if body.interaction_id is not None else new_customer_id()
        if _INTERACTION_ID.fullmatch(interaction_id) is None:
            raise ProfileRefused("`interaction_id` must be 1 to 64 letters, digits, `.`, `_` or `-`")
        for name in ("customer_id", "service_id", "external_id", "media_type"):
            _text(getattr(body, name), name)
        _text(body.subject, "subject", 4096)
        established = now_millis()
        if body.established_date is not None:
            established = _instant(body.established_date, "established_date")
        released = None if body.released_date is None else format_timestamp(_instant(body.released_date,
                                                                                      "released_date"))
        if body.udata is not None and len(body.udata) > MAX_UDATA:
            raise ProfileRefused(f"`udata`: at most {MAX_UDATA} pairs")
        parts: list[tuple[str, bytes]] = []
        if body.plain_text is not None:
            parts.append(("pt", body.plain_text.encode()))
        if body.structured_text is not None:
            parts.append(("st", body.structured_text.encode()))
            kind = _content_type(body.structured_text_type, "structured_text_type")
            if kind is not None:
                parts.append(("stt", kind))
        if body.binary_content is not None:
            try:
                data = base64.b64decode(body.binary_content, validate=True)
            except (binascii.Error, ValueError):
                raise ProfileRefused("`binary_content` is not base64") from None
            if len(data) > self.limits.file_bytes:
                raise ProfileRefused(f"`binary_content` over {self.limits.file_bytes} bytes")
            parts.append(("bc", data))
            kind = _content_type(body.binary_content_type, "binary_content_type")
            if kind is not None:
                parts.append(("bct", kind))
        record = InteractionRecord(
            interaction_id, body.media_type, format_timestamp(established), body.external_id, body.service_id,
            released, body.subject, body.plain_text is not None, body.structured_text is not None,
            body.binary_content is not None, body.udata)
        parts.append(("m", _encode(record)))
        members = []
        order = _order(established) + b"\0" + interaction_id.encode()
        if body.customer_id is not None:
            parts.append(("c", body.customer_id.encode()))
            members.append(_list_prefix(b"c", body.customer_id) + order)
        if body.service_id is not None:
            members.append(_list_prefix(b"s", body.service_id) + order)
        if not await self.store.write_interaction(interaction_id, parts, members):
            raise ProfileConflict(f"an interaction {interaction_id!r} exists")
        return interaction_id

    async def delete(self, interaction_id: str) -> None:
        """Delete an imported interaction (404 if there is none)."""
        if _INTERACTION_ID.fullmatch(interaction_id) is None or not await self.store.delete_interaction(interaction_id):
            raise ProfileNotFound(f"no interaction {interaction_id[:64]!r}")

    def _answer(self, record: bytes, customer_id: bytes | None, base: str) -> Interaction:
        stored = msgspec.json.decode(record, type=InteractionRecord)
        url = f"{base}/interactions/{stored.interaction_id}/"
        return Interaction(
            stored.interaction_id, stored.media_type, stored.established_date, stored.external_id,
            None if customer_id is None else customer_id.decode(), stored.service_id, stored.released_date,
            stored.subject, url + "plain_text" if stored.has_plain_text else None,
            url + "structured_text" if stored.has_structured_text else None,
            url + "binary_content" if stored.has_binary_content else None, stored.udata)

    async def get(self, interaction_id: str, base: str) -> Interaction:
        """GET /interactions/{id} (one object; 404 if unknown)."""
        if _INTERACTION_ID.fullmatch(interaction_id) is None:
            raise ProfileNotFound(f"no interaction {interaction_id[:64]!r}")
        record, customer = (await self.store.read_interactions([interaction_id]))[0]
        if record is None:
            raise ProfileNotFound(f"no interaction {interaction_id!r}")
        return self._answer(record, customer, base)

    async def _list(self, prefix: bytes, base: str) -> list[Interaction]:
        members = await self.store.interaction_list(prefix, LIST_LIMIT)
        ids = [member[len(prefix) + _ORDER_DIGITS + 1:].decode() for member in members]
        found = await self.store.read_interactions(ids)
        return [self._answer(record, customer, base) for record, customer in found if record is not None]

    async def of_customer(self, customer_id: str, base: str) -> list[Interaction]:
        """GET /customers/{id}/interactions: newest first; [] when none."""
        return await self._list(_list_prefix(b"c", customer_id), base)

    async def of_service(self, service_id: str, base: str) -> list[Interaction]:
        """GET /services/{id}/interactions: newest first; [] when none."""
        return await self._list(_list_prefix(b"s", service_id), base)

    async def content(self, interaction_id: str, name: str) -> tuple[bytes, str]:
        """One content of an interaction and its type (404 if the interaction has none)."""
        part = CONTENTS[name]
        if _INTERACTION_ID.fullmatch(interaction_id) is None:
            raise ProfileNotFound(f"no interaction {interaction_id[:64]!r}")
        data, kind = await self.store.interaction_content(interaction_id, part)
        if data is None:
            raise ProfileNotFound(f"interaction {interaction_id!r} has no {name}")
        return data, DEFAULT_TYPES[part] if part == "pt" or kind is None else kind.decode()


def _instant(text: str, name: str) -> int:
    try:
        return parse_timestamp(text)
    except ValueError:
        raise ProfileRefused(f"`{name}` is not an ISO 8601 timestamp (years 1 to 9999)") from None
