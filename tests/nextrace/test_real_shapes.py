"""`slow`, `trace` and `compare` on real Next.js exports (tests/data/nextjs-captures), replayed
into a real chDB store through the collector: every request that waited on a data-cache miss
is listed, its cause names the fetch and why it missed, and its fetch part is the upstream
call's time; Next.js 15's middleware, a trace of its own, is counted and fills MiddlewareMs;
`compare` picks a peer of the same route, request kind and service.

What the captures say happened is known without nextrace: which requests missed the data cache
from their labels (tests/collector/test_nextjs.py), and how long each upstream call took from
the HTTP client's own span (``@vercel/otel``'s, under Next.js's fetch span)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.config import StoreConfig
from collector.service import Collector
from contract.errors import NextraceError
from investigate import compare, slow
from investigate.diagnosis import MS, diagnose
from investigate.reader import StoreReader
from investigate.spans import load_trace
from tests.builders import make_request, make_span
from tests.conftest import loopback_client, running_collector, stored
from tests.support.captures import DATA_CACHE, DATA_CACHE_NEXT15, RUNS, post_capture, requests_of

NEXT15 = "next15-protobuf-default"
TOLERANCE = 0.10  # the fetch part against the upstream call's own time
NAVIGATIONS = ("document", "rsc_navigation")  # what `nextrace slow` lists of a server's


@dataclass
class Replayed:
    reader: StoreReader
    collector: Collector
    requests: list[dict[str, Any]]

    def sql(self, query: str) -> list[Any]:
        return stored(self.collector, query)

    def trace_of(self, request: dict[str, Any]) -> tuple[str, str]:
        """The trace id and kind of the request row of ``request`` (sent one at a time)."""
        rows = self.sql(
            "SELECT TraceId, Kind FROM requests "
            f"WHERE toUnixTimestamp64Nano(Timestamp) BETWEEN {request['t_start_ns']} "
            f"AND {request['t_end_ns']}"
        )
        assert len(rows) == 1, (request["label"], rows)
        return rows[0][0], rows[0][1]


def replay(captures: Path, client: TestClient, collector: Collector, run: str) -> Replayed:
    post_capture(client, captures / run)
    stored(collector, "SELECT 1")  # every trace normalized and stored
    assert collector.store is not None
    return Replayed(StoreReader(collector.store), collector, requests_of(captures / run))


def blocking_misses(run: str) -> list[str]:
    """The labels of the capture's requests that waited on a data-cache miss."""
    labels = DATA_CACHE_NEXT15 if run == NEXT15 else DATA_CACHE
    return [label for label, results in labels.items() if results == ["miss"]]


@pytest.mark.parametrize("run", RUNS)
def test_every_blocking_miss_is_named_with_its_upstream_time_and_reason(
    captures: Path, client: TestClient, collector: Collector, run: str
) -> None:
    replayed = replay(captures, client, collector, run)
    listed = {n.trace_id: n for n in slow.slowest(replayed.reader, slow.Filters(limit=100))}
    wrong: list[tuple[Any, ...]] = []
    misses = blocking_misses(run)
    for label in misses:
        request = next(r for r in replayed.requests if r["label"] == label)
        trace_id, kind = replayed.trace_of(request)
        assert kind in NAVIGATIONS, label
        ((reason,),) = replayed.sql(
            f"SELECT Reason FROM cache_events WHERE TraceId = '{trace_id}' AND Layer = 'data'"
        )
        # The upstream's own time: the HTTP client's call under Next.js's fetch span.
        ((upstream_ns,),) = replayed.sql(
            "SELECT Duration FROM otel_traces "
            f"WHERE TraceId = '{trace_id}' AND SpanKind = 'Client' AND NextSpanType = ''"
        )
        product = request["path"].split("?")[0].removeprefix("/products/")
        nav = listed.get(trace_id)
        if nav is None or nav.diagnosis is None:
            wrong.append((label, "not listed"))
            continue
        cause, parts = nav.diagnosis.cause, nav.diagnosis.parts
        fetch = f"fetch GET http://127.0.0.1:{_port(cause)}/api/product/{product} "
        if fetch not in cause or f"(data-cache miss: {reason})" not in cause:
            wrong.append((label, cause))
        elif abs(parts.get("fetch", 0) - upstream_ns) > TOLERANCE * upstream_ns:
            wrong.append((label, f"fetch part {parts.get('fetch', 0) / MS:.1f} ms", upstream_ns))
        elif sum(parts.values()) != nav.duration_ns:  # the parts add up, exactly
            wrong.append((label, f"parts {sum(parts.values())} of {nav.duration_ns} ns"))
    assert wrong == [], f"{len(misses) - len(wrong)} of {len(misses)} named right: {wrong}"


def _port(cause: str) -> str:
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", cause)
    return found.group(1) if found else "?"


def test_next15_middleware_in_a_trace_of_its_own_is_counted_and_fills_middleware_ms(
    captures: Path, client: TestClient, collector: Collector
) -> None:
    replayed = replay(captures, client, collector, NEXT15)
    rows = replayed.sql(
        "SELECT TraceId, Kind, MiddlewareMs, Duration, toUnixTimestamp64Nano(Timestamp) "
        "FROM requests ORDER BY Timestamp"
    )
    # Each pass, from the capture's spans: its Middleware.execute time, by the pass's target.
    passes = replayed.sql(
        "SELECT p.TraceId, p.SpanAttributes['http.target'], toUnixTimestamp64Nano(p.Timestamp), "
        "m.Duration FROM otel_traces AS p INNER JOIN otel_traces AS m "
        "ON m.ParentSpanId = p.SpanId AND m.TraceId = p.TraceId "
        "WHERE p.SpanAttributes['next.bubble'] = 'true' AND m.NextSpanType = 'Middleware.execute'"
    )
    checked = 0
    for trace_id, kind, middleware_ms, duration_ns, start_ns in rows:
        if kind == "static_asset":  # the app's middleware does not match /favicon.ico
            assert middleware_ms is None
            continue
        # The request's pass: the last one that started before it.
        pass_trace, _target, pass_start, middleware_ns = max(
            (p for p in passes if p[2] <= start_ns), key=lambda p: p[2]
        )
        assert middleware_ms == pytest.approx(middleware_ns / 1e6), trace_id
        trace = load_trace(replayed.reader, trace_id)
        # The navigation runs from its pass's start to the request's end, pass joined.
        assert {s.trace_id for s in trace.spans} == {trace_id, pass_trace}
        assert trace.duration_ns == start_ns + duration_ns - pass_start
        diagnosis = diagnose(trace)
        assert diagnosis.parts["middleware"] == middleware_ns
        assert sum(diagnosis.parts.values()) == trace.duration_ns
        checked += 1
    assert checked == len(rows) - 1


def test_the_proxy_hand_off_is_one_navigation_named_by_its_route(
    captures: Path, client: TestClient, collector: Collector
) -> None:
    # Next.js 16: the outer request span (the proxy's pass, "GET") ends in a few ms; the inner
    # one, its child, holds the render and the fetch.
    replayed = replay(captures, client, collector, "protobuf-default")
    request = next(r for r in replayed.requests if r["label"].startswith("html_product1_first"))
    trace_id, _kind = replayed.trace_of(request)
    ((row_duration,),) = replayed.sql(f"SELECT Duration FROM requests WHERE TraceId = '{trace_id}'")
    trace = load_trace(replayed.reader, trace_id)
    outer = trace.top[0]
    assert outer.name == "GET"
    assert outer.duration_ns < 10 * MS
    assert trace.root.name == "GET /products/[id]"
    assert trace.duration_ns == row_duration  # the request row's: to the inner span's end
    stretches = diagnose(trace).path
    handed = [s for s in stretches if "hand-off" in s.uncovered]
    assert handed, [s.uncovered for s in stretches]
    assert all(s.segment.gap for s in handed)


def test_compare_picks_a_peer_of_the_same_route_kind_and_service(
    captures: Path, client: TestClient, collector: Collector
) -> None:
    replayed = replay(captures, client, collector, "protobuf-default")
    rows = replayed.sql("SELECT TraceId, Route, Kind, ServiceName FROM requests WHERE Sign = 1")
    key = {trace_id: (route, kind, service) for trace_id, route, kind, service in rows}
    peers = none = 0
    for trace_id, (route, kind, _service) in key.items():
        if kind not in (*NAVIGATIONS, "rsc_prefetch"):
            continue
        trace = load_trace(replayed.reader, trace_id)
        alike = [t for t, k in key.items() if k == key[trace_id] and t != trace_id]
        if not alike:
            with pytest.raises(NextraceError, match=f"no other .* of {re.escape(route)}"):
                compare.typical_peer(replayed.reader, trace)
            none += 1
            continue
        peer = compare.typical_peer(replayed.reader, trace)
        assert key[peer] == key[trace_id], (trace.root.name, key[trace_id], key[peer])
        peers += 1
    assert peers >= 4
    assert none >= 1


# The recorded runs (tests/data/nextjs-runs): the truth is the upstream's own log, through
# tests/examples/runs.py.
RUN_NAMES = ("next16-curl", "next15-curl", "next16-chromium")


def post_run(client: TestClient, run: Any) -> None:
    """Every export of ``run`` to the collector, as the app and its pages sent them."""
    for content_type, body in run.bodies():
        response = client.post("/v1/traces", content=body, headers={"content-type": content_type})
        assert response.status_code == 200, response.text
    headers = {"origin": run.info["app_origin"]}
    for content_type, body in run.browser_bodies():
        response = client.post(
            "/v1/browser/traces", content=body, headers={**headers, "content-type": content_type}
        )
        assert response.status_code in (200, 204), response.text


def client_ms(collector: Collector, trace_id: str, path: str) -> float:
    """How long the app saw a call take: its HTTP client span until its answer came."""
    ((duration_ns, response_ms),) = stored(
        collector,
        "SELECT Duration, SpanAttributes['http.response_time'] FROM otel_traces "
        f"WHERE TraceId = '{trace_id}' AND SpanKind = 'Client' AND NextSpanType = '' "
        f"AND endsWith(SpanAttributes['http.url'], '{path}')",
    )
    return min(float(duration_ns) / MS, float(response_ms or "inf"))


@pytest.mark.parametrize("name", RUN_NAMES)
def test_every_blocking_miss_of_a_recorded_run_is_named_right(
    name: str, store_config: StoreConfig
) -> None:
    from tests.examples.runs import load_run

    try:
        run = load_run(name)
    except FileNotFoundError:
        pytest.skip(f"{name} is not recorded in tests/data/nextjs-runs")
    # The browser endpoint is off by default; the Chromium run's pages sent from this origin.
    options = {"browser_origins": (run.info["app_origin"],)}
    with running_collector(store_config, **options) as collector:
        with loopback_client(collector) as client:
            post_run(client, run)
        stored(collector, "SELECT 1")
        assert collector.store is not None
        reader = StoreReader(collector.store)
        listed = {n.trace_id: n for n in slow.slowest(reader, slow.Filters(limit=100))}
        reasons = dict(
            stored(
                collector,
                "SELECT TraceId, any(Reason) FROM cache_events "
                "WHERE Layer = 'data' AND Result = 'miss' GROUP BY TraceId",
            )
        )
        misses = run.blocking_misses()
        wrong: list[tuple[Any, ...]] = []
        within = 0
        for miss in misses:
            call = next(
                c
                for c in run.upstream_calls
                if c.trace_id == miss.trace_id
                and c.data_cache
                and c.upstream_ns == miss.upstream_ns
            )
            nav = listed.get(miss.trace_id)
            if nav is None or nav.diagnosis is None:
                wrong.append((miss.path, "not listed"))
                continue
            cause, fetch_ms = nav.diagnosis.cause, nav.diagnosis.parts.get("fetch", 0) / MS
            upstream_ms = miss.upstream_ns / MS
            reason = reasons.get(miss.trace_id, "?")
            if f"{call.path} " not in cause or f"(data-cache miss: {reason})" not in cause:
                wrong.append((miss.path, cause))
                continue
            # The fetch part is what the app waited on the call, never less than the
            # upstream's own time; on a busy or freshly started server, the app sees the
            # call take longer than the upstream did (its client span opens before the
            # upstream receives the call, or closes after it answered).
            seen_ms = client_ms(collector, miss.trace_id, call.path)
            if abs(fetch_ms - seen_ms) > TOLERANCE * seen_ms or fetch_ms < upstream_ms:
                wrong.append((miss.path, f"fetch {fetch_ms:.0f} ms", seen_ms, upstream_ms))
            within += abs(fetch_ms - upstream_ms) <= TOLERANCE * upstream_ms
            if sum(nav.diagnosis.parts.values()) != nav.duration_ns:
                wrong.append((miss.path, "the parts do not add up"))
        named = len(misses) - len(wrong)
        print(f"{name}: {named} of {len(misses)} named right, {within} within 10% of upstream")
        assert wrong == [], f"{named} of {len(misses)} named right: {wrong}"
        if run.info["next_major"] == 15:
            check_next15_middleware(collector, listed)
        check_peers(collector, reader, list(listed))


def check_peers(collector: Collector, reader: StoreReader, trace_ids: list[str]) -> None:
    """`compare`'s peer of each trace is of the same route, request kind and service (the
    first request row of the trace, and whether a browser's navigation started it), or it
    says there is none."""
    rows = stored(
        collector,
        "SELECT TraceId, argMin((ServiceName, Route, Kind), Timestamp) FROM requests "
        "WHERE Sign = 1 GROUP BY TraceId",
    )
    request = dict(rows)
    browser = dict(  # a browser's navigation, and its route (for one without a request)
        stored(
            collector,
            "SELECT TraceId, Route FROM lifecycle_spans WHERE Phase = 'navigation' AND IsRoot",
        )
    )

    def key(trace_id: str) -> tuple[Any, ...]:
        return (request.get(trace_id) or browser.get(trace_id), trace_id in browser)

    peers = 0
    for trace_id in trace_ids:
        trace = load_trace(reader, trace_id)
        alike = [t for t in trace_ids if t != trace_id and key(t) == key(trace_id)]
        if not alike:
            with pytest.raises(NextraceError, match="no other"):
                compare.typical_peer(reader, trace)
            continue
        peer = compare.typical_peer(reader, trace)
        assert key(peer) == key(trace_id), (trace.root.name, key(trace_id), key(peer))
        peers += 1
    assert peers >= len(trace_ids) // 2


def check_next15_middleware(collector: Collector, listed: dict[str, slow.SlowNavigation]) -> None:
    """Every request the middleware ran for has its MiddlewareMs, and every navigation counts
    it as its middleware part, its pass joined from another trace where it came in one."""
    rows = stored(collector, "SELECT TraceId, Kind, MiddlewareMs FROM requests WHERE Sign = 1")
    assert all(
        middleware_ms is not None for _t, kind, middleware_ms in rows if kind != "static_asset"
    )
    middleware = {trace_id: ms for trace_id, _kind, ms in rows}
    joined = 0
    for trace_id, nav in listed.items():
        assert nav.diagnosis is not None
        assert nav.diagnosis.parts["middleware"] == pytest.approx(middleware[trace_id] * MS, abs=1)
        joined += len({s.trace_id for s in nav.diagnosis.trace.spans}) > 1
    assert joined >= 1  # the requests sent without a traceparent


def test_a_middleware_pass_in_a_trace_of_its_own_is_joined_by_what_the_spans_carry(
    client: TestClient, collector: Collector
) -> None:
    # Hand-built Next.js 15 requests sent without a traceparent: each middleware pass is a
    # trace of its own, and nothing but method, target, service and time ties it to its request.
    t0 = time.time_ns() - 60 * 10**9
    requests = {}

    def handled(target: str, start_ms: float, end_ms: float, **attrs: str) -> Any:
        said = {"next.span_type": "BaseServer.handleRequest", "http.method": "GET"}
        return make_span(
            f"GET {target}",
            start_ns=t0 + int(start_ms * MS),
            duration_ns=int((end_ms - start_ms) * MS),
            attrs={**said, "http.target": target, "next.rsc": "false", **attrs},
        )

    def send(spans: list[Any]) -> None:
        body = make_request(spans, "shop", scope="next.js").SerializeToString()
        headers = {"content-type": "application/x-protobuf"}
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200

    def middleware_pass(target: str, start_ms: float, middleware_ms: float) -> None:
        bubble = handled(target, start_ms, start_ms + 3, **{"next.bubble": "true"})
        run = make_span(
            f"middleware GET {target}",
            trace_id=bubble.trace_id,
            parent=bubble.span_id,
            start_ns=t0 + int((start_ms + 1) * MS),
            duration_ns=int(middleware_ms * MS),
            attrs={"next.span_type": "Middleware.execute"},
        )
        send([bubble, run])

    def request(name: str, target: str, start_ms: float, end_ms: float) -> None:
        span = handled(target, start_ms, end_ms, **{"next.route": "/products/[id]"})
        requests[name] = span.trace_id.hex()
        send([span])

    middleware_pass("/products/1", 0, 1.0)
    request("a", "/products/1", 4, 100)
    middleware_pass("/products/2", 10, 2.0)  # another target, beside a
    request("b", "/products/2", 14, 50)
    middleware_pass("/products/3", 200, 0.5)
    request("late", "/products/3", 1300, 1400)  # 1.1 s after its pass: not its request
    middleware_pass("/products/4", 2000, 0.25)
    request("first", "/products/4", 2004, 2100)
    middleware_pass("/products/4", 2050, 0.75)  # the same target again, while first runs
    request("second", "/products/4", 2054, 2080)
    middleware = dict(stored(collector, "SELECT TraceId, MiddlewareMs FROM requests"))
    assert collector.store is not None
    reader = StoreReader(collector.store)
    expected = {"a": 1.0, "b": 2.0, "late": None, "first": 0.25, "second": 0.75}
    for name, middleware_ms in expected.items():
        trace = load_trace(reader, requests[name])
        assert middleware[requests[name]] == middleware_ms, name
        parts = diagnose(trace).parts
        if middleware_ms is None:
            assert trace.top == [trace.root], name  # no pass joined
            assert "middleware" not in parts
            continue
        joined = trace.top[0]
        assert joined.trace_id != trace.trace_id, name
        assert joined.attributes["http.target"] == trace.root.attributes["http.target"]
        assert parts["middleware"] == int(middleware_ms * MS), name
        assert sum(parts.values()) == trace.duration_ns
