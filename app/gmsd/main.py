"""The ASGI application: routes of every API, error handling, and the store's lifetime."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import redis.asyncio as redis
from redis.exceptions import RedisClusterException
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Lifespan

from gmsd import __version__, metrics
from gmsd.backend.connect import UNAVAILABLE_ERRORS, command_queue, connect, is_unavailable
from gmsd.console import routes as console_routes
from gmsd.console.inventory import Inventory
from gmsd.console.store import ConsoleStore
from gmsd.cs import routes as cs_routes
from gmsd.cs.composite import CompositeStarter
from gmsd.cs.items import ConversationItems
from gmsd.cs.maintenance import Maintenance
from gmsd.cs.services import ContextServices
from gmsd.cs.store import CsStore
from gmsd.cs.sweeper import AutoCompleteSweeper
from gmsd.errors import GmsdError, StorageUnavailable
from gmsd.gms import routes as gms_routes
from gmsd.gms.access_numbers import AccessNumbers
from gmsd.gms.orchestration import HttpOrchestrator
from gmsd.gms.service_api import ServiceApi
from gmsd.gms.storage_api import StorageApi
from gmsd.gms.store import GmsStore, PoolStore
from gmsd.settings import Settings
from gmsd.ucs import routes as ucs_routes
from gmsd.ucs.interactions import Interactions
from gmsd.ucs.profiles import CustomerProfiles, core_schema
from gmsd.ucs.store import UcsStore
from gmsd.web import lifecycle
from gmsd.web import ops as ops_routes
from gmsd.web.auth import Authenticator
from gmsd.web.cors import Layer, cors_layer
from gmsd.web.downloads import DownloadLane
from gmsd.web.observer import RequestObserver
from gmsd.web.openapi import build_document
from gmsd.web.responses import error_response
from gmsd.web.routing import ResourceRouter

_encode = msgspec.json.Encoder().encode

log = logging.getLogger("gmsd")


async def _gmsd_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GmsdError)
    return error_response(exc, request.url.path)


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable: %s: %s", type(exc).__name__, exc)
    metrics.count_redis_error("unavailable")
    return error_response(StorageUnavailable(), request.url.path)


async def _redis_error(request: Request, exc: Exception) -> Response:
    if is_unavailable(exc):  # e.g. NOREPLICAS from a fenced primary during a failover
        return await _unavailable(request, exc)
    # A command Redis refused (out of memory, a script error): a server-side fault, not bad input.
    log.error("redis error: %s", exc)
    metrics.count_redis_error("refused")
    error = GmsdError("storage error")
    return error_response(error, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    error = GmsdError(message)
    error.status = exc.status_code
    # A 405 carries `Allow` (gmsd.web.routing): RFC 9110 requires it.
    return error_response(error, request.url.path, exc.headers)


class _Gmsd(Starlette):
    """Starlette with `RequestObserver` as the only layer around the router, instead of
    ServerErrorMiddleware and ExceptionMiddleware.

    All three wrap `send` to see whether an answer started, and the observer must be outermost
    to time and count every request; so it also maps exceptions to answers with the exception
    handlers (by class) and answers unhandled errors (500 JSON), and every request goes through
    two layers fewer. Exception handlers for 500/Exception, or by status code, are not used.
    """

    def __init__(self, *, routes: Sequence[BaseRoute], exception_handlers: Mapping[Any, Any],
                 lifespan: Lifespan[Starlette]) -> None:
        super().__init__(routes=routes, exception_handlers=exception_handlers, lifespan=lifespan)
        self.router = ResourceRouter(routes, lifespan=lifespan)

    def build_middleware_stack(self) -> ASGIApp:
        handlers = {k: v for k, v in self.exception_handlers.items()
                    if isinstance(k, type) and k is not Exception}
        app: ASGIApp = self.router.app  # the router itself, not through its own middleware call
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        if self.cors is not None:  # inside the observer, which sends its own answers through it too
            app = self.cors(app)
        return RequestObserver(app, self.max_concurrent_requests, self.cors, handlers)

    max_concurrent_requests: int | None = None  # set by create_app
    cors: Layer | None = None  # set by create_app: `[cors]` (None: off)


def create_app(settings: Settings, client: Any | None = None) -> Starlette:
    """The application for `settings`; `client` replaces the Redis client built from the URL."""
    core_schema(settings.config.profiles)  # a `default` that fits no type stops the start here (ConfigError)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis_client = client if client is not None else connect(settings.redis_url, settings.config.redis)
        orchestrator = HttpOrchestrator(settings.config.orchestration.timeout)
        pipeline = command_queue(settings.redis_url, redis_client, settings.config.redis)
        # Large values travel on a connection of their own (gmsd.gms.store, gmsd.web.downloads).
        large_values = command_queue(settings.redis_url, redis_client, settings.config.redis)
        limits = settings.config.limits
        app.state.large_reads = DownloadLane(limits.large_reads, limits.large_read_wait)
        app.state.ping = redis_client.ping  # what /readyz asks (gmsd.web.ops)
        gms_store = GmsStore(pipeline, large_values, limits.large_value_bytes)
        app.state.gms = ServiceApi(gms_store, settings.config, orchestrator)
        app.state.gms.builtins.update(AccessNumbers(gms_store, PoolStore(pipeline), settings.config).builtins())
        app.state.storage = StorageApi(gms_store, settings.config.limits)
        cs_store = CsStore(pipeline)
        app.state.cs = ContextServices(cs_store, settings.config)
        app.state.cs_items = ConversationItems(cs_store, settings.config)
        app.state.cs_composite = CompositeStarter(cs_store, settings.config)
        app.state.cs_maintenance = Maintenance(cs_store, settings.config.context_services.export_dir)
        app.state.console = Inventory(ConsoleStore(pipeline), settings.config)
        ucs_store = UcsStore(pipeline)
        app.state.ucs = CustomerProfiles(ucs_store, settings.config.profiles)
        app.state.ucs_interactions = Interactions(ucs_store, limits)
        app.state.ucs_limits = limits
        lifecycle.delay_sigterm(settings.shutdown_delay)
        # Everything allocated so far lives as long as the process: keep the collector from
        # walking it again on every full collection (shorter pauses, so a lower p99).
        gc.collect()
        gc.freeze()
        # A young collection every 10,000 net new containers, not 700: a request's objects are
        # freed by reference counting, so only cycles and long-lived objects count towards it.
        # Measured on S1 (one worker, deployed): 3,112 collections, 2.5 % of the CPU, in 13 s
        # at 700; none at 10,000. What cycles hold waits at most 10,000 objects longer.
        gc.set_threshold(10_000, 10, 10)
        flusher = asyncio.ensure_future(metrics.flush_periodically())
        background = [flusher]
        options = settings.config.context_services
        if options.auto_complete_enabled:  # every worker sweeps: completion is atomic per service
            app.state.cs_sweeper = AutoCompleteSweeper(cs_store, options.auto_complete_sweep_interval)
            background.append(asyncio.ensure_future(app.state.cs_sweeper.run()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await orchestrator.close()
            await pipeline.aclose()
            await large_values.aclose()
            if client is None:
                await redis_client.aclose()
                log.info("stopped: redis connections closed")
            metrics.process_exit()

    handlers: dict[Any, Any] = {
        GmsdError: _gmsd_error,
        HTTPException: _http_error,
        redis.ResponseError: _redis_error,
        # redis-py's cluster client reports "no node reachable" and client-side bugs (keys in
        # different slots) with this one class: _redis_error tells them apart.
        RedisClusterException: _redis_error,
    }
    handlers.update(dict.fromkeys(UNAVAILABLE_ERRORS, _unavailable))
    routes = [*ops_routes.routes, *gms_routes.routes, *cs_routes.routes, *ucs_routes.routes, *console_routes.routes]

    async def _service_name(service_id: str) -> str | None:
        api: ServiceApi = app.state.gms
        return await api.store.service_name(service_id)

    guard = None
    if settings.credentials is not None:
        guard = Authenticator(settings.credentials, settings.config.auth.metrics == "protected", _service_name)
        routes = [route.guarded(guard.guard_of(route.path)) if guard.protects(route.path) else route
                  for route in routes]
    app = _Gmsd(
        routes=routes,
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    # No redirect from `…/` to `…` (Starlette's default): it answered 307 to whatever `Host` the
    # client sent, before authentication. An unknown path is a 404 JSON like any other.
    app.router.redirect_slashes = False
    # Enforced by the observer (outermost): refused requests are timed, counted and logged too.
    app.max_concurrent_requests = settings.config.limits.max_concurrent_requests
    app.cors = cors_layer(settings.config.cors)
    # Built once: a route without a description stops the start, and requests only copy bytes.
    app.state.openapi = _encode(build_document(routes, title="gmsd", version=__version__,
                                               protected=None if guard is None else guard.protects))
    return app


def app_from_environment() -> Starlette:
    """Factory for uvicorn (`--factory`): settings from the environment."""
    return create_app(Settings.from_environment())
