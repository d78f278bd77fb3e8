"""Redis reads of the console: one script, over the keys of one GMS service (`gmsd.keys`)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.commands.core import AsyncScript

from gmsd.backend.batcher import CommandBatcher
from gmsd.backend.scripts import ScriptSet
from gmsd.console.models import RawInventory, StoredFile
from gmsd.keys import gms_service


@dataclass(frozen=True)
class ConsoleScripts(ScriptSet):
    """The scripts of the console: `lua/console/<name>.lua`."""

    area = "console"

    storage_inventory: AsyncScript


class ConsoleStore:
    """Reads GMS storage for the console; writes nothing."""

    def __init__(self, pipeline: CommandBatcher) -> None:
        self.redis = pipeline
        self.scripts = ConsoleScripts.register(pipeline.client)

    async def storage_inventory(self, service_id: str, max_files: int) -> RawInventory | None:
        """Name, time left and files (without bytes) of a service; None if it does not exist."""
        reply = await self.redis.run_script(self.scripts.storage_inventory, gms_service(service_id), [max_files])
        if not reply:
            return None
        name, ttl, count, listed = reply
        files = []
        for i in range(0, len(listed), 3):
            content_type, _, filename = listed[i + 1].decode().partition("\n")
            files.append(StoredFile(listed[i].decode(errors="replace"), content_type, int(listed[i + 2]),
                                    filename or None))
        return RawInventory(name.decode(), int(ttl), int(count), files)
