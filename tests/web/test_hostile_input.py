"""Hostile requests against a real `gmsd serve` on a real Redis (loopback, one worker): each is
sent as raw bytes, exactly as an attacker would, and must get its contract status with a JSON
body, leave nothing behind that could hurt a later client, and write no traceback into the log.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RedisServer
from tests.support.gmsd_process import GmsdProcess, gmsd_serving

CONFIG = """
[services.s]
_ttl = 600
"""
TIMEOUT = 10.0  # seconds: any answer slower than this is a failure, not a wait


@pytest.fixture(scope="module")
def server(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GmsdProcess]:
    with gmsd_serving(tmp_path_factory.mktemp("hostile"), redis_server.url, CONFIG, workers=1,
                      log_level="info") as served:
        yield served
        # Whatever the tests of this module sent, the log has no traceback in it.
        assert "Traceback" not in served.output(), served.output()[-4000:]


class Answer:
    """An HTTP answer read off the socket: status, headers (lower-case names), body."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def json(self) -> dict[str, str]:
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        document: dict[str, str] = json.loads(self.body)
        return document


def send(server: GmsdProcess, method: str, target: bytes | str, body: bytes = b"",
         headers: dict[str, str] | None = None, host: str = "gmsd") -> Answer:
    """One request as raw bytes on its own connection (`Connection: close`); its answer."""
    if isinstance(target, str):
        target = target.encode()
    head = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: " + host.encode(), b"Connection: close",
            b"Content-Length: %d" % len(body)]
    head += [f"{name}: {value}".encode("latin-1") for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return Answer(received)


def service(server: GmsdProcess) -> str:
    return str(httpx.post(f"{server.base}/genesys/1/service/s", data={"kept": "yes"}).json()["id"])


# --- item: no redirects -----------------------------------------------------------------------

def test_a_trailing_slash_is_a_404_json_never_a_redirect_to_the_client_s_host(server: GmsdProcess) -> None:
    sid = service(server)
    for method, path in [
        ("POST", "/genesys/1/service/storage/"),
        ("POST", "/genesys/1/service/s/"),
        ("GET", f"/genesys/1/service/{sid}/storage/"),
        ("GET", "/healthz/"),
        ("GET", "/metrics/"),
        ("POST", "/genesys/1/cs/services/start/"),
        ("GET", "/genesys/1/cs/customers/c/services/"),
        ("GET", "/genesys/1/cs/"),
        ("GET", "/openapi.json/"),
    ]:
        answer = send(server, method, path, host="evil.example")
        # 404 (`…/storage/` is the key "" of `…/storage/{key}`: not found either), or 405 where
        # the slash makes the path another resource's; never a 3xx.
        assert answer.status in (404, 405), (method, path, answer.status, answer.headers)
        assert "location" not in answer.headers
        assert "not found" in answer.json()["message"] or answer.status == 405
        if path.startswith("/genesys/1/cs"):
            assert answer.json()["exception"].endswith("Exception")
