"""ISO 8601 timestamps as the contract writes them: UTC, milliseconds, `Z`."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from functools import lru_cache

from gmsd.errors import BadRequest
from gmsd.types import EpochMillis


def now_millis() -> EpochMillis:
    """The current time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


# The instants ISO 8601's four-digit years can write: 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z.
EARLIEST = -62_135_596_800_000
LATEST = 253_402_300_799_999


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    # Responses repeat the same few seconds (a conversation's events): format each once.
    # Not strftime("%Y"): glibc writes the year 664 as `664`, which is not ISO 8601.
    t = time.gmtime(seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def format_timestamp(millis: EpochMillis) -> str:
    """`2026-11-22T06:05:20.157Z` for an epoch-millisecond instant (years always with four digits)."""
    seconds, ms = divmod(millis, 1000)
    return f"{_second(seconds)}.{ms:03d}Z"


@lru_cache(maxsize=4096)
def _second_json(seconds: int) -> bytes:
    return b'"' + _second(seconds).encode() + b"."


def timestamp_json(millis: EpochMillis) -> bytes:
    """`format_timestamp` as a JSON string (`b'"2026-11-22T06:05:20.157Z"'`), for answers written as bytes."""
    seconds, ms = divmod(millis, 1000)
    return _second_json(seconds) + b'%03dZ"' % ms


# Unpadded fields, as Java's lenient date formats write them (`2016-3-7T4:5:6.634Z`; API.md §0):
# each is padded before the ISO parse. The year keeps its four digits.
_UNPADDED = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})([Tt ])([0-9]{1,2}):([0-9]{1,2})"
                       r"(?::([0-9]{1,2}))?(\.[0-9]{1,9})?(.*)", re.ASCII)


def _padded(text: str) -> str:
    match = _UNPADDED.fullmatch(text)
    if match is None:
        return text
    year, month, day, sep, hour, minute, second, fraction, zone = match.groups()
    fields = (month, day, hour, minute, second or "0")
    month, day, hour, minute, second = (part.zfill(2) for part in fields)
    return f"{year}-{month}-{day}{sep}{hour}:{minute}:{second}{fraction or ''}{zone}"


def parse_timestamp(text: str) -> EpochMillis:
    """Epoch milliseconds of an ISO 8601 timestamp (`Z`, an offset, or none = UTC); fields may
    be unpadded (`2016-3-7T4:5:6.634Z`).

    Raises ValueError for anything else, and for an instant whose UTC year is not 1 to 9999
    (`9999-12-31T23:59:59-23:59` is in the year 10000).
    """
    if not isinstance(text, str) or not text or len(text) > 40:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp")
    value = datetime.fromisoformat(_padded(text.replace("z", "Z")))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    millis = round(value.timestamp() * 1000)
    if not EARLIEST <= millis <= LATEST:
        raise ValueError(f"{text!r} is outside the years 1 to 9999 (UTC)")
    return millis


def instant(text: str, name: str) -> EpochMillis:
    """Epoch milliseconds of the ISO 8601 text a client sent as `name`; a 400 naming it otherwise."""
    try:
        return parse_timestamp(text)
    except ValueError:
        raise BadRequest(f"`{name}` {text[:40]!r} is not an ISO 8601 timestamp (years 1 to 9999)") from None
