"""Synthetic web-request traces for benchmarks, about 10 spans a trace: the reference server's
(8 to 15 attributes a span; its data-cache lookup, one span in ten, holds a list), or a real
Next.js app's (Next's own spans, 4 to 15 attributes, as recorded from examples/nextjs with
@vercel/otel and @nextrace/next's processor)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

ROUTES = ["/", "/about", "/dashboard", "/products/[id]", "/blog/[...slug]", "/docs/[[...slug]]"]
PHASES = [
    ("Middleware.execute", "middleware", Span.SPAN_KIND_INTERNAL),
    ("resolve page components", "route", Span.SPAN_KIND_INTERNAL),
    ("render route (app) {route}", "render", Span.SPAN_KIND_INTERNAL),
    ("fetch GET https://api.internal/products", "fetch", Span.SPAN_KIND_CLIENT),
    ("fetch GET https://api.internal/reviews", "fetch", Span.SPAN_KIND_CLIENT),
    ("data cache lookup", "cache", Span.SPAN_KIND_INTERNAL),
    ("full route cache lookup", "cache", Span.SPAN_KIND_INTERNAL),
    ("start response", "stream", Span.SPAN_KIND_INTERNAL),
    ("stream chunk", "stream", Span.SPAN_KIND_INTERNAL),
]


def _kv(key: str, value: str | int | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


EXTRA = [
    _kv("network.protocol.version", "1.1"),
    _kv("client.address", "203.0.113.7"),
    _kv("nextrace.cache.scope", "shared"),
]


def _server_span(
    trace_id: bytes, span_id: bytes, route: str, start_ns: int, total_ns: int, attrs: list[KeyValue]
) -> Span:
    """The server span of a request for ``route``, lasting ``total_ns``."""
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        name=f"GET {route}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + total_ns,
        attributes=attrs,
    )


def make_trace(rng: random.Random, start_ns: int) -> list[Span]:
    """One request: a server span and nine children."""
    trace_id = os.urandom(16)
    route = rng.choice(ROUTES)
    root_id = os.urandom(8)
    total = rng.randint(5, 400) * 1_000_000
    result = rng.choice(["hit", "miss", "stale"])
    root = _server_span(
        trace_id,
        root_id,
        route,
        start_ns,
        total,
        [
            _kv("http.request.method", "GET"),
            _kv("http.route", route),
            _kv("url.path", route.replace("[id]", str(rng.randint(1, 5000)))),
            _kv("http.response.status_code", rng.choice([200, 200, 200, 304, 404])),
            _kv("next.route", route),
            _kv("next.rsc", rng.random() < 0.5),
            _kv("next.span_type", "BaseServer.handleRequest"),
            _kv("nextrace.phase", "request"),
            _kv(
                "nextrace.request.kind", rng.choice(["document", "rsc_navigation", "rsc_prefetch"])
            ),
            _kv("nextrace.build_id", "build-42"),
            _kv("server.address", "shop.example"),
            _kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"),
            *EXTRA[: rng.randint(0, 3)],
        ],
    )
    spans = [root]
    offset = start_ns
    for name, phase, kind in PHASES:
        duration = rng.randint(1, max(1, total // 10_000_000)) * 1_000_000
        attrs = [
            _kv("nextrace.phase", phase),
            _kv("next.span_type", name.split(" ")[0]),
            _kv("next.route", route),
            _kv("cache.layer", rng.choice(["cdn", "full_route", "data", "request_memo"])),
            _kv("cache.result", result),
            _kv("cache.key", f"{route}:{rng.randint(1, 500)}"),
            _kv("cache.entry.source", rng.choice(["build", "request", "warmup"])),
            _kv("cache.entry.age_ms", rng.randint(0, 600_000)),
        ]
        attrs += EXTRA[: rng.randint(0, 2)]
        if name == "data cache lookup":  # a list, as the reference server sends its tags
            tags = [AnyValue(string_value=t) for t in ("product", f"product:{rng.randint(1, 500)}")]
            attrs.append(
                KeyValue(key="cache.tags", value=AnyValue(array_value=ArrayValue(values=tags)))
            )
        if kind == Span.SPAN_KIND_CLIENT:
            attrs += [
                _kv("http.request.method", "GET"),
                _kv("url.full", name.split(" ", 2)[2]),
                _kv("http.response.status_code", 200),
                _kv("next.fetch.cache_status", result),
            ]
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=os.urandom(8),
                parent_span_id=root_id,
                name=name.format(route=route),
                kind=kind,
                start_time_unix_nano=offset,
                end_time_unix_nano=offset + duration,
                attributes=attrs,
            )
        )
        offset += duration // 2
    return spans


def _nextjs_span(
    trace_id: bytes,
    parent_id: bytes,
    span_type: str,
    name: str,
    start_ns: int,
    duration_ns: int,
    attrs: list[KeyValue],
    kind: Span.SpanKind.ValueType = Span.SPAN_KIND_INTERNAL,
) -> Span:
    """A span of Next.js's own tracer, with the attributes it puts on every span."""
    common = [
        _kv("next.span_category", "nextjs"),
        _kv("next.span_name", name),
        _kv("next.span_type", span_type),
        _kv("operation.name", f"next_js.{span_type}"),
    ]
    return Span(
        trace_id=trace_id,
        span_id=os.urandom(8),
        parent_span_id=parent_id,
        name=name,
        kind=kind,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + duration_ns,
        attributes=common + attrs,
    )


def make_nextjs_trace(rng: random.Random, start_ns: int) -> list[Span]:
    """One request to a real Next.js 16 app: the request span, the proxy, route resolution,
    the render with two tagged fetches through the data cache (a miss or a stale read has
    ``@vercel/otel``'s client span under it) and the start of the response."""
    trace_id = os.urandom(16)
    root_id = os.urandom(8)
    route = rng.choice(ROUTES)
    product = rng.randint(1, 500)
    total = rng.randint(5, 400) * 1_000_000
    ms = 1_000_000
    root = _server_span(
        trace_id,
        root_id,
        route,
        start_ns,
        total,
        [
            _kv("next.span_category", "nextjs"),
            _kv("next.span_name", f"GET {route}"),
            _kv("next.span_type", "BaseServer.handleRequest"),
            _kv("operation.name", "next_js.BaseServer.handleRequest"),
            _kv("http.method", "GET"),
            _kv("http.target", route.replace("[id]", str(product))),
            _kv("http.status_code", rng.choice([200, 200, 200, 304, 404])),
            _kv("next.rsc", rng.random() < 0.5),
            _kv("next.route", route),
            _kv("nextrace.build_id", "build-42"),
            _kv("http.response.header.x-nextjs-cache", rng.choice(["HIT", "MISS", "STALE"])),
            _kv("http.response.body.size", rng.randint(500, 60_000)),
            *EXTRA[: rng.randint(0, 3)],
        ],
    )
    render = _nextjs_span(
        trace_id,
        root_id,
        "AppRender.getBodyResult",
        f"render route (app) {route}",
        start_ns + 3 * ms,
        total - 5 * ms,
        [_kv("next.route", route), *EXTRA[: rng.randint(0, 2)]],
    )
    spans = [
        root,
        _nextjs_span(
            trace_id,
            root_id,
            "Middleware.execute",
            "middleware GET",
            start_ns,
            ms,
            [_kv("http.method", "GET"), _kv("http.target", route)],
        ),
        _nextjs_span(
            trace_id,
            root_id,
            "NextNodeServer.findPageComponents",
            "resolve page components",
            start_ns + ms,
            ms,
            [_kv("next.route", route)],
        ),
        _nextjs_span(
            trace_id,
            root_id,
            "NextNodeServer.getLayoutOrPageModule",
            "resolve segment modules",
            start_ns + 2 * ms,
            ms,
            [_kv("next.segment", "__PAGE__")],
        ),
        render,
    ]
    offset = start_ns + 4 * ms
    for index, data in enumerate(("products", "reviews")):
        url = f"https://api.internal/{data}/{product}"
        result = rng.choice(["hit", "miss", "stale"])
        duration = rng.randint(1, max(1, total // 10_000_000)) * ms
        fetch = _nextjs_span(
            trace_id,
            render.span_id,
            "AppRender.fetch",
            f"fetch GET {url}",
            offset,
            duration,
            [
                _kv("http.url", url),
                _kv("http.method", "GET"),
                _kv("net.peer.name", "api.internal"),
                _kv("net.peer.port", "443"),
                _kv("http.status_code", 200),
                _kv("next.fetch.idx", index + 1),
                _kv("next.fetch.cache_status", "miss" if result == "miss" else "hit"),
                _kv("next.fetch.cache_reason", "revalidate: 60"),
                _kv("next.fetch.tags", f"{data},{data}-{product}"),
            ],
            Span.SPAN_KIND_CLIENT,
        )
        spans.append(fetch)
        if result != "hit":  # the call to the upstream; a stale read's outlives its fetch
            call_ns = duration - ms if result == "miss" else duration + 50 * ms
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=os.urandom(8),
                    parent_span_id=fetch.span_id,
                    name=f"fetch GET {url}",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=offset,
                    end_time_unix_nano=offset + call_ns,
                    attributes=[
                        _kv("http.method", "GET"),
                        _kv("http.url", url),
                        _kv("http.host", "api.internal"),
                        _kv("http.scheme", "https"),
                        _kv("net.peer.name", "api.internal"),
                        _kv("operation.name", "fetch.GET"),
                        _kv("http.status_code", 200),
                        _kv("http.response_time", call_ns // ms),
                    ],
                )
            )
        offset += duration // 2
    spans.append(
        _nextjs_span(
            trace_id,
            root_id,
            "NextNodeServer.startResponse",
            "start response",
            start_ns + total - 2 * ms,
            ms,
            [],
        )
    )
    return spans


def make_requests(
    traces: int,
    traces_per_request: int = 50,
    seed: int = 7,
    *,
    nextjs: bool = False,
    scope: str | None = None,
) -> list[ExportTraceServiceRequest]:
    """``traces`` traces with current timestamps, grouped into export requests: the reference
    server's, or with ``nextjs`` a real Next.js app's. Next.js's spans are sent under its
    scope, ``next.js``, unless ``scope`` says otherwise: the collector normalizes the traces of
    that scope (rows derived in Python instead of by materialized views), so the same spans
    under another scope measure what normalizing costs."""
    make: Callable[[random.Random, int], list[Span]] = make_nextjs_trace if nextjs else make_trace
    scope = scope or ("next.js" if nextjs else "nextrace.bench")
    rng = random.Random(seed)
    now = time.time_ns()
    requests = []
    for first in range(0, traces, traces_per_request):
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(
            [
                _kv("service.name", "shop"),
                _kv("service.version", "1.4.2"),
                _kv("deployment.environment", "production"),
                _kv("host.name", "web-1"),
            ]
        )
        ss = rs.scope_spans.add()
        ss.scope.name = scope
        ss.scope.version = "0.1"
        for i in range(first, min(traces, first + traces_per_request)):
            ss.spans.extend(make(rng, now - (traces - i) * 1_000_000))
        requests.append(request)
    return requests
