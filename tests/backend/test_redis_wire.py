"""The hiredis pipelined connection against real redis-server processes, on asyncio and uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import uvloop
from redis.exceptions import AuthenticationError, ExecAbortError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gmsd.backend.wire import WirePipeline
from tests.conftest import RedisServer, free_port, start_redis


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine on the standard event loop, then on uvloop (what `gmsd serve` uses)."""
    if request.param == "asyncio":
        return asyncio.run
    return uvloop.run  # type: ignore[no-any-return]


@pytest.fixture
def server(redis_server: RedisServer) -> RedisServer:
    redis.Redis(port=redis_server.port).flushall()
    return redis_server


def wire(url: str, timeout: float = 2.0) -> WirePipeline:
    return WirePipeline(url, redis.asyncio.Redis.from_url(url), timeout)


def test_replies_reach_the_request_that_asked(server: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        pipe = wire(server.url)
        await pipe.execute("SET", "text", "v")
        replies = await asyncio.gather(
            *[pipe.execute("INCR", "n") for _ in range(300)],
            pipe.execute("HGET", "text", "f"),  # WRONGTYPE: an error for this request only
            pipe.execute("GET", "text"),
            return_exceptions=True,
        )
        assert replies[:300] == list(range(1, 301))
        assert isinstance(replies[300], ResponseError) and "WRONGTYPE" in str(replies[300])
        assert replies[301] == b"v"
        await pipe.aclose()

    run(scenario())


def test_binary_values_round_trip_exactly(server: RedisServer, run: Any) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB with every byte value

    async def scenario() -> None:
        pipe = wire(server.url)
        await pipe.execute("HSET", "h", "k", payload)
        assert await pipe.execute("HGET", "h", "k") == payload
        await pipe.aclose()

    run(scenario())


def test_noscript_loads_the_script_and_runs_it(server: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        pipe = wire(server.url)
        script = pipe.client.register_script("return {KEYS[1], ARGV[1]}")
        await pipe.client.script_flush()
        assert await pipe.run_script(script, ["k{1}"], ["a"]) == [b"k{1}", b"a"]
        await pipe.aclose()

    run(scenario())


def test_database_number_from_the_url(server: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        pipe = wire(f"redis://127.0.0.1:{server.port}/3")
        await pipe.execute("SET", "in-db-3", "yes")
        await pipe.aclose()

    run(scenario())
    assert redis.Redis(port=server.port, db=3).get("in-db-3") == b"yes"
    assert redis.Redis(port=server.port, db=0).get("in-db-3") is None


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[RedisServer]:
    socket_path = tmp_path / "redis.sock"
    server = start_redis(tmp_path, "--requirepass", "s3cret", "--unixsocket", str(socket_path))
    yield server
    server.stop()


def test_password_and_unix_socket(secured: RedisServer, tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        good = wire(f"redis://:s3cret@127.0.0.1:{secured.port}/0")
        assert await good.execute("PING") == b"PONG"
        over_unix = wire(f"unix://:s3cret@{tmp_path / 'redis.sock'}?db=0")
        assert await over_unix.execute("PING") == b"PONG"
        bad = wire(f"redis://:wrong@127.0.0.1:{secured.port}/0")
        with pytest.raises((AuthenticationError, ResponseError)):
            await bad.execute("PING")
        for pipe in (good, over_unix, bad):
            await pipe.aclose()

    run(scenario())


def test_refused_connection_fails_fast(run: Any) -> None:
    async def scenario() -> None:
        pipe = wire(f"redis://127.0.0.1:{free_port()}/0")
        with pytest.raises(RedisConnectionError):
            await pipe.execute("PING")

    run(scenario())


def test_silent_redis_times_out_every_waiting_command(run: Any) -> None:
    async def scenario() -> None:
        async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 20)
            await asyncio.sleep(30)

        silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        pipe = wire(f"redis://127.0.0.1:{port}/0", timeout=0.3)
        results = await asyncio.gather(*[pipe.execute("GET", "k") for _ in range(5)], return_exceptions=True)
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        silent.close()

    run(scenario())


def test_reconnects_after_the_server_restarts(tmp_path: Path, run: Any) -> None:
    own = start_redis(tmp_path)
    try:
        async def scenario() -> None:
            pipe = wire(own.url)
            assert await pipe.execute("SET", "k", "1")
            own.stop()
            with pytest.raises(RedisConnectionError):
                await pipe.execute("GET", "k")
            own.start()
            assert await pipe.execute("SET", "k", "2")
            assert await pipe.execute("GET", "k") == b"2"
            await pipe.aclose()

        run(scenario())
    finally:
        own.stop()


def test_a_cancelled_request_does_not_shift_the_replies(server: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        pipe = wire(server.url)
        await pipe.execute("SET", "a", "A")
        await pipe.execute("SET", "b", "B")
        waiter = asyncio.ensure_future(pipe.execute("GET", "a"))
        after = pipe.execute("GET", "b")
        waiter.cancel()
        assert await after == b"B"
        assert await pipe.execute("GET", "a") == b"A"
        await pipe.aclose()

    run(scenario())


def test_a_batch_of_scripts_reloads_once_and_raises_an_error_reply(server: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        pipe = wire(server.url)
        script = pipe.client.register_script("return redis.call('GET', KEYS[1])")
        await pipe.execute("SET", "a{1}", "A")
        await pipe.execute("SET", "b{1}", "B")
        await pipe.client.script_flush()
        assert await pipe.run_scripts(script, [(["a{1}"], []), (["b{1}"], []), (["c{1}"], [])]) == [b"A", b"B", None]
        await pipe.execute("HSET", "h{1}", "f", "v")
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await pipe.run_scripts(script, [(["a{1}"], []), (["h{1}"], [])])
        await pipe.aclose()

    run(scenario())


def test_a_transaction_keeps_its_replies_and_the_batch_its_order(server: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        pipe = wire(server.url)
        await pipe.execute("HSET", "h", "a", "1")
        before = pipe.execute("INCR", "n")  # the same batch as the transaction, on both sides of it
        done = pipe.transaction([("HGETALL", "h"), ("INCR", "n"), ("HGETALL", "missing")])
        after = pipe.execute("INCR", "n")
        assert await asyncio.gather(before, done, after) == [1, [[b"a", b"1"], 2, []], 3]
        await pipe.aclose()

    run(scenario())


def test_a_transaction_fails_with_its_first_error_and_others_go_on(server: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        pipe = wire(server.url)
        await pipe.execute("SET", "text", "v")
        ran_with_error = pipe.transaction([("INCR", "n"), ("HGETALL", "text"), ("INCR", "n")])  # WRONGTYPE at EXEC
        refused = pipe.transaction([("INCR", "n"), ("NOSUCHCOMMAND",)])  # refused while queued: EXECABORT
        later = pipe.execute("GET", "n")
        replies = await asyncio.gather(ran_with_error, refused, later, return_exceptions=True)
        assert isinstance(replies[0], ResponseError) and "WRONGTYPE" in str(replies[0])
        assert isinstance(replies[1], ExecAbortError)
        assert replies[2] == b"2"  # the first transaction's commands ran (Redis has no rollback); not the second's
        await pipe.aclose()

    run(scenario())


def test_a_transaction_with_a_flushed_script_loads_it_and_runs_whole_again(server: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        pipe = wire(server.url)
        script = pipe.client.register_script("return redis.call('INCR', KEYS[1])")
        await pipe.client.script_flush()
        commands = [("HSET", "h{1}", "f", "v"), ("EVALSHA", script.sha, 1, "n{1}")]
        assert await pipe.transaction_with_script(commands, script) == [0, 1]  # the HSET ran twice
        assert await pipe.execute("HGETALL", "h{1}") == [b"f", b"v"]
        assert await pipe.transaction_with_script(commands, script) == [0, 2]  # loaded: one run
        await pipe.aclose()

    run(scenario())


def test_a_transaction_runs_as_one_between_other_clients_writes(server: RedisServer, run: Any) -> None:
    async def scenario() -> None:
        pipe, other = wire(server.url), redis.asyncio.Redis.from_url(server.url)
        await other.hset("a", "v", 0)
        await other.hset("b", "v", 0)

        async def writer() -> None:  # moves both hashes forward together, one script call each step
            for step in range(1, 301):
                await other.eval("redis.call('HSET', KEYS[1], 'v', ARGV[1]) "
                                 "redis.call('HSET', KEYS[2], 'v', ARGV[1])", 2, "a", "b", step)

        async def reader() -> list[tuple[bytes, bytes]]:
            seen = []
            for _ in range(300):
                a, b = await pipe.transaction([("HGET", "a", "v"), ("HGET", "b", "v")])
                seen.append((a, b))
            return seen

        _, seen = await asyncio.gather(writer(), reader())
        assert all(a == b for a, b in seen)  # never one hash of a step and the other of another
        assert len({a for a, _ in seen}) > 1  # the reads did overlap the writes
        await pipe.aclose()
        await other.aclose()

    run(scenario())
