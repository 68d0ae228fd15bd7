"""Real Next.js traces (tests/data/nextjs-captures) become the same request and cache rows that
the reference server's spans give: every request of every capture, checked against what was
sent (requests.jsonl) and what Next.js answered."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest

from collector.nextjs.mapping import TraceSpan, normalize_trace
from tests.conftest import stored
from tests.examples.runs import load_run
from tests.support.captures import DATA_CACHE, DATA_CACHE_NEXT15, RUNS, post_capture, requests_of

# The routes of examples/nextjs, which recorded the captures, most specific first.
ROUTES = [
    (r"^/products/\d+$", "/products/[id]"),
    (r"^/(|about|profile|api/revalidate)$", None),  # the path is the route
    (r".*", "/_not-found"),
]


def expected_route(path: str) -> str:
    path = path.split("?")[0]
    for pattern, route in ROUTES:
        if re.match(pattern, path):
            return route or path
    raise AssertionError(path)


def expected_kind(request: dict[str, Any]) -> str:
    headers = {k.lower(): v for k, v in request["req_headers"].items()}
    if request["path"].startswith("/api/"):
        return "api"
    if request["path"] == "/favicon.ico":
        return "static_asset"
    if headers.get("rsc") != "1":
        return "document"
    if headers.get("next-router-prefetch"):
        return "rsc_prefetch"
    # A navigation answered whole from the prerendered output renders nothing, exactly like
    # a prefetch: without the helper's attribute the two cannot be told apart (documented).
    # (Next 16 may send the header twice; the client joins the values: "1, 1".)
    if "1" in request["resp_headers"].get("x-nextjs-prerender", "").split(", "):
        return "rsc_prefetch"
    return "rsc_navigation"


@pytest.mark.parametrize("run_name", RUNS)
def test_every_request_of_a_capture_gets_its_kind_route_status_and_data_cache_result(
    captures, client, collector, run_name
):
    run = captures / run_name
    post_capture(client, run)
    rows = stored(
        collector,
        "SELECT toUnixTimestamp64Nano(Timestamp), TraceId, Kind, KindSource, Route, StatusCode, "
        "Method, Path, Source FROM requests",
    )
    events = stored(collector, "SELECT TraceId, Layer, Result, Route FROM cache_events")
    matched = set()
    for request in requests_of(run):
        traceparent = request["req_headers"].get("traceparent", "")
        mine = [
            row
            for row in rows
            if request["t_start_ns"] <= row[0] <= request["t_end_ns"]
            or (traceparent and traceparent.split("-")[1] == row[1])
        ]
        label = request["label"]
        if request["path"].startswith("/_next/static/"):
            assert mine == [], label  # Next.js serves its assets without a trace
            continue
        assert len(mine) == 1, (label, mine)
        _ts, trace_id, kind, source, route, status, method, path, origin = mine[0]
        matched.add(trace_id)
        assert kind == expected_kind(request), label
        assert source == "shape"
        assert origin == "nextjs"
        assert route == expected_route(request["path"]), label
        assert status == int(request["status"]), label
        assert (method, path) == (request["method"], request["path"].split("?")[0])
        results = sorted(r[2] for r in events if r[0] == trace_id)
        data_cache = DATA_CACHE_NEXT15 if run_name.startswith("next15") else DATA_CACHE
        assert results == data_cache.get(label, []), label
        assert all(r[1] == "data" and r[3] == route for r in events if r[0] == trace_id)
    # Every row belongs to a sent request, except the capture's readiness probe before them.
    first = requests_of(run)[0]["t_start_ns"]
    assert {row[1] for row in rows if row[0] >= first} == matched
    assert collector.health()["derived_rows_dropped"] == {}


def test_ttfb_render_and_middleware_times_come_from_next_spans(captures, client, collector):
    post_capture(client, captures / "protobuf-default")
    rows = stored(
        collector,
        "SELECT Path, Kind, Duration, TtfbMs, RenderMs, MiddlewareMs FROM requests "
        "WHERE Path = '/profile' AND Kind = 'document'",
    )
    (_path, _kind, duration_ns, ttfb, render, middleware) = rows[0]
    # `start response` comes after the render started and before the request ended.
    assert 0 < render < ttfb <= duration_ns / 1e6
    assert 0 < middleware < ttfb


def handler(path: str, route: str, status: int, *, rsc: bool = False) -> TraceSpan:
    """The request span Next.js makes for ``path``, as the collector reads it."""
    attributes = {
        "next.span_type": "BaseServer.handleRequest",
        "http.method": "GET",
        "http.target": path,
        "http.status_code": str(status),
        "next.rsc": "true" if rsc else "false",
        "next.route": route,
    }
    return TraceSpan(
        trace_id="a" * 32,
        span_id="b" * 16,
        parent_id="",
        name=f"GET {route}",
        kind="Server",
        scope="next.js",
        start_ns=1_767_261_600_000_000_000,
        duration_ns=2_000_000,
        service="shop",
        attributes=attributes,
        resource={},
        span_type="BaseServer.handleRequest",
    )


@pytest.mark.parametrize(
    ("path", "route", "status", "kind"),
    [
        ("/favicon.ico", "/_not-found", 404, "static_asset"),  # no favicon: the 404 page
        ("/robots.txt", "/robots.txt", 200, "static_asset"),  # a metadata route
        ("/logo.svg", "", 200, "static_asset"),  # a public/ file
        ("/products/1.json", "/products/[id]", 200, "document"),  # a page that renders it
        ("/does-not-exist", "/_not-found", 404, "document"),  # a page that is missing
    ],
)
def test_files_served_without_a_page_are_not_navigations(path, route, status, kind):
    (row,), _events = normalize_trace([handler(path, route, status)])
    assert (row.kind, row.status) == (kind, status)


@pytest.mark.parametrize("run_name", RUNS)
def test_every_request_has_a_ttfb_within_its_duration(captures, client, collector, run_name):
    post_capture(client, captures / run_name)
    rows = stored(collector, "SELECT Path, Kind, TtfbMs, Duration FROM requests")
    assert rows
    for path, kind, ttfb, duration_ns in rows:
        assert ttfb is not None, (path, kind)
        assert 0 <= ttfb <= duration_ns / 1e6 + 1, (path, kind)  # Next's times are in ms


def test_the_build_comes_from_the_helper_before_the_resource():
    span = handler("/", "/", 200)
    span.resource = {"service.version": "1.2.3"}
    assert normalize_trace([span])[0][0].build_id == "1.2.3"
    span.attributes["nextrace.build_id"] = "Xk3h9"
    assert normalize_trace([span])[0][0].build_id == "Xk3h9"


# -- Next.js 15's data cache, told from the HTTP client span under each fetch -----------------

MS = 1_000_000
T0 = 1_767_261_600_000_000_000


def next15_fetch(
    call: dict[str, str] | None, *, call_start_ms: float, call_end_ms: float
) -> list[TraceSpan]:
    """A Next.js 15 request (0-30 ms) whose page fetched a product (2-11 ms): its
    ``AppRender.fetch`` span and, unless ``call`` is None, ``@vercel/otel``'s client span under
    it, with the attributes ``call`` and the times given (ms from the request's start)."""
    request = handler("/products/5", "/products/[id]", 200)
    request.start_ns, request.duration_ns = T0, 30 * MS
    url = "http://127.0.0.1:8081/api/product/5"
    fetch = TraceSpan(
        trace_id=request.trace_id,
        span_id="f" * 16,
        parent_id=request.span_id,
        name=f"fetch GET {url}",
        kind="Client",
        scope="next.js",
        start_ns=T0 + 2 * MS,
        duration_ns=9 * MS,
        service="shop",
        attributes={"next.span_type": "AppRender.fetch", "http.url": url, "http.method": "GET"},
        resource={},
        span_type="AppRender.fetch",
    )
    if call is None:
        return [request, fetch]
    client = TraceSpan(
        trace_id=request.trace_id,
        span_id="c" * 16,
        parent_id=fetch.span_id,
        name=f"fetch GET {url}",
        kind="Client",
        scope="@vercel/otel/fetch",
        start_ns=T0 + int(call_start_ms * MS),
        duration_ns=int((call_end_ms - call_start_ms) * MS),
        service="shop",
        attributes={"http.url": url, "http.method": "GET", **call},
        resource={},
        span_type="",
    )
    return [request, fetch, client]


ANSWERED = {"http.status_code": "200"}


@pytest.mark.parametrize(
    ("call", "call_start_ms", "call_end_ms", "result"),
    [
        (None, 0, 0, "hit"),  # no call: served from the cache
        # Waited for: answered 1 ms before the fetch ended.
        ({**ANSWERED, "http.response_time": "7"}, 3, 10.5, "miss"),
        # Waited for, its body read long after (the span ends 19 ms after the fetch): the answer
        # came when http.response_time says.
        ({**ANSWERED, "http.response_time": "7"}, 3, 30, "miss"),
        # Answered 12 ms after the fetch ended: the fetch had returned the stale entry.
        ({**ANSWERED, "http.response_time": "20"}, 3, 23.5, "stale"),
        # Never answered while the request was open: @vercel/otel ended the span with the
        # request's span, 4 ms after the fetch (next15-curl's trace 5018db57…, which read as a
        # miss: within the 5 ms allowed for an answered call's rounding).
        ({}, 11, 15, "stale"),
        ({}, 4, 30, "stale"),
        # No answer, ended before its fetch: the call failed while the fetch waited for it.
        ({}, 3, 10.5, "miss"),
    ],
)
def test_a_next15_fetch_reads_hit_miss_or_stale_from_its_call(
    call: dict[str, str] | None, call_start_ms: float, call_end_ms: float, result: str
) -> None:
    spans = next15_fetch(call, call_start_ms=call_start_ms, call_end_ms=call_end_ms)
    _requests, (event,) = normalize_trace(spans)
    assert (event.layer, event.result) == ("data", result)


def test_next15_data_cache_rows_are_the_upstreams_log(client, collector):
    """The recorded Next.js 15 run (tests/data/nextjs-runs/next15-curl) through a real collector:
    each fetch reads as the upstream's own log says. A data-cached path's call that the request
    waited for (answered before its answer ended) is a miss, one answered after a stale read's
    refresh, a fetch without a call a hit. An uncached fetch (the profile page's `no-store`)
    reads as a miss: nothing in Next.js 15's spans tells it from one (docs/semantic-conventions.md,
    "What Next.js cannot tell")."""
    run = load_run("next15-curl")
    for content_type, body in run.bodies():
        response = client.post("/v1/traces", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text
    rows = stored(
        collector,
        "SELECT TraceId, Key, Result FROM cache_events WHERE Layer = 'data' "
        "GROUP BY TraceId, SpanId, Key, Result HAVING sum(Sign) > 0",
    )
    ended = {r.trace_id: r.t_end_ns for r in run.requests if r.trace_id}
    truth = {}
    for call in run.upstream_calls:
        if call.trace_id not in ended:
            continue  # the build's own calls
        waited = call.answered_ns is not None and call.answered_ns <= ended[call.trace_id]
        truth[call.trace_id, call.path] = "miss" if waited or not call.data_cache else "stale"
    found = {(trace_id, urlsplit(key).path): result for trace_id, key, result in rows}
    assert len(found) == len(rows)  # one fetch of a path per request
    assert found == {key: truth.get(key, "hit") for key in found}
    assert truth.keys() <= found.keys()  # every call has its lookup
    blocking, uncached = len(run.blocking_misses()), len(run.uncached_waits())
    assert (blocking, uncached) == (15, 9)  # tests/data/nextjs-runs/README.md
    assert Counter(found.values()) == {"miss": blocking + uncached, "stale": 4, "hit": 10}


@pytest.mark.parametrize(("status", "result"), [(200, "stale"), (500, "miss")])
def test_a_fetch_cut_off_with_an_answered_request_is_a_background_refresh(status, result):
    # Next.js 16 (an unstable_cache entry's refresh): the fetch and its call end, unanswered,
    # when the request ends, and Next.js gives the fetch no cache status. A request that
    # failed cut off a call it did wait for: that is no refresh.
    request, fetch, call = next15_fetch({}, call_start_ms=3, call_end_ms=30)
    request.attributes["http.status_code"] = str(status)
    fetch.duration_ns = 28 * MS  # 2 to 30 ms: it ends with the request
    _requests, (event,) = normalize_trace([request, fetch, call])
    assert event.result == result


def fetches(*reasons: str) -> list[TraceSpan]:
    """A Next.js 16 request whose fetches Next.js skipped the cache for, with these reasons."""
    request, fetch = next15_fetch(None, call_start_ms=0, call_end_ms=0)
    spans = [request]
    for n, reason in enumerate(reasons):
        attributes = {
            **fetch.attributes,
            "http.url": f"{fetch.attributes['http.url']}?n={n}",
            "next.fetch.cache_status": "skip",
            "next.fetch.cache_reason": reason,
        }
        spans.append(dataclasses.replace(fetch, span_id=f"{n:016x}", attributes=attributes))
    return spans


UNSTABLE_CACHE = "fetchCache = force-no-store"  # Next.js's reason inside unstable_cache


@pytest.mark.parametrize(
    ("reasons", "results"),
    [
        # Inside unstable_cache, beside a fetch of its own: the function's entry missed.
        ((UNSTABLE_CACHE, "cache: no-store"), ["miss", "bypass"]),
        ((UNSTABLE_CACHE,), ["miss"]),
        # Every fetch of the request: the route's own fetchCache = 'force-no-store'.
        ((UNSTABLE_CACHE, UNSTABLE_CACHE), ["bypass", "bypass"]),
    ],
)
def test_a_fetch_inside_unstable_cache_is_its_entrys_miss(reasons, results):
    _requests, events = normalize_trace(fetches(*reasons))
    assert [e.result for e in sorted(events, key=lambda e: e.key)] == results
