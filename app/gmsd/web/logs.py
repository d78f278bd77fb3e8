"""Structured logs: every log record is one JSON line on stdout, carrying the request id.

The request id comes from the client's `X-Request-ID` when it is a sane token, else it is
generated; `gmsd.web.observer` echoes it in the answer and writes one access line per request.
Only metadata is ever logged (method, route template, status, timing, ids): never stored values,
bodies, query strings or credentials.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
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
_id_counter = itertools.count(1)

_encode = msgspec.json.Encoder().encode


def request_id_for(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request id: the client's `X-Request-ID` if it is a sane token, else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:  # ASGI header names are lower-case
            if _SANE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


def set_request_id(request_id: str) -> None:
    """Make `request_id` the id of the request being handled in this task."""
    _request_id.set(request_id)


def current_request_id() -> str | None:
    """The id of the request being handled in this task, if any."""
    return _request_id.get()


def log_request(level: int, fields: dict[str, Any]) -> None:
    """Write one access line with `fields` (the caller checked `access_log.isEnabledFor(level)`).

    `Logger.log` would first look up the caller's source line by walking the stack, which an
    access line has no use for: build the record and hand it to the handlers directly.
    """
    record = access_log.makeRecord(access_log.name, level, "", 0, "request", (), None, extra={"fields": fields})
    access_log.handle(record)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, then its fields."""

    _second = -1
    _second_text = ""

    def _time(self, created: float) -> str:
        # strftime once per second, not once per line.
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

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
