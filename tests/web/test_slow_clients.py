"""Slow clients against a real `gmsd serve`: a connection that sends nothing, a request head or body
that trickles in, a body still arriving after the answer, an idle keep-alive connection. Each is
cut off after its `[limits]` deadline (short ones here) with a JSON answer where one is due, and
nothing of the unfinished request is stored.

The deadlines are gmsd's own (gmsd/web/protocol.py): uvicorn only bounds the idle time between two
requests (`keep_alive_timeout`). The bounds asserted here are "closed within 10 s, not never".
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gmsd.config import parse_config
from gmsd.errors import ConfigError
from tests.conftest import RedisServer
from tests.support.gmsd_process import GmsdProcess, gmsd_serving

HEAD_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE = 1.0, 1.5, 1
CONFIG = f"""
[limits]
header_timeout = {HEAD_TIMEOUT}
body_timeout = {BODY_TIMEOUT}
keep_alive_timeout = {KEEP_ALIVE}

[services.s]
_ttl = 600
"""
NEVER = 10.0  # seconds: a connection still open after this was never going to be closed


@pytest.fixture(scope="module")
def server(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GmsdProcess]:
    with gmsd_serving(tmp_path_factory.mktemp("slow"), redis_server.url, CONFIG, workers=1,
                      log_level="info") as served:
        yield served


def until_closed(sock: socket.socket, trickle: bytes = b"", every: float = 0.25) -> tuple[float, bytes]:
    """Read until the server closes (sending `trickle` every `every` s meanwhile); (seconds, bytes read)."""
    began = time.monotonic()
    received = b""
    sock.settimeout(every)
    while time.monotonic() - began < NEVER:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if trickle:
                try:
                    sock.sendall(trickle)
                except OSError:
                    break
            continue
        except OSError:
            break
        if not data:
            break
        received += data
    return time.monotonic() - began, received


def json_answer(raw: bytes, status: int) -> str:
    """The message of a JSON error answer with `status`; the connection announced as closing."""
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), raw[:300]
    assert b"content-type: application/json" in head.lower() and b"connection: close" in head.lower(), head
    message: str = json.loads(body)["message"]
    return message


def service(server: GmsdProcess) -> str:
    return str(httpx.post(f"{server.base}/genesys/1/service/s", data={"kept": "yes"}).json()["id"])


def post_head(target: str, length: int, content_type: str = "application/x-www-form-urlencoded") -> bytes:
    return (f"POST {target} HTTP/1.1\r\nHost: gmsd\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def connected(server: GmsdProcess, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    if first:
        sock.sendall(first)
    return sock


def idle_connection(server: GmsdProcess) -> None:
    with connected(server) as sock:
        seconds, received = until_closed(sock)
    assert received == b"" and seconds < NEVER  # closed without a word: it never asked anything


def trickling_head(server: GmsdProcess) -> None:
    with connected(server, b"GET /healthz HTTP/1.1\r\nHost: gmsd\r\n") as sock:
        seconds, received = until_closed(sock, trickle=b"X-Slow: 1\r\n")
    assert seconds < NEVER
    assert "headers did not arrive" in json_answer(received, 408)


def trickling_body(server: GmsdProcess, api: str) -> None:
    if api == "gms":
        target, trickle = f"/genesys/1/service/{service(server)}/storage", b"x"
        start = post_head(target, 10_000) + b"a="
    else:
        target, trickle = "/genesys/1/cs/services/start", b" "
        start = post_head(target, 10_000, "application/json") + b'{"customer_id": "slow"'
    with connected(server, start) as sock:
        seconds, received = until_closed(sock, trickle=trickle)
    assert seconds < NEVER
    assert "body did not arrive" in json_answer(received, 408)
    if api == "gms":
        assert httpx.get(f"{server.base}{target}").json() == {"kept": "yes"}
    else:
        assert httpx.get(f"{server.base}/genesys/1/cs/customers/slow/services").json() == []


def trickling_after_the_answer(server: GmsdProcess) -> None:
    # Refused from its Content-Length (413) at once; the body keeps coming and is thrown away,
    # but only until the body deadline: then the connection is closed.
    sid = service(server)
    with connected(server, post_head(f"/genesys/1/service/{sid}/storage", 10 ** 9)) as sock:
        seconds, received = until_closed(sock, trickle=b"x" * 100)
    assert received.startswith(b"HTTP/1.1 413 "), received[:200]
    assert BODY_TIMEOUT * 0.9 < seconds < NEVER  # kept open while the body was due, not forever


def idle_keep_alive(server: GmsdProcess) -> None:
    with connected(server, b"GET /healthz HTTP/1.1\r\nHost: gmsd\r\n\r\n") as sock:
        seconds, received = until_closed(sock)
    assert received.startswith(b"HTTP/1.1 200 ") and seconds < NEVER


CASES: dict[str, Callable[[GmsdProcess], None]] = {
    "idle connection": idle_connection,
    "trickling head": trickling_head,
    "trickling GMS body": lambda server: trickling_body(server, "gms"),
    "trickling CS body": lambda server: trickling_body(server, "cs"),
    "body trickling after the answer": trickling_after_the_answer,
    "idle keep-alive connection": idle_keep_alive,
}


def test_slow_clients_are_cut_off_and_the_server_keeps_serving(server: GmsdProcess) -> None:
    # All at once (each waits for its deadline): a slow client must not delay the others either.
    with ThreadPoolExecutor(len(CASES)) as pool:
        futures = {name: pool.submit(case, server) for name, case in CASES.items()}
        while any(not f.done() for f in futures.values()):
            assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
            time.sleep(0.1)
    for name, future in futures.items():
        error = future.exception()
        assert error is None, f"{name}: {error!r}"
    log = server.output()
    assert '"status":408' in log  # the app logged the request it could not finish, as a 408


def test_a_request_within_its_deadlines_is_served_even_when_sent_in_pieces(server: GmsdProcess) -> None:
    sid = service(server)
    body = b"a=1&b=2"
    pieces = [post_head(f"/genesys/1/service/{sid}/storage", len(body))[:20],
              post_head(f"/genesys/1/service/{sid}/storage", len(body))[20:], body[:3], body[3:]]
    with connected(server) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(HEAD_TIMEOUT / 5)
        sock.settimeout(NEVER)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert httpx.get(f"{server.base}/genesys/1/service/{sid}/storage").json() == {"kept": "yes", "a": "1", "b": "2"}


def test_malformed_http_is_a_json_400(server: GmsdProcess) -> None:
    with connected(server, b"NOT HTTP AT ALL\r\n\r\n") as sock:
        _, received = until_closed(sock)
    assert json_answer(received, 400) == "invalid HTTP request"


@pytest.mark.parametrize("setting", ["header_timeout = 0", "body_timeout = -1", "body_timeout = nan",
                                     "header_bytes = 0", "keep_alive_timeout = 0", "max_concurrent_requests = 0",
                                     "header_timeout = inf", "body_min_rate = 0", "body_rate_window = -1"])
def test_connection_limits_must_be_positive_and_finite(setting: str) -> None:
    with pytest.raises(ConfigError, match=setting.split()[0]):
        parse_config(f"[limits]\n{setting}\n", "gmsd.toml")
