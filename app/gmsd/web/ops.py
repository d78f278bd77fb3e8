"""Operations endpoints: liveness, readiness (naming the dependency that fails), metrics, and
the OpenAPI document (built once at start-up by `gmsd.main`)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from gmsd import metrics
from gmsd.web import lifecycle
from gmsd.web.openapi import JSON, Answer, Api
from gmsd.web.paths import HEALTHZ, METRICS, OPENAPI_PATH, READYZ
from gmsd.web.responses import GmsErrorBody, json_response
from gmsd.web.routing import Resource

READINESS_TIMEOUT = 1.0  # seconds: a probe must answer well within Kubernetes' own timeout

OPS = Api("Operations", GmsErrorBody, {})
_STATUS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
_CHECKS = _STATUS | {
    "properties": {"status": {"type": "string"}, "message": {"type": "string"},
                   "checks": {"type": "object", "additionalProperties": {"type": "string"}}},
}


@OPS.operation("Liveness: the process answers", answers={200: Answer("alive", {JSON: _STATUS})})
async def healthz(request: Request) -> Response:
    """GET /healthz: the process is alive; never touches Redis (a Redis outage must not restart pods)."""
    return json_response({"status": "ok"})


@OPS.operation("Readiness: this process takes traffic and Redis answers",
               answers={200: Answer("ready", {JSON: _CHECKS}),
                        503: Answer("not ready: the failing checks", {JSON: _CHECKS})})
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
        await asyncio.wait_for(request.app.state.ping(), READINESS_TIMEOUT)
    except Exception as exc:  # a PING that fails in any way (incl. wait_for's timeout): not ready
        metrics.count_redis_error("unavailable")
        return json_response(
            {"status": "unavailable", "checks": {"redis": f"failing: {type(exc).__name__}"},
             "message": "redis does not answer"},
            503,
        )
    return json_response({"status": "ready", "checks": {"redis": "ok"}})


@OPS.operation("Prometheus metrics",
               answers={200: Answer("text exposition format", {"text/plain": {"type": "string"}})})
async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: Prometheus text format (every worker's metrics added up)."""
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


@OPS.operation("This document", answers={200: Answer("OpenAPI 3.1", {JSON: {"type": "object"}})})
async def openapi_document(request: Request) -> Response:
    """GET /openapi.json: the OpenAPI document, encoded once at start-up."""
    document: bytes = request.app.state.openapi
    return Response(document, media_type="application/json")


routes = [
    Resource(HEALTHZ, {"GET": healthz}),
    Resource(READYZ, {"GET": readyz}),
    Resource(METRICS, {"GET": metrics_endpoint}),
    Resource(OPENAPI_PATH, {"GET": openapi_document}),
]
