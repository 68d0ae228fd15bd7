"""The reference server as an ASGI app: one catch-all route, traced by OpenTelemetry.

Next.js routes every request itself, so the app has a single endpoint that
hands each request to :class:`NextServer`. The ASGI instrumentation makes
the request's server span; its HTTP attributes follow both the stable and
the old semantic conventions (``http/dup``), the old ones being what Next.js
itself emits. ``/healthz``, which is not traced, says how many spans the server's
OpenTelemetry SDK dropped.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from instrumented_server.deploy import prerender_all
from instrumented_server.server import NextServer
from instrumented_server.state import ServerState

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# The client router and the instrumentation it uses (@nextrace/next/client), as the pages load
# them: static files, which Next.js serves outside its routing too (/_next/static).
CLIENT_SCRIPTS = ("router.js", "client.js", "fail-safe.js")  # client.js imports fail-safe.js
HEALTHZ_URL = r"^[a-z]+://[^/]+/healthz$"  # the instrumentation matches scheme://host/path


def client_scripts() -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of the pages' scripts, read once, when the app is made."""
    static = resources.files("instrumented_server") / "static"
    texts = {name: (static / name).read_text("utf-8") for name in CLIENT_SCRIPTS}

    async def client_script(request: Request) -> Response:
        text = texts.get(request.path_params["name"])
        if text is None:
            return Response(status_code=404)
        return Response(text, media_type="text/javascript", headers={"cache-control": "no-cache"})

    return client_script


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

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "spans_dropped": state.telemetry.spans_dropped()})

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/_nextrace/{name}", client_scripts()),
            Route("/", server.handle, methods=METHODS),
            Route("/{path:path}", server.handle, methods=METHODS),
        ],
        lifespan=lifespan,
    )
    return OpenTelemetryMiddleware(
        app,
        excluded_urls=HEALTHZ_URL,  # a probe's request is not the app's traffic
        tracer_provider=state.telemetry.provider,
        exclude_spans=["receive", "send"],
    )
