"""What the console reads that the public APIs do not answer: configured services, file listings."""

from __future__ import annotations

from typing import Protocol

from gmsd.config import Config
from gmsd.console.models import ConfiguredService, RawInventory, StorageInventory
from gmsd.errors import NotFound
from gmsd.keys import is_service_id

MAX_LISTED_FILES = 1000  # a page shows at most this many files (the count says how many there are)


class InventoryStore(Protocol):
    """Where the inventory of a service's storage is read (`gmsd.console.store.ConsoleStore`)."""

    async def storage_inventory(self, service_id: str, max_files: int) -> RawInventory | None:
        """The inventory, or None if the service does not exist."""
        ...


class Inventory:
    """The console's read-only view of the configuration and of GMS storage."""

    def __init__(self, store: InventoryStore, config: Config) -> None:
        self.store = store
        self.services = [ConfiguredService(s.name, s.type, s.ttl)
                         for s in sorted(config.services.values(), key=lambda s: s.name)]

    def configured_services(self) -> list[ConfiguredService]:
        """Every configured service, by name."""
        return self.services

    async def storage(self, service_id: str) -> StorageInventory:
        """What the storage of `service_id` holds beside its strings; NotFound if there is no such service."""
        raw = await self.store.storage_inventory(service_id, MAX_LISTED_FILES) if is_service_id(service_id) else None
        if raw is None:
            raise NotFound(f"service {service_id!r} not found")
        files = sorted(raw.files, key=lambda f: f.key)
        expires_in = raw.ttl_millis if raw.ttl_millis >= 0 else None
        return StorageInventory(service_id, raw.name, expires_in, raw.file_count, files)
