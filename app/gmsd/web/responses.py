"""JSON responses (msgspec-encoded) and the one place errors become HTTP answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

from gmsd.errors import GmsdError
from gmsd.web.paths import CS_PREFIX

_encode = msgspec.json.Encoder().encode



class GmsErrorBody(msgspec.Struct):
    """The body of every error on the GMS side (and of the operations endpoints)."""

    message: str


class CsErrorBody(msgspec.Struct):
    """The body of every error on the Context Services side: `exception` names its class."""

    message: str
    exception: str


_JSON_TYPE = (b"content-type", b"application/json")


class JsonAnswer(Response):
    """A JSON body with its two headers, made without `Response.init_headers`' generic work
    (a small answer's headers cost more to build than its body to encode)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status: int = 200) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode()), _JSON_TYPE]


def json_response(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A response whose body is `content` as JSON."""
    if headers is None:
        return JsonAnswer(_encode(content), status)
    return Response(_encode(content), status, headers, media_type="application/json")


def empty_response(status: int = 204, headers: Mapping[str, str] | None = None) -> Response:
    """A response without a body (Context Services' 204s)."""
    return Response(None, status, headers)


def is_cs_path(path: str) -> bool:
    """True for `/genesys/1/cs` and the paths below it (the Context Services side)."""
    return path.startswith(CS_PREFIX) and (len(path) == len(CS_PREFIX) or path[len(CS_PREFIX)] == "/")


def error_response(error: GmsdError, path: str, headers: Mapping[str, str] | None = None) -> Response:
    """The contract's error body for `error`: GMS side `{message}`, CS side adds `exception`."""
    if error.headers:
        headers = {**error.headers, **(headers or {})}
    if is_cs_path(path):
        status = error.cs_status or error.status
        return json_response(CsErrorBody(error.message, error.cs_exception), status, headers)
    return json_response(GmsErrorBody(error.message), error.status, headers)
