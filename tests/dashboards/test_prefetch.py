"""The Prefetch dashboard's queries on traffic whose amplification and conversion are known."""

from __future__ import annotations

import gzip
import os
from typing import Any

import pytest
from starlette.testclient import TestClient

from dashboards import prefetch
from dashboards.frontend import Values
from tests.builders import make_span
from tests.conftest import running_collector, stored
from tests.dashboards.panels import HOUR_START_NS, Traffic, ingest, run_panel, stored_traffic
from tests.support.cdn_payloads import LINES as CLOUDFLARE_LINES

MS = 1_000_000
PAYLOAD_BYTES = {"full": 3000, "loading": 800, "empty": 0}


@pytest.fixture
def traffic(client, collector):
    """6 prefetches (2 used by navigations) and 2 navigations; middleware ran on 2 prefetches."""
    base = HOUR_START_NS
    browser: list[Any] = []
    server: list[Any] = []

    def request(kind: str, ms: int, trace: bytes, parent: bytes, route: str, size: int = 0) -> Any:
        span = make_span(
            f"GET {route}",
            trace_id=trace,
            parent=parent,
            start_ns=base,
            duration_ns=ms * MS,
            attrs={
                "nextrace.phase": "request",
                "nextrace.request.kind": kind,
                "next.route": route,
                "http.response.body.size": size,
            },
        )
        server.append(span)
        return span

    prefetch_traces = []
    for i, (route, payload) in enumerate(
        [
            ("/a", "full"),
            ("/p/[id]", "loading"),
            ("/p/[id]", "loading"),
            ("/x", "empty"),
            ("/a", "full"),
            ("/x", "empty"),
        ]
    ):
        trace = os.urandom(16)
        prefetch_traces.append(trace)
        root = make_span(
            f"prefetch {route}",
            trace_id=trace,
            start_ns=base,
            duration_ns=5 * MS,
            attrs={"nextrace.phase": "prefetch", "nextrace.prefetch.payload": payload},
        )
        browser.append(root)
        req = request("rsc_prefetch", 4, trace, root.span_id, route, PAYLOAD_BYTES[payload])
        server.append(
            make_span(
                f"prefetch {route}",
                trace_id=trace,
                parent=req.span_id,
                start_ns=base,
                attrs={
                    "nextrace.phase": "prefetch",
                    "next.route": route,
                    "nextrace.prefetch.payload": payload,
                },
            )
        )
        if i < 2:
            server.append(
                make_span(
                    "middleware",
                    trace_id=trace,
                    parent=req.span_id,
                    start_ns=base,
                    duration_ns=2 * MS,
                    attrs={"nextrace.phase": "middleware", "nextrace.request.kind": "rsc_prefetch"},
                )
            )
    for source, result in ((prefetch_traces[0], "hit"), (prefetch_traces[1], "partial")):
        trace = os.urandom(16)
        nav = make_span(
            "navigation",
            trace_id=trace,
            start_ns=base,
            duration_ns=50 * MS,
            attrs={"nextrace.phase": "navigation", "nextrace.navigation.router_cache": result},
        )
        lookup = make_span(
            "router cache lookup",
            trace_id=trace,
            parent=nav.span_id,
            start_ns=base,
            attrs={
                "cache.layer": "router",
                # as both browsers say it: a partial hit is a miss of the full payload
                "cache.result": "hit" if result == "hit" else "miss",
                "nextrace.router.result": result,
                "cache.entry.source": "prefetch",
                "cache.entry.source_trace_id": source.hex(),
            },
        )
        browser += [nav, lookup]
        req = request("rsc_navigation", 36, trace, nav.span_id, "/a")
        server.append(
            make_span(
                "middleware",
                trace_id=trace,
                parent=req.span_id,
                start_ns=base,
                duration_ns=6 * MS,
                attrs={"nextrace.phase": "middleware", "nextrace.request.kind": "rsc_navigation"},
            )
        )
    return ingest(client, collector, base, {"browser": browser, "shop": server})


def run(traffic: Traffic, title: str, **chosen: Values) -> list[Any]:
    return run_panel(traffic, prefetch, title, **chosen)


def test_prefetches_against_navigations_and_their_ratio(traffic):
    assert [(p, n) for _, p, n in run(traffic, "Prefetches and navigations")] == [(6, 2)]
    assert [ratio for _, ratio in run(traffic, "Prefetches per navigation")] == [3.0]
    assert run(traffic, "Prefetches and navigations", service=["nobody"]) == []


def test_the_share_of_server_and_middleware_load_from_prefetches(traffic):
    rows = {phase: rest for phase, *rest in run(traffic, "Load from prefetches")}
    assert rows["request"] == [8, 0.75, round(24 / 96, 4)]  # 6 * 4 ms of 6 * 4 + 2 * 36 ms
    assert rows["middleware"] == [4, 0.5, round(4 / 16, 4)]


def test_prefetch_conversion_router_results_and_payloads(traffic):
    assert run(traffic, "Prefetch conversion") == [(6, 2, 4, round(2 / 6, 4))]
    assert run(traffic, "Router cache of navigations") == [("hit", 1), ("partial", 1)]
    assert run(traffic, "What prefetches got back") == [
        ("/a", 2, 0, 0),
        ("/p/[id]", 0, 2, 0),
        ("/x", 0, 0, 2),
    ]


def test_route_and_build_filters_narrow_the_panels(traffic):
    assert [(p, n) for _, p, n in run(traffic, "Prefetches and navigations", route=["/a"])] == [
        (2, 2)
    ]
    assert run(traffic, "Prefetches and navigations", build=["build-9"]) == []
    assert run(traffic, "Prefetch conversion", route=["/nowhere"]) == [(0, 0, 0, 0.0)]


def test_load_from_prefetches_counts_a_nextjs_services_requests(captures, client, collector):
    from tests.support.captures import post_capture

    post_capture(client, captures / "protobuf-default")
    requests = stored(collector, "SELECT Kind, Duration, MiddlewareMs FROM requests")
    rows = {phase: rest for phase, *rest in run(stored_traffic(collector), "Load from prefetches")}

    def share(durations: list[tuple[bool, int]]) -> list[Any]:
        total = sum(d for _, d in durations)
        prefetch = sum(d for is_prefetch, d in durations if is_prefetch)
        count = sum(is_prefetch for is_prefetch, _ in durations)
        return [len(durations), round(count / len(durations), 4), round(prefetch / total, 4)]

    request_times = [(kind == "rsc_prefetch", duration) for kind, duration, _ in requests]
    middleware_times = [
        (kind == "rsc_prefetch", int(ms * 1e6)) for kind, _, ms in requests if ms is not None
    ]
    assert rows == {"request": share(request_times), "middleware": share(middleware_times)}
    assert 0 < rows["request"][1] < 1  # the capture holds prefetches and other requests


def test_prefetch_payload_sizes_per_route(traffic):
    assert run(traffic, "Prefetch payload sizes") == [
        ("/a", 2, 3000, 3000, 6000),
        ("/p/[id]", 2, 800, 800, 1600),
        ("/x", 2, 0, 0, 0),
    ]
    assert run(traffic, "Prefetch payload sizes", route=["/x"]) == [("/x", 2, 0, 0, 0)]


def test_prefetches_the_cdn_answered_count_with_the_apps(store_config):
    # Cloudflare's log of four requests: a document, a prefetch and a stale listing answered
    # at the edge, and an RSC navigation that reached the app (its own trace counts it there).
    token = "logpush-token-0123456789"
    with running_collector(store_config, cloudflare_logpush_token=token) as collector:
        assert collector.app is not None
        with TestClient(collector.app, base_url="http://localhost:4318") as client:
            answer = client.post(
                "/v1/cdn/cloudflare?service=shop",
                content=gzip.compress(CLOUDFLARE_LINES),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200
        traffic = stored_traffic(collector)
        assert [(p, n) for _, p, n in run(traffic, "Prefetches and navigations")] == [(1, 2)]
        # Cloudflare logs no route: the path is the route, as in Vercel's rows.
        assert run(traffic, "Prefetch payload sizes") == [("/products/4", 1, 2210, 2210, 2210)]
