"""The webhook phase: ``POST /api/revalidate`` (a CMS publishing) and ``POST /api/deploy``.

Both need the revalidation secret. A revalidation invalidates by tag or path and may queue
warm-ups; a deploy switches the build, after warming its most visited routes if asked.
"""

from __future__ import annotations

import json

from opentelemetry import trace
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from contract import semconv
from instrumented_server.deploy import DEPLOY_PATH, deploy
from instrumented_server.incoming import Incoming
from instrumented_server.revalidation import (
    SECRET_HEADER,
    RevalidationError,
    authorized,
    parse,
    revalidate,
)
from instrumented_server.state import ServerState
from instrumented_server.warmup_jobs import RouteWarmer


async def handle_webhook(
    state: ServerState,
    request: Request,
    incoming: Incoming,
    span: trace.Span,
    warmer: RouteWarmer,
) -> Response:
    """Answer a webhook; route warm-ups it queues go through ``warmer``."""
    if request.method != "POST":
        return PlainTextResponse("use POST\n", 405)
    if not authorized(state, request.headers.get(SECRET_HEADER)):
        span.set_attribute(semconv.REVALIDATE_OUTCOME, "unauthorized")
        return JSONResponse({"error": f"missing or wrong {SECRET_HEADER}"}, 401)
    body = await request.body()
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        return JSONResponse({"error": "the body must be JSON"}, 400)
    if incoming.path == DEPLOY_PATH:
        if not isinstance(payload, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, 400)
        result = await deploy(
            state,
            build_id=payload.get("build_id"),
            keep_data_cache=payload.get("keep_data_cache"),
            warm_routes=payload.get("warm_routes"),
            parent=span,
            warmer=warmer,
        )
        return JSONResponse(result)
    try:
        kind, target, expire, warm = parse(payload)
    except RevalidationError as exc:
        return JSONResponse({"error": str(exc)}, 400)
    return JSONResponse(revalidate(state, kind, target, expire, warm, span, warmer))
