"""The Redis connection: a real server from a URL, or the embedded in-process store.

Above this module the code is the same for both: a `redis.asyncio.Redis`-compatible client
whose responses are bytes (files are stored exactly as uploaded).
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.autopipeline import AutoPipeline, CommandQueue
from app.config import RedisOptions
from app.redis_wire import WirePipeline

log = logging.getLogger("gmsd")

# Errors that mean "Redis cannot be reached / did not answer in time": answered with 503.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def connect(url: str | None, options: RedisOptions) -> Any:
    """A client for `url` (`redis://`, `rediss://`, `unix://`), or the embedded store for None.

    Timeouts bound every call, so a dead Redis yields 503 within about `options.timeout`
    seconds instead of a hang; one retry covers a connection dropped by a Redis restart.
    """
    if url is None:
        return embedded_store()
    return redis.Redis.from_url(
        url,
        socket_timeout=options.timeout,
        socket_connect_timeout=options.timeout,
        retry=Retry(NoBackoff(), retries=1),
        max_connections=options.max_connections,
        health_check_interval=0,
        decode_responses=False,
    )


def command_queue(url: str | None, client: Any, options: RedisOptions) -> CommandQueue:
    """How the stores reach Redis: the hiredis wire for a plain server, else redis-py pipelines."""
    if url is not None and url.startswith(("redis://", "unix://")):
        return WirePipeline(url, client, options.timeout)
    return AutoPipeline(client)


def embedded_store() -> Any:
    """An in-process store (fakeredis with Lua): one process only, data lost on exit."""
    import fakeredis

    log.warning(
        "no GMSD_REDIS_URL: using the embedded in-process store "
        "(not durable: data is lost on exit; single process only)"
    )
    return fakeredis.FakeAsyncRedis(decode_responses=False)
