"""The HTTP/1.1 connection: uvicorn's httptools protocol, with the limits uvicorn lacks.

uvicorn bounds the idle time between two requests of a connection (`timeout_keep_alive`) and
nothing else about the client's pace or the request head's size: a client may hold a connection
(and a file descriptor) forever by sending nothing, or one header byte now and then; httptools
collects an endless header or URL in memory (measured: 512 MiB of header lines took a worker
to 7 GiB); and a body may trickle in for as long as the client likes. This subclass adds:

- a head deadline: the request line and headers must be complete within
  `[limits] header_timeout` seconds of the connection opening (first request) or of the
  request's first byte (later ones) -> 408, connection closed;
- a head size: over `[limits] header_bytes` of request line and headers -> 431, closed, however
  the bytes arrive: counted per read while a head is incomplete (httptools buffers a header line
  until it ends, so a trickled endless line is caught), and per URL piece and header as httptools
  hands them over (so a whole oversize head in one write is caught too);
- a body deadline: the body must be complete within `[limits] body_timeout` seconds of the
  headers, and it must arrive at `body_min_rate` bytes per second or more, measured over each
  `body_rate_window` seconds (a stalled upload is cut off after one window) -> 408, closed. If the app has
  already answered (say a 413 from the Content-Length) while the rest of the body is still
  arriving, the connection is just closed at the deadline;
- a send rate: while an answer waits in the write buffer (the client is not reading), at least
  `body_min_rate` bytes per second of it must leave (measured over each `body_rate_window`), else the connection
  is aborted (its buffer freed, the request's task released);
- JSON bodies for these answers and for malformed HTTP (uvicorn's own 400 is text/plain).

Nearly every request arrives in one read, head and body: such a request costs two attribute
checks here and no timer. Only a head or body still incomplete after a read arms one.

It also saves a system call per answer: uvicorn writes a response's status line and headers,
then its body, with two `transport.write` calls (two `send()`s: measured at 10-20 % of a
worker's CPU). Each request cycle writes through `CoalescingTransport`, which holds the head
until the body follows in the same event-loop turn (Starlette sends both without suspending)
and writes them as one; anything still held at the end of the turn is written then.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gmsd.config import Limits

# Set in the ASGI scope when the body deadline passed: the app's body reader then knows that the
# `http.disconnect` it receives is the deadline (408), not the client hanging up (400).
BODY_TIMED_OUT = "gmsd.body_timed_out"


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop httptools at once: the head is over its limit."""


class CoalescingTransport:
    """The transport a request cycle writes through: writes of one loop turn leave as one."""

    __slots__ = ("_held", "_loop", "_transport", "written")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self.written = 0  # bytes handed to the transport so far (for the minimum send rate)

    def write(self, data: bytes) -> None:
        """Hold `data`; it leaves with the next write of this turn, or at the end of the turn."""
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        if len(self._held) > 1:  # a head and its body: write them now, as one
            self.flush()

    def flush(self) -> None:
        """Write whatever is held."""
        held = self._held
        if held:
            self._held = []
            if not self._transport.is_closing():
                data = held[0] if len(held) == 1 else b"".join(held)
                self.written += len(data)
                self._transport.write(data)

    def close(self) -> None:
        """Write what is held, then close."""
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        """Whether the connection is closing."""
        return bool(self._transport.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a head deadline, a head size limit and a body deadline."""

    def __init__(self, *args: Any, limits: Limits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.in_head = False  # a request has begun and its headers are not complete yet
        self.head_bytes = 0  # bytes of it read so far
        self.head_parsed = 0  # bytes of its URL and headers that httptools handed over
        self.head_refused = False  # the parser was stopped because the head is over the limit
        self.refusal_pending = False  # its 431 waits for the answer in progress
        self.head_began_in_read = False  # in the read being parsed
        self.body_ended_in_read = False  # in the read being parsed: a request ended
        self.body_pending = False  # the headers are complete, the body is not
        self.deadline: asyncio.TimerHandle | None = None  # the head's or the body's, never both
        self.rate_check: asyncio.TimerHandle | None = None  # the body's minimum rate, while it is due
        self.body_received = 0  # bytes of the current body so far
        self.send_check: asyncio.TimerHandle | None = None  # the answer's minimum rate, while writing is paused
        self.sent_at_check = 0  # bytes that had left the write buffer at the last send check
        self.body_at_check = 0  # ... at the last rate check
        self.coalescing: CoalescingTransport | None = None

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the connection; its first request head must arrive within `header_timeout`."""
        super().connection_made(transport)
        self.coalescing = CoalescingTransport(transport, self.loop)
        self.deadline = self.loop.call_later(self.limits.header_timeout, self._head_deadline)

    def data_received(self, data: bytes) -> None:
        """Parse a read, then enforce the head size and arm the deadline of what is incomplete."""
        self.head_began_in_read = self.body_ended_in_read = False
        super().data_received(data)
        if self.transport.is_closing() or self.refusal_pending:
            return
        if self.in_head:
            # A read that ends a request and begins the next (pipelining) is not counted: where
            # the head begins in it is unknown (the parser callbacks count what it held).
            if not (self.head_began_in_read and self.body_ended_in_read):
                self.head_bytes += len(data)
                if self.head_bytes > self.limits.header_bytes:
                    self.refuse_head()
                    return
            if self.deadline is None:
                self.deadline = self.loop.call_later(self.limits.header_timeout, self._head_deadline)
        elif self.body_pending and self.deadline is None:
            self.deadline = self.loop.call_later(self.limits.body_timeout, self._body_deadline)
            self.body_at_check = self.body_received
            self.rate_check = self.loop.call_later(self.limits.body_rate_window, self._check_body_rate)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline, then let uvicorn clean up."""
        self._cancel_deadline()
        self._cancel_rate_check()
        self._cancel_send_check()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The write buffer is over its high-water mark: the client must keep taking bytes."""
        super().pause_writing()
        if self.send_check is None:
            self.sent_at_check = self._bytes_sent()
            self.send_check = self.loop.call_later(self.limits.body_rate_window, self._check_send_rate)

    def resume_writing(self) -> None:
        """The write buffer drained."""
        self._cancel_send_check()
        super().resume_writing()

    # --- httptools parser callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request's first byte."""
        super().on_message_begin()
        self.in_head = True
        self.head_bytes = self.head_parsed = 0
        self.head_began_in_read = True

    def on_url(self, url: bytes) -> None:
        """A piece of the request target: counted against the head size limit."""
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """A header line: counted against the head size limit (with its `: ` and CR LF)."""
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self.head_parsed += size
        if self.head_parsed > self.limits.header_bytes:
            # Raising stops the parser in the middle of this read: uvicorn then calls
            # send_400_response, which answers 431 for this.
            self.head_refused = True
            raise HeadTooLarge

    def on_headers_complete(self) -> None:
        """The head is complete: its deadline no longer applies; the body's may."""
        self.in_head = False
        self.body_pending = True
        self.body_received = 0
        self._cancel_deadline()
        super().on_headers_complete()
        self.cycle.transport = self.coalescing  # type: ignore[assignment]  # it writes its answer through it

    def on_message_complete(self) -> None:
        """The body is complete."""
        self.body_pending = False
        self.body_ended_in_read = True
        self._cancel_deadline()
        self._cancel_rate_check()
        super().on_message_complete()

    def on_body(self, body: bytes) -> None:
        """A piece of the body: counted for the minimum rate."""
        self.body_received += len(body)
        super().on_body(body)

    # --- answers -------------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """Malformed HTTP (uvicorn has logged it): a JSON 400 instead of uvicorn's text.

        Or the head over its limit, which stopped the parser: the 431 of that.
        """
        if self.head_refused:
            self.refuse_head()
            return
        self.answer_and_close(400, "invalid HTTP request")

    def refuse_head(self) -> None:
        """431 for a head over the limit, then close; after the answer of a pipelined request
        still in progress on this connection, which goes first (answers keep their order)."""
        self.in_head = False
        self._cancel_deadline()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            self.refusal_pending = True
            self.transport.pause_reading()  # nothing more of this connection is read
            return
        self._answer_head_too_large()

    def on_response_complete(self) -> None:
        """An answer is complete: the 431 waiting behind it (`refuse_head`) follows."""
        super().on_response_complete()
        if self.refusal_pending and not self.transport.is_closing():
            self.refusal_pending = False
            self._answer_head_too_large()

    def _answer_head_too_large(self) -> None:
        self.answer_and_close(431, f"the request line and headers are over the limit of "
                                   f"{self.limits.header_bytes} bytes")

    def answer_and_close(self, status: int, message: str) -> None:
        """Write a JSON error answer outside any ASGI request, then close the connection."""
        body = msgspec.json.encode({"message": message})
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        if self.coalescing is not None:
            self.coalescing.flush()  # an earlier answer on this connection goes first
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    # --- deadlines -----------------------------------------------------------------------------

    def _cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _head_deadline(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        if self.in_head:
            self.in_head = False
            self.answer_and_close(408, f"the request line and headers did not arrive within "
                                       f"{self.limits.header_timeout:g} s")
        else:  # a connection that never began a request
            self.transport.close()

    def _cancel_rate_check(self) -> None:
        if self.rate_check is not None:
            self.rate_check.cancel()
            self.rate_check = None

    def _bytes_sent(self) -> int:
        # What left the write buffer: handed to the transport minus what it still holds.
        written = self.coalescing.written if self.coalescing is not None else 0
        return written - int(self.transport.get_write_buffer_size())

    def _cancel_send_check(self) -> None:
        if self.send_check is not None:
            self.send_check.cancel()
            self.send_check = None

    def _check_send_rate(self) -> None:
        self.send_check = None
        if self.transport.is_closing():
            return
        sent = self._bytes_sent()
        if sent - self.sent_at_check < self.limits.body_min_rate * self.limits.body_rate_window:
            # Not reading: nothing more can be said to this client. Abort frees the buffer now
            # (close would wait for it to drain) and ends the request's waits (connection_lost);
            # a zero linger makes it a reset, so the kernel drops what it still holds for the
            # client too instead of keeping it queued behind a closed window.
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
            return
        self.sent_at_check = sent
        self.send_check = self.loop.call_later(self.limits.body_rate_window, self._check_send_rate)

    def _check_body_rate(self) -> None:
        self.rate_check = None
        if self.transport.is_closing() or not self.body_pending:
            return
        window = self.limits.body_rate_window
        if self.body_received - self.body_at_check < self.limits.body_min_rate * window:
            self._cancel_deadline()
            self._cut_body_off(f"the request body arrived slower than {self.limits.body_min_rate} bytes "
                               f"per second (measured over {window:g} s)")
            return
        self.body_at_check = self.body_received
        self.rate_check = self.loop.call_later(window, self._check_body_rate)

    def _body_deadline(self) -> None:
        self.deadline = None
        self._cancel_rate_check()
        if self.transport.is_closing() or not self.body_pending:
            return
        self._cut_body_off(f"the request body did not arrive within {self.limits.body_timeout:g} s")

    def _cut_body_off(self, message: str) -> None:
        cycle = self.cycle
        cycle.scope[BODY_TIMED_OUT] = True  # type: ignore[literal-required]
        if not cycle.response_started:
            # The app is waiting for the body (or has not read it yet): the client gets the 408
            # now; whatever the app answers later goes nowhere, and a receive() waiting for the
            # body returns `http.disconnect` at once, so the app stops.
            self.answer_and_close(408, message)
            cycle.disconnected = True
            cycle.message_event.set()
        elif cycle.response_complete:
            self.transport.close()  # answered already: stop reading a body nobody wants
        else:
            cycle.keep_alive = False  # an answer is on its way: close when it is complete
