"""One request and its answer on an HTTP/1.1 connection: the ASGI `receive` and `send` of it.

This does what uvicorn's `RequestResponseCycle` does, with the same ASGI behaviour and the same
refusals, for less per request (measured at about a fifth of a worker's CPU on the smallest
requests). uvicorn's cycle makes an `asyncio.Event` per request, copies the body into a
`bytearray` and out again, runs two regular expressions per answer header and writes an
answer's head and body with two `send()`s. Here:

- `receive()` hands over the body it holds without suspending (nearly every body is complete
  when the app starts), and waits on a future only when nothing happened since the last call
  (a body still arriving; after the whole body, until the client leaves or the answer ends, as
  uvicorn's does); a body in one piece is handed over as the very bytes object the parser made;
- the head of an answer is built from the server's default headers encoded once per second;
  each distinct header name is checked once (a small table), and all values of an answer in
  one pass over the whole head;
- the head leaves with the body's first piece, in one write.

`gmsd.web.protocol` (the connection) creates one `Exchange` per request and feeds it the body.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HEADER_RE, STATUS_LINE

if TYPE_CHECKING:
    from uvicorn.protocols.http.flow_control import FlowControl

    from gmsd.web.protocol import GuardedHttpProtocol

log = logging.getLogger("uvicorn.error")  # where uvicorn's cycle reports an app's faults

# Header names by kind: the ones whose value changes how the answer is framed.
_PLAIN, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION = range(4)
_KINDS = {b"content-length": _CONTENT_LENGTH, b"transfer-encoding": _TRANSFER_ENCODING, b"connection": _CONNECTION}
# Header names already checked: the raw name -> (its lower-case form, its kind). Names come from
# the code, not from clients, so the table stays small; it is bounded all the same.
_NAMES: dict[bytes, tuple[bytes, int]] = {}
_MAX_NAMES = 512
# In a whole head, a control character other than CR and LF is in a value (names are checked,
# the status line and default headers are the server's); CR and LF are counted, one pair a line.
_CONTROL = re.compile(b"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_DISCONNECT = {"type": "http.disconnect"}


def _name(raw: bytes) -> tuple[bytes, int]:
    """The lower-case form and kind of an answer header name, checked as uvicorn does."""
    if HEADER_RE.search(raw):
        raise RuntimeError("Invalid HTTP header name.")
    lower = raw.lower()
    known = (lower, _KINDS.get(lower, _PLAIN))
    if len(_NAMES) < _MAX_NAMES:
        _NAMES[raw] = known
    return known


class DefaultHead:
    """The server's default headers (uvicorn's `server_state.default_headers`: the `date` line,
    renewed each second) as head bytes, encoded again only when the list is a new one."""

    __slots__ = ("_source", "lines", "text")

    def __init__(self) -> None:
        self._source: object = None
        self.text = b""
        self.lines = 0

    def of(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """The head lines of `headers` (the same list object as last time: the same bytes)."""
        if headers is not self._source:
            self.text = b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers)
            self.lines = len(headers)
            self._source = headers
        return self.text


class Exchange:
    """One request's ASGI `receive` and `send`, over the connection that carries it."""

    __slots__ = (
        "_news", "_waiter", "chunked", "chunks", "connection", "disconnected", "expected_length", "head",
        "head_only", "keep_alive", "more_body", "response_complete", "response_started", "scope", "size",
        "waiting_for_100_continue",
    )

    def __init__(self, connection: GuardedHttpProtocol, scope: dict[str, Any], keep_alive: bool,
                 expect_100_continue: bool) -> None:
        self.connection = connection
        self.scope = scope
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.head_only = scope["method"] == "HEAD"
        self.disconnected = False
        # The body received and not handed over yet, and its size.
        self.chunks: list[bytes] = []
        self.size = 0
        self.more_body = True
        # Something happened since the last `receive()` (a piece, the body's end, a disconnect,
        # the answer's end): the next one returns at once, else it waits (uvicorn's event).
        self._news = False
        self._waiter: asyncio.Future[None] | None = None
        self.response_started = False
        self.response_complete = False
        self.chunked: bool | None = None
        self.expected_length = 0
        self.head: bytes | None = None  # the answer's head, until its body's first piece goes with it

    # --- fed by the connection -----------------------------------------------------------------

    def wake(self) -> None:
        """Something a `receive()` must see happened (body, its end, a disconnect, the answer's end)."""
        self._news = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def add_body(self, body: bytes, flow: FlowControl, high_water: int) -> None:
        """A piece of the request body from the parser."""
        self.chunks.append(body)
        self.size += len(body)
        if self.size > high_water:
            flow.pause_reading()  # until the app takes what is held
        self.wake()

    def disconnect(self) -> None:
        """The connection is gone (or the body's deadline passed): `receive()` says so at once."""
        self.disconnected = True
        self.wake()

    # --- the application -------------------------------------------------------------------------

    async def run(self, app: Callable[..., Any]) -> None:
        """Run the ASGI app on this request; an answer it fails to make or to finish is dealt
        with as uvicorn does (500 if nothing was sent, else the connection is closed)."""
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            log.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self._send_500()
            else:
                self.connection.transport.close()
        else:
            if result is not None:
                log.error("ASGI callable should return None, but returned '%s'.", result)
                self.connection.transport.close()
            elif not self.response_started and not self.disconnected:
                log.error("ASGI callable returned without starting response.")
                await self._send_500()
            elif not self.response_complete and not self.disconnected:
                log.error("ASGI callable returned without completing response.")
                self.connection.transport.close()

    async def _send_500(self) -> None:
        body = b'{"message":"internal server error"}'
        await self.send({"type": "http.response.start", "status": 500, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
            (b"connection", b"close")]})
        await self.send({"type": "http.response.body", "body": body})

    async def receive(self) -> dict[str, Any]:
        """The body received since the last call, or a disconnect; waits while there is neither."""
        connection = self.connection
        if self.waiting_for_100_continue and not connection.transport.is_closing():
            connection.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            connection.flow.resume_reading()
            if not self._news:
                waiter = self._waiter = connection.loop.create_future()
                try:
                    await waiter
                finally:
                    self._waiter = None
            self._news = False
        if self.disconnected or self.response_complete:
            return _DISCONNECT.copy()
        chunks = self.chunks
        if len(chunks) == 1:
            body = chunks[0]
            chunks.clear()
        elif chunks:
            body = b"".join(chunks)
            chunks.clear()
        else:
            body = b""
        self.size = 0
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def send(self, message: dict[str, Any]) -> None:
        """Take one ASGI answer message: the head is held until the body's first piece."""
        connection = self.connection
        if connection.flow.write_paused and not self.disconnected:
            await connection.flow.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{kind}'.")
            self.response_started = True
            self.waiting_for_100_continue = False
            self.head = self._head(message["status"], message.get("headers", ()))
        elif not self.response_complete:
            if kind != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{kind}'.")
            body: bytes = message.get("body", b"")
            more_body: bool = message.get("more_body", False)
            if self.head_only:
                self.expected_length = 0
                body = b""
            elif self.chunked:
                body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (b"" if more_body else b"0\r\n\r\n")
            else:
                if len(body) > self.expected_length:
                    raise RuntimeError("Response content longer than Content-Length")
                self.expected_length -= len(body)
            head = self.head
            if head is not None:
                self.head = None
                connection.write_answer(head, body)
            elif body:
                connection.write(body)
            if not more_body:
                if self.expected_length != 0:
                    raise RuntimeError("Response content shorter than Content-Length")
                self.response_complete = True
                self.wake()
                if not self.keep_alive:
                    connection.transport.close()
                connection.on_response_complete()
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, after response already completed.")

    def _head(self, status: int, headers: Any) -> bytes:
        """The status line and headers of an answer, checked and framed as uvicorn does."""
        defaults = self.connection.default_head
        head = [STATUS_LINE[status], defaults.of(self.connection.server_state.default_headers)]
        lines = 2 + defaults.lines  # the status line, the default headers and the final blank line
        close_asked = False
        for raw, value in headers:
            known = _NAMES.get(raw)
            name, header_kind = _name(raw) if known is None else known
            if header_kind == _CONTENT_LENGTH:
                if self.chunked is None:
                    self.expected_length = int(value)
                    self.chunked = False
            elif header_kind == _TRANSFER_ENCODING and value.lower() == b"chunked":
                self.expected_length = 0
                self.chunked = True
            elif header_kind == _CONNECTION and b"close" in (token.lower().strip() for token in value.split(b",")):
                self.keep_alive = False
                close_asked = True
            head += (name, b": ", value, b"\r\n")
            lines += 1
        if not self.keep_alive and not close_asked:
            head.append(b"connection: close\r\n")
            lines += 1
        if self.chunked is None and not self.head_only and status not in (204, 304):
            self.chunked = True  # neither a length nor a transfer encoding: chunked
            head.append(b"transfer-encoding: chunked\r\n")
            lines += 1
        head.append(b"\r\n")
        text = b"".join(head)
        if text.count(b"\n") != lines or text.count(b"\r") != lines or _CONTROL.search(text):
            raise RuntimeError("Invalid HTTP header value.")
        return text
