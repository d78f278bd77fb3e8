"""The built-in access-number services: `request-interaction`, `request-access`, `match-interaction`.

A mobile app asks for an access number (and code) of a resource group (`[resources.<group>]`);
the customer dials it; the IVR asks `match-interaction` which service holds the reservation and
reads that service's data through the Storage API with the `_data_id` it answers. Reservations
live in the group's pool (one Redis slot, one script per allocation or match: never one locked
number for two services); services and their data live where every service does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gmsd import metrics
from gmsd.config import (
    ACCESS_CODE_DIGITS,
    BOOKING_SECONDS,
    DEFAULT_RESOURCE_GROUP,
    MAX_TTL_SECONDS,
    Config,
    ResourceGroup,
    ServiceConfig,
)
from gmsd.errors import BadRequest, NoAccessNumber, NotFound
from gmsd.gms.models import Reservation, StorageArea
from gmsd.gms.service_api import BuiltinService, ServiceStore, split_parameters
from gmsd.keys import is_service_id, random_uuid
from gmsd.types import Parameters

DEFAULT_CODE_LENGTH = 6
MAX_PHONE_CHARS = 64
# A match whose reservation outlived its service (deleted, or a `_ttl` shorter than the booking)
# releases that reservation and looks again, this many times at most.
_STALE_RETRIES = 100
_TRUE = frozenset({"true", "1", "yes"})


class ReservationStore(Protocol):
    """Where reservations of access numbers live (`gmsd.gms.store.PoolStore` on Redis)."""

    async def reserve(self, group: str, numbers: Sequence[str], reservation: Reservation) -> tuple[str, str] | None:
        """Reserve a number for the service, atomically: (number, code), or None if none is free."""
        ...

    async def match(self, group: str, number: str, code: str, phone: str | None, every: bool) -> list[str]:
        """Release the reservations on `number` that match; their service ids, most recent first."""
        ...


def _flag(control: Mapping[str, str], name: str) -> bool:
    return control.get(name, "").strip().lower() in _TRUE


def _whole(control: Mapping[str, str], name: str, bounds: tuple[int, int], default: int) -> int:
    text = control.get(name)
    if text is None or text == "":
        return default
    low, high = bounds
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit() or not low <= int(stripped) <= high:
        raise BadRequest(f"`{name}` must be a whole number from {low} to {high}")
    return int(stripped)


class AccessNumbers:
    """The three built-ins over the services' store and the pools' store."""

    def __init__(self, services: ServiceStore, pools: ReservationStore, config: Config) -> None:
        self.services = services
        self.pools = pools
        self.config = config
        self.limits = config.limits
        # Numbers are unique across groups (checked with the configuration): a dialled number
        # names its group.
        self.group_of = {number: group for group, pool in config.resources.items() for number in pool.access_numbers}

    def builtins(self) -> dict[str, BuiltinService]:
        """The handlers by `_service` name, for `ServiceApi.builtins`."""
        return {"request-interaction": self.request_interaction, "request-access": self.request_access,
                "match-interaction": self.match_interaction}

    def _parameters(self, service: ServiceConfig, params: Parameters,
                    request_wins: tuple[str, ...] = ()) -> tuple[dict[str, str], StorageArea]:
        """The request's parameters with the service table's values over them (except `request_wins`,
        where a value the request gives is kept), split into options and user data."""
        sent = {key for key, _ in params}
        overrides = {k: v for k, v in service.overrides.items() if not (k in request_wins and k in sent)}
        merged = [p for p in params if p[0] not in overrides] + list(overrides.items())
        return split_parameters(merged, self.limits)

    def _reservation(self, service_id: str, control: Mapping[str, str]) -> tuple[str, ResourceGroup, Reservation]:
        group = control.get("_resource_group") or DEFAULT_RESOURCE_GROUP
        pool = self.config.resources.get(group)
        if pool is None:
            raise BadRequest(f"unknown resource group {group[:80]!r}")
        lifetime = _whole(control, "_booking_expiration_timeout", BOOKING_SECONDS, pool.booking_expiration_timeout)
        code_length = 0
        if _flag(control, "_provide_code"):
            code_length = _whole(control, "_access_code_length", ACCESS_CODE_DIGITS, DEFAULT_CODE_LENGTH)
        phone = control.get("_phone_number", "").strip()
        if len(phone) > MAX_PHONE_CHARS:
            raise BadRequest(f"`_phone_number` has at most {MAX_PHONE_CHARS} characters")
        return group, pool, Reservation(service_id, pool.locking, pool.allocation == "round-robin", lifetime,
                                        code_length, phone)

    async def _reserve(self, group: str, pool: ResourceGroup, reservation: Reservation) -> dict[str, Any]:
        got = await self.pools.reserve(group, pool.access_numbers, reservation)
        if got is None:
            metrics.count_access_number("exhausted")
            raise NoAccessNumber(group)
        metrics.count_access_number("reserved")
        number, code = got
        answer: dict[str, Any] = {"_access_number": number}
        if reservation.code_length:
            answer["_access_code"] = code
        answer["_expiration_time"] = reservation.lifetime
        return answer

    async def request_interaction(self, service: ServiceConfig, params: Parameters) -> dict[str, Any]:
        """Create a service with the user data and reserve an access number for it.

        If no number is free (503) or the reservation fails, the service is deleted again:
        a refused request keeps nothing.
        """
        control, area = self._parameters(service, params)
        service_id = random_uuid()
        group, pool, reservation = self._reservation(service_id, control)
        ttl = service.ttl if service.ttl_configured else _whole(control, "_ttl", (1, MAX_TTL_SECONDS), service.ttl)
        await self.services.create(service_id, service.name, ttl, area)
        try:
            access = await self._reserve(group, pool, reservation)
        except Exception:
            with contextlib.suppress(Exception):  # Redis gone: the service expires with its TTL
                await self.services.delete_service(service_id)
            raise
        metrics.count_service_created(service.name)
        area.count_bytes()
        return {"_id": service_id, "id": service_id, **access}

    async def request_access(self, service: ServiceConfig, params: Parameters) -> dict[str, Any]:
        """Reserve an access number for the existing service `_id` (its earlier one in the group is replaced)."""
        control, _ = self._parameters(service, params, request_wins=("_booking_expiration_timeout",))
        target = control.get("_id", "")
        if not target:
            raise BadRequest("`_id` (the service to give access information) is required")
        group, pool, reservation = self._reservation(target, control)
        if not is_service_id(target) or not await self.services.service_name(target):
            raise NotFound(f"service {target[:80]!r} not found")
        access = await self._reserve(group, pool, reservation)
        return {"_id": target, "id": target, **access}

    async def match_interaction(self, service: ServiceConfig, params: Parameters) -> dict[str, Any]:
        """The service whose live reservation matches the caller; the reservation is released."""
        control, _ = self._parameters(service, params)
        number = control.get("_access_number", "").strip()
        if not number:
            raise BadRequest("`_access_number` (the number the customer dialled) is required")
        code = control.get("_access_code", "").strip()
        phone = control.get("_phone_number", "").strip() or None
        every = _flag(control, "_return_multiple_matches")
        with_data = _flag(control, "_return_user_data") or _flag(control, "_return_data")
        delete = _flag(control, "_delete_service")
        group = self.group_of.get(number)
        matched: list[dict[str, Any]] = []
        if group is not None:
            for _ in range(1 if every else _STALE_RETRIES):
                released = await self.pools.match(group, number, code, phone, every)
                for service_id in released:
                    found = await self._matched(service_id, with_data, delete)
                    if found is not None:
                        matched.append(found)
                if matched or every or not released:
                    break
        if not matched:
            metrics.count_access_number("unmatched")
            raise NotFound("no matching service")
        metrics.count_access_number("matched")
        return {"matches": matched} if every else matched[0]

    async def _matched(self, service_id: str, with_data: bool, delete: bool) -> dict[str, Any] | None:
        """The answer for a released reservation's service, or None if the service is gone."""
        answer: dict[str, Any] = {"_id": service_id, "_data_id": service_id}
        if with_data:
            data = await self.services.read_all(service_id)
            if data is None:
                return None
            answer.update(data)
        elif not await self.services.service_name(service_id):
            return None
        if delete:
            await self.services.delete_service(service_id)
        return answer
