"""The span contract of the reference server, as constants.

``docs/semantic-conventions.md`` explains each name; dashboards and alerts
query these attributes, so a name here changes only together with that
document. Where a phase corresponds to a span of Next.js itself, the span
carries Next's ``next.span_type`` so that the same queries read real
Next.js traces.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.util.types import AttributeValue

# Every span
PHASE = "nextrace.phase"
BUILD_ID = "nextrace.build_id"

# Phases (values of nextrace.phase)
PHASE_REQUEST = "request"
PHASE_CDN = "cdn"
PHASE_MIDDLEWARE = "middleware"
PHASE_ROUTE = "route"
PHASE_RENDER = "render"
PHASE_CACHE = "cache"
PHASE_FETCH = "fetch"
PHASE_STREAM = "stream"
PHASE_PREFETCH = "prefetch"
PHASE_WARMUP = "warmup"
PHASE_REVALIDATE = "revalidate"
PHASE_DEPLOY = "deploy"
PHASE_NAVIGATION = "navigation"

# The request's server span
REQUEST_KIND = "nextrace.request.kind"
KIND_DOCUMENT = "document"
KIND_RSC_NAVIGATION = "rsc_navigation"
KIND_RSC_PREFETCH = "rsc_prefetch"
KIND_API = "api"
KIND_WEBHOOK = "webhook"
KIND_WARMUP = "warmup"
KIND_STATIC_ASSET = "static_asset"
NEXT_ROUTE = "next.route"
NEXT_RSC = "next.rsc"
NEXT_PREFETCH = "next.prefetch"
NEXT_SPAN_TYPE = "next.span_type"
NEXT_SPAN_NAME = "next.span_name"
HTTP_ROUTE = "http.route"
HTTP_RESPONSE_BODY_SIZE = "http.response.body.size"  # bytes of the body sent, on the request
MIDDLEWARE_MATCHED = "nextrace.middleware.matched"
MIDDLEWARE_ACTION = "nextrace.middleware.action"  # next, redirect, rewrite
RENDER_MODE = "nextrace.render.mode"  # static, isr, dynamic
INTERCEPTED = "nextrace.route.intercepted"

# Cache interactions
CACHE_LAYER = "cache.layer"  # cdn, full_route, data, request_memo, router
CACHE_RESULT = "cache.result"  # hit, miss, stale, bypass, revalidated
CACHE_MISS_REASON = "cache.miss_reason"
CACHE_KEY = "cache.key"
CACHE_TAGS = "cache.tags"
CACHE_SCOPE = "cache.scope"  # shared, private
CACHE_ENTRY_AGE_MS = "cache.entry.age_ms"
CACHE_ENTRY_SOURCE = "cache.entry.source"  # build, request, warmup, prefetch, revalidation
CACHE_ENTRY_SOURCE_TRACE_ID = "cache.entry.source_trace_id"
CACHE_ENTRY_SOURCE_INSTANCE = "cache.entry.source_instance"  # the instance that stored it
CACHE_WARMUP_PENDING = "nextrace.warmup.pending"  # a warm-up for this entry was still queued
# Next.js 16's 'use cache' handlers, as @nextrace/next's traceCacheHandler records them: the
# layer is use_cache, use_cache_remote or use_cache_<name> (the handler's name in next.config).
CACHE_HIT = "cache.hit"  # true on a hit, as OpenTelemetry's and Sentry's cache spans say it
SERVICE_INSTANCE_ID = "service.instance.id"  # OpenTelemetry's resource attribute: which instance
CACHE_KIND = "nextrace.cache.kind"  # the layer of a handler's span: use_cache, use_cache_remote…
CACHE_SHARED = "nextrace.cache.shared"  # whether every instance reads the handler's store
CACHE_FUNCTION = "nextrace.cache.function"  # the cached function: file#export in its build
CACHE_ENTRY_KIND = "nextrace.cache.entry_kind"  # an incremental entry's: FETCH, APP_PAGE…
CACHE_HANDLER = "nextrace.cache.handler"  # default, remote, or the app's own name
CACHE_OPERATION = "nextrace.cache.operation"  # get (a lookup), set (a fill)
CACHE_LIFE_REVALIDATE_S = "nextrace.cache.life.revalidate_s"  # the entry's cacheLife
CACHE_LIFE_EXPIRE_S = "nextrace.cache.life.expire_s"
CACHE_LIFE_STALE_S = "nextrace.cache.life.stale_s"
ROUTER_RESULT_DETAIL = "nextrace.router.result"  # hit, partial (loading state first), miss
ROUTER_PAYLOAD = "nextrace.router.payload"  # full, loading, empty

# The virtual browsers' navigations and prefetches
BROWSER_ID = "nextrace.browser.id"
NAVIGATION_TYPE = "nextrace.navigation.type"  # document, soft, back, forward
NAVIGATION_ROUTER_CACHE = "nextrace.navigation.router_cache"  # hit, partial, miss
NAVIGATION_HREF = "nextrace.navigation.href"
PREFETCH_MODE = "nextrace.prefetch.mode"  # auto, full
PREFETCH_TRIGGER = "nextrace.prefetch.trigger"  # viewport, hover
PREFETCH_CACHED = "nextrace.prefetch.cached"  # whether the router cache kept the payload

# Fetches
FETCH_UPSTREAM = "nextrace.fetch.upstream"
FETCH_SEGMENT = "nextrace.fetch.segment"  # page, layout:NAME, or a parallel slot @NAME
FETCH_CACHE_OPTION = "nextrace.fetch.cache"  # force-cache, no-store, revalidate
FETCH_SEQUENTIAL_AFTER = "nextrace.fetch.after"  # the fetch this one waited for (waterfall)
FETCH_BOUNDARY = "nextrace.fetch.boundary"
NEXT_FETCH_CACHE_STATUS = "next.fetch.cache_status"  # as real Next.js: hit, miss, skip
NEXT_FETCH_CACHE_REASON = "next.fetch.cache_reason"
# A fetch's cache tags on a real Next.js fetch span: @nextrace/next records them, Next does not.
NEXT_FETCH_TAGS = "next.fetch.tags"

# Streaming
STREAM_TTFB_MS = "nextrace.stream.ttfb_ms"
STREAM_CHUNKS = "nextrace.stream.chunks"
STREAM_BYTES = "nextrace.stream.bytes"
CHUNK_EVENT = "chunk"
CHUNK_OFFSET_MS = "nextrace.chunk.offset_ms"
CHUNK_SIZE = "nextrace.chunk.size"
CHUNK_BOUNDARY = "nextrace.chunk.boundary"

# Prefetch
PREFETCH_PAYLOAD = "nextrace.prefetch.payload"  # full, loading, empty

# Warm-ups, revalidations, deploys
WARMUP_TRIGGER = "nextrace.warmup.trigger"  # middleware, webhook, deploy
WARMUP_TARGET = "nextrace.warmup.target"
WARMUP_OUTCOME = "nextrace.warmup.outcome"  # ok, error, queue_full, deduplicated
WARMUP_QUEUE_WAIT_MS = "nextrace.warmup.queue_wait_ms"
WARMUP_RATE_PER_S = "nextrace.warmup.rate_per_s"  # the upstream calls a second warm-ups may make
WARMUP_FIRED = "nextrace.warmup.fired"
WARMUP_COST_MS = "nextrace.warmup.cost_ms"
REVALIDATE_TRIGGER = "nextrace.revalidate.trigger"
REVALIDATE_TARGET = "nextrace.revalidate.target"
REVALIDATE_KIND = "nextrace.revalidate.kind"  # tag, path
REVALIDATE_PROFILE = "nextrace.revalidate.profile"  # max, expire
REVALIDATE_OUTCOME = "nextrace.revalidate.outcome"
# The call a real app made, as @nextrace/next records it: revalidateTag, revalidatePath, updateTag,
# or a 'use cache' handler's updateTags.
REVALIDATE_CALL = "nextrace.revalidate.call"
REVALIDATE_INVALIDATED = "nextrace.revalidate.invalidated"  # blast radius
DEPLOY_PREVIOUS_BUILD_ID = "nextrace.deploy.previous_build_id"
DEPLOY_KEEP_DATA_CACHE = "nextrace.deploy.keep_data_cache"
DEPLOY_WARM_ROUTES = "nextrace.deploy.warm_routes"


def cache_lookup_attributes(
    *,
    layer: str,
    result: str,
    key: str,
    scope: str,
    reason: str | None = None,
    age_ms: float | None = None,
    source: str | None = None,
    source_trace_id: str | None = None,
    tags: Sequence[str] = (),
    route: str = "",
) -> dict[str, AttributeValue]:
    """The attributes of one cache lookup span, of any layer, server or browser.

    A miss reason is recorded only for a lookup that did not hit; the entry's age and
    source only when an entry was found.
    """
    attrs: dict[str, AttributeValue] = {
        CACHE_LAYER: layer,
        CACHE_RESULT: result,
        CACHE_KEY: key,
        CACHE_SCOPE: scope,
    }
    if route:
        attrs[NEXT_ROUTE] = route
    if reason is not None and result != "hit":
        attrs[CACHE_MISS_REASON] = reason
    if age_ms is not None:
        attrs[CACHE_ENTRY_AGE_MS] = round(age_ms, 3)
    if source is not None:
        attrs[CACHE_ENTRY_SOURCE] = source
    if source_trace_id is not None:
        attrs[CACHE_ENTRY_SOURCE_TRACE_ID] = source_trace_id
    if tags:
        attrs[CACHE_TAGS] = list(tags)
    return attrs
