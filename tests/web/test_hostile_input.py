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


# --- items: input that is not UTF-8, JSON nested too deeply ----------------------------------

JSON_TYPE = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CS_START = "/genesys/1/cs/services/start"
DEEP = 2000  # levels: past msgspec's own bound (Python's recursion limit)


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# (name, method, target, body, headers, status): `{sid}` / `{cs}` are a GMS / CS service id.
MALFORMED = [
    ("CS attached value", "POST", CS_START, b'{"customer_id": "u8", "note": "caf\xe9"}', JSON_TYPE, 400),
    ("CS customer_id", "POST", CS_START, b'{"customer_id": "\xff"}', JSON_TYPE, 400),
    ("CS contact_key", "POST", CS_START, b'{"contact_key": "\xc3("}', JSON_TYPE, 400),
    ("CS service_type", "POST", CS_START, b'{"customer_id": "u8", "service_type": "\xed\xa0\x80"}', JSON_TYPE, 400),
    ("CS attached key", "POST", CS_START, b'{"customer_id": "u8", "k\xff": 1}', JSON_TYPE, 400),
    ("CS state start", "POST", "/genesys/1/cs/services/{cs}/states/start", b'{"state_type": "\xff"}', JSON_TYPE, 400),
    ("CS extension", "PUT", "/genesys/1/cs/services/{cs}/extensions/note", b'"\xff"', JSON_TYPE, 400),
    ("CS end", "POST", "/genesys/1/cs/services/{cs}/end", b'{"x": "\xfe"}', JSON_TYPE, 400),
    ("CS composite", "POST", "/genesys/1/cs/services_composite/start",
     b'{"services": [{"service": {"customer_id": "\xff"}}]}', JSON_TYPE, 400),
    ("CS path customer_id", "GET", "/genesys/1/cs/customers/%FF/services", b"", {}, 400),
    ("CS path contact_key", "GET", "/genesys/1/cs/services/anonymous/%C3%28", b"", {}, 400),
    ("CS query service_types", "GET", "/genesys/1/cs/customers/u8/services?service_types=%FF", b"", {}, 400),
    ("CS deep JSON", "POST", CS_START, b'{"customer_id": "u8", "x": ' + nested(DEEP) + b"}", JSON_TYPE, 400),
    ("CS deep extension", "PUT", "/genesys/1/cs/services/{cs}/extensions/note", nested(DEEP), JSON_TYPE, 400),
    ("GMS JSON value", "POST", "/genesys/1/service/{sid}/storage", b'{"k": "\xff"}', JSON_TYPE, 400),
    ("GMS JSON key", "POST", "/genesys/1/service/s", b'{"k\xff": 1}', JSON_TYPE, 400),
    ("GMS urlencoded", "POST", "/genesys/1/service/{sid}/storage", b"k=%FF", FORM, 400),
    ("GMS PUT JSON", "PUT", "/genesys/1/service/{sid}", b'{"ttl": 60, "x": "\xff"}', JSON_TYPE, 400),
    ("GMS path key", "GET", "/genesys/1/service/{sid}/storage/%FF", b"", {}, 400),
    ("GMS deep JSON (400 levels)", "POST", "/genesys/1/service/s", b'{"x": ' + nested(400) + b"}", JSON_TYPE, 500),
    ("GMS deep JSON", "POST", "/genesys/1/service/{sid}/storage", b'{"x": ' + nested(DEEP) + b"}", JSON_TYPE, 500),
    ("GMS deep PUT", "PUT", "/genesys/1/service/{sid}", b'{"x": ' + nested(DEEP) + b', "ttl": 60}', JSON_TYPE, 500),
]


@pytest.mark.parametrize(("method", "target", "body", "headers", "status"),
                         [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_input_that_is_not_utf8_or_nested_too_deeply_gets_its_status_and_no_traceback(
    server: GmsdProcess, method: str, target: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    sid = service(server)
    cs = httpx.post(f"{server.base}{CS_START}", json={"customer_id": "u8"}).json()["service_id"]
    logged = len(server.output())
    answer = send(server, method, target.format(sid=sid, cs=cs), body, headers)
    assert answer.status == status, answer.body
    document = answer.json()
    if status == 500:  # GMS' documented answer to JSON it cannot read
        assert document["message"].startswith("Could not read JSON"), document
    else:
        assert document["message"]
    if target.startswith("/genesys/1/cs"):
        assert document["exception"].endswith("InvalidParameterException"), document
    new_lines = server.output()[logged:]
    assert "Traceback" not in new_lines and '"level":"error"' not in new_lines, new_lines
    # Nothing was stored, and everything gmsd answers about these services is still strict UTF-8 JSON.
    assert json.loads(send(server, "GET", f"/genesys/1/service/{sid}/storage").body) == {"kept": "yes"}
    for path in ("/genesys/1/cs/customers/u8/services", f"/genesys/1/cs/services/{cs}?active_states=true"):
        raw = send(server, "GET", path).body
        raw.decode("utf-8")  # strictly
        json.loads(raw)


def test_json_nested_within_the_bounds_is_served(server: GmsdProcess) -> None:
    sid = service(server)
    stored = httpx.post(f"{server.base}/genesys/1/service/{sid}/storage", json={"x": [[["a", 1]]]})
    assert stored.status_code == 200, stored.text
    assert httpx.get(f"{server.base}/genesys/1/service/{sid}/storage/x").json() == {"x": "[[[a, 1]]]"}
    deep = b'{"customer_id": "deep-ok", "x": ' + nested(200) + b"}"  # CS keeps attached data as sent
    started = send(server, "POST", CS_START, deep, JSON_TYPE)
    assert started.status == 201, started.body
    [found] = httpx.get(f"{server.base}/genesys/1/cs/customers/deep-ok/services").json()
    assert json.dumps(found["x"], separators=(",", ":")).encode() == nested(200)


# --- item: the head size limit holds however the bytes arrive --------------------------------

LIMIT = 64 * 1024  # `[limits] header_bytes`, the default


def one_write(server: GmsdProcess, data: bytes) -> bytes:
    """`data` in one `send`, then everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:  # closed with some of `data` unread: what came before counts
            pass
    return received


OVERSIZE_HEADS = {
    "one 100 KiB header": b"GET /healthz HTTP/1.1\r\nHost: gmsd\r\nX-Big: " + b"y" * 100 * 1024 + b"\r\n\r\n",
    "2,000 small headers": b"GET /healthz HTTP/1.1\r\nHost: gmsd\r\n" + (b"X-H: " + b"0123456789" * 4 + b"\r\n") * 2000
                           + b"\r\n",
    "a 100 KiB URL": b"GET /healthz?" + b"q" * 100 * 1024 + b" HTTP/1.1\r\nHost: gmsd\r\n\r\n",
}


@pytest.mark.parametrize("name", OVERSIZE_HEADS)
def test_a_head_over_the_limit_in_one_write_is_431(server: GmsdProcess, name: str) -> None:
    answer = one_write(server, OVERSIZE_HEADS[name])
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:300]
    assert b"over the limit of 65536 bytes" in answer
    assert answer.count(b"HTTP/1.1 ") == 1  # nothing else was answered on that connection


def test_an_oversize_head_pipelined_after_a_good_request_is_431_and_its_body_not_stored(
    server: GmsdProcess
) -> None:
    sid = service(server)
    body = b"sneaked=in"
    good = b"GET /healthz HTTP/1.1\r\nHost: gmsd\r\n\r\n"
    bad = (f"POST /genesys/1/service/{sid}/storage HTTP/1.1\r\nHost: gmsd\r\n"
           f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n").encode()
    bad += b"X-Big: " + b"y" * (LIMIT + 1024) + b"\r\n\r\n" + body
    answer = one_write(server, good + bad)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert b"HTTP/1.1 431 " in answer and answer.count(b"HTTP/1.1 ") == 2, answer[:600]
    assert httpx.get(f"{server.base}/genesys/1/service/{sid}/storage").json() == {"kept": "yes"}


def test_a_head_just_under_the_limit_in_one_write_is_served(server: GmsdProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: gmsd\r\nConnection: close\r\nX-Big: " + b"y" * (LIMIT - 1024) + b"\r\n\r\n"
    assert one_write(server, head).startswith(b"HTTP/1.1 200 ")
