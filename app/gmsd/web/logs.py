"""Structured logs: every log record is one JSON line on stdout, carrying the request id.

The request id comes from the client's `X-Request-ID` when it is a sane token, else it is
generated; `gmsd.web.observer` echoes it in the answer and writes one access line per request.
Only metadata is ever logged (method, route template, status, timing, ids): never stored values,
bodies, query strings or credentials.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import logging
import os
import re
import sys
import time
import weakref
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import msgspec

REQUEST_ID_HEADER = b"x-request-id"
# Printable ASCII without spaces, at most 128 characters: safe to echo in a header and to log.
_SANE_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")

# Each ASGI request runs in its own task (uvicorn creates one per request), and a task works on
# its own copy of the context: the id set here is seen by everything logged for this request.
_request_id: ContextVar[str | None] = ContextVar("gmsd_request_id", default=None)

access_log = logging.getLogger("gmsd.access")

# Generated ids: a random prefix per process and a counter, 32 hex digits like a UUID but
# without a uuid4() per request. uvicorn spawns (not forks) its workers, so each has its own.
_ID_PREFIX = os.urandom(8).hex()
# Counted from 2**64: `hex()` of it is `0x1` and 16 digits, zero-padded without a format spec.
_id_counter = itertools.count((1 << 64) + 1)

_encode = msgspec.json.Encoder().encode


def request_id_for(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request id: the client's `X-Request-ID` if it is a sane token, else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:  # ASGI header names are lower-case
            if _SANE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return _ID_PREFIX + hex(next(_id_counter))[3:]


def set_request_id(request_id: str) -> None:
    """Make `request_id` the id of the request being handled in this task."""
    _request_id.set(request_id)


def current_request_id() -> str | None:
    """The id of the request being handled in this task, if any."""
    return _request_id.get()


class _Clock:
    """`2026-12-02T14:05:09.123Z` for a time.time(): strftime once per second, not once per line."""

    def __init__(self) -> None:
        self._second = -1
        self._second_text = ""
        self.second_bytes = b""  # the same, encoded (the access lines are bytes)

    def second_of(self, created: float) -> int:
        """The whole second of `created`, its text made when it is a new one."""
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.second_bytes = self._second_text.encode()
            self._second = second
        return second

    def text(self, created: float) -> str:
        second = self.second_of(created)
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"


# One access line after its constant prefix: time (second, milliseconds), prefix, status,
# duration, request id (as JSON), formatted in one operation.
_ACCESS_LINE = b'{"time":"%s.%03dZ"%s%d,"duration_ms":%.3f,"request_id":%s}\n'


class AccessLines:
    """The access log: one JSON line per request, the same line `JsonFormatter` would make of a
    record of `gmsd.access`, written to stdout once per event-loop turn.

    Per request the `logging` path cost a record, the handler chain, a formatter and a write and
    flush of stdout: a quarter of a small request's CPU time. Here the constant part of a line
    (level, logger, pid, message, method, route) is encoded once per route and method, and the
    lines of one loop turn go out in one write. Whether a level is written is still
    `gmsd.access`'s level, as `logging_config` sets it.
    """

    _MAX_PREFIXES = 4096  # methods are the client's text: the cache of encoded prefixes is bounded

    def __init__(self) -> None:
        self._clock = _Clock()
        self._prefixes: dict[tuple[int, str, str], bytes] = {}
        self._pending: list[bytes] = []
        self._pid = os.getpid()
        _unflushed.add(self)

    def _prefix(self, level: int, method: str, route: str) -> bytes:
        document = {"level": logging.getLevelName(level).lower(), "logger": access_log.name, "pid": self._pid,
                    "message": "request", "method": method, "route": route}
        # `{"level":…,"route":"…"` without its closing brace: the line goes on with the status.
        prefix = b',' + _encode(document)[1:-1] + b',"status":'
        if len(self._prefixes) < self._MAX_PREFIXES:
            self._prefixes[(level, method, route)] = prefix
        return prefix

    def write(self, level: int, method: str, route: str, status: int, seconds: float, request_id: str) -> None:
        """Queue the line of one request (the caller checked `access_log.isEnabledFor(level)`)."""
        prefix = self._prefixes.get((level, method, route)) or self._prefix(level, method, route)
        clock, now = self._clock, time.time()
        second = clock.second_of(now)
        line = _ACCESS_LINE % (clock.second_bytes, int((now - second) * 1000), prefix, status, seconds * 1000,
                               _encode(request_id))
        if not self._pending:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a synchronous caller): write at once
                self._pending.append(line)
                self.flush()
                return
        self._pending.append(line)

    def flush(self) -> None:
        """Write the queued lines to stdout (at the end of a loop turn, and at shutdown)."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        stream = sys.stdout  # looked up each time: whatever stdout is now (a test may capture it)
        buffer = getattr(stream, "buffer", None)
        try:
            if buffer is not None:
                stream.flush()  # anything written as text before goes out first
                buffer.write(data)
                buffer.flush()
            else:
                stream.write(data.decode())
                stream.flush()
        except (OSError, ValueError):  # stdout closed or gone: the log is lost, the request is not
            pass


# Lines queued in the last loop turn before a worker exits still go out.
_unflushed: weakref.WeakSet[AccessLines] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for lines in list(_unflushed):
        lines.flush()


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, then its fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = _Clock()

    def _time(self, created: float) -> str:
        return self._clock.text(created)

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        document: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # tells the workers of one server apart
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            document.update(fields)
        if "request_id" not in document:
            request_id = _request_id.get()
            if request_id is not None:
                document["request_id"] = request_id
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return _encode(document).decode()


def logging_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict (also uvicorn's `log_config`): JSON on stdout at `level`.

    uvicorn applies it in every worker process; its own access log stays off (gmsd writes one
    line per request itself, with the route template and the request id).
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # httpx logs every orchestration call with its full URL, which may carry credentials.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }
