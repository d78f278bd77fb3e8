"""The references that `gmsd bench` runs beside gmsd for S1 and S2 (never part of the service).

- `naive`: what a Python developer would write first for the same two requests: Starlette's
  routing and `Request`, `request.form()`, `JSONResponse`, one redis-py asyncio call each. No
  limits, no authentication, no logs, no metrics.
- `asgi`: a bare ASGI callable that answers the same JSON without Redis: what uvicorn and the
  interpreter cost alone, the ceiling of any Python server on this machine.

Both run under `uvicorn --no-access-log --log-level warning` with gmsd's worker count; the
naive app reads `BENCH_REFERENCE_REDIS_URL` and keeps its values in one hash, `bench`, as the webdis
reference does.
"""

from __future__ import annotations

import os

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

_redis = Redis.from_url(os.environ.get("BENCH_REFERENCE_REDIS_URL", "redis://127.0.0.1:6379/0"), decode_responses=True)


async def read_key(request: Request) -> Response:
    """S1: one stored value."""
    key = request.path_params["key"]
    value = await _redis.hget("bench", key)
    if value is None:
        return JSONResponse({"message": "not found"}, 404)
    return JSONResponse({key: value})


async def write_keys(request: Request) -> Response:
    """S2: the form's fields stored."""
    form = await request.form()
    await _redis.hset("bench", mapping={name: str(value) for name, value in form.items()})
    return Response(status_code=200)


async def healthz(request: Request) -> Response:
    """What the harness waits for before measuring."""
    return JSONResponse({"status": "ok"})


naive = Starlette(routes=[
    Route("/genesys/1/service/{id}/storage/{key}", read_key, methods=["GET"]),
    Route("/genesys/1/service/{id}/storage", write_keys, methods=["POST"]),
    Route("/healthz", healthz),
])

_ANSWER = b'{"firstname":"Alexandra"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_ANSWER)).encode())]


async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """Any request: its body read, then one small JSON answer."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _ANSWER})
