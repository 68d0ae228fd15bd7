"""What Next.js itself names: its instrumentation scopes, its span types, and the phase of each.

A real Next.js app's spans say their code path (``next.span_type``), not their phase. The
collector's mapping, the trace view and the SQL that sums time per phase all read a span's
phase from here, so that they agree on every span. docs/semantic-conventions.md ("Real
Next.js traces") explains the phases.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

from contract import semconv

NEXTJS_SCOPE = "next.js"
VERCEL_FETCH_SCOPE = "@vercel/otel/fetch"
HELPER_SCOPE = "@nextrace/next"  # the optional helper's revalidation and warm-up spans
NEXTJS_SCOPES = frozenset({NEXTJS_SCOPE, VERCEL_FETCH_SCOPE, HELPER_SCOPE})
"""Instrumentation scopes whose spans make a trace a Next.js trace."""

# The span types the mapping reads by name.
REQUEST = "BaseServer.handleRequest"
MIDDLEWARE = "Middleware.execute"
FIND_PAGE = "NextNodeServer.findPageComponents"
RENDER = "AppRender.getBodyResult"
FETCH = "AppRender.fetch"
SEGMENT = "NextNodeServer.getLayoutOrPageModule"
START_RESPONSE = "NextNodeServer.startResponse"
ROUTE_HANDLER = "AppRouteRouteHandlers.runHandler"
ROUTE_SPANS = (FIND_PAGE, RENDER, "BaseServer.renderToResponse", ROUTE_HANDLER)
"""Spans that carry ``next.route``, most specific first."""

SPAN_PHASES: Mapping[str, str] = MappingProxyType(
    {
        # Every type Next.js 15 and 16 made in the captures, verbose mode's too. "server" is
        # Next.js's own request handling around the request span.
        "NextServer.getRequestHandler": "server",
        "NextServer.getServerRequestHandler": "server",
        REQUEST: semconv.PHASE_REQUEST,
        MIDDLEWARE: semconv.PHASE_MIDDLEWARE,
        FIND_PAGE: semconv.PHASE_ROUTE,
        SEGMENT: semconv.PHASE_ROUTE,
        "LoadComponents.loadComponents": semconv.PHASE_ROUTE,
        "LoadComponents.loadRouteModule": semconv.PHASE_ROUTE,
        "RouteModule.prepare": semconv.PHASE_ROUTE,
        "RouteModule.loadManifests": semconv.PHASE_ROUTE,
        "AppRouteRouteModule.loadUserland": semconv.PHASE_ROUTE,
        "BaseServer.render": semconv.PHASE_RENDER,
        "BaseServer.pipe": semconv.PHASE_RENDER,
        "BaseServer.renderToResponse": semconv.PHASE_RENDER,
        "BaseServer.renderToResponseWithComponents": semconv.PHASE_RENDER,
        "BaseServer.renderError": semconv.PHASE_RENDER,
        "BaseServer.renderErrorToResponse": semconv.PHASE_RENDER,
        RENDER: semconv.PHASE_RENDER,
        "AppRender.renderToNodeFizzStream": semconv.PHASE_RENDER,
        "AppRender.renderToReadableStream": semconv.PHASE_RENDER,
        "AppRender.waitShellReady": semconv.PHASE_RENDER,
        "NextNodeServer.createComponentTree": semconv.PHASE_RENDER,
        "NextNodeServer.clientComponentLoading": semconv.PHASE_RENDER,
        ROUTE_HANDLER: semconv.PHASE_RENDER,
        FETCH: semconv.PHASE_FETCH,
        START_RESPONSE: semconv.PHASE_STREAM,
    }
)
"""``next.span_type`` → the phase the reference server names, for a trace's tree."""

PHASE_TIMED_BY: Mapping[str, str] = MappingProxyType(
    {
        semconv.PHASE_MIDDLEWARE: MIDDLEWARE,
        semconv.PHASE_ROUTE: FIND_PAGE,
        semconv.PHASE_RENDER: RENDER,
        semconv.PHASE_FETCH: FETCH,
    }
)
"""Phase → the one span type whose time is the phase's time in per-phase sums. Other types of
a phase nest inside or around it, so summing them all would count the same time twice."""


def served_route(route: str, span_types: Collection[str]) -> str:
    """The route a request served, as its ``requests`` row names it: a route handler's
    (``span_types`` holds ROUTE_HANDLER) without the ``/route`` Next.js 15 names its file with."""
    return route.removesuffix("/route") if ROUTE_HANDLER in span_types else route


def phase_sql(span_type: str) -> str:
    """``multiIf`` branches (``<span_type> = '<type>', '<phase>',`` per line) that give a span
    the phase :data:`PHASE_TIMED_BY` times it in; SQL that sums time per phase renders them.
    ``span_type`` is the SQL expression of the span's type."""
    return "\n".join(
        f"{span_type} = '{timed_by}', '{phase}'," for phase, timed_by in PHASE_TIMED_BY.items()
    )
