"""Per-worker concurrency limit: past `[limits] max_concurrent_requests` in progress, answer 503.

Every request in progress holds memory (its body, up to `[limits] body_bytes`) and waits on the
same Redis; under a burst it is better to refuse the excess at once, cheaply and with a
`Retry-After`, than to let latency and memory grow until the process is killed. The check is a
comparison and two integer updates per request (one event loop per worker: no lock needed).

The operations routes are never refused (a probe must see the process, a scrape the overload);
they are counted like any request, which only makes the limit slightly stricter.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.exceptions import Overloaded
from app.responses import error_response

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ConcurrencyLimit:
    """Pure ASGI middleware: at most `limit` HTTP requests in progress in this process."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request, or answer 503 without reading it when the limit is reached."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit and scope["path"] not in EXEMPT_PATHS:
            # The body is not read: uvicorn discards it (bounded by app.http_protocol's deadline).
            await error_response(Overloaded(), scope["path"])(scope, receive, send)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
