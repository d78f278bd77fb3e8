"""The ASGI application: routes of every API, error handling, and the store's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisClusterException
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app import gms_routes, ops_routes
from app.exceptions import GmsdError, StorageUnavailable
from app.gms import ServiceApi
from app.gms_store import GmsStore
from app.orchestration import HttpOrchestrator
from app.responses import error_response, json_response
from app.settings import Settings
from app.store import UNAVAILABLE_ERRORS, connect, is_unavailable

log = logging.getLogger("gmsd")


async def _gmsd_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GmsdError)
    return error_response(exc, request.url.path)


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable: %s: %s", type(exc).__name__, exc)
    return error_response(StorageUnavailable(), request.url.path)


async def _redis_error(request: Request, exc: Exception) -> Response:
    if is_unavailable(exc):  # e.g. NOREPLICAS from a fenced primary during a failover
        return await _unavailable(request, exc)
    # A command Redis refused (out of memory, a script error): a server-side fault, not bad input.
    log.error("redis error: %s", exc)
    error = GmsdError("storage error")
    return error_response(error, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    error = GmsdError(message)
    error.status = exc.status_code
    return error_response(error, request.url.path)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response({"message": "internal server error"}, 500)


def create_app(settings: Settings, client: Any | None = None) -> Starlette:
    """The application for `settings`; `client` replaces the Redis client built from the URL."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis_client = client if client is not None else connect(settings.redis_url, settings.config.redis)
        orchestrator = HttpOrchestrator(settings.config.orchestration.timeout)
        app.state.redis = redis_client
        app.state.gms = ServiceApi(GmsStore(redis_client), settings.config, orchestrator)
        try:
            yield
        finally:
            await orchestrator.close()
            if client is None:
                await redis_client.aclose()

    handlers: dict[Any, Any] = {
        GmsdError: _gmsd_error,
        HTTPException: _http_error,
        redis.ResponseError: _redis_error,
        # redis-py's cluster client reports "no node reachable" and client-side bugs (keys in
        # different slots) with this one class: _redis_error tells them apart.
        RedisClusterException: _redis_error,
        Exception: _server_error,
    }
    handlers.update(dict.fromkeys(UNAVAILABLE_ERRORS, _unavailable))
    return Starlette(
        routes=[*ops_routes.routes, *gms_routes.routes],
        exception_handlers=handlers,
        lifespan=lifespan,
    )


def app_from_environment() -> Starlette:
    """Factory for uvicorn (`--factory`): settings from the environment."""
    return create_app(Settings.from_environment())
