"""The Redis connection: one server, a Redis Cluster, a Sentinel-managed primary, or the embedded
in-process store.

Above this module the code is the same for all of them: a `redis.asyncio.Redis`-compatible
client whose responses are bytes (files are stored exactly as uploaded). redis-py's
`RedisCluster` and `Sentinel` do all the routing and failover handling; gmsd adds none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from gmsd.backend.batcher import AutoPipeline, CommandBatcher
from gmsd.backend.urls import RedisTarget, parse_redis_url
from gmsd.backend.wire import WirePipeline
from gmsd.config import RedisOptions

log = logging.getLogger("gmsd")

# Errors that mean "Redis cannot be reached / did not answer in time / is failing over":
# answered with 503. CLUSTERDOWN, TRYAGAIN and READONLY are replies, but they are transient
# states of a cluster or of a primary that just became a replica, not faults of the request.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
    SlotNotCoveredError,
)


# Replies without an exception class of their own in redis-py that mean the same: a primary
# fenced by `min-replicas-to-write` (no replica acknowledges it, e.g. it was just replaced).
_UNAVAILABLE_REPLIES = ("NOREPLICAS ",)


def is_unavailable(exc: BaseException) -> bool:
    """True if `exc` means Redis is unreachable or failing over (503), not a bug (500).

    redis-py raises a bare `RedisClusterException` when no seed node answers or the slots are
    not all covered (mid-failover); the same class also reports programming errors such as
    keys in different slots, so look at its cause and message.
    """
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return True
    if isinstance(exc, redis.ResponseError):
        return str(exc).startswith(_UNAVAILABLE_REPLIES)
    if isinstance(exc, RedisClusterException):
        if isinstance(exc.__cause__, UNAVAILABLE_ERRORS):
            return True
        text = str(exc)
        return "cannot be connected" in text or "not covered" in text
    return False


def connect(url: str | None, options: RedisOptions) -> Any:
    """A client for `url` (see `gmsd.backend.urls` for the forms), or the embedded store for None.

    Timeouts bound every call, so a dead Redis yields 503 instead of a hang; one retry covers
    a connection dropped by a restart or a failover (the cluster client re-reads the slot map
    before it retries, the sentinel client asks the sentinels for the current primary).
    """
    if url is None:
        return embedded_store()
    target = parse_redis_url(url)
    if target.kind == "cluster":
        return _cluster(target, options)
    if target.kind == "sentinel":
        return _sentinel_primary(target, options)
    return redis.Redis.from_url(
        url,
        socket_timeout=options.timeout,
        socket_connect_timeout=options.timeout,
        retry=Retry(NoBackoff(), retries=1),
        max_connections=options.max_connections,
        health_check_interval=0,
        decode_responses=False,
    )


def command_queue(url: str | None, client: Any, options: RedisOptions) -> CommandBatcher:
    """How the stores reach Redis: the hiredis wire for a plain server, else redis-py pipelines."""
    if url is not None and url.startswith(("redis://", "unix://")):
        return WirePipeline(url, client, options.timeout)
    if url is None:
        return AutoPipeline(client)  # the embedded store answers in-process: nothing to bound
    return AutoPipeline(client, deadline=options.timeout * DEADLINE_PER_TIMEOUT)


# A call on a cluster or sentinel client may try several nodes, each within `timeout`, and
# redis-py serialises cluster topology refreshes: with every seed node unreachable, concurrent
# requests would each wait (seeds x timeout) in turn. So each call also gets a deadline a bit
# over the single-server worst case (a try and one retry). redis-py drops a connection whose
# command is cancelled, so an expired deadline cannot leave a stale reply behind.
DEADLINE_PER_TIMEOUT = 2.5


class _CallDeadline:
    """Mixin: every command of the client fails with TimeoutError after `call_deadline` seconds."""

    call_deadline: float = 5.0

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command through redis-py, but give up at the deadline."""
        async with asyncio.timeout(self.call_deadline):
            return await super().execute_command(*args, **kwargs)  # type: ignore[misc]


class _Cluster(_CallDeadline, RedisCluster):  # type: ignore[misc]  # redis-py's own stubs clash
    """redis-py's cluster client with a per-call deadline."""


def _cluster(target: RedisTarget, options: RedisOptions) -> RedisCluster:
    client = _Cluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        username=target.username,
        password=target.password,
        ssl=target.tls,
        socket_timeout=options.timeout,
        socket_connect_timeout=options.timeout,
        # The cluster client retries after re-reading the slot map (CLUSTERDOWN, a dead node):
        # once, like the single-server client, so a request never waits for a whole failover.
        retry=Retry(NoBackoff(), retries=1),
        # Keep the configured seeds for every topology refresh: in Kubernetes they are stable
        # Service names while the node addresses that CLUSTER SLOTS reports change on restart.
        dynamic_startup_nodes=False,
        max_connections=options.max_connections,  # per node
        health_check_interval=0,
        decode_responses=False,
    )
    client.call_deadline = options.timeout * DEADLINE_PER_TIMEOUT
    return client


class _SentinelPrimary(_CallDeadline, redis.Redis):  # type: ignore[misc]  # redis-py's own stubs clash
    """The primary's client: per-call deadline, and it notices a switch of primary by itself.

    redis-py asks the sentinels where the primary is only when it opens a connection. After a
    `SENTINEL FAILOVER` the old primary stays up and accepts writes until the sentinels demote
    it (about 10 s later): pooled connections would keep writing there, and those acknowledged
    writes are lost at the demotion. So a background task asks the sentinels every
    `primary_check_period` seconds and, when the address changed, drops the pool's connections
    (in-flight commands get the usual single retry, on the new primary). redis-py still does the
    discovery; this only decides when to ask. Writes that reach the old primary between its
    replica's promotion and the switch are still lost: Redis replicates asynchronously.
    """

    primary_check_period: float = 0.25  # one SENTINEL MASTERS per period and process: cheap
    _follower: asyncio.Task[None] | None = None

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; the first one starts the primary follower on the running loop."""
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow_primary(), name="gmsd-sentinel-follower")
        return await super().execute_command(*args, **kwargs)

    async def _follow_primary(self) -> None:
        pool = self.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        seen: Any = None
        while True:
            try:
                address = await pool.get_master_address()  # type: ignore[no-untyped-call]
            except Exception as exc:  # sentinels unreachable: requests report it; keep watching
                log.debug("sentinel primary check failed: %s", exc)
            else:
                if seen is not None and address != seen:
                    log.warning("redis primary moved from %s:%s to %s:%s", *seen, *address)
                    await pool.disconnect(inuse_connections=True)
                seen = address
            await asyncio.sleep(self.primary_check_period)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Stop the follower; close the primary's connections and the sentinels' connections."""
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            for sentinel in pool.sentinel_manager.sentinels:
                await sentinel.aclose()


def _sentinel_primary(target: RedisTarget, options: RedisOptions) -> Any:
    timeouts = {"socket_timeout": options.timeout, "socket_connect_timeout": options.timeout}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        list(target.nodes),
        # No retries per sentinel (redis-py's default is 3 with backoff of up to 10 s each):
        # discovery moves on to the next sentinel instead.
        sentinel_kwargs={
            **timeouts, "ssl": target.tls, "retry": Retry(NoBackoff(), retries=0),
            "username": target.sentinel_username, "password": target.sentinel_password,
        },
        **timeouts,
    )
    assert target.master is not None  # parse_redis_url requires it for sentinel URLs
    # Each new connection asks the sentinels where the primary is; a connection to a primary
    # that was demoted answers READONLY, which redis-py turns into a reconnect (the retry).
    client = sentinel.master_for(
        target.master,
        redis_class=_SentinelPrimary,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        retry=Retry(NoBackoff(), retries=1),
        max_connections=options.max_connections,
        health_check_interval=0,
        decode_responses=False,
    )
    client.call_deadline = options.timeout * DEADLINE_PER_TIMEOUT
    return client


def embedded_store() -> Any:
    """An in-process store (fakeredis with Lua): one process only, data lost on exit."""
    import fakeredis

    log.warning(
        "no GMSD_REDIS_URL: using the embedded in-process store "
        "(not durable: data is lost on exit; single process only)"
    )
    return fakeredis.FakeAsyncRedis(decode_responses=False)
