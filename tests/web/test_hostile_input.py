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
from tests.support.orchestration import Orchestration

CONFIG = """
[services.s]
_ttl = 600

[services.o]
_type = "ors"
_service = "{orchestration}/base/flow?tenant=t1"
_ttl = 600
"""
TIMEOUT = 10.0  # seconds: any answer slower than this is a failure, not a wait


@pytest.fixture(scope="module")
def orchestration() -> Iterator[Orchestration]:
    played = Orchestration()
    yield played
    played.close()


@pytest.fixture(scope="module")
def server(redis_server: RedisServer, orchestration: Orchestration,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[GmsdProcess]:
    config = CONFIG.format(orchestration=orchestration.url)
    with gmsd_serving(tmp_path_factory.mktemp("hostile"), redis_server.url, config, workers=1,
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


# --- item: the orchestration URL cannot be steered ---------------------------------------------

STEERING = [
    "%2E%2E", "..", ".", "%2e%2e%2Fadmin", "x%3Fq%3D1", "x%23", "%23", "a%2Fb", "a%5Cb", "x%00", "a%20b",
    "%C3%A9t%C3%A9", "x%0D%0AX-Injected:%201", "%25", "a;b", "a:b", "~", "-x" + "y" * 200,
]


@pytest.mark.parametrize("request_name", STEERING)
def test_a_request_name_is_one_safe_path_segment_else_400(
    server: GmsdProcess, orchestration: Orchestration, request_name: str
) -> None:
    created = httpx.post(f"{server.base}/genesys/1/service/o").json()["id"]
    orchestration.received.clear()
    answer = send(server, "POST", f"/genesys/1/service/{created}/{request_name}", b"a=1",
                  {"Content-Type": "application/x-www-form-urlencoded"})
    # A name with a `/` in it (`%2F` decoded) is another resource's path: 404/405, never a call.
    assert answer.status in (400, 404, 405), (request_name, answer.status, answer.body)
    assert answer.json()["message"]
    assert orchestration.received == []  # the orchestration was never called


def test_a_safe_request_name_is_one_more_segment_of_the_configured_url(
    server: GmsdProcess, orchestration: Orchestration
) -> None:
    created = httpx.post(f"{server.base}/genesys/1/service/o").json()["id"]
    orchestration.received.clear()
    answer = httpx.post(f"{server.base}/genesys/1/service/{created}/next-step_2.v1", data={"a": "1"})
    assert answer.status_code == 200, answer.text
    [(path, payload)] = orchestration.received
    assert path == "/base/flow/next-step_2.v1?tenant=t1"  # the configured query kept, the path one deeper
    assert payload == {"a": "1", "_id": created, "_data_id": created}


# --- item: no stored script ------------------------------------------------------------------

SCRIPT = b"<html><script>alert(document.domain)</script></html>"


@pytest.mark.parametrize("filename", ["", "page.html", "x.svg", "\u00e9t\u00e9.html"])
def test_a_binary_value_is_always_a_download_that_a_browser_will_not_run(server: GmsdProcess,
                                                                          filename: str) -> None:
    sid = service(server)
    part_type = "image/svg+xml" if filename.endswith(".svg") else "text/html"
    body = (b'--b\r\nContent-Disposition: form-data; name="page"; filename="' + filename.encode() + b'"\r\n'
            b"Content-Type: " + part_type.encode() + b"\r\n\r\n" + SCRIPT + b"\r\n--b--\r\n")
    stored = send(server, "POST", f"/genesys/1/service/{sid}/storage", body,
                  {"Content-Type": "multipart/form-data; boundary=b"})
    assert stored.status == 200, stored.body
    for key in ("page", "kept"):  # the file, and a string key served as bytes
        served = send(server, "GET", f"/genesys/1/service/{sid}/storage/binary/{key}")
        assert served.status == 200
        assert served.headers["content-disposition"].startswith("attachment"), served.headers
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert served.body == b"yes"
