"""The GMS Service API domain: configured services, their storage areas and expiry.

Pure logic over two ports: `GmsStore` (Redis) and `Orchestrator` (HTTP to ORS). Raises the
typed errors of `gmsd.errors`; knows nothing of HTTP requests or responses.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from gmsd import metrics
from gmsd.config import MAX_TTL_SECONDS, Config, Limits, ServiceConfig
from gmsd.errors import BadRequest, NotFound, PayloadTooLarge
from gmsd.gms.models import BinaryValue, StorageArea
from gmsd.keys import is_service_id, random_uuid
from gmsd.timestamps import now_millis
from gmsd.types import Parameters, StoredFile

# A service-specific request name is one path segment of the orchestration URL: letters, digits,
# `_`, `-` and `.` (not first, so never `.` or `..`). A `/`, `?`, `#`, `%` or a dot segment
# would let the client choose another path or a query of the configured URL.
_REQUEST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


def request_url(service_url: str, request: str) -> str:
    """The orchestration URL of `request`: one more path segment, the configured query kept."""
    parts = urlsplit(service_url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{request}"))


class ServiceStore(Protocol):
    """Where services and their storage live (`gmsd.gms.store.GmsStore` on Redis)."""

    async def create(self, service_id: str, name: str, ttl: int, area: StorageArea) -> None:
        """Store a new service with its user data; all of it expires in `ttl` seconds."""
        ...

    async def write(self, service_id: str, area: StorageArea) -> bool:
        """Write user data atomically; False if the service does not exist."""
        ...

    async def service_name(self, service_id: str) -> str | None:
        """The configured service name of an instance, or None if it does not exist."""
        ...

    async def read_all(self, service_id: str) -> dict[str, str] | None:
        """Every user string key, or None if the service does not exist."""
        ...

    async def read_one(self, service_id: str, key: str) -> tuple[bool, str | None]:
        """(service exists, value of string `key` or None)."""
        ...

    async def read_binary(self, service_id: str, key: str, large: bool = False) -> BinaryValue | None:
        """A value as bytes with its type; None if the key (or the service) does not exist.

        A value too large for the fast path has no bytes and its `deferred_size`; `large`
        reads the bytes of any size on the large values' own connection.
        """
        ...

    async def delete_key(self, service_id: str, key: str) -> bool:
        """Delete one key; False if the service does not exist."""
        ...

    async def clear(self, service_id: str) -> bool:
        """Delete all user data; False if the service does not exist."""
        ...

    async def delete_service(self, service_id: str) -> bool:
        """Delete the service and its storage; False if there was none."""
        ...

    async def expire_in(self, service_id: str, seconds: int) -> bool:
        """New expiry `seconds` from now; False if the service does not exist."""
        ...

    async def expire_at(self, service_id: str, millis: int) -> bool:
        """New expiry at epoch `millis`; False if the service does not exist."""
        ...


class Orchestrator(Protocol):
    """Calls an `ors` service's orchestration URL."""

    async def call(self, url: str, payload: dict[str, str]) -> dict[str, Any]:
        """POST `payload` as JSON to `url`; the JSON object answered, or a typed error."""
        ...


def split_parameters(params: Parameters, limits: Limits) -> tuple[
    dict[str, str], StorageArea
]:
    """Split parameters into orchestration ones (`_`-prefixed, strings) and user data.

    User data keys are checked: not empty and at most `limits.key_bytes` UTF-8 bytes (400);
    files at most `limits.file_bytes` (413). For a key sent twice, the last value wins.
    """
    control: dict[str, str] = {}
    strings: dict[str, str] = {}
    files: dict[str, StoredFile] = {}
    fits_key = limits.fits_key
    for key, value in params:
        if key.startswith("_"):
            if isinstance(value, str):
                control[key] = value
            continue
        if not fits_key(key):
            raise BadRequest(f"key {key[:40]!r}… is over the limit of {limits.key_bytes} bytes" if key
                             else "a key must not be empty")
        if isinstance(value, StoredFile) and len(value.data) > limits.file_bytes:
            raise PayloadTooLarge(f"file {key!r} is over the limit of {limits.file_bytes} bytes")
        # A key sent again: its last value wins, in the place of its last occurrence.
        strings.pop(key, None)
        files.pop(key, None)
        if isinstance(value, str):
            strings[key] = value
        else:
            files[key] = value
    return control, StorageArea(strings, files)


class StorageAreas:
    """Reads and deletes of one storage area by id, shared by the Service and Storage APIs.

    The caller has checked that the id is one gmsd can have issued; `noun` names what the id
    is in a 404 message.
    """

    def __init__(self, store: ServiceStore, limits: Limits, noun: str) -> None:
        self.store = store
        self.limits = limits
        self.noun = noun

    def _missing(self, area_id: str, shown: str | None) -> NotFound:
        return NotFound(f"{self.noun} {(area_id if shown is None else shown)[:80]!r} not found")

    def _check_read_key(self, key: str) -> None:
        # Reserved fields start with "_" and user keys never do: such a key cannot exist.
        if key.startswith("_") or not self.limits.fits_key(key):
            raise NotFound(f"key {key[:80]!r} not found")

    async def read_all(self, area_id: str, shown: str | None = None) -> dict[str, str]:
        """Every string key of the area (files are not listed); `shown`: the area's name in a
        404, when the client knows it by another (a custom id)."""
        values = await self.store.read_all(area_id)
        if values is None:
            raise self._missing(area_id, shown)
        return values

    async def read_one(self, area_id: str, key: str, shown: str | None = None) -> dict[str, str]:
        """`{key: value}` for one string key."""
        self._check_read_key(key)
        found, value = await self.store.read_one(area_id, key)
        if not found:
            raise self._missing(area_id, shown)
        if value is None:
            raise NotFound(f"key {key[:80]!r} not found")
        return {key: value}

    async def read_binary(self, area_id: str, key: str, large: bool = False) -> BinaryValue:
        """One value as bytes with its content type and file name (see `ServiceStore.read_binary`)."""
        self._check_read_key(key)
        value = await self.store.read_binary(area_id, key, large)
        if value is None:
            raise NotFound(f"key {key[:80]!r} not found")
        return value

    async def delete_key(self, area_id: str, key: str, shown: str | None = None) -> None:
        """Delete one key, string or file; a missing key is not an error."""
        if key.startswith("_") or not self.limits.fits_key(key):
            key = ""  # cannot exist; still answer 404 for an unknown area
        if not await self.store.delete_key(area_id, key):
            raise self._missing(area_id, shown)


# A built-in whose create does more than store user data (the access-number services): it
# handles `POST /genesys/1/service/{name}` for the configured service, with the request's parameters.
BuiltinService = Callable[[ServiceConfig, Parameters], Awaitable[dict[str, Any]]]


class ServiceApi:
    """The operations of `/genesys/1/service…` over the configured services."""

    def __init__(self, store: ServiceStore, config: Config, orchestrator: Orchestrator) -> None:
        self.store = store
        self.config = config
        self.limits = config.limits
        self.orchestrator = orchestrator
        self.areas = StorageAreas(store, config.limits, "service")
        self.builtins: dict[str, BuiltinService] = {}

    def _split(self, params: Parameters) -> tuple[dict[str, str], StorageArea]:
        return split_parameters(params, self.limits)

    def _configured(self, name: str) -> ServiceConfig:
        service = self.config.services.get(name)
        if service is None:
            raise NotFound(f"service {name!r} is not configured")
        return service

    @staticmethod
    def _check_id(service_id: str) -> None:
        if not is_service_id(service_id):
            raise NotFound(f"service {service_id[:80]!r} not found")

    async def create(self, name: str, params: Parameters) -> dict[str, Any]:
        """Create an instance of configured service `name` with its user data.

        Configured parameters replace same-named request parameters. An `ors` service is
        then told about it; if that fails the instance is deleted again (502/504).
        """
        service = self._configured(name)
        builtin = self.builtins.get(service.service) if service.type == "builtin" else None
        if builtin is not None:
            return await builtin(service, params)
        if service.overrides:
            params = [p for p in params if p[0] not in service.overrides]
            params += list(service.overrides.items())
        control, area = self._split(params)
        service_id = random_uuid()
        await self.store.create(service_id, name, service.ttl, area)
        answer: dict[str, Any] = {"_id": service_id, "id": service_id}
        if service.type == "ors":
            payload = {**control, "_id": service_id, "_data_id": service_id}
            try:
                extra = await self.orchestrator.call(service.service, payload)
            except Exception:
                await self.store.delete_service(service_id)
                raise
            answer.update((k, v) for k, v in extra.items() if k not in ("_id", "id"))
        metrics.count_service_created(name)
        area.count_bytes()
        return answer

    async def request(self, service_id: str, request: str, params: Parameters) -> dict[str, Any]:
        """A service-specific request: `update` writes user data; `ors` services forward others.

        `request` must be a name of `_REQUEST_NAME`'s alphabet (else 400): it becomes a path
        segment of the orchestration URL and must not be able to leave it.
        """
        if not _REQUEST_NAME.match(request):
            raise BadRequest("a request name is 1 to 128 letters, digits, `_`, `-` or `.`, not starting with `.`")
        self._check_id(service_id)
        if request == "update":
            await self.write(service_id, params)
            return {}
        name = await self.store.service_name(service_id)
        if name is None:
            raise NotFound(f"service {service_id!r} not found")
        service = self.config.services.get(name)
        if service is None or service.type != "ors":
            raise BadRequest(f"service {name!r} does not support the request {request!r}")
        payload = {k: v for k, v in params if isinstance(v, str)}
        payload.update({"_id": service_id, "_data_id": service_id})
        return await self.orchestrator.call(request_url(service.service, request), payload)

    async def write(self, service_id: str, params: Parameters) -> None:
        """Add or replace user data, all keys at once; the expiry does not move."""
        self._check_id(service_id)
        _, area = self._split(params)
        if not await self.store.write(service_id, area):
            raise NotFound(f"service {service_id!r} not found")
        area.count_bytes()

    async def read_all(self, service_id: str) -> dict[str, str]:
        """Every string key of the storage (files are not listed)."""
        self._check_id(service_id)
        return await self.areas.read_all(service_id)

    async def read_one(self, service_id: str, key: str) -> dict[str, str]:
        """`{key: value}` for one string key."""
        self._check_id(service_id)
        return await self.areas.read_one(service_id, key)

    async def read_binary(self, service_id: str, key: str, large: bool = False) -> BinaryValue:
        """One value as bytes with its content type and file name (see `ServiceStore.read_binary`)."""
        self._check_id(service_id)
        return await self.areas.read_binary(service_id, key, large)

    async def delete_key(self, service_id: str, key: str) -> None:
        """Delete one key, string or file; a missing key is not an error."""
        self._check_id(service_id)
        await self.areas.delete_key(service_id, key)

    async def clear(self, service_id: str) -> None:
        """Delete every key of the storage; the service stays."""
        self._check_id(service_id)
        if not await self.store.clear(service_id):
            raise NotFound(f"service {service_id!r} not found")

    async def delete_service(self, service_id: str) -> None:
        """Delete the service and its storage."""
        self._check_id(service_id)
        if not await self.store.delete_service(service_id):
            raise NotFound(f"service {service_id!r} not found")

    async def expire(self, service_id: str, ttl: int | None, expire_at: int | None) -> None:
        """Give the service and all its storage a new expiry: `ttl` seconds, else `expire_at` ms."""
        self._check_id(service_id)
        if ttl is not None:
            if not 0 < ttl <= MAX_TTL_SECONDS:
                raise BadRequest(f"`ttl` must be a positive number of seconds, at most {MAX_TTL_SECONDS}")
            found = await self.store.expire_in(service_id, ttl)
        elif expire_at is not None:
            if expire_at <= now_millis():
                raise BadRequest("`expiration_time` must be in the future")
            found = await self.store.expire_at(service_id, expire_at)
        else:
            raise BadRequest("the body needs `ttl` (seconds) or `expiration_time` (ISO 8601)")
        if not found:
            raise NotFound(f"service {service_id!r} not found")

