"""JSON responses (msgspec-encoded) and the one place errors become HTTP answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

from app.exceptions import GmsdError

_encode = msgspec.json.Encoder().encode

CS_PREFIX = "/genesys/1/cs"


def json_response(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A response whose body is `content` as JSON."""
    return Response(_encode(content), status, headers, media_type="application/json")


def empty_response(status: int = 204, headers: Mapping[str, str] | None = None) -> Response:
    """A response without a body (Context Services' 204s)."""
    return Response(None, status, headers)


def error_response(error: GmsdError, path: str) -> Response:
    """The contract's error body for `error`: GMS side `{message}`, CS side adds `exception`."""
    headers = error.headers or None
    if path.startswith(CS_PREFIX) and (len(path) == len(CS_PREFIX) or path[len(CS_PREFIX)] == "/"):
        status = error.cs_status or error.status
        return json_response({"message": error.message, "exception": error.cs_exception}, status, headers)
    return json_response({"message": error.message}, error.status, headers)
