"""A client streams 1 GiB at a real `gmsd serve` (2 workers) and gmsd's memory stays flat.

Each way of sending too much is refused while it streams, never collected: a chunked body (413
past `[limits] body_bytes`), a Content-Length that declares 1 GiB (413 from the header; the rest
is read and thrown away), a Content-Length that understates the body (the rest is not HTTP:
400, closed), a multipart file (413 past `file_bytes`), and endless headers (431 past
`header_bytes`, closed). The resident memory of the whole process tree (/proc VmRSS) is sampled
while the bytes flow.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import RedisServer
from tests.support.gmsd_process import GmsdProcess, gmsd_serving

GIB = 1024 * 1024 * 1024
CHUNK = 1024 * 1024
FLAT_KIB = 64 * 1024  # growth allowed while 1 GiB streams: well under one maximal body (16 MiB) x 4
CONFIG = "[services.s]\n_ttl = 600\n"


class PeakRss:
    """Samples a server's process-tree RSS every 20 ms in a thread; `peak` is the highest seen."""

    def __init__(self, server: GmsdProcess) -> None:
        self.server = server
        self.peak = server.rss_kib()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, self.server.rss_kib())

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def server(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GmsdProcess]:
    with gmsd_serving(tmp_path_factory.mktemp("large"), redis_server.url, CONFIG) as served:
        yield served


def head(target: str, *headers: str) -> bytes:
    return (f"POST {target} HTTP/1.1\r\nHost: gmsd\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


def stream(port: int, start: bytes, piece: bytes, pieces: int) -> tuple[int, bytes]:
    """Send `start`, then `piece` up to `pieces` times whatever the server answers meanwhile (an
    abusive client does not listen); then read the answer. (bytes sent, answer)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            sock.sendall(start)
            for _ in range(pieces):
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: it stopped reading, as it should
        sock.settimeout(10)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return sent, answer


def service(server: GmsdProcess) -> str:
    created = httpx.post(f"{server.base}/genesys/1/service/s", data={"kept": "yes"})
    assert created.status_code == 200
    return str(created.json()["id"])


def urlencoded(target: str, framing: str, body_start: bytes) -> bytes:
    return head(target, "Content-Type: application/x-www-form-urlencoded", framing) + body_start


MULTIPART_START = (b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big\"\r\n"
                   b"Content-Type: application/octet-stream\r\n\r\n")


@pytest.mark.parametrize("how", ["chunked", "declared", "understated", "multipart file", "headers", "cs chunked"])
def test_a_gigabyte_is_refused_while_it_streams_and_memory_stays_flat(server: GmsdProcess, how: str,
                                                                      report: Callable[[str], None]) -> None:
    sid = service(server)
    storage = f"/genesys/1/service/{sid}/storage"
    chunk = b"%x\r\n%s\r\n" % (CHUNK, b"x" * CHUNK)  # one chunk of chunked encoding
    raw = b"x" * CHUNK
    cases = {
        "chunked": (urlencoded(storage, "Transfer-Encoding: chunked", b"2\r\na=\r\n"), chunk, 413),
        # Exactly the declared bytes: one more would begin a "next request" whose 400 could
        # share the read with the 413.
        "declared": (urlencoded(storage, f"Content-Length: {GIB}", b""), raw, 413),
        "understated": (urlencoded(storage, "Content-Length: 100", b"a="), raw, None),  # 400, or a reset
        "multipart file": (head(storage, "Content-Type: multipart/form-data; boundary=b", "Transfer-Encoding: chunked")
                           + b"%x\r\n%s\r\n" % (len(MULTIPART_START), MULTIPART_START), chunk, 413),
        "headers": (b"GET /healthz HTTP/1.1\r\nHost: gmsd\r\n", b"X-Padding: " + b"y" * (CHUNK - 13) + b"\r\n", 431),
        "cs chunked": (head("/genesys/1/cs/services/start", "Content-Type: application/json",
                            "Transfer-Encoding: chunked") + b"1\r\n{\r\n", chunk, 413),
    }
    start, piece, status = cases[how]
    port = server.port
    before = server.rss_kib()
    began = time.monotonic()
    with PeakRss(server) as rss:
        sent, answer = stream(port, start, piece, GIB // len(piece))
    seconds = time.monotonic() - began
    growth = rss.peak - before
    report(f"1 GiB {how}: sent {sent / GIB:.2f} GiB in {seconds:.1f} s; RSS of the server tree {before / 1024:.0f} "
           f"MiB before, peak {rss.peak / 1024:.0f} MiB (+{growth / 1024:.1f} MiB); answer {answer[:12].decode()!r}")
    assert growth < FLAT_KIB, f"RSS grew by {growth} KiB while {sent} bytes streamed"
    if status is not None:
        assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:300]
    if answer:  # every answer is JSON, the server's own included
        assert answer.startswith((b"HTTP/1.1 4",)), answer[:300]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"]
    # Nothing was stored (but the 100 bytes an understated Content-Length declared: a request of
    # its own, the rest is the next "request", not HTTP), and the server still serves.
    stored = {"kept": "yes", "a": "x" * 98} if how == "understated" else {"kept": "yes"}
    assert httpx.get(f"{server.base}{storage}").json() == stored
    assert httpx.get(f"{server.base}/readyz").status_code == 200


def test_a_long_url_is_431(server: GmsdProcess) -> None:
    sid = service(server)
    target = f"/genesys/1/service/{sid}/storage/" + "k" * (200 * 1024)
    _, answer = stream(server.port, f"GET {target}".encode(), b" HTTP/1.1\r\nHost: gmsd\r\n\r\n", 1)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"connection: close" in answer.lower()


def test_headers_under_the_limit_are_served(server: GmsdProcess) -> None:
    padding = {f"x-pad-{i}": "p" * 900 for i in range(60)}  # about 55 KiB of headers
    assert httpx.get(f"{server.base}/healthz", headers=padding).status_code == 200
