"""The request lifecycle, top to bottom: CDN, middleware, route, render or prefetch, stream.

:meth:`NextServer.handle` reads as the life of a request in the articles the
project started from. Each phase lives in its own module; this one only
decides which phase runs next, and names the request's server span (made by
``opentelemetry-instrumentation-asgi``) after the route, as Next.js does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie

from opentelemetry import trace
from opentelemetry.trace import Link
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from instrumented_server import semconv
from instrumented_server.background import RateLimiter
from instrumented_server.caching import Source
from instrumented_server.cdn import NEXT_VARY, CacheControl
from instrumented_server.deploy import DEPLOY_PATH, deploy
from instrumented_server.fetching import RenderContext, WarmTarget
from instrumented_server.middleware import MiddlewareDecision, RequestFacts, decide, runs_on
from instrumented_server.prefetch import prefetch
from instrumented_server.render import Chunk, Rendered
from instrumented_server.revalidation import (
    REVALIDATE_PATH,
    SECRET_HEADER,
    RevalidationError,
    authorized,
    parse,
    revalidate,
)
from instrumented_server.routing import RouteMatch
from instrumented_server.state import ServerState
from instrumented_server.streaming import stream
from instrumented_server.telemetry import trace_id_of
from instrumented_server.upstreams import UpstreamError
from instrumented_server.warmup_jobs import data_job, submit_all

SESSION_COOKIE = "session"


@dataclass(frozen=True)
class Incoming:
    """A request as the lifecycle sees it, independent of the web framework."""

    method: str
    path: str
    query: str
    facts: RequestFacts
    kind: str
    started: float

    @property
    def rsc(self) -> bool:
        return self.facts.headers.get("rsc") == "1"

    @property
    def session(self) -> str | None:
        return self.facts.cookies.get(SESSION_COOKIE)


def request_kind(path: str, headers: dict[str, str], is_static: bool) -> str:
    if is_static:
        return semconv.KIND_STATIC_ASSET
    if path in (REVALIDATE_PATH, DEPLOY_PATH):
        return semconv.KIND_WEBHOOK
    if path.startswith("/api/"):
        return semconv.KIND_API
    if headers.get("rsc") == "1":
        prefetching = "next-router-prefetch" in headers or headers.get("purpose") == "prefetch"
        return semconv.KIND_RSC_PREFETCH if prefetching else semconv.KIND_RSC_NAVIGATION
    return semconv.KIND_DOCUMENT


def prefetch_mode(headers: Mapping[str, str]) -> str:
    if "next-router-segment-prefetch" in headers:
        return "segment"
    if "next-router-prefetch" in headers or headers.get("purpose") == "prefetch":
        return "auto"
    return "none"


async def with_first_chunk(chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """Wait for the first chunk now; return an iterator over every chunk."""
    first = await anext(chunks)

    async def again() -> AsyncIterator[Chunk]:
        yield first
        async for chunk in chunks:
            yield chunk

    return again()


class NextServer:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        state.route_warmer = self.warm_route

    async def handle(self, request: Request) -> Response:
        state = self.state
        span = trace.get_current_span()
        headers = {k.lower(): v for k, v in request.headers.items()}
        cookies = {k: m.value for k, m in SimpleCookie(headers.get("cookie", "")).items()}
        path = request.url.path
        facts = RequestFacts(path, headers, cookies, dict(request.query_params))
        kind = request_kind(path, headers, state.routes.is_static_file(path))
        incoming = Incoming(request.method, path, request.url.query, facts, kind, time.monotonic())
        span.set_attribute(semconv.PHASE, semconv.PHASE_REQUEST)
        span.set_attribute(semconv.REQUEST_KIND, kind)
        span.set_attribute(semconv.NEXT_RSC, incoming.rsc)
        span.set_attribute(semconv.NEXT_PREFETCH, prefetch_mode(headers))
        span.set_attribute(semconv.NEXT_SPAN_TYPE, "BaseServer.handleRequest")

        if kind == semconv.KIND_STATIC_ASSET:
            self._name(span, incoming, path)
            return PlainTextResponse(
                "static asset", headers={"cache-control": "public, max-age=31536000, immutable"}
            )
        if kind == semconv.KIND_WEBHOOK:
            self._name(span, incoming, path)
            return await self._webhook(request, incoming, span)

        key = state.cdn.key(incoming.method, path, incoming.query, headers)
        lookup = state.cdn.lookup(key, incoming.method) if state.definition.cdn.enabled else None
        if lookup is not None:
            cached_route = lookup.entry.headers.get("x-nextrace-route", "") if lookup.entry else ""
            state.telemetry.record_cache(
                span, "cdn", lookup, key, phase=semconv.PHASE_CDN, route=cached_route
            )
            if lookup.entry is not None and lookup.result in ("hit", "stale"):
                entry = lookup.entry
                self._name(span, incoming, entry.headers.get("x-nextrace-route", path))
                if lookup.result == "stale":
                    state.background.spawn(self._refresh_cdn(incoming, key, span))
                return Response(
                    entry.body,
                    entry.status,
                    headers={**entry.headers, "x-nextrace-cdn": lookup.result.upper()},
                )

        status, response_headers, rendered = await self.origin(incoming, span)
        if rendered is None:
            return Response(b"", status, headers=response_headers)
        try:
            # The status line waits for the shell, as in Next.js: a render that fails
            # before its shell is ready can still answer 500.
            chunks = await with_first_chunk(rendered.chunks)
        except UpstreamError as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            return PlainTextResponse("500: an upstream API failed\n", 500)
        store_key = key if lookup is not None and incoming.method == "GET" else None

        def remember(body: bytes) -> None:
            if store_key is not None:
                self._store_cdn(
                    store_key,
                    incoming,
                    status,
                    response_headers,
                    rendered,
                    body,
                    "request",
                    trace_id_of(span),
                )

        return StreamingResponse(
            stream(
                chunks,
                telemetry=state.telemetry,
                parent=span,
                started=incoming.started,
                on_complete=remember,
            ),
            status,
            headers={
                **response_headers,
                "x-nextrace-cdn": (lookup.result.upper() if lookup else "OFF"),
            },
        )

    async def origin(
        self,
        incoming: Incoming,
        span: trace.Span,
        *,
        fill_as: Source = "request",
        limiter: RateLimiter | None = None,
    ) -> tuple[int, dict[str, str], Rendered | None]:
        """Middleware, route resolution, then render or prefetch, behind the CDN.

        ``fill_as`` is who the cache entries it fills are attributed to; background work
        passes its ``limiter`` for upstream calls.
        """
        state = self.state
        path = incoming.path
        middleware_headers: dict[str, str] = {}
        if runs_on(state.definition.middleware, incoming.facts):
            middleware_headers = dict(state.definition.middleware.response_headers)
            decision = await self._middleware(incoming, span)
            if decision.action == "redirect":
                self._name(span, incoming, path)
                return 307, {"location": decision.destination}, None
            if decision.action == "rewrite":
                path = decision.destination
        else:
            span.set_attribute(semconv.MIDDLEWARE_MATCHED, False)

        with state.telemetry.span(
            "resolve page components",
            semconv.PHASE_ROUTE,
            span,
            span_type="NextNodeServer.findPageComponents",
        ) as route_span:
            soft = incoming.facts.headers.get("next-url") if incoming.rsc else None
            match = state.routes.resolve(path, soft_navigation_from=soft)
            route_span.set_attribute(
                semconv.NEXT_ROUTE, match.pattern.template if match else "/_not-found"
            )
        if match is None:
            self._name(span, incoming, "/_not-found")
            return 404, {"content-type": "text/html; charset=utf-8"}, None

        template = match.pattern.template
        self._name(span, incoming, template)
        span.set_attribute(semconv.RENDER_MODE, match.route.render)
        span.set_attribute(semconv.INTERCEPTED, match.intercepted)
        variant = "rsc" if incoming.rsc else "html"
        ctx = RenderContext(
            origin=fill_as, route_path=path, session=incoming.session, limiter=limiter
        )
        if incoming.kind == semconv.KIND_RSC_PREFETCH:
            ctx.origin = "prefetch" if fill_as == "request" else fill_as
            rendered = await prefetch(state, match, ctx, span)
        else:
            if fill_as == "request":
                state.visits[path] += 1  # what a post-deploy warm-up will warm first
            rendered = await state.renderer.render(match, variant, ctx, span)
        content_type = "text/x-component" if incoming.rsc else "text/html; charset=utf-8"
        headers = {
            "content-type": content_type,
            "cache-control": rendered.cache_control,
            "vary": ", ".join(
                (*NEXT_VARY, "next-url") if state.routes.interceptable(path) else NEXT_VARY
            ),
            "x-nextrace-route": template,
            **rendered.headers,
            **middleware_headers,
        }
        return 200, headers, rendered

    async def _middleware(self, incoming: Incoming, span: trace.Span) -> MiddlewareDecision:
        state = self.state
        middleware = state.definition.middleware
        attrs = {
            semconv.REQUEST_KIND: incoming.kind,
            semconv.NEXT_PREFETCH: prefetch_mode(incoming.facts.headers),
            semconv.MIDDLEWARE_MATCHED: True,
        }
        span.set_attribute(semconv.MIDDLEWARE_MATCHED, True)
        with state.telemetry.span(
            "middleware", semconv.PHASE_MIDDLEWARE, span, attrs, span_type="Middleware.execute"
        ) as mw_span:
            await asyncio.sleep(middleware.cost_ms / 1000)
            match = state.routes.resolve(incoming.path)
            decision = decide(middleware, incoming.facts, match.route.path if match else None)
            mw_span.set_attribute(semconv.MIDDLEWARE_ACTION, decision.action)
            if decision.warmups and match is not None:
                self._fire_warmups(decision, match, incoming, mw_span)
            return decision

    def _fire_warmups(
        self, decision: MiddlewareDecision, match: RouteMatch, incoming: Incoming, span: trace.Span
    ) -> None:
        """Predictive warm-up: queue the data the route will need, without waiting for it."""
        started = time.perf_counter()
        by_name = {f.name: f for f in match.route.all_fetches()}
        targets = [
            WarmTarget.of_fetch(by_name[name], match.params, incoming.session)
            for rule in decision.warmups
            for name in rule.fetches
            if by_name[name].scope == "shared" or incoming.session
        ]
        outcomes = submit_all(
            self.state, (data_job(self.state, [t], "middleware", span) for t in targets)
        )
        span.set_attribute(semconv.WARMUP_FIRED, sum(outcomes.values()))
        span.set_attribute(semconv.WARMUP_COST_MS, round((time.perf_counter() - started) * 1000, 3))

    async def _webhook(self, request: Request, incoming: Incoming, span: trace.Span) -> Response:
        if request.method != "POST":
            return PlainTextResponse("use POST\n", 405)
        if not authorized(self.state, request.headers.get(SECRET_HEADER)):
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
                self.state,
                build_id=payload.get("build_id"),
                keep_data_cache=payload.get("keep_data_cache"),
                warm_routes=payload.get("warm_routes"),
                parent=span,
            )
            return JSONResponse(result)
        try:
            kind, target, expire, warm = parse(payload)
        except RevalidationError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(revalidate(self.state, kind, target, expire, warm, span))

    async def warm_route(self, path: str, span: trace.Span, limiter: RateLimiter) -> None:
        """A route warm-up goes through the front door, as a warm-up script's GET would: it
        fills the CDN, the full route cache and the data cache, for HTML and RSC."""
        for headers, kind in (
            ({}, semconv.KIND_DOCUMENT),
            ({"rsc": "1"}, semconv.KIND_RSC_NAVIGATION),
        ):
            facts = RequestFacts(path, headers, {}, {})
            incoming = Incoming("GET", path, "", facts, kind, time.monotonic())
            status, response_headers, rendered = await self.origin(
                incoming, span, fill_as="warmup", limiter=limiter
            )
            if rendered is None:
                continue
            body = b"".join([c.data async for c in rendered.chunks])
            key = self.state.cdn.key("GET", path, "", headers)
            self._store_cdn(
                key, incoming, status, response_headers, rendered, body, "warmup", trace_id_of(span)
            )

    async def _refresh_cdn(self, incoming: Incoming, key: str, request_span: trace.Span) -> None:
        """The CDN's background revalidation of a stale entry: a trace of its own, linked."""
        state = self.state
        with state.telemetry.span(
            "cdn revalidate",
            semconv.PHASE_REVALIDATE,
            None,
            {
                semconv.REVALIDATE_TRIGGER: "cdn_stale",
                semconv.REVALIDATE_TARGET: incoming.path,
                semconv.REQUEST_KIND: incoming.kind,
            },
            links=[Link(request_span.get_span_context())],
        ) as span:
            status, headers, rendered = await self.origin(incoming, span, fill_as="revalidation")
            if rendered is None:
                return
            body = b"".join([c.data async for c in rendered.chunks])
            self._store_cdn(
                key, incoming, status, headers, rendered, body, "revalidation", trace_id_of(span)
            )

    def _store_cdn(
        self,
        key: str,
        incoming: Incoming,
        status: int,
        headers: dict[str, str],
        rendered: Rendered,
        body: bytes,
        source: Source,
        trace_id: str,
    ) -> None:
        self.state.cdn.store(
            key,
            status=status,
            headers=headers,
            body=body,
            control=CacheControl.parse(rendered.cache_control),
            route_path=incoming.path,
            query=incoming.query,
            tags=rendered.cache_tags,
            source=source,
            source_trace_id=trace_id,
        )

    @staticmethod
    def _name(span: trace.Span, incoming: Incoming, route: str) -> None:
        """Name the server span as Next.js does: ``GET /route`` or ``RSC GET /route``."""
        prefix = "RSC " if incoming.rsc else ""
        span.update_name(f"{prefix}{incoming.method} {route}")
        span.set_attribute(semconv.NEXT_ROUTE, route)
        span.set_attribute(semconv.HTTP_ROUTE, route)
