"""The report's advice and figures, on hand-built stores whose right answer is known: which
routes a warm-up would have saved, which entries expire before users return, which links cause
a prefetch storm, which warm-ups lost their race, nothing to do where nothing points at it; and
latency that leaves the router cache's hits apart."""

from __future__ import annotations

import time
from typing import Any

from starlette.testclient import TestClient

from collector.config import StoreConfig
from investigate.reader import StoreReader
from investigate.report import Window, build_report
from tests.builders import make_request, make_span
from tests.conftest import running_collector, stored

PB = {"Content-Type": "application/x-protobuf"}
MS = 10**6


def request(route: str, kind: str, at: int) -> Any:
    return make_span(
        f"GET {route}",
        start_ns=at,
        duration_ns=50 * MS,
        attrs={
            "nextrace.phase": "request",
            "nextrace.request.kind": kind,
            "next.route": route,
            "http.response.status_code": 200,
        },
    )


def lookup(route: str, result: str, reason: str, at: int, **extra: Any) -> Any:
    return make_span(
        "data cache lookup",
        start_ns=at,
        attrs={
            "nextrace.phase": "cache",
            "cache.layer": "data",
            "cache.result": result,
            "next.route": route,
            **({"cache.miss_reason": reason} if reason else {}),
            **extra,
        },
    )


def advice_of(store_config: StoreConfig, spans: list[Any]) -> list[str]:
    with running_collector(store_config) as collector:
        assert collector.app is not None
        with TestClient(collector.app, base_url="http://localhost:4318") as client:
            body = make_request(spans).SerializeToString()
            assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
        stored(collector, "SELECT 1")
        assert collector.store is not None
        return build_report(StoreReader(collector.store), window=Window()).advice


def test_each_finding_names_what_to_do_and_the_figure_it_rests_on(store_config):
    now = time.time_ns()
    spans = [
        # A grid of links to /grid/[n] in view: 40 prefetches, 2 navigations there.
        *(request("/grid/[n]", "rsc_prefetch", now + i * MS) for i in range(40)),
        *(request("/grid/[n]", "rsc_navigation", now + i * MS) for i in range(2)),
        *(request("/products/[id]", "rsc_prefetch", now + i * MS) for i in range(5)),
        *(request("/products/[id]", "document", now + i * MS) for i in range(10)),
        # A deploy emptied /a's entries 6 times, /b's twice; /a raced a queued warm-up twice.
        *(lookup("/a", "miss", "deploy", now + i * MS) for i in range(6)),
        *(lookup("/b", "miss", "deploy", now + i * MS) for i in range(2)),
        *(
            lookup("/a", "miss", "deploy", now + i * MS, **{"nextrace.warmup.pending": "true"})
            for i in range(2)
        ),
        # /feed's entries expired: 3 waited, 2 served stale.
        *(lookup("/feed", "miss", "expired", now + i * MS) for i in range(3)),
        *(lookup("/feed", "stale", "expired", now + i * MS) for i in range(2)),
        lookup("/feed", "hit", "", now),
    ]
    warm, expired, storm, raced = advice_of(store_config, spans)
    assert warm.startswith("Warm before the next switch: /a (8), /b (2).")
    assert expired.startswith("/feed (data): 5 lookups found the entry expired (3 waited")
    assert storm.startswith("A prefetch storm: 45 prefetch requests for 12 navigations (3.8 ")
    assert "The links to /grid/[n] (40), /products/[id] (5) took 100% of them" in storm
    assert raced.startswith("Warm-ups raced their users: /a (2) missed")


def test_calm_traffic_has_nothing_to_do(store_config):
    now = time.time_ns()
    spans = [
        *(request("/products/[id]", "rsc_prefetch", now + i * MS) for i in range(10)),
        *(request("/products/[id]", "document", now + i * MS) for i in range(10)),
        *(lookup("/products/[id]", "hit", "", now + i * MS) for i in range(10)),
    ]
    assert advice_of(store_config, spans) == []


def test_latency_per_period_counts_the_router_caches_hits_apart(store_config):
    """Navigations the browser's router cache served take about nothing: averaged in, they
    pulled the median to 0 ms. They are counted apart; the percentiles are the others'."""
    now = time.time_ns()

    def navigation(ms: int, router_cache: str, i: int) -> Any:
        return make_span(
            "navigation /products/[id]",
            start_ns=now + i * MS,
            duration_ns=ms * MS,
            attrs={
                "nextrace.phase": "navigation",
                "next.route": "/products/[id]",
                "nextrace.navigation.router_cache": router_cache,
            },
        )

    spans = [navigation(1, "hit", i) for i in range(30)]
    spans += [navigation(ms, "miss", 30 + i) for i, ms in enumerate((100, 200, 300, 400, 500))]
    with running_collector(store_config) as collector:
        assert collector.app is not None
        with TestClient(collector.app, base_url="http://localhost:4318") as client:
            body = make_request(spans, "browser").SerializeToString()
            assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
        stored(collector, "SELECT 1")
        assert collector.store is not None
        report = build_report(StoreReader(collector.store))
    (overall,) = [r for r in report.latency if r["route"] == ""]
    assert (overall["navigations"], overall["router_hits"]) == (5, 30)
    assert overall["p50_ms"] == 300  # the median of the five that went to the server, not 1
    assert "router hits" in report.render()
