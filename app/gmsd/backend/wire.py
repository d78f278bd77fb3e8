"""A pipelined Redis connection on hiredis, for the hot path against a plain Redis server.

redis-py's asyncio client packs commands in pure Python and pays a pool checkout, a retry
wrapper and a timeout wrapper per call. Here one connection per process carries every command:
commands queued during one event-loop turn are packed by hiredis (C) and written with a single
`transport.write`; replies are parsed by hiredis and handed, in order, to the futures waiting
for them. Redis answers a connection's commands in order, so a FIFO is all the routing needed.

Safety properties:
- bounded waits: a watchdog fails every waiting command with TimeoutError when Redis has not
  answered for `timeout` seconds (a hung or black-holed Redis gives 503s, never a hang);
- a lost connection fails only the commands that were on it; the next command reconnects;
- commands are never retried on a new connection (a script may have run: no double writes);
- error replies become redis-py's exception classes (NoScriptError, ResponseError, …);
- a transaction (MULTI, its commands, EXEC) goes out contiguous inside its batch, on the one
  connection, so Redis runs its commands as one (native commands: no Lua table conversions).

Used for `redis://` and `unix://` URLs; TLS, Cluster, Sentinel and the embedded store keep
redis-py's own pipelines (`gmsd.backend.batcher.AutoPipeline`), which do their own routing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gmsd.backend.batcher import CommandBatcher, Commands, Futures


def _error(reply: hiredis.ReplyError) -> Exception:
    # redis-py's own mapping of error prefixes (NOSCRIPT, BUSY, READONLY, …) to its classes.
    error: Exception = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return error


def _pack(command: tuple[Any, ...]) -> bytes:
    # hiredis' stub types the argument as a 1-tuple; it takes any number of values.
    packed: bytes = hiredis.pack_command(command)
    return packed


class _Wire(asyncio.Protocol):
    """One connection: a FIFO of futures, fed by hiredis' reply parser."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.last_reply = time.monotonic()
        self.watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        self.last_reply = time.monotonic()
        waiting = self.waiting
        while (reply := self.reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream cannot be trusted any more
                self.fail(RedisConnectionError("unexpected reply from Redis"))
                return
            future = waiting.popleft()
            if future.done():  # its request was cancelled
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_error(reply))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def fail(self, error: Exception) -> None:
        """Fail every waiting command and close the connection."""
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def send(self, packed: list[bytes], futures: list[asyncio.Future[Any]]) -> None:
        """Write a batch; arm the watchdog. A batch that cannot be written fails at once."""
        if self.closed or self.transport is None:
            _fail(futures, RedisConnectionError("connection to Redis lost"))
            return
        if not self.waiting:
            self.last_reply = time.monotonic()  # nothing was pending: the clock starts now
        self.waiting.extend(futures)
        self.transport.write(b"".join(packed))
        if self.watchdog is None:
            self.watchdog = asyncio.get_running_loop().call_later(self.timeout, self._check)

    def _check(self) -> None:
        self.watchdog = None
        if not self.waiting or self.closed:
            return
        silent = time.monotonic() - self.last_reply
        if silent >= self.timeout:
            self.fail(RedisTimeoutError(f"Redis did not answer within {self.timeout:g} s"))
        else:
            self.watchdog = asyncio.get_running_loop().call_later(self.timeout - silent, self._check)


class WirePipeline(CommandBatcher):
    """Sends each event-loop turn's commands over one hiredis connection, in one write.

    Same interface as `AutoPipeline` (see `CommandBatcher`); `client` is a redis-py client to the
    same server, used for script loading and PING.
    """

    def __init__(self, url: str, client: Any, timeout: float, max_batch: int = 512) -> None:
        super().__init__(client, max_batch)
        self.timeout = timeout
        self._target: dict[str, Any] = dict(parse_url(url))
        self._wire: _Wire | None = None
        self._connecting: asyncio.Task[_Wire] | None = None
        self._ignored: asyncio.Future[Any] | None = None  # stands for the replies nobody reads

    transactions = True

    def transaction(self, commands: Commands) -> asyncio.Future[list[Any]]:
        """Queue MULTI, `commands`, EXEC in this turn's batch, contiguous (nothing is queued in
        between: the loop runs one task at a time). The OK and QUEUED replies are read and
        dropped (a command refused while queued makes EXEC fail: that error is the answer);
        an error reply of a command run by EXEC fails the future."""
        loop = asyncio.get_running_loop()
        ignored = self._ignored
        if ignored is None:  # a future already done: the wire skips the reply it stands for
            ignored = self._ignored = loop.create_future()
            ignored.set_result(None)
        executed: asyncio.Future[Any] = loop.create_future()
        self._commands += [("MULTI",), *commands, ("EXEC",)]
        self._futures += [ignored] * (len(commands) + 1)
        self._futures.append(executed)
        answer: asyncio.Future[list[Any]] = loop.create_future()
        executed.add_done_callback(lambda done: _exec_answer(done, answer))
        self._queued(loop)
        return answer

    def _send_batch(self, commands: Commands, futures: Futures) -> None:
        packed = [_pack(args) for args in commands]
        wire = self._wire
        if wire is not None and not wire.closed:
            wire.send(packed, futures)
            return
        self._wire = None
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        self._connecting.add_done_callback(lambda task: self._after_connect(task, packed, futures))

    def _after_connect(self, task: asyncio.Task[_Wire], packed: list[bytes], futures: list[Any]) -> None:
        self._connecting = None
        if task.cancelled():
            _fail(futures, RedisConnectionError("connecting to Redis was cancelled"))
        elif (error := task.exception()) is not None:
            _fail(futures, error)
        else:
            self._wire = task.result()
            self._wire.send(packed, futures)

    async def _connect(self) -> _Wire:
        loop = asyncio.get_running_loop()
        target = self._target
        try:
            async with asyncio.timeout(self.timeout):
                if "path" in target:
                    _, wire = await loop.create_unix_connection(lambda: _Wire(self.timeout), target["path"])
                else:
                    _, wire = await loop.create_connection(
                        lambda: _Wire(self.timeout), target.get("host", "localhost"), target.get("port", 6379))
        except TimeoutError:
            raise RedisTimeoutError(f"could not connect to Redis within {self.timeout:g} s") from None
        except OSError as exc:
            raise RedisConnectionError(f"could not connect to Redis: {exc.strerror or exc}") from None
        hello = _handshake(target)
        if hello:
            replies = [loop.create_future() for _ in hello]
            wire.send(hello, replies)
            await asyncio.gather(*replies)  # an AUTH or SELECT error fails the connection
        return wire

    async def aclose(self) -> None:
        """Close the connection (waiting commands fail)."""
        if self._wire is not None:
            self._wire.fail(RedisConnectionError("closed"))
            self._wire = None


def _exec_answer(executed: asyncio.Future[Any], answer: asyncio.Future[list[Any]]) -> None:
    """EXEC's reply to the transaction's future: its replies, or the first error among them."""
    if answer.done():  # the request went away
        return
    if executed.cancelled():
        answer.cancel()
        return
    error = executed.exception()
    if error is not None:
        answer.set_exception(error)
        return
    replies = executed.result()
    if replies is None:  # a WATCH abort: gmsd watches nothing, so the stream is not what it seems
        answer.set_exception(RedisConnectionError("EXEC answered nothing"))
        return
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            answer.set_exception(_error(reply))
            return
    answer.set_result(replies)


def _fail(futures: list[asyncio.Future[Any]], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)


def _handshake(target: dict[str, Any]) -> list[bytes]:
    commands: list[bytes] = []
    if target.get("password"):
        auth = ("AUTH", target["username"], target["password"]) if target.get("username") else (
            "AUTH", target["password"])
        commands.append(_pack(auth))
    if target.get("db"):
        commands.append(_pack(("SELECT", target["db"])))
    return commands
