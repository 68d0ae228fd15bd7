"""The data-fetch phase: request memoization, then the data cache, then the upstream.

Within one render, identical fetches share one call (request memoization).
Across requests, the data cache answers by the fetch's cache option; a stale
entry is served at once while a background fetch refreshes it, as Next.js
does. Who filled an entry (``build``, ``request``, ``warmup``, ``prefetch``,
``revalidation``) and the trace that did it are recorded on the entry and
reported on every later hit.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from contract import nextjs, semconv
from instrumented_server.background import BackgroundTasks, RateLimiter
from instrumented_server.cache_life import CacheLife
from instrumented_server.caching import Lookup, Source
from instrumented_server.data_cache import DataCache, data_key
from instrumented_server.definition import Fetch, UseCache
from instrumented_server.payloads import Fetched
from instrumented_server.telemetry import ServerTelemetry, trace_id_of
from instrumented_server.upstreams import Upstreams
from instrumented_server.use_cache import LAYERS, UseCacheEntry, UseCacheStores, use_cache_key

Params = dict[str, str | list[str]]
UPSTREAM_CALL_EVENT = "upstream call"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class RenderContext:
    """What a render knows about why it runs and for whom."""

    origin: Source  # who will be recorded as having filled cache entries
    route_path: str  # the concrete URL path being rendered
    route: str = ""  # its route template, set by the renderer
    session: str | None = None  # the user's session, for private data
    limiter: RateLimiter | None = None  # set for background work
    # Fetch afresh and store, without reading the cache: a deploy's warm-up, whose entries
    # must be its own to survive the switch (instrumented_server/deploy.py).
    refill: bool = False
    instance: int = 0  # which of the app's instances renders, behind the CDN
    memo: dict[str, asyncio.Future[Fetched]] = field(default_factory=dict)


def warmup_target(key: str) -> str:
    """The warm-up job target that fills the data-cache entry ``key``."""
    return f"data:{key}"


def fill_params(template: str, params: Params) -> str:
    """``template`` with each {param} replaced; an absent optional catch-all fills in as ''."""
    values = {k: "/".join(v) if isinstance(v, list) else v for k, v in params.items()}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def fetch_path(fetch: Fetch, params: Params) -> str:
    return fill_params(fetch.path, params)


def fetch_tags(fetch: Fetch, params: Params) -> tuple[str, ...]:
    return tuple(fill_params(tag, params) for tag in fetch.tags)


_NEXT_CACHE_STATUS = {"hit": "hit", "stale": "hit", "miss": "miss", "bypass": "skip"}


class FetchRunner:
    def __init__(
        self,
        upstreams: Upstreams,
        data_cache: DataCache,
        telemetry: ServerTelemetry,
        background: BackgroundTasks,
        use_caches: UseCacheStores,
        life_of: Callable[[Fetch], CacheLife],
        warmup_pending: Callable[[str], bool] = lambda _target: False,
    ) -> None:
        self._upstreams = upstreams
        self._cache = data_cache
        self._use_caches = use_caches
        self._life_of = life_of
        self._telemetry = telemetry
        self._background = background
        self._warmup_pending = warmup_pending

    def instance_of(self, ctx: RenderContext) -> str:
        """The ``service.instance.id`` of the instance that renders ``ctx``."""
        return self._use_caches.instances[ctx.instance]

    async def run(
        self,
        fetch: Fetch,
        params: Params,
        ctx: RenderContext,
        parent: trace.Span,
        segment: str = "page",
    ) -> Fetched:
        """Run ``fetch`` for the ``segment`` (``page``, ``layout:NAME`` or a ``@slot``)."""
        path = fetch_path(fetch, params)
        cacheable = fetch.cache != "no-store" and (fetch.scope == "shared" or ctx.session)
        key = (
            data_key(fetch.upstream, path, fetch.scope, ctx.session)
            if cacheable
            else (f"{fetch.upstream}{path}")
        )
        # A 'use cache' function's call is memoized as itself: two functions may read one URL.
        memo_key = f"{fetch.cache}|{key}" if fetch.directive is None else f"{fetch.name}|{key}"
        pending = ctx.memo.get(memo_key)
        instance = self.instance_of(ctx)
        self._telemetry.record_cache(
            parent,
            "request_memo",
            Lookup("hit") if pending is not None else Lookup("miss", "cold"),
            memo_key,
            scope=fetch.scope,
            route=ctx.route,
            instance=instance,
        )
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Fetched] = asyncio.get_running_loop().create_future()
        ctx.memo[memo_key] = future
        try:
            tags = fetch_tags(fetch, params)
            if fetch.directive is not None:
                value = await self._use_cache(
                    fetch, fetch.directive, path, tags, ctx, parent, segment
                )
            else:
                value = await self._fetch(
                    fetch, path, key, tags, bool(cacheable), ctx, parent, segment
                )
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it themselves
            raise
        future.set_result(value)
        return value

    async def _fetch(
        self,
        fetch: Fetch,
        path: str,
        key: str,
        tags: tuple[str, ...],
        cacheable: bool,
        ctx: RenderContext,
        parent: trace.Span,
        segment: str,
    ) -> Fetched:
        attributes = {
            semconv.FETCH_SEGMENT: segment,
            semconv.FETCH_UPSTREAM: fetch.upstream,
            semconv.FETCH_CACHE_OPTION: fetch.cache,
            "http.method": "GET",
            "http.request.method": "GET",
            "url.full": f"http://{fetch.upstream}{path}",
        }
        if fetch.after:
            attributes[semconv.FETCH_SEQUENTIAL_AFTER] = fetch.after
        if fetch.boundary:
            attributes[semconv.FETCH_BOUNDARY] = fetch.boundary
        name = f"fetch GET {fetch.upstream}{fetch.path}"
        with self._telemetry.span(
            name,
            semconv.PHASE_FETCH,
            parent,
            attributes,
            kind=SpanKind.CLIENT,
            span_type=nextjs.FETCH,
            instance=self.instance_of(ctx),
        ) as span:
            read = cacheable and not ctx.refill
            lookup = self._cache.lookup(key) if read else Lookup("bypass", "bypass")
            extra = {}
            queued = self._warmup_pending
            if (
                lookup.result != "hit"
                and ctx.origin != "warmup"
                and (queued(warmup_target(key)) or queued(f"route:{ctx.route_path}"))
            ):
                extra[semconv.CACHE_WARMUP_PENDING] = True  # a warm-up was about to fill it
            self._telemetry.record_cache(
                span,
                "data",
                lookup,
                key,
                scope=fetch.scope,
                extra=extra,
                route=ctx.route,
                instance=self.instance_of(ctx),
            )
            span.set_attribute(semconv.NEXT_FETCH_CACHE_STATUS, _NEXT_CACHE_STATUS[lookup.result])
            if lookup.reason:
                span.set_attribute(semconv.NEXT_FETCH_CACHE_REASON, lookup.reason)
            if lookup.entry is not None:
                if lookup.result == "stale":
                    self._background.spawn(
                        self._refresh(fetch, path, key, tags, ctx.route_path, ctx.limiter, span)
                    )
                return Fetched(lookup.entry.value, lookup.result)
            value = await self._call(fetch, path, ctx.origin, ctx.limiter, span)
            if cacheable:
                self._store(
                    fetch, path, key, value, ctx.origin, trace_id_of(span), ctx.route_path, tags
                )
            return Fetched(value, lookup.result)

    async def _use_cache(
        self,
        fetch: Fetch,
        directive: UseCache,
        path: str,
        tags: tuple[str, ...],
        ctx: RenderContext,
        parent: trace.Span,
        segment: str,
    ) -> Fetched:
        """A ``'use cache'`` function's call: its handler's lookup, and on a miss the function
        (its fetch) and the handler's fill; a stale entry is served while the function runs
        again in the background. Spans are the instance's, shaped as
        ``@nextrace/next/cache-handler`` shapes a handler's ``get`` and ``set``."""
        key = use_cache_key(fetch.name, fetch.upstream, path)
        instance = self.instance_of(ctx)
        layer = LAYERS[directive]
        lookup = (
            self._use_caches.lookup(directive, ctx.instance, key)
            if not ctx.refill
            else Lookup[UseCacheEntry]("bypass", "bypass")
        )
        handler = {
            semconv.CACHE_KIND: layer,
            semconv.CACHE_FUNCTION: fetch.name,
            semconv.CACHE_SHARED: directive == "use cache: remote",
        }
        extra: dict[str, object] = {
            **handler,
            semconv.CACHE_OPERATION: "get",
            semconv.CACHE_HIT: lookup.result in ("hit", "stale"),
        }
        if lookup.entry is not None:
            extra[semconv.CACHE_ENTRY_SOURCE_INSTANCE] = lookup.entry.instance
        self._telemetry.record_cache(
            parent,
            layer,
            lookup,
            key,
            scope=fetch.scope,
            extra=extra,
            route=ctx.route,
            instance=instance,
        )
        if lookup.entry is not None:
            if lookup.result == "stale":
                self._background.spawn(
                    self._run_function(
                        fetch, directive, path, key, tags, ctx, parent, segment, handler, again=True
                    )
                )
            return Fetched(lookup.entry.value, lookup.result)
        value = await self._run_function(
            fetch, directive, path, key, tags, ctx, parent, segment, handler
        )
        return Fetched(value, lookup.result)

    async def _run_function(
        self,
        fetch: Fetch,
        directive: UseCache,
        path: str,
        key: str,
        tags: tuple[str, ...],
        ctx: RenderContext,
        parent: trace.Span,
        segment: str,
        handler: dict[str, object],
        *,
        again: bool = False,
    ) -> object:
        """Run a ``'use cache'`` function (its fetch) and fill its handler; ``again``: in the
        background, to refresh a stale entry (failures keep the stale entry)."""
        instance = self.instance_of(ctx)
        attributes: dict[str, object] = {
            semconv.FETCH_SEGMENT: segment,
            semconv.FETCH_UPSTREAM: fetch.upstream,
            semconv.FETCH_CACHE_OPTION: directive,
            semconv.CACHE_FUNCTION: fetch.name,
            "http.request.method": "GET",
            "url.full": f"http://{fetch.upstream}{path}",
        }
        if again:
            attributes[semconv.REVALIDATE_TRIGGER] = "stale"
        source: Source = "revalidation" if again else ctx.origin
        with self._telemetry.span(
            f"fetch GET {fetch.upstream}{fetch.path}",
            semconv.PHASE_FETCH,
            parent,
            attributes,
            kind=SpanKind.CLIENT,
            span_type=nextjs.FETCH,
            instance=instance,
        ) as span:
            try:
                value = await self._call(fetch, path, source, ctx.limiter, span)
            except Exception:
                if again:
                    return None  # the stale entry stays; the span says why
                raise
        life = self._life_of(fetch)
        stored = self._use_caches.store(
            directive,
            ctx.instance,
            key,
            function=fetch.name,
            value=value,
            tags=tags,
            life=life,
            source=source,
            source_trace_id=trace_id_of(span),
        )
        if stored is not None:
            fill = {
                **handler,
                semconv.CACHE_OPERATION: "set",
                semconv.CACHE_KEY: key,
                semconv.CACHE_LIFE_REVALIDATE_S: life.revalidate,
                semconv.CACHE_LIFE_EXPIRE_S: life.expire,
                semconv.CACHE_LIFE_STALE_S: life.stale,
                semconv.CACHE_TAGS: list(tags),
            }
            with self._telemetry.span(
                f"{fill[semconv.CACHE_KIND]} cache fill",
                semconv.PHASE_CACHE,
                parent,
                fill,
                instance=instance,
            ):
                pass
        return value

    async def _call(
        self, fetch: Fetch, path: str, origin: str, limiter: RateLimiter | None, span: trace.Span
    ) -> object:
        if limiter is not None:
            await limiter.acquire()
        span.add_event(UPSTREAM_CALL_EVENT)  # when the call really left, after any rate limit
        try:
            return await self._upstreams[fetch.upstream].get(path, origin)
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            raise

    def _store(
        self,
        fetch: Fetch,
        path: str,
        key: str,
        value: object,
        source: Source,
        trace_id: str,
        route_path: str,
        tags: tuple[str, ...],
    ) -> None:
        self._cache.store(
            key,
            upstream=fetch.upstream,
            path=path,
            scope=fetch.scope,
            value=value,
            tags=tags,
            revalidate_s=fetch.revalidate,
            source=source,
            source_trace_id=trace_id,
            route_path=route_path,
        )

    async def _refresh(
        self,
        fetch: Fetch,
        path: str,
        key: str,
        tags: tuple[str, ...],
        route_path: str,
        limiter: RateLimiter | None,
        parent: trace.Span,
    ) -> None:
        """Stale-while-revalidate: a background fetch under the stale hit refills the entry."""
        with self._telemetry.span(
            f"fetch GET {fetch.upstream}{fetch.path}",
            semconv.PHASE_FETCH,
            parent,
            {
                semconv.FETCH_UPSTREAM: fetch.upstream,
                semconv.FETCH_CACHE_OPTION: fetch.cache,
                semconv.REVALIDATE_TRIGGER: "stale",
            },
            kind=SpanKind.CLIENT,
            span_type=nextjs.FETCH,
        ) as span:
            try:
                value = await self._call(fetch, path, "revalidation", limiter, span)
            except Exception:
                return  # the stale value stays; the span says why
            self._store(
                fetch, path, key, value, "revalidation", trace_id_of(span), route_path, tags
            )

    async def warm(self, target: WarmTarget, limiter: RateLimiter, parent: trace.Span) -> None:
        """Fill one data-cache entry as a warm-up, without reading the cache first."""
        key = data_key(target.upstream, target.path, target.scope, target.session)
        with self._telemetry.span(
            f"fetch GET {target.upstream}{target.template}",
            semconv.PHASE_FETCH,
            parent,
            {
                semconv.FETCH_UPSTREAM: target.upstream,
                semconv.CACHE_SCOPE: target.scope,
                semconv.CACHE_KEY: key,
            },
            kind=SpanKind.CLIENT,
            span_type=nextjs.FETCH,
        ) as span:
            if limiter is not None:
                await limiter.acquire()
            span.add_event(UPSTREAM_CALL_EVENT)
            try:
                value = await self._upstreams[target.upstream].get(target.path, "warmup")
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            self._cache.store(
                key,
                upstream=target.upstream,
                path=target.path,
                scope=target.scope,
                value=value,
                tags=target.tags,
                revalidate_s=target.revalidate_s,
                source="warmup",
                source_trace_id=trace_id_of(span),
            )


@dataclass(frozen=True)
class WarmTarget:
    """One data-cache entry that a warm-up fills."""

    upstream: str
    template: str
    path: str
    tags: tuple[str, ...]
    revalidate_s: float | None
    scope: str = "shared"
    session: str | None = None

    @classmethod
    def of_fetch(cls, fetch: Fetch, params: Params, session: str | None = None) -> WarmTarget:
        return cls(
            fetch.upstream,
            fetch.path,
            fetch_path(fetch, params),
            fetch_tags(fetch, params),
            fetch.revalidate,
            fetch.scope,
            session if fetch.scope == "private" else None,
        )

    @property
    def key(self) -> str:
        return data_key(self.upstream, self.path, self.scope, self.session)
