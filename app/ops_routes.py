"""Operations endpoints: liveness and readiness (which names the dependency that fails)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.responses import json_response

READINESS_TIMEOUT = 1.0  # seconds: a probe must answer well within Kubernetes' own timeout


async def healthz(request: Request) -> Response:
    """GET /healthz: the process is alive; never touches Redis."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """GET /readyz: 200 when Redis answers PING; 503 naming the failing dependency otherwise.

    On a Redis Cluster redis-py sends the PING to one node (its default node, re-chosen after
    a failure): the cluster is reachable, which is what a readiness probe can know cheaply.
    """
    try:
        await asyncio.wait_for(request.app.state.redis.ping(), READINESS_TIMEOUT)
    except Exception as exc:  # a PING that fails in any way (incl. wait_for's timeout): not ready
        return json_response(
            {"status": "unavailable", "checks": {"redis": f"failing: {type(exc).__name__}"},
             "message": "redis does not answer"},
            503,
        )
    return json_response({"status": "ready", "checks": {"redis": "ok"}})


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
