"""Operations endpoints: liveness, readiness (naming the dependency that fails) and metrics."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import lifecycle, metrics
from app.responses import json_response

READINESS_TIMEOUT = 1.0  # seconds: a probe must answer well within Kubernetes' own timeout


async def healthz(request: Request) -> Response:
    """GET /healthz: the process is alive; never touches Redis (a Redis outage must not restart pods)."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """GET /readyz: 200 when this process takes traffic and Redis answers PING; else 503.

    The 503 body names each failing check, like `{"checks": {"redis": "failing: TimeoutError"}}`.
    On a Redis Cluster redis-py sends the PING to one node (its default node, re-chosen after
    a failure): the cluster is reachable, which is what a readiness probe can know cheaply.
    """
    if lifecycle.draining():
        return json_response(
            {"status": "unavailable", "checks": {"shutdown": "failing: draining"},
             "message": "shutting down"},
            503,
        )
    try:
        await asyncio.wait_for(request.app.state.redis.ping(), READINESS_TIMEOUT)
    except Exception as exc:  # a PING that fails in any way (incl. wait_for's timeout): not ready
        metrics.count_redis_error("unavailable")
        return json_response(
            {"status": "unavailable", "checks": {"redis": f"failing: {type(exc).__name__}"},
             "message": "redis does not answer"},
            503,
        )
    return json_response({"status": "ready", "checks": {"redis": "ok"}})


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: Prometheus text format (every worker's metrics added up)."""
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]
