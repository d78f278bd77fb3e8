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
from typing import Any, Protocol

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


def hash_reply(reply: dict[bytes, bytes] | list[bytes]) -> dict[bytes, bytes]:
    """An HGETALL reply as a dict: redis-py pipelines give one, the hiredis wire the flat list."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


class CommandQueue(Protocol):
    """What the stores send commands through (`AutoPipeline` or `app.redis_wire.WirePipeline`)."""

    client: Any  # a redis-py client to the same Redis: script registration, SCRIPT LOAD, PING

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; its reply (or error) arrives through the future."""
        ...

    async def run_script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
        """Run a registered script by EVALSHA, loading it on NOSCRIPT."""
        ...

    async def run_scripts(self, script: AsyncScript, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Run `script` once per (keys, args), all in one batch; the replies in order."""
        ...

    async def aclose(self) -> None:
        """Release what the queue holds of its own."""
        ...


async def run_scripts(queue: CommandQueue, script: AsyncScript,
                      calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
    """EVALSHA `script` for every call in one batch (futures, no task per call); on NOSCRIPT
    load it once and run the batch again. The first error reply is raised."""
    for attempt in range(2):
        futures = [queue.execute("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]
        replies = await asyncio.gather(*futures, return_exceptions=True)
        if attempt == 0 and any(isinstance(reply, NoScriptError) for reply in replies):
            await queue.client.script_load(script.script)
            continue
        break
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply
    return list(replies)


Batch = list[tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]]


class AutoPipeline:
    """Queues commands and sends each event-loop turn's commands as one pipeline."""

    def __init__(self, client: Any, max_batch: int = 512, deadline: float | None = None) -> None:
        self.client = client
        self.max_batch = max_batch
        self.deadline = deadline  # seconds for a whole batch (a cluster may try several nodes)
        self._pending: Batch = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def execute(self, *args: Any, **options: Any) -> asyncio.Future[Any]:
        """Queue one command; the future resolves to its reply (redis-py response callbacks applied)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, options, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    async def run_script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
        """EVALSHA `script` inside the batch; on NOSCRIPT load it and run it again."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.client.script_load(script.script)
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def run_scripts(self, script: AsyncScript, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Run `script` once per (keys, args), all in one batch; the replies in order."""
        return await run_scripts(self, script, calls)

    async def aclose(self) -> None:
        """Nothing of its own to close: the client's pool belongs to the caller."""

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._tasks.add(task)  # keep a reference until done (asyncio holds tasks weakly)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: Batch) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for args, options, _ in batch:
                pipe.execute_command(*args, **options)
            async with asyncio.timeout(self.deadline):
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the whole batch failed (e.g. Redis unreachable)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # the request went away (cancelled): nobody to tell
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
