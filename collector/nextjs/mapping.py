"""What a real Next.js trace means, in nextrace's own terms: the whole mapping, in one place.

The reference server writes its analysis fields (request kind, route, cache
results…) onto its spans. Next.js does not: it names its spans after its own
code (``next.span_type``) and leaves cache results, prefetches and the real
status to be read from the shape of the trace. :func:`normalize_trace` reads
one trace and returns the rows the dashboards need, one :class:`RequestRow`
per request and one :class:`CacheEventRow` per cache lookup it can see. The raw
spans are stored untouched; these rows go to tables of their own.

docs/semantic-conventions.md ("Real Next.js traces") states each rule and
what Next.js cannot tell us. In short:

- **Request**: the outermost ``BaseServer.handleRequest`` span. When a proxy
  (middleware) matches, Next.js nests a second one that has the real route and
  status, and may end after its parent.
- **Kind**: ``warmup`` for a request of a warm-up's trace (the helper's ``warmupQueue``) or
  one whose spans carry its ``nextrace.warmup.trigger``; ``api`` for route handlers;
  ``static_asset`` for a file name (``/favicon.ico``) that no dynamic page rendered; for RSC
  requests (``next.rsc``), ``next.prefetch`` when the optional helper recorded the prefetch
  headers, else the shape: a page segment (``__PAGE__``) or a data fetch means the page was
  rendered, so it is a navigation; otherwise a prefetch.
- **Next.js 15**: a middleware pass that lets the request go on (``next.bubble``, with no
  request span inside it) is not a request; the rest of the request is its own span, in the
  same trace when the request came with a ``traceparent``, else in a trace of its own. The
  pass is joined to its request by what both spans carry (:func:`pass_of`: service, method,
  target, ending just before the request starts), and its ``Middleware.execute`` time is the
  request's ``MiddlewareMs``; across traces, through the passes the collector saw last
  (:class:`MiddlewarePasses`).
- **Data cache**: ``AppRender.fetch`` spans' ``next.fetch.cache_status`` (Next 15 has none:
  the HTTP client span under the fetch tells a hit, a blocking miss and a stale read apart,
  but not an uncached fetch from a miss, see :func:`_network_result`); a hit
  with a fetch under it is a stale hit refreshing in the background; the helper's
  ``nextrace.warmup.pending`` says a queued warm-up had not filled the entry yet.
- **Full route cache**: only when the optional helper (the npm package in js/next)
  recorded ``x-nextjs-cache`` on the request span.
- **Cache handlers**: the lookups (``nextrace.cache.operation`` ``get``) that
  ``@nextrace/next/cache-handler`` records under the request, a layer per handler
  (``nextrace.cache.kind``: a ``'use cache'`` handler's, or ``incremental``), with the outcome
  the handler's entry gave; fills are not rows.
- **Instance**: every lookup carries its request's ``service.instance.id``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from collector.consumer import Columns
from collector.nextjs.miss_reasons import LookupFacts, tags
from collector.nextjs.rows import CacheEventRow, RequestRow
from contract import semconv
from contract.nextjs import (
    FETCH,
    HELPER_SCOPE,
    MIDDLEWARE,
    NEXTJS_SCOPES,
    RENDER,
    REQUEST,
    ROUTE_HANDLER,
    ROUTE_SPANS,
    SEGMENT,
    START_RESPONSE,
    VERCEL_FETCH_SCOPE,
    served_route,
)

FETCH_SPAN_FIX = (
    "Next.js's own fetch span (AppRender.fetch, the only one that says whether the data cache "
    "hit) is off, so its data cache is invisible: set process.env.NEXT_OTEL_FETCH_DISABLED = "
    "'0' in instrumentation.js after registerOTel(), as examples/nextjs/instrumentation.js does"
)

PAGE_SEGMENT = "__PAGE__"
FILE_NAME = re.compile(r"/[^/]+\.[A-Za-z0-9]{1,8}$")  # a path whose last segment has an extension
PREFETCH = "next.prefetch"  # recorded by the optional helper, as the reference server does
NEXTJS_CACHE = "http.response.header.x-nextjs-cache"  # recorded by the optional helper
BODY_SIZE = "http.response.body.size"  # recorded by the optional helper
FETCH_TAGS = semconv.NEXT_FETCH_TAGS  # recorded by the optional helper
FETCH_CACHE_REASON = "next.fetch.cache_reason"  # Next.js's own, e.g. "revalidate: 60"
# A revalidation span (phase "revalidate", with its kind and target) is recorded by the optional
# helper's traceRevalidations. A warm-up, recorded by its warmupQueue, is its own trace, whose
# root span is in phase "warmup"; the app's request spans of its request carry its trigger; a
# fetch span that a queued warm-up had not filled yet carries nextrace.warmup.pending.

# x-nextjs-cache -> the full route cache's (cache.result, cache.miss_reason).
FULL_ROUTE_RESULTS = {
    "HIT": ("hit", ""),
    "STALE": ("stale", "unknown"),
    "MISS": ("miss", "unknown"),
    "REVALIDATED": ("miss", "unknown"),
}

HANDLER_RESULTS = frozenset({"hit", "stale", "miss"})  # what @nextrace/next's handlers record
# next.fetch.cache_status -> (cache.result, cache.miss_reason). Next.js does not say why
# an entry was missing or stale: "unknown" here; collector/nextjs/miss_reasons.py tells what it can.
FETCH_RESULTS = {
    "hit": ("hit", ""),
    "miss": ("miss", "unknown"),
    "skip": ("bypass", "bypass"),
}
# Next 16 reports a lookup that found no entry as a skip with this reason (patch-fetch.js,
# written for a browser's hard refresh in development); in production it is a miss.
MISSING_ENTRY = "cache-control: no-cache (hard refresh)"
# Next.js gives a fetch inside ``unstable_cache`` this reason (patch-fetch.js: "inside
# unstable-cache we treat it the same as force-no-store"): it runs only when the function's
# entry was missing or expired, so it is that entry's miss. A route that sets
# ``fetchCache = 'force-no-store'`` gets the same reason for every fetch: where all of a
# request's fetches, two at least, carry it, they are that setting's bypasses; a route with one
# fetch reads as a miss either way.
UNSTABLE_CACHE_RUN = "fetchCache = force-no-store"
OUTLIVED_NS = 5_000_000  # a call answered this much after its fetch ended: a background refresh
RESPONSE_TIME = "http.response_time"  # @vercel/otel's, on its client span: ms to the answer
# What an HTTP client span records when its answer comes (@vercel/otel's; the second is the
# current semantic conventions'). A client span without any of them ended before its answer.
ANSWER_ATTRIBUTES = ("http.status_code", "http.response.status_code", RESPONSE_TIME)
# Span start times have millisecond resolution (Date.now()), so two spans' ends, each its
# start plus a precise duration, may be out of order by up to this much.
END_ROUNDING_NS = 1_000_000
BUBBLE = "next.bubble"  # on a request span: a middleware pass that let the request go on
# A Next.js 15 middleware pass hands its request over within this (0.1 to 10 ms measured on
# the captures), and Next.js truncates start times to the millisecond, so the request may seem
# to start up to this much before the pass ended.
PASS_WINDOW_NS = 1_000_000_000
PASS_ROUNDING_NS = 2_000_000


@dataclass(slots=True)  # not frozen: built for every span of a Next.js trace, so kept cheap
class TraceSpan:
    """The parts of a stored span that the mapping reads."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    scope: str
    start_ns: int
    duration_ns: int
    service: str
    attributes: dict[str, str]
    resource: dict[str, str]
    span_type: str  # next.span_type

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ns


def trace_spans(columns: Columns) -> Iterator[TraceSpan]:
    """A :class:`TraceSpan` per span of ``columns``, its fields in their order (positional,
    column by column: a third of the time of one call with keywords per span)."""
    return map(
        TraceSpan,
        columns.trace_id,
        columns.span_id,
        columns.parent_span_id,
        columns.span_name,
        columns.span_kind,
        columns.scope_name,
        columns.timestamp,
        columns.duration,
        columns.service_name,
        columns.span_attributes,
        columns.resource_attributes,
        [attributes.get("next.span_type", "") for attributes in columns.span_attributes],
    )


PassKey = tuple[str, str, str, str]  # service, method, target, next.rsc


def pass_key(service: str, attributes: dict[str, str]) -> PassKey:
    """What a middleware pass and the request it let go on both carry."""
    return (
        service,
        attributes.get("http.method", ""),
        attributes.get("http.target", ""),
        attributes.get("next.rsc", ""),
    )


@dataclass(frozen=True, slots=True)
class MiddlewarePass:
    """A Next.js 15 middleware pass (a ``next.bubble`` request span with no request in it)."""

    key: PassKey
    trace_id: str
    span_id: str
    start_ns: int
    end_ns: int
    middleware_ns: int | None  # its Middleware.execute time; None when no such span came


def pass_of(
    key: PassKey, request_start_ns: int, passes: Iterable[MiddlewarePass]
) -> MiddlewarePass | None:
    """The pass of ``passes`` that let a request of ``key`` starting at ``request_start_ns`` go
    on: the latest of the same key that ended before it started (within the millisecond
    rounding), at most :data:`PASS_WINDOW_NS` before."""
    fitting = [
        p
        for p in passes
        if p.key == key
        and p.start_ns <= request_start_ns
        and request_start_ns - PASS_WINDOW_NS <= p.end_ns <= request_start_ns + PASS_ROUNDING_NS
    ]
    return max(fitting, key=lambda p: p.end_ns, default=None)


class MiddlewarePasses:
    """The middleware passes seen last, for requests whose pass came in a trace of its own.
    Bounded to ``max_passes`` (the oldest go first); thread-safe."""

    def __init__(self, max_passes: int = 10_000) -> None:
        self._max = max_passes
        self._passes: OrderedDict[str, MiddlewarePass] = OrderedDict()  # by span id
        self._lock = threading.Lock()

    def add(self, found: Iterable[MiddlewarePass]) -> None:
        with self._lock:
            for one in found:
                self._passes[one.span_id] = one
                self._passes.move_to_end(one.span_id)
            while len(self._passes) > self._max:
                self._passes.popitem(last=False)

    def find(self, key: PassKey, request_start_ns: int) -> MiddlewarePass | None:
        with self._lock:
            return pass_of(key, request_start_ns, list(self._passes.values()))


def is_nextjs(scope: str) -> bool:
    return scope in NEXTJS_SCOPES


def hides_data_cache(spans: Sequence[TraceSpan]) -> bool:
    """Whether a trace fetched (``@vercel/otel``'s fetch span) without Next.js's own fetch
    span, which ``@vercel/otel`` turns off by default (see :data:`FETCH_SPAN_FIX`), and
    without a span of its incremental cache handler (``@nextrace/next/cache-handler``), which
    shows the data cache too."""
    fetched = any(s.scope == VERCEL_FETCH_SCOPE for s in spans)
    return fetched and not any(s.span_type == FETCH or _incremental(s) for s in spans)


def _incremental(span: TraceSpan) -> bool:
    return is_handler_span(span) and span.attributes.get(semconv.CACHE_KIND) == "incremental"


def normalize_trace(
    spans: Sequence[TraceSpan], passes: MiddlewarePasses | None = None
) -> tuple[list[RequestRow], list[CacheEventRow]]:
    """The request and cache rows of one Next.js trace (possibly incomplete). ``passes``: the
    middleware passes of earlier traces, for a request whose pass is not in this one (and this
    trace's passes are added to them)."""
    by_id: dict[str, TraceSpan] = {}
    children: dict[str, list[TraceSpan]] = {}
    warmups: set[str] = set()
    for span in spans:
        by_id[span.span_id] = span
        children.setdefault(span.parent_id, []).append(span)
        if span.attributes.get(semconv.PHASE) == semconv.PHASE_WARMUP:
            warmups.add(span.span_id)

    def ancestors(span: TraceSpan) -> Iterable[TraceSpan]:
        seen = {span.span_id}
        while span.parent_id in by_id and span.parent_id not in seen:
            span = by_id[span.parent_id]
            seen.add(span.span_id)
            yield span

    # A warm-up's trace (its root span is the helper's): every request in it is the warm-up's,
    # and a fetch right under the root is the warm-up calling the app, not a cache lookup.
    if warmups:
        spans = [s for s in spans if not (s.span_type == FETCH and s.parent_id in warmups)]
    by_type = _by_type(spans)
    handlers = by_type.get(REQUEST, [])
    outermost = [h for h in handlers if not any(a.span_type == REQUEST for a in ancestors(h))]
    requests: list[RequestRow] = []
    events: list[CacheEventRow] = []
    # Next.js 15's passes through a Node.js middleware that let the request go on: it serves
    # the rest as a request span of its own, beside the pass, often in a trace of its own (Next
    # 16 nests it inside the pass). That one is the request.
    inside = {id(a) for h in handlers for a in ancestors(h)}
    passes_here = [
        _middleware_pass(h, children)
        for h in outermost
        if h.attributes.get(BUBBLE) == "true" and id(h) not in inside
    ]
    if passes is not None and passes_here:
        passes.add(passes_here)
    pass_ids = {p.span_id for p in passes_here}
    for request in sorted(outermost, key=lambda s: s.start_ns):
        if request.span_id in pass_ids:
            continue
        if len(outermost) == 1:
            members, member_types = spans, by_type  # a detached middleware span belongs to it
        else:
            members = [s for s in spans if s is request or any(a is request for a in ancestors(s))]
            member_types = _by_type(members)
        # The prefetch headers the helper recorded, on any span of the request.
        recorded = next((s.attributes[PREFETCH] for s in members if PREFETCH in s.attributes), None)
        row = _request_row(request, recorded, member_types, warmup=bool(warmups))
        if row.middleware_ms is None:
            key = pass_key(request.service, request.attributes)
            found = pass_of(key, request.start_ns, passes_here)
            if found is None and passes is not None:
                found = passes.find(key, request.start_ns)
            if found is not None and found.middleware_ns is not None:
                row.middleware_ms = found.middleware_ns / 1e6
        requests.append(row)
        lookups = _data_cache_events(row, member_types, children)
        if recorded is not None:
            lookups += _full_route_event(row, member_types)
        lookups += _handler_events(row, member_types.get("", []))
        if instance := request.resource.get(semconv.SERVICE_INSTANCE_ID, ""):
            for event in lookups:
                event.instance = instance  # rows made just now, for this request alone
        events += lookups
    return requests, events


def _middleware_pass(span: TraceSpan, children: dict[str, list[TraceSpan]]) -> MiddlewarePass:
    """The pass ``span`` is, with the time of the ``Middleware.execute`` spans under it."""
    timed, stack = [], list(children.get(span.span_id, []))
    while stack:
        child = stack.pop()
        if child.span_type == MIDDLEWARE:
            timed.append(child.duration_ns)
        stack.extend(children.get(child.span_id, []))
    return MiddlewarePass(
        key=pass_key(span.service, span.attributes),
        trace_id=span.trace_id,
        span_id=span.span_id,
        start_ns=span.start_ns,
        end_ns=span.end_ns,
        middleware_ns=sum(timed) if timed else None,
    )


def _by_type(spans: Iterable[TraceSpan]) -> dict[str, list[TraceSpan]]:
    """``spans`` by their ``next.span_type``."""
    by_type: dict[str, list[TraceSpan]] = {}
    for span in spans:
        by_type.setdefault(span.span_type, []).append(span)
    return by_type


def _request_row(
    request: TraceSpan,
    recorded: str | None,
    by_type: dict[str, list[TraceSpan]],
    *,
    warmup: bool,
) -> RequestRow:
    handlers = sorted(by_type.get(REQUEST, []), key=lambda s: s.start_ns)
    # The outer span of a request that a proxy matched reports 200 even for a 404; the
    # innermost span that has a status has the real one.
    status = next(
        (
            s.attributes["http.status_code"]
            for s in reversed(handlers)
            if s.attributes.get("http.status_code")
        ),
        "",
    )
    attrs = request.attributes
    route = served_route(_route(handlers, by_type), by_type.keys())
    method = attrs.get("http.method") or request.name.removeprefix("RSC ").split(" ")[0]
    path = attrs.get("http.target", "").split("?")[0]
    kind, source, prefetch = _kind(attrs, route, path, recorded or "", by_type, warmup=warmup)
    return RequestRow(
        timestamp_ns=request.start_ns,
        trace_id=request.trace_id,
        span_id=request.span_id,
        service=request.service,
        route=route,
        kind=kind,
        kind_source=source,
        prefetch=prefetch,
        method=method,
        path=path,
        status=_int(status),
        duration_ns=max(s.end_ns for s in handlers) - request.start_ns,
        ttfb_ms=_ttfb_ms(request, handlers, by_type),
        render_ms=_total_ms(by_type.get(RENDER)),
        middleware_ms=_total_ms(by_type.get(MIDDLEWARE)),
        build_id=_build_id(request),
        response_bytes=_response_bytes(handlers),
    )


def _response_bytes(handlers: list[TraceSpan]) -> int | None:
    """The body size the helper recorded (``http.response.body.size``): the largest on the
    request's handler spans, each of which saw the bytes written while it was open."""
    sizes = [_int(s.attributes[BODY_SIZE]) for s in handlers if s.attributes.get(BODY_SIZE)]
    return max(sizes) if sizes else None


def _route(handlers: list[TraceSpan], by_type: dict[str, list[TraceSpan]]) -> str:
    for span in reversed(handlers):
        route = span.attributes.get("next.route") or span.attributes.get("http.route")
        if route:
            return route
    for span_type in ROUTE_SPANS:  # verbose mode leaves the route off the request spans
        for span in by_type.get(span_type, []):
            if span.attributes.get("next.route"):
                return span.attributes["next.route"]
    return ""


def _kind(
    attrs: dict[str, str],
    route: str,
    path: str,
    recorded: str,
    by_type: dict[str, list[TraceSpan]],
    *,
    warmup: bool,
) -> tuple[str, str, str]:
    """(kind, how it was known, next.prefetch); ``recorded``: the helper's next.prefetch."""
    if warmup or any(semconv.WARMUP_TRIGGER in s.attributes for s in by_type.get(REQUEST, [])):
        return "warmup", "attribute", recorded or "none"  # not a user's request, whatever its path
    if ROUTE_HANDLER in by_type or route.startswith("/api/") or path.startswith("/api/"):
        return "api", "shape", recorded
    if FILE_NAME.search(path) and "[" not in route:
        # /favicon.ico, /robots.txt, a public/ file: served (or refused) without a page, so
        # neither a navigation nor a prefetch, even when Next.js answers it with its 404 page.
        return "static_asset", "shape", recorded or "none"
    if attrs.get("next.rsc") != "true":
        return "document", "shape", recorded or "none"
    if recorded:
        return ("rsc_navigation" if recorded == "none" else "rsc_prefetch"), "attribute", recorded
    rendered_page = FETCH in by_type or any(
        s.attributes.get("next.segment") == PAGE_SEGMENT for s in by_type.get(SEGMENT, [])
    )
    return ("rsc_navigation" if rendered_page else "rsc_prefetch"), "shape", ""


def _full_route_event(
    request: RequestRow, by_type: dict[str, list[TraceSpan]]
) -> list[CacheEventRow]:
    """For a request the helper recorded: x-nextjs-cache, or none on a page (dynamic)."""
    handlers = by_type.get(REQUEST, [])
    if request.kind == "api":
        return []
    header = next(
        (s.attributes[NEXTJS_CACHE] for s in handlers if NEXTJS_CACHE in s.attributes), ""
    )
    value = header.strip('[]"')  # a captured header is a string array: ["HIT"]
    if value in FULL_ROUTE_RESULTS:
        result, reason = FULL_ROUTE_RESULTS[value]
    elif request.status < 400:
        result, reason = "bypass", "dynamic"  # Next.js sends no x-nextjs-cache for dynamic pages
    else:
        return []
    return [
        _event(
            request,
            request.timestamp_ns,
            request.span_id,
            "full_route",
            result,
            reason,
            request.path,
        )
    ]


def _data_cache_events(
    request: RequestRow,
    by_type: dict[str, list[TraceSpan]],
    children: dict[str, list[TraceSpan]],
) -> list[CacheEventRow]:
    events = []
    fetches = by_type.get(FETCH, [])
    # Every fetch with the reason (two at least): the route's own fetchCache setting.
    route_no_store = len(fetches) >= 2 and all(
        s.attributes.get(FETCH_CACHE_REASON) == UNSTABLE_CACHE_RUN for s in fetches
    )
    for span in fetches:
        calls = [c for c in children.get(span.span_id, []) if c.kind == "Client"]
        status = span.attributes.get("next.fetch.cache_status")
        if status is None:  # Next.js 15 does not say, nor 16 of a fetch cut off: the network
            result, reason = _network_result(span, calls, _answered_end(request))
        elif status in FETCH_RESULTS:
            result, reason = FETCH_RESULTS[status]
        else:
            continue
        skipped_as = span.attributes.get(FETCH_CACHE_REASON) if status == "skip" else None
        if skipped_as == MISSING_ENTRY or (skipped_as == UNSTABLE_CACHE_RUN and not route_no_store):
            result, reason = FETCH_RESULTS["miss"]
        if result == "hit" and calls:
            result, reason = "stale", "unknown"  # the fetch under a hit is its background refresh
        key = span.attributes.get("http.url", "")
        event = _event(request, span.start_ns, span.span_id, "data", result, reason, key)
        if span.attributes.get(semconv.CACHE_WARMUP_PENDING) == "true":
            event = event.with_changes(warmup_pending=True)
        events.append(event)
    return events


def is_handler_span(span: TraceSpan) -> bool:
    """Whether ``span`` is a cache handler's (a ``'use cache'`` handler's or the incremental
    cache's), as ``@nextrace/next/cache-handler`` records them."""
    return span.scope == HELPER_SCOPE and semconv.CACHE_KIND in span.attributes


def is_handler_lookup(span: TraceSpan) -> bool:
    """Whether ``span`` is a cache handler's lookup (see :func:`is_handler_span`)."""
    return is_handler_span(span) and span.attributes.get(semconv.CACHE_OPERATION) == "get"


def _handler_events(request: RequestRow, untyped: list[TraceSpan]) -> list[CacheEventRow]:
    """The cache handlers' lookups among ``untyped`` (the request's spans that Next.js did not
    type): the handler said hit, stale or miss, and why where its entry told (a stale entry's
    ``tag_invalidated``, an expired one's ``expired``); else the reason is ``unknown``, for
    :mod:`collector.nextjs.miss_reasons` to tell."""
    events = []
    for span in untyped:
        if not is_handler_lookup(span):
            continue
        attributes = span.attributes
        result = attributes.get(semconv.CACHE_RESULT, "")
        if result not in HANDLER_RESULTS:
            continue
        reason = "" if result == "hit" else attributes.get(semconv.CACHE_MISS_REASON) or "unknown"
        layer = attributes[semconv.CACHE_KIND]
        key = attributes.get(semconv.CACHE_KEY, "")
        event = _event(request, span.start_ns, span.span_id, layer, result, reason, key)
        event.function = attributes.get(semconv.CACHE_FUNCTION, "")
        events.append(event)
    return events


def handler_entry(attributes: Mapping[str, str]) -> tuple[str, str]:
    """The entry a cache handler's lookup or fill span is about: its layer and key."""
    return attributes.get(semconv.CACHE_KIND, ""), attributes.get(semconv.CACHE_KEY, "")


def handler_fills(spans: Iterable[TraceSpan]) -> dict[tuple[str, str], TraceSpan]:
    """The cache handlers' fills (``set``) among ``spans``, by :func:`handler_entry`: what a
    miss of the same trace stored, with the entry's life and tags."""
    return {
        handler_entry(s.attributes): s
        for s in spans
        if s.scope == HELPER_SCOPE and s.attributes.get(semconv.CACHE_OPERATION) == "set"
    }


def handler_facts(
    lookup: TraceSpan, fills: dict[tuple[str, str], TraceSpan], origin: str
) -> LookupFacts:
    """What a cache handler's lookup says of its entry: its revalidate time and tags, from the
    lookup or, where it does not say (a miss of a 'use cache' entry), from the fill after it in
    its trace (the function's cacheLife and cacheTag, which a new entry of the same function
    has too), and whether the handler's store is shared by the app's instances."""
    attributes = lookup.attributes
    fill = fills.get(handler_entry(attributes))
    filled = fill.attributes if fill is not None else {}
    life = _float(
        attributes.get(semconv.CACHE_LIFE_REVALIDATE_S)
        or filled.get(semconv.CACHE_LIFE_REVALIDATE_S)
    )
    return LookupFacts(
        revalidate_s=life if life is not None and life >= 0 else None,  # -1: a stale tag's mark
        tags=tags(attributes.get(semconv.CACHE_TAGS) or filled.get(semconv.CACHE_TAGS, "")),
        origin=origin,
        shared=attributes.get(semconv.CACHE_SHARED, "true") == "true",
    )


def revalidated_targets(attributes: dict[str, str]) -> list[str]:
    """The tags or path a revalidation span revalidated: a cache handler's revalidation names
    its tags joined by commas, other calls one target."""
    target = attributes.get(semconv.REVALIDATE_TARGET, "")
    if semconv.CACHE_HANDLER in attributes:
        return [tag for tag in target.split(",") if tag]
    return [target]


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _answered_end(request: RequestRow) -> int | None:
    """When ``request`` ended, if it was answered (a status under 500); None for a request
    that failed or was cut short, whose end cuts off calls that it did wait for."""
    if 0 < request.status < 500:
        return request.timestamp_ns + request.duration_ns
    return None


def _network_result(
    fetch: TraceSpan, calls: list[TraceSpan], request_end_ns: int | None
) -> tuple[str, str]:
    """A fetch's data-cache result from the HTTP client spans under it (``calls``,
    ``@vercel/otel``'s), when Next.js does not give one (Next.js 15; Next.js 16 when the fetch
    was cut off before its answer): none, a hit; one answered after the fetch ended, or cut off
    unanswered when an answered request ended (``request_end_ns``; None for a failed one), a
    stale entry served at once while it refreshed in the background; one the fetch waited for,
    a miss.

    When a call was answered: ``@vercel/otel`` records ``http.status_code`` and
    ``http.response_time`` (ms from the span's start) when the answer comes, and ends the span
    once the body is read, which can be well after the answer. A span ended without them got
    no answer: either the call failed (its span ends at once, and the fetch that waited for it
    fails after it: a miss), or it was still waiting when the request's span ended, and
    ``@vercel/otel``'s span processor ended it then with every other span of the trace still
    open. So a call with no answer that ended after its fetch, or when the request ended
    (``request_end_ns``; Next.js 16's fetch span is cut off with it, as an ``unstable_cache``
    entry's background refresh is), was cut off by the request's end: the request did not wait
    for it (a stale entry's refresh).

    An uncached fetch (``cache: 'no-store'``, ``revalidate: 0``) also waits for its call, and
    Next.js 15 records nothing that tells it from a miss (its fetch span carries only
    ``http.url``, ``http.method`` and the peer; it skips the cache lookup, but a lookup that
    finds nothing can take under a millisecond, the resolution of span start times): it reads
    as a miss.
    """
    if not calls:
        return "hit", ""
    if any(_answered_after(fetch, call, request_end_ns) for call in calls):
        return "stale", "unknown"
    return "miss", "unknown"


def _answered_after(fetch: TraceSpan, call: TraceSpan, request_end_ns: int | None) -> bool:
    """Whether ``call`` (an HTTP client span under ``fetch``) was answered after ``fetch``
    ended, or not before the request's end: see :func:`_network_result`."""
    if not any(name in call.attributes for name in ANSWER_ATTRIBUTES):
        # Unanswered: cut off by the request's end, or failed (which ends it at once).
        return call.end_ns > fetch.end_ns + END_ROUNDING_NS or (
            request_end_ns is not None and call.end_ns >= request_end_ns - END_ROUNDING_NS
        )
    ms = _int(call.attributes.get(RESPONSE_TIME))
    answered = call.start_ns + ms * 1_000_000 if ms else call.end_ns
    # Next.js rounds its start times to the millisecond: a call the fetch waited for may seem
    # to be answered a little after it ended.
    return answered > fetch.end_ns + OUTLIVED_NS


def _event(
    request: RequestRow,
    timestamp_ns: int,
    span_id: str,
    layer: str,
    result: str,
    reason: str,
    key: str,
) -> CacheEventRow:
    """A lookup made for ``request``, by the span ``span_id``."""
    return CacheEventRow(
        timestamp_ns=timestamp_ns,
        trace_id=request.trace_id,
        span_id=span_id,
        service=request.service,
        route=request.route,
        layer=layer,
        result=result,
        reason=reason,
        key=key,
        build_id=request.build_id,
    )


def _build_id(span: TraceSpan) -> str:
    """The helper's ``nextrace.build_id`` on the request span, else the resource's
    ``deployment.id`` or ``service.version``."""
    resource = span.resource
    return (
        span.attributes.get(semconv.BUILD_ID)
        or resource.get("deployment.id")
        or resource.get("service.version")
        or ""
    )


def _ttfb_ms(
    request: TraceSpan, handlers: list[TraceSpan], by_type: dict[str, list[TraceSpan]]
) -> float:
    """When the first byte left, from the request's start: the start of Next's ``start
    response`` span; for a response written whole without one (prerendered output, the 404
    page), when the innermost request span ended, since its body went out in one write."""
    started = _ms_after(request, by_type.get(START_RESPONSE))
    if started is not None:
        return started
    return (handlers[-1].end_ns - request.start_ns) / 1e6


def _ms_after(request: TraceSpan, spans: list[TraceSpan] | None) -> float | None:
    if not spans:
        return None
    return (min(s.start_ns for s in spans) - request.start_ns) / 1e6


def _total_ms(spans: list[TraceSpan] | None) -> float | None:
    return sum(s.duration_ns for s in spans) / 1e6 if spans else None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
