"""The request cycle (gmsd.web.exchange) on a real socket: uvicorn serving `GuardedHttpProtocol`
with a small ASGI app that makes the answers gmsd's own routes never make (streams, broken
headers, wrong lengths), so that each framing rule and each refusal is seen from the client."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from gmsd.config import Limits
from gmsd.web.protocol import GuardedHttpProtocol
from tests.conftest import free_port

KEEP_ALIVE = 1  # seconds (uvicorn takes whole seconds)
seen: dict[str, Any] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers by path; `/echo` reads the whole body and answers it."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/echo":
        body, pieces = b"", 0
        while True:
            message = await receive()
            body += message["body"]
            pieces += 1
            if not message["more_body"]:
                break
        seen["echo_pieces"] = pieces
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})
    elif path == "/wait-after-body":  # a receive() after the whole body waits (it does not spin)
        first = await receive()
        try:
            later: Any = await asyncio.wait_for(receive(), 0.2)
        except TimeoutError:
            later = None
        seen["after_body"] = (first, later)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/stream":  # no length: chunked
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await send({"type": "http.response.body", "body": b"cde", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/late-body":  # the head waits for the body, which comes after a pause
        await send({"type": "http.response.start", "status": 201, "headers": [(b"Content-Length", b"2")]})
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"ok"})
    elif path == "/inject":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2"), (b"x-name", b"a\r\nset-cookie: stolen=1")]})
        await send({"type": "http.response.body", "body": b"no"})
    elif path == "/bad-name":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"bad name", b"v")]})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/short":  # says 10 bytes, sends 5
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345"})
    elif path == "/close":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"3"), (b"connection", b"Keep-Alive, Close")]})
        await send({"type": "http.response.body", "body": b"bye"})
    elif path == "/silent":  # returns without answering
        return
    else:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    number = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=number, loop="uvloop", lifespan="on", log_level="critical",
                            http=functools.partial(GuardedHttpProtocol, limits=Limits()),  # type: ignore[arg-type]
                            ws="none", timeout_keep_alive=KEEP_ALIVE, server_header=False, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield number
    server.should_exit = True
    thread.join(10)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_head(sock: socket.socket, buffer: bytes = b"") -> tuple[bytes, dict[bytes, bytes], bytes]:
    """(status line, headers by lower-case name, what came after the head)."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        assert data, f"closed before a whole head: {buffer!r}"
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.lower()] = value.strip()
    return status, headers, rest


def read_exactly(sock: socket.socket, buffer: bytes, size: int) -> tuple[bytes, bytes]:
    while len(buffer) < size:
        data = sock.recv(65536)
        assert data, "closed early"
        buffer += data
    return buffer[:size], buffer[size:]


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_body_sent_in_pieces_reaches_the_app_whole_and_in_order(port: int) -> None:
    with connect(port) as sock:
        body = bytes(range(256)) * 400  # 100 KiB
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        for start in range(0, len(body), 30000):
            sock.sendall(body[start:start + 30000])
            time.sleep(0.02)
        status, headers, rest = read_head(sock)
        answer, _ = read_exactly(sock, rest, int(headers[b"content-length"]))
    assert status == b"HTTP/1.1 200 OK" and answer == body
    assert seen["echo_pieces"] > 1  # the app did wait for pieces


def test_a_receive_after_the_whole_body_waits_for_news_instead_of_repeating_it(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"POST /wait-after-body HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        status, headers, _ = read_head(sock)
    assert status == b"HTTP/1.1 204 No Content" and b"transfer-encoding" not in headers
    assert seen["after_body"] == ({"type": "http.request", "body": b"hi", "more_body": False}, None)


def test_expect_100_continue_gets_its_interim_answer_before_the_body_is_sent(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        status, _, rest = read_head(sock)
        assert status == b"HTTP/1.1 100 Continue"
        sock.sendall(b"ping")
        status, _, rest = read_head(sock, rest)
        answer, _ = read_exactly(sock, rest, 4)
    assert status == b"HTTP/1.1 200 OK" and answer == b"ping"


def test_an_answer_without_a_length_is_chunked_and_the_connection_serves_on(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, rest = read_head(sock)
        assert headers[b"transfer-encoding"] == b"chunked" and b"content-length" not in headers
        body, rest = read_exactly(sock, rest, len(b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"))
        assert body == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"  # an empty piece is no chunk (0 ends the body)
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, rest = read_head(sock, rest)
        assert status == b"HTTP/1.1 200 OK" and read_exactly(sock, rest, 5)[0] == b"hello"


def test_a_head_waits_for_its_body_and_leaves_with_it(port: int) -> None:
    with connect(port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /late-body HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        waited = time.monotonic() - started
    assert first.startswith(b"HTTP/1.1 201 Created\r\n") and first.endswith(b"\r\n\r\nok")  # one piece
    assert b"\r\ncontent-length: 2\r\n" in first  # names are lower-cased, as uvicorn does
    assert waited >= 0.04


def test_head_requests_get_the_headers_and_no_body(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"HEAD /plain HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, rest = read_head(sock)
        assert status == b"HTTP/1.1 200 OK" and headers[b"content-length"] == b"5"
        status, _, rest = read_head(sock, rest)  # the next answer follows at once: no body between
        assert status == b"HTTP/1.1 200 OK" and read_exactly(sock, rest, 5)[0] == b"hello"


@pytest.mark.parametrize("path", ["/inject", "/bad-name", "/short", "/silent"])
def test_an_answer_the_app_got_wrong_never_reaches_the_client_half_made(port: int, path: str) -> None:
    with connect(port) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = read_until_closed(sock)
    if path == "/silent":  # nothing was started: a JSON 500, and the connection closes
        assert data.startswith(b"HTTP/1.1 500 ") and data.endswith(b'{"message":"internal server error"}')
        assert b"\r\nconnection: close\r\n" in data
    elif path == "/short":  # the head and what there was left, then the close: the client sees it short
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\n12345")
    else:  # a bad header: not a byte of it is written
        assert data == b""
    with connect(port) as sock:  # and the server serves on
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(sock)[0] == b"HTTP/1.1 200 OK"


def test_connection_close_from_the_app_closes_after_the_answer(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nbye")
    assert b"connection: close" not in data  # the app's own header, not a second one
    assert b"\r\nconnection: Keep-Alive, Close\r\n" in data


def test_http_1_0_is_answered_then_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /plain HTTP/1.0\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ") and b"\r\nconnection: close\r\n" in data and data.endswith(b"hello")


def test_a_connection_in_use_stays_open_and_an_idle_one_closes_after_the_keep_alive_timeout(port: int) -> None:
    with connect(port) as sock:
        sock.settimeout(KEEP_ALIVE * 4)
        started = time.monotonic()
        rest = b""
        while time.monotonic() - started < KEEP_ALIVE * 2:  # a request every 0.3 timeout, for two timeouts
            time.sleep(KEEP_ALIVE * 0.3)
            sock.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, rest = read_head(sock, rest)
            assert status == b"HTTP/1.1 200 OK"
            rest = read_exactly(sock, rest, 5)[1]
        idle_from = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server
        idle = time.monotonic() - idle_from
    assert KEEP_ALIVE * 0.8 <= idle <= KEEP_ALIVE + 1.5
