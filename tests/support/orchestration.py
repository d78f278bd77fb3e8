"""A real HTTP server playing ORS (the orchestration of `ors` services), on loopback."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Orchestration:
    """A real HTTP server playing ORS: records what it receives, answers as told per path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, tuple[int, bytes, float]] = {}
        # Cleared: every call waits (up to 60 s) until it is set again; calls in progress counted.
        self.open = threading.Event()
        self.open.set()
        self.waiting = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                outer.received.append((self.path, json.loads(self.rfile.read(length) or b"{}")))
                status, body, delay = outer.answers.get(self.path, (200, b"{}", 0.0))
                outer.waiting += 1
                outer.open.wait(60)
                outer.waiting -= 1
                time.sleep(delay)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
