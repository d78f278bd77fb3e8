"""The one middleware on the request path: request id, timing, metrics, errors and the access log.

A pure ASGI wrapper (no BaseHTTPMiddleware, which would copy every body through a task group):
per request it reads the clock twice, wraps `send` once to see the status and add the
`X-Request-ID` header, wraps `receive` so that waiting for the client's body holds no concurrency
slot, and after the answer records the route *template* that Starlette's router
put in `scope["route"]` (never the raw path, which carries ids and keys). With `[cors]` on,
Starlette's CORS middleware stands right inside it (`gmsd.web.cors`).

It also turns exceptions into answers, with the handlers Starlette's `ExceptionMiddleware` would
use (by the exception's class, most specific first), in the place of that middleware: its
per-request `Request`, closure and wrapped `send` cost as much as routing, and this layer already
knows whether an answer started.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gmsd import metrics
from gmsd.errors import Overloaded
from gmsd.web.logs import REQUEST_ID_HEADER, AccessLines, access_log, request_id_for, set_request_id
from gmsd.web.paths import EXEMPT_PATHS
from gmsd.web.responses import error_response

log = logging.getLogger("gmsd")

_SERVER_ERROR = b'{"message":"internal server error"}'
_OWN_ANSWER = "gmsd.own_answer"  # the scope entry holding an answer the observer makes itself


# What turns an exception a request raised into its answer (`gmsd.main` has them).
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


async def _own_answer(scope: Scope, receive: Receive, send: Send) -> None:
    answer: ASGIApp = scope[_OWN_ANSWER]
    await answer(scope, receive, send)

# Kubernetes probes and Prometheus scrapes every few seconds would drown the requests that
# matter: their lines are written at DEBUG, everything else at INFO.


class RequestObserver:
    """Times each HTTP request, tags it with a request id, counts it and logs one JSON line."""

    def __init__(self, app: ASGIApp, max_concurrent: int | None = None,
                 answers_through: Callable[[ASGIApp], ASGIApp] | None = None,
                 error_handlers: Mapping[type[Exception], ErrorHandler] | None = None) -> None:
        self.app = app
        self.error_handlers = dict(error_handlers or {})
        # The answers this layer makes itself (503, 500) pass through `answers_through` (the CORS
        # layer, gmsd.web.cors) as the application's do: a browser must be able to read them too.
        self.own_answers: ASGIApp = _own_answer if answers_through is None else answers_through(_own_answer)
        # Requests in progress past which new ones get 503 at once (gmsd.web.paths).
        self.max_concurrent = max_concurrent if max_concurrent is not None else 1 << 62
        self.in_progress = 0
        self.access_lines = AccessLines()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call; lifespan and other scope types pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope["headers"])
        set_request_id(request_id)
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # what the client gets if the app fails before it answers
        status_sent: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status = status_sent = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        async def receive_outside_the_slot() -> Message:
            # Waiting for the client is not work: the slot is free while a receive() waits for
            # body bytes, so stalled or trickling uploads cannot fill the limit and starve
            # everyone. A receive() that does not wait (the body is in) does not suspend, so no
            # other request can see the slot free meanwhile.
            self.in_progress -= 1
            try:
                return await receive()
            finally:
                self.in_progress += 1

        started = time.perf_counter()
        metrics.request_started()
        self.in_progress += 1
        try:
            if self.in_progress > self.max_concurrent and scope["path"] not in EXEMPT_PATHS:
                # The body is not read: uvicorn discards it (bounded by gmsd.web.protocol's deadline).
                scope[_OWN_ANSWER] = error_response(Overloaded(), scope["path"])
                await self.own_answers(scope, receive, send_with_id)
            else:
                await self.app(scope, receive_outside_the_slot, send_with_id)
        except Exception as exc:
            handler = self.handler_of(exc)
            if handler is not None and status_sent is None:
                scope[_OWN_ANSWER] = await handler(Request(scope, receive, send_with_id), exc)
                exc.__traceback__ = None  # a reused exception instance would pile up tracebacks
                await self.own_answers(scope, receive, send_with_id)
            else:
                # This middleware stands where Starlette's ServerErrorMiddleware would (one layer
                # less per request, see gmsd.main): it answers what nothing else handled.
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                if status_sent is None:
                    scope[_OWN_ANSWER] = Response(_SERVER_ERROR, 500, media_type="application/json")
                    await self.own_answers(scope, receive, send_with_id)
        finally:
            self.in_progress -= 1
            seconds = time.perf_counter() - started
            metrics.request_finished()
            route = getattr(scope.get("route"), "path", metrics.UNMATCHED_ROUTE)
            method: str = scope["method"]
            metrics.observe_request(method, route, status, seconds)
            level = logging.DEBUG if route in EXEMPT_PATHS else logging.INFO
            if access_log.isEnabledFor(level):
                self.access_lines.write(level, method, route, status, seconds, request_id)

    def handler_of(self, exc: Exception) -> ErrorHandler | None:
        """The handler of the most specific class of `exc` that has one (None: a server fault)."""
        for cls in type(exc).__mro__:
            handler = self.error_handlers.get(cls)
            if handler is not None:
                return handler
        return None
