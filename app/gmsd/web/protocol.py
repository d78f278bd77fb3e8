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

Each request is an `Exchange` (gmsd.web.exchange) instead of uvicorn's `RequestResponseCycle`:
this class is the connection half of that, the parser callbacks uvicorn's protocol had, with
the limits above in them. The idle time between two requests is checked by one timer per
connection that re-arms itself, instead of a timer armed and cancelled per request.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import struct
import urllib.parse
from typing import Any, cast

import httptools
import msgspec
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gmsd.config import Limits
from gmsd.web.exchange import DefaultHead, Exchange

# Set in the ASGI scope when the body deadline passed: the app's body reader then knows that the
# `http.disconnect` it receives is the deadline (408), not the client hanging up (400).
BODY_TIMED_OUT = "gmsd.body_timed_out"


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop httptools at once: the head is over its limit."""


# The default headers as head bytes, shared by the connections of a worker (gmsd.web.exchange).
_DEFAULT_HEAD = DefaultHead()


class GuardedHttpProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a head deadline, a head size limit and a body deadline, serving
    each request as an `Exchange`."""

    cycle: Exchange | None  # type: ignore[assignment]

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
        self.written = 0  # bytes handed to the transport so far (for the minimum send rate)
        self.idle_since: float | None = None  # when the last answer ended, while no request follows
        self.idle_check: asyncio.TimerHandle | None = None  # the keep-alive timeout, while it is due
        self.default_head = _DEFAULT_HEAD
        self.scope_base: dict[str, Any] = {}
        self.upgrades = self.ws_protocol_class is not None  # gmsd serves none: `ws="none"`
        self.fresh_context = bool(getattr(self.config, "reset_contextvars", False))

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the connection; its first request head must arrive within `header_timeout`."""
        super().connection_made(transport)
        # What every request's scope starts with on this connection (uvicorn builds it per request).
        self.scope_base = {
            "type": "http", "asgi": {"version": self.asgi_version, "spec_version": "2.3"}, "http_version": "1.1",
            "server": self.server, "client": self.client, "scheme": self.scheme, "root_path": self.root_path,
        }
        self.deadline = self.loop.call_later(self.limits.header_timeout, self._head_deadline)

    def data_received(self, data: bytes) -> None:
        """Parse a read, then enforce the head size and arm the deadline of what is incomplete."""
        self.idle_since = None
        self.head_began_in_read = self.body_ended_in_read = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                return
            self._unsupported_upgrade_warning()
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
        """Forget the timers, end the request's waits, and close."""
        self._cancel_deadline()
        self._cancel_rate_check()
        self._cancel_send_check()
        if self.idle_check is not None:
            self.idle_check.cancel()
            self.idle_check = None
        self.connections.discard(self)
        cycle = self.cycle
        if cycle is not None:
            if not cycle.response_complete:
                cycle.disconnected = True
            cycle.wake()
        if self.flow is not None:
            self.flow.resume_writing()
        if exc is None:
            self.transport.close()
        self.parser = None  # type: ignore[assignment]

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

    # --- writing -------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write `data`, unless the connection is closing."""
        transport = self.transport
        if not transport.is_closing():
            self.written += len(data)
            transport.write(data)

    def write_answer(self, head: bytes, body: bytes) -> None:
        """Write an answer's head and the first piece of its body: one write, one `send()`."""
        transport = self.transport
        if not transport.is_closing():
            self.written += len(head) + len(body)
            if not body:
                transport.write(head)
            elif len(body) <= 16384:
                transport.write(head + body)  # a small copy is cheaper than a gathered write
            else:
                transport.writelines((head, body))

    # --- httptools parser callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request's first byte."""
        self.in_head = True
        self.head_bytes = self.head_parsed = 0
        self.head_began_in_read = True
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        scope = self.scope = self.scope_base.copy()  # type: ignore[assignment]
        scope["headers"] = self.headers
        scope["state"] = self.app_state.copy()

    def on_url(self, url: bytes) -> None:
        """A piece of the request target: counted against the head size limit."""
        self._count_head(len(url))
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """A header line: counted against the head size limit (with its `: ` and CR LF)."""
        self._count_head(len(name) + len(value) + 4)
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def _count_head(self, size: int) -> None:
        self.head_parsed += size
        if self.head_parsed > self.limits.header_bytes:
            # Raising stops the parser in the middle of this read: data_received then calls
            # send_400_response, which answers 431 for this.
            self.head_refused = True
            raise HeadTooLarge

    def on_headers_complete(self) -> None:
        """The head is complete: its deadline no longer applies, the body's may; the request
        starts (or waits behind the one in progress: pipelining)."""
        self.in_head = False
        self.body_pending = True
        self.body_received = 0
        self._cancel_deadline()
        parser = self.parser
        scope = cast("dict[str, Any]", self.scope)
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if self.upgrades and parser.should_upgrade() and self._should_upgrade():
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        root_path = self.root_path
        scope["path"] = root_path + path if root_path else path
        scope["raw_path"] = root_path.encode("ascii") + raw_path if root_path else raw_path
        scope["query_string"] = parsed_url.query or b""
        app = self.app
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        previous = self.cycle
        cycle = self.cycle = Exchange(self, scope, http_version != "1.0" and parser.should_keep_alive(),
                                      self.expect_100_continue)
        if previous is None or previous.response_complete:
            self._start(cycle, app)
        else:  # pipelined: it waits for the answer in progress
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))  # type: ignore[arg-type]

    def _start(self, cycle: Exchange, app: Any) -> None:
        if self.fresh_context:  # uvicorn's opt-in: no context leaks between requests' tasks
            task = self.loop.create_task(cycle.run(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(cycle.run(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def on_body(self, body: bytes) -> None:
        """A piece of the body: counted for the minimum rate, handed to the request."""
        self.body_received += len(body)
        cycle = self.cycle
        if cycle is None or cycle.response_complete or (self.upgrades and self.parser.should_upgrade()):
            return
        cycle.add_body(body, self.flow, HIGH_WATER_LIMIT)

    def on_message_complete(self) -> None:
        """The body is complete."""
        self.body_pending = False
        self.body_ended_in_read = True
        self._cancel_deadline()
        self._cancel_rate_check()
        cycle = self.cycle
        if cycle is None or cycle.response_complete or (self.upgrades and self.parser.should_upgrade()):
            return
        cycle.more_body = False
        cycle.wake()

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
        """An answer is complete: the next pipelined request starts, or the 431 waiting behind
        it (`refuse_head`) follows, or the connection is idle until the keep-alive timeout."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.refusal_pending:
            self.refusal_pending = False
            self._answer_head_too_large()
        elif self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start(cycle, app)  # type: ignore[arg-type]
        else:
            self.idle_since = self.loop.time()
            if self.idle_check is None:
                self.idle_check = self.loop.call_later(self.timeout_keep_alive, self._check_idle)

    def _check_idle(self) -> None:
        # One timer per connection, re-armed for what is left of the timeout (data_received
        # clears `idle_since`; the next answer's end sets it, and arms this when it is off).
        self.idle_check = None
        idle_since = self.idle_since
        if idle_since is None or self.transport.is_closing():
            return
        left = idle_since + self.timeout_keep_alive - self.loop.time()
        if left <= 0:
            self.transport.close()
        else:
            self.idle_check = self.loop.call_later(left, self._check_idle)

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
        return self.written - int(self.transport.get_write_buffer_size())

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
        assert cycle is not None  # a body is pending: its request's exchange exists
        cycle.scope[BODY_TIMED_OUT] = True
        if not cycle.response_started:
            # The app is waiting for the body (or has not read it yet): the client gets the 408
            # now; whatever the app answers later goes nowhere, and a receive() waiting for the
            # body returns `http.disconnect` at once, so the app stops.
            self.answer_and_close(408, message)
            cycle.disconnect()
        elif cycle.response_complete:
            self.transport.close()  # answered already: stop reading a body nobody wants
        else:
            cycle.keep_alive = False  # an answer is on its way: close when it is complete
