"""Auto-pipelining: the Redis commands of every request in one event-loop turn share one round trip.

Under load, many requests wait on Redis at once. Sent one by one, each command pays redis-py's
full per-command path (pool checkout, retry wrapper, one socket write, one wake-up per reply).
Here a command is queued and a flush is scheduled with `call_soon`: by the time it runs, every
request task that was ready in that turn has queued its command too, and the batch goes out as
one non-transactional redis-py pipeline (on a cluster, redis-py's cluster pipeline splits it
per node: gmsd adds no routing of its own). Each reply, or error, goes to the request that
asked; a batch is bounded in size; a failed batch fails only its own requests.

Scripts run as EVALSHA inside the batch; a NOSCRIPT reply (after a Redis restart, failover or
SCRIPT FLUSH) loads the script and runs that command again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


def hash_reply(reply: dict[bytes, bytes] | list[bytes]) -> dict[bytes, bytes]:
    """An HGETALL reply as a dict: redis-py pipelines give one, the hiredis wire the flat list."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


Commands = list[tuple[Any, ...]]
Futures = list["asyncio.Future[Any]"]


class CommandBatcher:
    """Queues the commands of every request of one event-loop turn; a subclass sends each batch.

    `execute` queues a command and schedules a flush with `call_soon`: by the time it runs,
    every request task that was ready in that turn has queued its command too. A batch is
    bounded by `max_batch` (a full one is flushed at once).
    """

    def __init__(self, client: Any, max_batch: int = 512) -> None:
        self.client = client
        self.max_batch = max_batch
        self._commands: Commands = []
        self._futures: Futures = []
        self._scheduled = False

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; its reply (or error) arrives through the future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._commands.append(args)
        self._futures.append(future)
        self._queued(loop)
        return future

    def _queued(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commands were queued: flush a full batch now, else make sure a flush is scheduled."""
        if len(self._futures) >= self.max_batch:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)

    async def run_script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
        """EVALSHA `script` inside the batch; on NOSCRIPT load it and run it again."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.client.script_load(script.script)
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def run_scripts(self, script: AsyncScript, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Run `script` once per (keys, args) in one batch (futures, no task per call); on
        NOSCRIPT load it once and run the batch again. The first error reply is raised."""
        for attempt in range(2):
            futures = [self.execute("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]
            replies = await asyncio.gather(*futures, return_exceptions=True)
            if attempt == 0 and any(isinstance(reply, NoScriptError) for reply in replies):
                await self.client.script_load(script.script)
                continue
            break
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return list(replies)

    # Whether `transaction` is available: MULTI/EXEC inside the batch needs one connection that
    # keeps a batch's commands in order (gmsd.backend.wire); redis-py's pipelines route per node.
    transactions = False

    def transaction(self, commands: Commands) -> asyncio.Future[list[Any]]:
        """Queue `commands` as one MULTI/EXEC inside the batch; the future gets EXEC's replies."""
        raise NotImplementedError("this batcher sends no transactions")

    async def transaction_with_script(self, commands: Commands, script: AsyncScript) -> list[Any]:
        """`transaction(commands)` where commands EVALSHA `script`: on NOSCRIPT, load it and run
        the whole transaction again. EXEC ran the other commands before the script failed, so
        every command must be safe to run twice (same values, same keys)."""
        try:
            return await self.transaction(commands)
        except NoScriptError:
            await self.client.script_load(script.script)
            return await self.transaction(commands)

    async def aclose(self) -> None:
        """Release what the batcher holds of its own (nothing here)."""

    def _flush(self) -> None:
        self._scheduled = False
        if not self._futures:
            return
        commands, futures = self._commands, self._futures
        self._commands, self._futures = [], []
        self._send_batch(commands, futures)

    def _send_batch(self, commands: Commands, futures: Futures) -> None:
        """Send `commands`; resolve `futures` (same order) with their replies or errors."""
        raise NotImplementedError


class AutoPipeline(CommandBatcher):
    """Sends each event-loop turn's commands as one non-transactional redis-py pipeline."""

    def __init__(self, client: Any, max_batch: int = 512, deadline: float | None = None) -> None:
        super().__init__(client, max_batch)
        self.deadline = deadline  # seconds for a whole batch (a cluster may try several nodes)
        self._tasks: set[asyncio.Task[None]] = set()

    def _send_batch(self, commands: Commands, futures: Futures) -> None:
        task = asyncio.ensure_future(self._send(commands, futures))
        self._tasks.add(task)  # keep a reference until done (asyncio holds tasks weakly)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, commands: Commands, futures: Futures) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for args in commands:
                pipe.execute_command(*args)
            async with asyncio.timeout(self.deadline):
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the whole batch failed (e.g. Redis unreachable)
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, reply in zip(futures, replies, strict=True):
            if future.done():  # the request went away (cancelled): nobody to tell
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
