"""ISO 8601 timestamps as the contract writes them: UTC, milliseconds, `Z`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache

from app.types import EpochMillis


def now_millis() -> EpochMillis:
    """The current time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    # Responses repeat the same few seconds (a conversation's events): format each once.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def format_timestamp(millis: EpochMillis) -> str:
    """`2026-11-22T06:05:20.157Z` for an epoch-millisecond instant."""
    seconds, ms = divmod(millis, 1000)
    return f"{_second(seconds)}.{ms:03d}Z"


def parse_timestamp(text: str) -> EpochMillis:
    """Epoch milliseconds of an ISO 8601 timestamp (`Z`, an offset, or none = UTC).

    Raises ValueError for anything else.
    """
    if not isinstance(text, str) or not text or len(text) > 40:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp")
    value = datetime.fromisoformat(text.replace("z", "Z"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)
