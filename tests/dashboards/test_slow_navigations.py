"""The Slow navigations dashboard: its queries on a known set of traces, and the trace view."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote

import pytest

from dashboards import slow_navigations
from dashboards.frontend import Values
from tests.builders import make_request, make_span
from tests.conftest import stored
from tests.dashboards.panels import (
    HOUR_START_NS,
    Traffic,
    ingest,
    panel_json,
    run_panel,
    run_sql,
    stored_traffic,
)

PB = {"Content-Type": "application/x-protobuf"}
MS = 1_000_000


def navigation(
    base: int, route: str, total_ms: int, request_ms: int, ttfb_ms: float, with_phases: bool = False
) -> tuple[bytes, list[Any], list[Any]]:
    trace = os.urandom(16)
    nav = make_span(
        f"navigation {route}",
        trace_id=trace,
        start_ns=base,
        duration_ns=total_ms * MS,
        attrs={"nextrace.phase": "navigation", "next.route": route},
    )
    request = make_span(
        f"RSC GET {route}",
        trace_id=trace,
        parent=nav.span_id,
        start_ns=base + MS,
        duration_ns=request_ms * MS,
        attrs={
            "nextrace.phase": "request",
            "next.route": route,
            "nextrace.request.kind": "rsc_navigation",
            "nextrace.stream.ttfb_ms": ttfb_ms,
        },
    )
    server = [request]
    if with_phases:

        def child(name: str, phase: str, ms: int, **attrs: Any):
            return make_span(
                name,
                trace_id=trace,
                parent=request.span_id,
                start_ns=base + 2 * MS,
                duration_ns=ms * MS,
                attrs={"nextrace.phase": phase, **attrs},
            )

        server += [
            child("cdn cache lookup", "cdn", 1),
            child("middleware", "middleware", 5),
            child("resolve page components", "route", 1),
            child("render route", "render", 600),
            child("fetch GET api/a", "fetch", 300),
            child("fetch GET api/b", "fetch", 250, **{"nextrace.fetch.after": "a"}),
            child("stream", "stream", 650),
        ]
    return trace, [nav], server


@pytest.fixture
def traffic(client, collector):
    base = HOUR_START_NS
    t1, nav1, server1 = navigation(base, "/p/[id]", 800, 700, 100, with_phases=True)
    t2, nav2, server2 = navigation(base, "/about", 100, 80, 10)
    _, nav3, server3 = navigation(base, "/p/[id]", 400, 350, 50)
    traffic = ingest(
        client,
        collector,
        base,
        {"browser": nav1 + nav2 + nav3, "shop": server1 + server2 + server3},
    )
    traffic.facts = {"slow": t1.hex(), "fast": t2.hex()}
    return traffic


def run(traffic: Traffic, sql: str, **chosen: Values) -> list[Any]:
    return run_sql(traffic, slow_navigations.VARIABLES, sql, **chosen)


def panel(title: str) -> dict[str, Any]:
    return panel_json(slow_navigations, title)


def sql_of(title: str) -> str:
    return str(panel(title)["targets"][0]["rawSql"])


def test_navigation_latency_percentiles_per_route(traffic):
    rows = run(traffic, sql_of("Navigation latency per route"))
    assert rows == [("/p/[id]", 2, 600.0, 780.0, 796.0), ("/about", 1, 100.0, 100.0, 100.0)]
    assert run(traffic, sql_of("Navigation latency per route"), route=["/about"]) == [
        ("/about", 1, 100.0, 100.0, 100.0)
    ]


def test_request_latency_and_ttfb(traffic):
    rows = run(traffic, sql_of("Request latency and TTFB per route"))
    assert rows[0] == ("/p/[id]", "rsc_navigation", 2, 525.0, 682.5, 696.5, 75.0)
    assert rows[1] == ("/about", "rsc_navigation", 1, 80.0, 80.0, 80.0, 10.0)


def test_time_per_phase_and_waterfalls(traffic):
    phases = {phase: total for phase, _, total, _ in run(traffic, sql_of("Time per phase"))}
    assert phases == {
        "stream": 650.0,
        "render": 600.0,
        "fetch": 550.0,
        "middleware": 5.0,
        "cdn": 1.0,
        "route": 1.0,
    }
    assert run(traffic, sql_of("Sequential-fetch waterfalls")) == [
        ("fetch GET api/b", "a", 1, 250.0)
    ]
    # A route chosen: only its requests' traces (the phases are all /p/[id]'s).
    assert run(traffic, sql_of("Sequential-fetch waterfalls"), route=["/about"]) == []
    assert run(traffic, sql_of("Time per phase"), route=["/about"]) == []
    # The per-minute sums (no route chosen) and the spans (one chosen) agree on the same traffic.
    assert run(traffic, sql_of("Time per phase"), route=["/p/[id]"]) == run(
        traffic, sql_of("Time per phase")
    )


def test_the_slowest_traces_open_in_the_trace_view(traffic):
    traces = traffic.facts
    rows = run(traffic, sql_of("Slowest traces"))
    trace_id, _, _, duration, _ = rows[0]
    assert (trace_id, duration) == (traces["slow"], 800.0)
    assert [service for _, _, service, _, _ in rows] == ["browser"] * 3  # roots only
    (override,) = [
        o
        for o in panel("Slowest traces")["fieldConfig"]["overrides"]
        if o["matcher"] == {"id": "byName", "options": "trace_id"}
    ]
    (links,) = [p["value"] for p in override["properties"] if p["id"] == "links"]
    ours, grafanas = links
    assert ours["url"] == "${nextrace_url}/trace/${__value.raw}"  # tests/dashboards/test_links.py
    url = grafanas["url"]
    assert "${__value.raw}" in url  # Grafana fills the clicked trace id in
    panes = json.loads(unquote(url.split("panes=", 1)[1]))
    (pane,) = panes.values()
    assert pane["range"] == {"from": "${__from}", "to": "${__to}"}  # the dashboard's
    (trace_query,) = pane["queries"]
    assert (trace_query["queryType"], trace_query["format"]) == ("traces", 3)
    sql = trace_query["rawSql"].replace("${__value.raw}", traces["slow"])
    spans = run(traffic, sql)
    assert len(spans) == 9  # the navigation, its request and the request's seven phases
    assert {row[0] for row in spans} == {traces["slow"]}
    root = spans[0]
    assert (root[2], root[3], root[6]) == ("", "browser", 800.0)
    assert {"key": "nextrace.phase", "value": "navigation"} in root[7]


def test_the_build_filter_narrows_server_side_panels(traffic):
    assert run(traffic, sql_of("Time per phase"), build=["build-9"]) == []
    assert run(traffic, sql_of("Request latency and TTFB per route"), build=["build-9"]) == []


def test_time_per_phase_reads_nextjs_spans_by_their_type(captures, client, collector):
    from tests.support.captures import expected_spans, post_capture

    run = captures / "protobuf-default"
    post_capture(client, run)
    phases = {
        "Middleware.execute": "middleware",
        "NextNodeServer.findPageComponents": "route",
        "AppRender.getBodyResult": "render",
        "AppRender.fetch": "fetch",
    }
    expected: dict[str, list[int]] = {}
    for span in expected_spans(run).values():
        attributes = {a["key"]: a["value"] for a in span.get("attributes", [])}
        span_type = attributes.get("next.span_type", {}).get("stringValue", "")
        if span_type in phases:
            duration = int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])
            expected.setdefault(phases[span_type], []).append(duration)
    traffic = stored_traffic(collector)
    rows = run_panel(traffic, slow_navigations, "Time per phase")
    assert {phase: (spans, total_ms) for phase, spans, total_ms, _ in rows} == {
        phase: (len(durations), round(sum(durations) / 1e6, 1))
        for phase, durations in expected.items()
    }
    assert set(expected) == {"middleware", "route", "render", "fetch"}


def test_nextjs_waterfalls_are_read_from_fetch_timing(client, collector):
    trace_id, render_id = os.urandom(16), os.urandom(8)
    ms = 1_000_000

    def fetch(url: str, start_ms: float, duration_ms: float):
        return make_span(
            f"fetch GET {url}",
            trace_id=trace_id,
            parent=render_id,
            start_ns=HOUR_START_NS + int(start_ms * ms),
            duration_ns=int(duration_ms * ms),
            kind=3,
            attrs={"next.span_type": "AppRender.fetch", "next.fetch.cache_status": "miss"},
        )

    spans = [
        fetch("http://api/user", 0, 100),
        fetch("http://api/flags", 10, 50),  # in parallel with user: no waterfall
        fetch("http://api/orders", 120, 200),  # after user ended: it waited for user
        fetch("http://api/recommendations", 330, 40),  # after orders ended
        # Its start cut to the millisecond, as Next.js records it: it seems to start 0.6 ms
        # before recommendations ended, and waited for it.
        fetch("http://api/reviews", 369.4, 30),
    ]
    body = make_request(spans, "shop", scope="next.js").SerializeToString()
    assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    stored(collector, "SELECT 1")
    traffic = ingest(client, collector, HOUR_START_NS, {})
    assert run(traffic, sql_of("Sequential-fetch waterfalls")) == [
        ("fetch GET http://api/orders", "fetch GET http://api/user", 1, 200.0),
        ("fetch GET http://api/recommendations", "fetch GET http://api/orders", 1, 40.0),
        ("fetch GET http://api/reviews", "fetch GET http://api/recommendations", 1, 30.0),
    ]
