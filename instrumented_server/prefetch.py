"""The prefetch phase: what a ``<Link>`` prefetch (``RSC: 1`` + ``Next-Router-Prefetch: 1``)
gets back.

As Next.js documents it: a static or ISR route returns its full prerendered
RSC payload; a dynamic route with a ``loading`` fallback returns only the
loading state; a dynamic route without one returns an essentially empty
payload. A prefetch never runs a dynamic page's data fetches.
"""

from __future__ import annotations

from typing import Literal

from opentelemetry import trace

from contract import semconv
from instrumented_server.fetching import RenderContext
from instrumented_server.render import Chunk, Rendered, iterate_chunks
from instrumented_server.routing import RouteMatch
from instrumented_server.state import ServerState

PayloadKind = Literal["full", "loading", "empty"]
DYNAMIC_CACHE_CONTROL = "private, no-cache, no-store, max-age=0, must-revalidate"


def payload_kind(match: RouteMatch) -> PayloadKind:
    route = match.route
    if route.render != "dynamic" and not match.intercepted:
        return "full"
    return "loading" if route.loading else "empty"


async def prefetch(
    state: ServerState, match: RouteMatch, ctx: RenderContext, parent: trace.Span
) -> Rendered:
    kind = payload_kind(match)
    template = match.pattern.template
    attrs = {semconv.NEXT_ROUTE: template, semconv.PREFETCH_PAYLOAD: kind}
    with state.telemetry.span(
        f"prefetch {template}", semconv.PHASE_PREFETCH, parent, attrs
    ) as span:
        if kind == "full":
            return await state.renderer.render(match, "rsc", ctx, span)
        payloads = state.renderer.payloads
        body = (
            payloads.loading_only(template, ctx.route_path)
            if kind == "loading"
            else payloads.empty(template, ctx.route_path)
        )
        return Rendered(iterate_chunks([Chunk(body, "shell")]), DYNAMIC_CACHE_CONTROL)
