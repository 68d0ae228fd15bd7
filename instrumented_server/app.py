"""The reference server as an ASGI app: one catch-all route, traced by OpenTelemetry.

Next.js routes every request itself, so the app has a single endpoint that
hands each request to :class:`NextServer`. The ASGI instrumentation makes
the request's server span; its HTTP attributes follow both the stable and
the old semantic conventions (``http/dup``), the old ones being what Next.js
itself emits.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from instrumented_server.deploy import prerender_all
from instrumented_server.server import NextServer
from instrumented_server.state import ServerState

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def build_app(state: ServerState) -> ASGIApp:
    """The traced ASGI app. Startup prerenders static routes; shutdown flushes spans."""
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http/dup")
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    server = NextServer(state)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await prerender_all(state)  # `next build`: static and ISR routes are prerendered
        try:
            yield
        finally:
            await state.warmups.shutdown()
            await state.background.cancel_all()
            state.telemetry.shutdown()

    app = Starlette(
        routes=[
            Route("/", server.handle, methods=METHODS),
            Route("/{path:path}", server.handle, methods=METHODS),
        ],
        lifespan=lifespan,
    )
    return OpenTelemetryMiddleware(
        app, tracer_provider=state.telemetry.provider, exclude_spans=["receive", "send"]
    )
