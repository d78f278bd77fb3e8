"""Redis stops, or hangs, under a loop of requests to a real `gmsd serve` (2 workers), then comes
back on the same port: both APIs answer the contract's 503 JSON in bounded time (never a hang, a
500 or a reset connection), readiness follows Redis, and gmsd recovers by itself, Lua scripts
loaded again into the new Redis.

The per-process fault tests (closed port, black hole, SCRIPT FLUSH) are in test_redis_faults.py.
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from gmsd.backend.scripts import script_text
from tests.conftest import RedisServer, start_redis
from tests.support.gmsd_process import gmsd_serving

TIMEOUT = 0.5  # [redis] timeout: how long gmsd waits for a hung Redis
CONFIG = f"""
[redis]
timeout = {TIMEOUT}

[services.s]
_ttl = 600

[context_services]
default_ttl = "1h"
"""
GMS = "/genesys/1/service"
CS = "/genesys/1/cs"
GMS_DOWN = {"message": "storage unavailable"}
CS_DOWN = {"message": "storage unavailable",
           "exception": "com.genesyslab.gsg.services.contextservices.exceptions.StorageUnavailableException"}
BOUND = 10.0  # seconds: an answer slower than this is a hang, whatever the machine's load
KINDS = ("gms", "cs", "ready")


@dataclass(frozen=True)
class Answer:
    """One request of the loop: when it was sent, what came back and how long it took."""

    kind: str
    sent: float
    seconds: float
    status: int | None  # None: no HTTP answer at all (reset, timeout)
    body: bytes
    error: str = ""


class Loop:
    """Threads that call gmsd without pause, each a chain of dependent calls, and keep every answer."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(step,), daemon=True)
                        for step in (self._gms, self._gms, self._cs, self._cs, self._ready)]

    def __enter__(self) -> Loop:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(3 * BOUND)

    def call(self, http: httpx.Client, kind: str, method: str, path: str, **kwargs: object) -> httpx.Response | None:
        """One request, recorded; None if it got no HTTP answer."""
        sent = time.monotonic()
        try:
            response = http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            self._keep(Answer(kind, sent, time.monotonic() - sent, None, b"", f"{type(exc).__name__}: {exc}"))
            return None
        self._keep(Answer(kind, sent, time.monotonic() - sent, response.status_code, response.content))
        return response

    def _keep(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def _run(self, step: Callable[[httpx.Client, int], None]) -> None:
        with httpx.Client(base_url=self.base, timeout=3 * BOUND) as http:
            n = 0
            while not self.stopping.is_set():
                n += 1
                step(http, n)
                time.sleep(0.01)

    def _gms(self, http: httpx.Client, n: int) -> None:
        # create (script), write (script), read (HGETALL): a failed call ends the chain
        created = self.call(http, "gms", "POST", f"{GMS}/s", data={"n": str(n)})
        if created is None or created.status_code != 200:
            return
        sid = created.json()["id"]
        written = self.call(http, "gms", "POST", f"{GMS}/{sid}/storage", files={"f": ("f", b"\x00\x01", "x/y")})
        if written is not None and written.status_code == 200:
            self.call(http, "gms", "GET", f"{GMS}/{sid}/storage")

    def _cs(self, http: httpx.Client, n: int) -> None:
        # start a service, start a state in it, query the customer (all scripts)
        customer = f"outage-{threading.get_ident()}-{n % 5}"
        started = self.call(http, "cs", "POST", f"{CS}/services/start", json={"customer_id": customer})
        if started is None or started.status_code != 201:
            return
        sid = started.json()["service_id"]
        state = self.call(http, "cs", "POST", f"{CS}/services/{sid}/states/start", json={"state_type": "s"})
        if state is not None and state.status_code == 201:
            self.call(http, "cs", "GET", f"{CS}/customers/{customer}/services")

    def _ready(self, http: httpx.Client, n: int) -> None:
        self.call(http, "ready", "GET", "/readyz")

    def snapshot(self) -> list[Answer]:
        """The answers so far."""
        with self.lock:
            return list(self.answers)

    def wait(self, condition: Callable[[list[Answer]], bool], what: str, deadline: float = 30) -> float:
        """Wait until `condition(answers)` holds; the time it became true. Fails after `deadline`."""
        end = time.monotonic() + deadline
        while not condition(self.snapshot()):
            if time.monotonic() > end:
                pytest.fail(f"{what}: not within {deadline} s")
            time.sleep(0.02)
        return time.monotonic()


def ok(answer: Answer) -> bool:
    return answer.status in (200, 201)


def each_kind(answers: list[Answer], since: float, test: Callable[[Answer], bool], count: int = 1) -> bool:
    return all(sum(1 for a in answers if a.kind == kind and a.sent >= since and test(a)) >= count for kind in KINDS)


def unavailable(answer: Answer) -> bool:
    """The contract's 503 for the answer's API (readiness: the failing check named)."""
    if answer.status != 503:
        return False
    body = json.loads(answer.body)
    if answer.kind == "gms":
        return bool(body == GMS_DOWN)
    if answer.kind == "cs":
        return bool(body == CS_DOWN)
    return bool(body["checks"]["redis"].startswith("failing"))


def script_shas() -> list[str]:
    """The SHA1 of the scripts the loop runs (GMS scripts as they are; CS ones after their library)."""
    texts = [script_text("gms", "storage_write"), script_text("cs", "service_start"),
             script_text("cs", "item_start"), script_text("cs", "index_read")]
    return [hashlib.sha1(text.encode()).hexdigest() for text in texts]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    if server.process is not None:
        server.process.send_signal(signal.SIGCONT)  # in case the test failed while it was frozen
    server.stop()


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_redis_outage_under_load_then_recovery(fault: str, own_redis: RedisServer, tmp_path: Path,
                                                report: Callable[[str], None]) -> None:
    sync = redis.Redis(port=own_redis.port)
    first_run = sync.info("server")["run_id"]
    with gmsd_serving(tmp_path, own_redis.url, CONFIG) as server, Loop(server.base) as loop:
        loop.wait(lambda a: each_kind(a, 0, ok, 10), "traffic flows before the fault")

        # The fault: the process is gone (connections refused), or hangs (SIGSTOP: nothing answers).
        assert own_redis.process is not None
        if fault == "stopped":
            own_redis.stop()
        else:
            own_redis.process.send_signal(signal.SIGSTOP)
        down = time.monotonic()
        loop.wait(lambda a: each_kind(a, down + 2 * TIMEOUT, unavailable, 3), "503s from both APIs and readiness")

        # Back on the same port: a new, empty Redis (no data, no scripts), or the same one resumed.
        back = time.monotonic()
        if fault == "stopped":
            own_redis.start()
            assert sync.info("server")["run_id"] != first_run
        else:
            own_redis.process.send_signal(signal.SIGCONT)
        recovered = loop.wait(lambda a: each_kind(a, back, ok), "recovery of both APIs and readiness", deadline=15)
        settled = recovered + 1.0
        loop.wait(lambda a: each_kind(a, settled, ok, 10), "traffic flows after recovery")

    answers = loop.snapshot()
    slowest = ", ".join(f"{kind} {max(a.seconds for a in answers if a.kind == kind):.2f} s" for kind in KINDS)
    report(f"Redis {fault} under load ([redis] timeout {TIMEOUT} s): {len(answers)} answers, slowest {slowest}; "
           f"all kinds served again {recovered - back:.2f} s after Redis was back")
    assert [a for a in answers if a.status is None] == []  # no reset, no timeout: always an HTTP answer
    assert [a for a in answers if a.seconds > BOUND] == []
    for answer in answers:
        assert ok(answer) or unavailable(answer), answer  # never a 500, never another error body
    # While Redis was down nothing could succeed, and everything said so at once.
    during = [a for a in answers if a.sent > down + 2 * TIMEOUT and a.sent + a.seconds < back]
    assert during and all(unavailable(a) for a in during)
    # gmsd recovered by itself: after the first successes, every call of both APIs succeeds again.
    after = [a for a in answers if a.sent >= settled]
    assert after and all(ok(a) for a in after), [a for a in after if not ok(a)][:5]
    assert server.process.returncode == 0, server.output()[-2000:]
    # The scripts the loop ran were loaded into the Redis that came back.
    assert sync.script_exists(*script_shas()) == [True] * 4
