"""The request lifecycle, top to bottom: CDN, middleware, route, render or prefetch, stream.

:meth:`NextServer.handle` reads as the life of a request in the articles the
project started from. Each phase lives in its own module (``edge``,
``middleware``, ``routing``, ``render``, ``prefetch``, ``streaming``,
``webhooks``); this one only decides which phase runs next, and names the
request's server span (made by ``opentelemetry-instrumentation-asgi``) after the
route, as Next.js does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

from opentelemetry import trace
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from contract import nextjs, semconv
from instrumented_server import edge
from instrumented_server.background import RateLimiter
from instrumented_server.caching import Source
from instrumented_server.cdn import NEXT_VARY
from instrumented_server.edge import OriginAnswer
from instrumented_server.fetching import RenderContext
from instrumented_server.incoming import Incoming, request_kind
from instrumented_server.middleware import RequestFacts, prefetch_mode, run_middleware, runs_on
from instrumented_server.prefetch import prefetch
from instrumented_server.render import Chunk
from instrumented_server.state import ServerState
from instrumented_server.streaming import stream
from instrumented_server.telemetry import trace_id_of
from instrumented_server.upstreams import UpstreamError
from instrumented_server.webhooks import handle_webhook

STATIC_ASSET_HEADERS = {"cache-control": "public, max-age=31536000, immutable"}


class NextServer:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def handle(self, request: Request) -> Response:
        state = self.state
        span = trace.get_current_span()
        incoming = self._incoming(request)
        span.set_attribute(semconv.PHASE, semconv.PHASE_REQUEST)
        span.set_attribute(semconv.REQUEST_KIND, incoming.kind)
        span.set_attribute(semconv.NEXT_RSC, incoming.rsc)
        span.set_attribute(semconv.NEXT_PREFETCH, prefetch_mode(incoming.facts.headers))
        span.set_attribute(semconv.NEXT_SPAN_TYPE, "BaseServer.handleRequest")

        if incoming.kind == semconv.KIND_STATIC_ASSET:
            incoming.name_span(span, incoming.path)
            return PlainTextResponse("static asset", headers=STATIC_ASSET_HEADERS)
        if incoming.kind == semconv.KIND_WEBHOOK:
            incoming.name_span(span, incoming.path)
            return await handle_webhook(state, request, incoming, span, self.warm_route)

        at_edge = edge.look_up(state, incoming, span)
        cached = edge.answer_at_edge(state, at_edge, incoming, span, self._origin_as)
        if cached is not None:
            return cached

        answer = await self.origin(incoming, span)
        if answer.rendered is None:
            return Response(b"", answer.status, headers=answer.headers)
        try:
            # The status line waits for the shell, as in Next.js: a render that fails
            # before its shell is ready can still answer 500.
            chunks = await _with_first_chunk(answer.rendered.chunks)
        except UpstreamError as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            return PlainTextResponse("500: an upstream API failed\n", 500)

        def remember(body: bytes) -> None:
            if at_edge.stores(incoming):
                edge.store(state, at_edge.key, incoming, answer, body, "request", trace_id_of(span))

        return StreamingResponse(
            stream(
                chunks,
                telemetry=state.telemetry,
                parent=span,
                started=incoming.started,
                on_complete=remember,
            ),
            answer.status,
            headers={**answer.headers, "x-nextrace-cdn": at_edge.header},
        )

    async def origin(
        self,
        incoming: Incoming,
        span: trace.Span,
        *,
        fill_as: Source = "request",
        limiter: RateLimiter | None = None,
    ) -> OriginAnswer:
        """Middleware, route resolution, then render or prefetch, behind the CDN.

        ``fill_as`` is who the cache entries it fills are attributed to; background work
        passes its ``limiter`` for upstream calls.
        """
        state = self.state
        path = incoming.path
        middleware_headers: dict[str, str] = {}
        if runs_on(state.definition.middleware, incoming.facts):
            middleware_headers = dict(state.definition.middleware.response_headers)
            decision = await run_middleware(
                state, incoming.facts, incoming.kind, incoming.session, span
            )
            if decision.action == "redirect":
                incoming.name_span(span, path)
                return OriginAnswer(307, {"location": decision.destination}, None)
            if decision.action == "rewrite":
                path = decision.destination
        else:
            span.set_attribute(semconv.MIDDLEWARE_MATCHED, False)

        with state.telemetry.span(
            "resolve page components",
            semconv.PHASE_ROUTE,
            span,
            span_type=nextjs.FIND_PAGE,
        ) as route_span:
            soft = incoming.facts.headers.get("next-url") if incoming.rsc else None
            match = state.routes.resolve(path, soft_navigation_from=soft)
            route_span.set_attribute(
                semconv.NEXT_ROUTE, match.pattern.template if match else "/_not-found"
            )
        if match is None:
            incoming.name_span(span, "/_not-found")
            return OriginAnswer(404, {"content-type": "text/html; charset=utf-8"}, None)

        template = match.pattern.template
        incoming.name_span(span, template)
        span.set_attribute(semconv.RENDER_MODE, match.route.render)
        span.set_attribute(semconv.INTERCEPTED, match.intercepted)
        variant = "rsc" if incoming.rsc else "html"
        ctx = RenderContext(
            origin=fill_as,
            route_path=path,
            session=incoming.session,
            limiter=limiter,
            instance=state.next_instance(),
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
        return OriginAnswer(200, headers, rendered)

    async def warm_route(self, path: str, span: trace.Span, limiter: RateLimiter) -> None:
        """A route warm-up goes through the front door, as a warm-up script's GET would: it
        fills the CDN, the full route cache and the data cache, for HTML and RSC."""
        for headers, kind in (
            ({}, semconv.KIND_DOCUMENT),
            ({"rsc": "1"}, semconv.KIND_RSC_NAVIGATION),
        ):
            facts = RequestFacts(path, headers, {}, {})
            incoming = Incoming("GET", path, "", facts, kind, time.monotonic())
            answer = await self.origin(incoming, span, fill_as="warmup", limiter=limiter)
            if answer.rendered is None:
                continue
            body = b"".join([c.data async for c in answer.rendered.chunks])
            key = self.state.cdn.key("GET", path, "", headers)
            edge.store(self.state, key, incoming, answer, body, "warmup", trace_id_of(span))

    async def _origin_as(
        self, incoming: Incoming, span: trace.Span, fill_as: Source
    ) -> OriginAnswer:
        return await self.origin(incoming, span, fill_as=fill_as)

    def _incoming(self, request: Request) -> Incoming:
        headers = {k.lower(): v for k, v in request.headers.items()}
        cookies = {k: m.value for k, m in SimpleCookie(headers.get("cookie", "")).items()}
        path = request.url.path
        facts = RequestFacts(path, headers, cookies, dict(request.query_params))
        kind = request_kind(path, headers, self.state.routes.is_static_file(path))
        return Incoming(request.method, path, request.url.query, facts, kind, time.monotonic())


async def _with_first_chunk(chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """Wait for the first chunk now; return an iterator over every chunk."""
    first = await anext(chunks)

    async def again() -> AsyncIterator[Chunk]:
        yield first
        async for chunk in chunks:
            yield chunk

    return again()
