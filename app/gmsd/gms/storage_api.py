"""The GMS Storage API domain (`/genesys/1/storage…`): temporary key/value areas with a TTL.

A Storage API area has the layout of a service's storage (`gmsd.keys.gms_service`) and goes
through the same store, scripts and limits: an area is a service with no name. So
`/genesys/1/storage/{id}` also addresses a Service API service's own storage (its `_data_id`):
reads, key writes and deletes work, and the service keeps its own expiry.
Custom ids (`/storage/custom/{customId}`) are scoped by the `gms_user` header.
"""

from __future__ import annotations

import re
from typing import Protocol

from gmsd.config import Limits
from gmsd.errors import BadRequest, NotFound
from gmsd.gms.models import BinaryValue, StorageArea
from gmsd.gms.service_api import ServiceStore, StorageAreas, split_parameters
from gmsd.keys import is_service_id, random_uuid, storage_custom_area
from gmsd.types import Parameters

DEFAULT_TTL = 30  # "If an incorrect value is specified, a default of 30 seconds is defined"
MAX_TTL = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+")


class AreaStore(ServiceStore, Protocol):
    """The store of services, with what Storage API areas need besides (`GmsStore` on Redis)."""

    async def create_area(self, area_id: str, ttl: int, area: StorageArea) -> None:
        """Store a new area living `ttl` seconds."""
        ...

    async def renew(self, area_id: str, ttl: int, area: StorageArea) -> bool:
        """Write keys; an area then lives `ttl` s from now, a service keeps its expiry; False if neither exists."""
        ...

    async def upsert_area(self, area_id: str, ttl: int, area: StorageArea) -> None:
        """Create an area or write keys into it; either way it lives `ttl` seconds from now."""
        ...

    async def remove_area(self, area_id: str) -> bool:
        """Delete an area, or empty a service's storage; False if neither exists."""
        ...


def storage_ttl(text: str) -> int:
    """The lifetime a `{ttl}` path segment gives: its seconds, or 30 for anything incorrect.

    Incorrect is anything but a whole number from 1 to 2147483647 (non-numeric, zero,
    negative, fractional): GMS documents the 30 s fallback, not an error.
    """
    if _DIGITS.fullmatch(text) is None:
        return DEFAULT_TTL
    seconds = int(text)
    return seconds if 0 < seconds <= MAX_TTL else DEFAULT_TTL


class StorageApi:
    """The operations of `/genesys/1/storage…`; an address is an area id or a custom id."""

    def __init__(self, store: AreaStore, limits: Limits) -> None:
        self.store = store
        self.limits = limits
        self.areas = StorageAreas(store, limits, "storage")

    @staticmethod
    def area_id(area: str) -> str:
        """The id of `/storage/{id}`: one gmsd issued (an area's or a service's), else 404."""
        if not is_service_id(area):
            raise NotFound(f"storage {area[:80]!r} not found")
        return area

    def custom_area_id(self, gms_user: str | None, custom_id: str) -> str:
        """The area of custom id `custom_id` of user `gms_user` (400 without the header)."""
        if not gms_user:
            raise BadRequest("a custom storage id needs the `gms_user` header")
        if not self.limits.fits_key(custom_id):
            raise BadRequest(f"a custom id has 1 to {self.limits.key_bytes} bytes")
        return storage_custom_area(gms_user, custom_id)

    def _area(self, params: Parameters) -> StorageArea:
        return split_parameters(params, self.limits)[1]

    async def create(self, ttl: str, params: Parameters) -> dict[str, str]:
        """A new area with the given keys, living `storage_ttl(ttl)` seconds: `{"id": …}`."""
        area = self._area(params)
        area_id = random_uuid()
        await self.store.create_area(area_id, storage_ttl(ttl), area)
        area.count_bytes()
        return {"id": area_id}

    async def store_custom(self, gms_user: str | None, custom_id: str, ttl: str, params: Parameters) -> dict[str, str]:
        """Create or update the custom area: given keys written, others kept, expiry now + ttl."""
        area_id = self.custom_area_id(gms_user, custom_id)
        area = self._area(params)
        await self.store.upsert_area(area_id, storage_ttl(ttl), area)
        area.count_bytes()
        return {"id": custom_id}

    async def update(self, area_id: str, ttl: str, params: Parameters) -> None:
        """Add or replace keys of an existing area (expiry now + ttl) or service (expiry kept)."""
        area = self._area(params)
        if not await self.store.renew(area_id, storage_ttl(ttl), area):
            raise NotFound(f"storage {area_id[:80]!r} not found")
        area.count_bytes()

    async def read_all(self, area_id: str, shown: str | None = None) -> dict[str, str]:
        """Every string key of the area (files are not listed); `shown`: the custom id a 404
        names instead of the area id derived from it."""
        return await self.areas.read_all(area_id, shown)

    async def read_one(self, area_id: str, key: str, shown: str | None = None) -> dict[str, str]:
        """`{key: value}` for one string key."""
        return await self.areas.read_one(area_id, key, shown)

    async def read_binary(self, area_id: str, key: str, large: bool = False) -> BinaryValue:
        """One value as bytes with its content type and file name."""
        return await self.areas.read_binary(area_id, key, large)

    async def delete_key(self, area_id: str, key: str, shown: str | None = None) -> None:
        """Delete one key, string or file; a missing key is not an error."""
        await self.areas.delete_key(area_id, key, shown)

    async def delete(self, area_id: str, shown: str | None = None) -> None:
        """Delete an area (afterwards 404), or empty a service's storage (the service stays)."""
        if not await self.store.remove_area(area_id):
            raise NotFound(f"storage {(area_id if shown is None else shown)[:80]!r} not found")
