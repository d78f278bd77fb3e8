"""Answers written head and body as one write: still complete, in order, on a real server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RedisServer
from tests.support.gmsd_process import start_gmsd, stop


@pytest.fixture
def served(redis_server: RedisServer) -> Iterator[str]:
    process, base = start_gmsd("--redis-url", redis_server.url)
    yield base
    stop(process)


def read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """Read `count` HTTP/1.1 answers (Content-Length framed) from `sock`."""
    buffer = b""
    answers: list[bytes] = []
    sock.settimeout(10)
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if head.startswith(b"HTTP/1.1 204"):
            length = 0
        while len(rest) < length:
            rest += sock.recv(65536)
        answers.append(head + b"\r\n\r\n" + rest[:length])
        buffer = rest[length:]
    return answers


def test_pipelined_requests_get_whole_answers_in_order(served: str) -> None:
    service_id = httpx.post(served + "/genesys/1/service/storage", data={"k": "v"}).json()["id"]
    port = int(served.rsplit(":", 1)[1])
    storage = f"/genesys/1/service/{service_id}/storage"
    requests = b"".join([
        f"GET {storage}/k HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        f"GET {storage}/missing HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET {storage} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    ])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(requests)
        answers = read_answers(sock, 4)
    assert answers[0].startswith(b"HTTP/1.1 200") and answers[0].endswith(b'{"k":"v"}')
    assert answers[1].startswith(b"HTTP/1.1 404") and b"not found" in answers[1]
    assert answers[2].startswith(b"HTTP/1.1 200") and answers[2].endswith(b'{"status":"ok"}')
    assert answers[3].startswith(b"HTTP/1.1 200") and answers[3].endswith(b'{"k":"v"}')


def test_answers_without_a_body(served: str) -> None:
    started = httpx.post(served + "/genesys/1/cs/services/start",
                         json={"customer_id": "c-coalesce", "service_type": "T"})
    assert started.status_code == 201
    service_id = started.json()["service_id"]
    ended = httpx.post(f"{served}/genesys/1/cs/services/{service_id}/end", json={})
    assert ended.status_code == 204 and ended.content == b""
    head = httpx.head(served + "/healthz")
    assert head.status_code in (200, 405)  # answered, headers complete, not hanging
    # The connection that carried them still serves.
    with httpx.Client(base_url=served) as client:
        assert client.post(f"/genesys/1/cs/services/{service_id}/end", json={}).status_code == 409
        assert client.get("/healthz").json() == {"status": "ok"}
