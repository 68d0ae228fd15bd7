"""The render phase: full-route-cache lookup, then layouts, page, slots and boundaries.

Static and ISR routes are answered from the full route cache (prerendered at
build time); a miss renders the whole route and stores it. Dynamic routes
render per request and stream: the shell goes first, as soon as the data it
needs has arrived (with a ``loading`` fallback the shell needs no page data
at all), then one chunk per Suspense boundary as its data resolves.

Fetches run in parallel unless a fetch declares ``after``: then it waits for
that fetch first, the sequential-fetch waterfall that the dashboards detect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from opentelemetry import trace

from contract import nextjs, semconv
from instrumented_server.background import BackgroundTasks
from instrumented_server.caching import Lookup, Source
from instrumented_server.definition import AppDefinition, Fetch, Route
from instrumented_server.fetching import FetchRunner, Params, RenderContext, fetch_tags
from instrumented_server.full_route_cache import FullRouteCache
from instrumented_server.payloads import Fetched, Payloads
from instrumented_server.routing import RouteMatch
from instrumented_server.telemetry import ServerTelemetry, ending, trace_id_of


@dataclass(frozen=True)
class Chunk:
    data: bytes
    boundary: str  # "shell" for the first chunk


@dataclass
class Rendered:
    """A response body still to be streamed, and what the CDN may do with it."""

    chunks: AsyncIterator[Chunk]
    cache_control: str
    cache_tags: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


async def iterate_chunks(chunks: list[Chunk]) -> AsyncIterator[Chunk]:
    for chunk in chunks:
        yield chunk


def route_tags(definition: AppDefinition, match: RouteMatch) -> tuple[str, ...]:
    """Every tag of the data a route reads: revalidating one of them touches the route."""
    route = match.route
    fetches = [
        *route.all_fetches(),
        *(f for n in route.layouts for f in definition.layout(n).fetches),
    ]
    return tuple(sorted({tag for f in fetches for tag in fetch_tags(f, match.params)}))


class Renderer:
    def __init__(
        self,
        definition: AppDefinition,
        fetcher: FetchRunner,
        full_route_cache: FullRouteCache,
        telemetry: ServerTelemetry,
        background: BackgroundTasks,
        payloads: Payloads,
    ) -> None:
        self._definition = definition
        self._fetcher = fetcher
        self._full_route = full_route_cache
        self._telemetry = telemetry
        self._background = background
        self.payloads = payloads

    async def render(
        self, match: RouteMatch, variant: str, ctx: RenderContext, parent: trace.Span
    ) -> Rendered:
        """Render ``match``. A dynamic render's span ends with its last streamed chunk."""
        route = match.route
        template = match.pattern.template
        ctx.route = template
        attrs = {semconv.NEXT_ROUTE: template, semconv.RENDER_MODE: route.render}
        span = self._telemetry.start(
            f"render route (app) {template}",
            semconv.PHASE_RENDER,
            parent,
            attrs,
            span_type=nextjs.RENDER,
        )
        if route.render == "dynamic" or match.intercepted:
            self._telemetry.record_cache(
                span, "full_route", Lookup("bypass", "dynamic"), ctx.route_path, route=template
            )
            return Rendered(
                self._until_done(self._stream(match, variant, ctx, span), span),
                "private, no-cache, no-store, max-age=0, must-revalidate",
                route_tags(self._definition, match),
            )
        with ending(span):
            lookup = self._full_route.lookup(ctx.route_path, variant)
            self._telemetry.record_cache(
                span, "full_route", lookup, f"{variant}:{ctx.route_path}", route=template
            )
            if lookup.entry is not None:
                if lookup.result == "stale":
                    self._background.spawn(self.prerender(match, ctx.route_path, "revalidation"))
                body = b"".join(lookup.entry.chunks)
                return self._static_response(match, body, lookup.result)
            chunks = await self._render_complete(match, variant, ctx, span)
            self._full_route.store(
                ctx.route_path,
                variant,
                [c.data for c in chunks],
                tags=route_tags(self._definition, match),
                revalidate_s=route.revalidate,
                source=ctx.origin,
                source_trace_id=trace_id_of(span),
            )
            return self._static_response(match, b"".join(c.data for c in chunks), "miss")

    @staticmethod
    async def _until_done(chunks: AsyncIterator[Chunk], span: trace.Span) -> AsyncIterator[Chunk]:
        try:
            async for chunk in chunks:
                yield chunk
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            raise
        finally:
            span.end()

    def _static_response(self, match: RouteMatch, body: bytes, result: str) -> Rendered:
        route = match.route
        if route.render == "static":
            control = "s-maxage=31536000"
        else:
            control = f"s-maxage={route.revalidate:g}, stale-while-revalidate=31535999"
        return Rendered(
            iterate_chunks([Chunk(body, "shell")]),
            control,
            route_tags(self._definition, match),
            # As Next.js marks its prerendered output: @nextrace/next/client reads it.
            {"x-nextjs-cache": result.upper(), "x-nextjs-prerender": "1"},
        )

    async def prerender(
        self, match: RouteMatch, path: str, origin: Source, parent: trace.Span | None = None
    ) -> None:
        """Render a static or ISR route into the full route cache (build, ISR refresh), in the
        trace of ``parent`` (a deploy) or in a trace of its own."""
        ctx = RenderContext(origin=origin, route_path=path, route=match.pattern.template)
        name = f"render route (app) {match.pattern.template}"
        attrs = {
            semconv.NEXT_ROUTE: match.pattern.template,
            semconv.RENDER_MODE: match.route.render,
            semconv.REVALIDATE_TRIGGER: origin,
        }
        with self._telemetry.span(
            name, semconv.PHASE_RENDER, parent, attrs, span_type=nextjs.RENDER
        ) as span:
            for variant in ("html", "rsc"):
                chunks = await self._render_complete(match, variant, ctx, span)
                self._full_route.store(
                    path,
                    variant,
                    [c.data for c in chunks],
                    tags=route_tags(self._definition, match),
                    revalidate_s=match.route.revalidate,
                    source=ctx.origin,
                    source_trace_id=trace_id_of(span),
                )

    async def _render_complete(
        self, match: RouteMatch, variant: str, ctx: RenderContext, span: trace.Span
    ) -> list[Chunk]:
        return [chunk async for chunk in self._stream(match, variant, ctx, span)]

    async def _stream(
        self, match: RouteMatch, variant: str, ctx: RenderContext, span: trace.Span
    ) -> AsyncIterator[Chunk]:
        route = match.route
        planned = self._fetches_of(route)
        tasks = self._start_fetches(planned, match.params, ctx, span)
        loading = route.loading and route.render == "dynamic"
        groups: dict[str, list[str]] = {}
        for key, segment, fetch in planned:
            # With a loading fallback, the page's own data streams after the shell.
            group = fetch.boundary or ("page" if loading and segment == "page" else "shell")
            groups.setdefault(group, []).append(key)
        try:
            shell = await self._boundary([tasks[name] for name in groups.pop("shell", [])])
            body = self.payloads.shell(
                variant,
                match.pattern.template,
                ctx.route_path,
                loading=loading,
                links=route.links,
                fetched=shell,
                dynamic=route.render == "dynamic",
            )
            if not groups and not route.boundaries:
                yield Chunk(body + self.payloads.tail(variant), "shell")
                return
            yield Chunk(body, "shell")
            pending = {
                asyncio.ensure_future(self._boundary([tasks[n] for n in names])): name
                for name, names in groups.items()
            }
            # Boundaries declared without data still stream, right after the shell.
            for name in route.boundaries:
                if name not in groups:
                    pending[asyncio.ensure_future(self._boundary([]))] = name
            index = 1
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                finished = sorted((pending.pop(task), task.result()) for task in done)
                for position, (name, data) in enumerate(finished):
                    body = self.payloads.boundary(variant, index, name, data)
                    if not pending and position == len(finished) - 1:
                        body += self.payloads.tail(variant)  # the document ends with the last chunk
                    yield Chunk(body, name)
                    index += 1
        finally:
            for task in tasks.values():
                task.cancel()

    @staticmethod
    async def _boundary(tasks: list[asyncio.Task[Fetched]]) -> list[Fetched]:
        return list(await asyncio.gather(*tasks))

    def _fetches_of(self, route: Route) -> list[tuple[str, str, Fetch]]:
        """(key, segment, fetch) for every fetch of a render: layouts, page, then slots."""
        planned = [
            (f"layout:{name}:{f.name}", f"layout:{name}", f)
            for name in route.layouts
            for f in self._definition.layout(name).fetches
        ]
        planned += [(f.name, "page", f) for f in route.fetches]
        planned += [(f.name, slot.name, f) for slot in route.slots for f in slot.fetches]
        return planned

    def _start_fetches(
        self,
        planned: list[tuple[str, str, Fetch]],
        params: Params,
        ctx: RenderContext,
        span: trace.Span,
    ) -> dict[str, asyncio.Task[Fetched]]:
        """Start every fetch at once (parallel slots and segments alike), except waterfalls."""
        tasks: dict[str, asyncio.Task[Fetched]] = {}

        async def run(segment: str, fetch: Fetch) -> Fetched:
            if fetch.after is not None:
                await tasks[fetch.after]  # the waterfall: this fetch waits for another
            return await self._fetcher.run(fetch, params, ctx, span, segment)

        for key, segment, fetch in planned:
            tasks[key] = asyncio.ensure_future(run(segment, fetch))
        return tasks
