"""The one middleware on the request path: request id, timing, metrics and the access log.

A pure ASGI wrapper (no BaseHTTPMiddleware, which would copy every body through a task group):
per request it reads the clock twice, wraps `send` once to see the status and add the
`X-Request-ID` header, and after the answer records the route *template* that Starlette's router
put in `scope["route"]` (never the raw path, which carries ids and keys).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.request_log import REQUEST_ID_HEADER, access_log, log_request, request_id_for, set_request_id

# Kubernetes probes and Prometheus scrapes every few seconds would drown the requests that
# matter: their lines are written at DEBUG, everything else at INFO.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestObserver:
    """Times each HTTP request, tags it with a request id, counts it and logs one JSON line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call; lifespan and other scope types pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope["headers"])
        set_request_id(request_id)
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # what the client gets if the app fails before it answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        started = time.perf_counter()
        metrics.IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            metrics.IN_FLIGHT.dec()
            route = getattr(scope.get("route"), "path", metrics.UNMATCHED_ROUTE)
            method: str = scope["method"]
            metrics.observe_request(method, route, status, seconds)
            level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
            if access_log.isEnabledFor(level):
                log_request(level, {
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "request_id": request_id,
                })
