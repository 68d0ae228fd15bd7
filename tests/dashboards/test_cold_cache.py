"""The Cold cache and warm-ups dashboard on known cache, warm-up and revalidation spans."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards import cold_cache
from dashboards.frontend import Values
from tests.builders import make_span
from tests.dashboards.panels import HOUR_START_NS, Traffic, ingest, run_panel


@pytest.fixture
def traffic(client, collector):
    base = HOUR_START_NS

    def data(result: str, key: str, **attrs: Any) -> Any:
        return make_span(
            "data cache lookup",
            start_ns=base,
            attrs={
                "nextrace.phase": "cache",
                "cache.layer": "data",
                "cache.result": result,
                "cache.key": key,
                **attrs,
            },
        )

    def warmup(trigger: str, outcome: str, wait_ms: float) -> Any:
        return make_span(
            f"warmup {trigger}",
            start_ns=base,
            attrs={
                "nextrace.phase": "warmup",
                "nextrace.warmup.trigger": trigger,
                "nextrace.warmup.outcome": outcome,
                "nextrace.warmup.queue_wait_ms": wait_ms,
            },
        )

    def revalidate(kind: str, target: str, invalidated: int) -> Any:
        return make_span(
            f"revalidate {kind}",
            start_ns=base,
            attrs={
                "nextrace.phase": "revalidate",
                "nextrace.revalidate.kind": kind,
                "nextrace.revalidate.target": target,
                "nextrace.revalidate.trigger": "webhook",
                "nextrace.revalidate.invalidated": invalidated,
            },
        )

    spans = [
        data("hit", "k1", **{"cache.entry.source": "warmup", "cache.entry.age_ms": 1500.0}),
        data("hit", "k1", **{"cache.entry.source": "warmup", "cache.entry.age_ms": 500.0}),
        data("hit", "k2", **{"cache.entry.source": "request"}),
        data("stale", "k2", **{"cache.entry.source": "request", "cache.miss_reason": "expired"}),
        data("miss", "k3", **{"cache.miss_reason": "deploy", "nextrace.warmup.pending": True}),
        data("miss", "k4", **{"cache.miss_reason": "tag_invalidated"}),
        data("miss", "k5", **{"cache.miss_reason": "cold"}),
        warmup("webhook", "ok", 10.0),
        warmup("webhook", "ok", 30.0),
        warmup("deploy", "error", 5.0),
        warmup("middleware", "queue_full", 0.0),
        revalidate("tag", "products", 5),
        revalidate("tag", "products", 3),
        revalidate("path", "/a", 2),
    ]
    return ingest(client, collector, base, {"svc": spans})


def run(traffic: Traffic, title: str, **chosen: Values) -> list[Any]:
    return run_panel(traffic, cold_cache, title, **chosen)


def test_cold_misses_against_warm_ups(traffic):
    ((_, cold, ok, failed, queue_full, deduplicated),) = run(traffic, "Cold misses and warm-ups")
    assert (cold, ok, failed, queue_full, deduplicated) == (2, 2, 1, 1, 0)


def test_coverage_lead_time_and_misses_despite_warm_ups(traffic):
    assert run(traffic, "Warm-up coverage of data-cache hits") == [(2, 4, 0.5)]
    assert run(traffic, "Warm-up lead time") == [("k1", 500.0, 2)]
    assert run(traffic, "Misses despite warm-ups") == [(1, 1, 4)]


def test_the_queue_and_the_blast_radius(traffic):
    assert run(traffic, "Warm-up queue") == [
        ("deploy", "error", 1, 5.0, 5.0),
        ("middleware", "queue_full", 1, 0.0, 0.0),
        ("webhook", "ok", 2, 20.0, 30.0),
    ]
    assert run(traffic, "Revalidation blast radius") == [
        ("tag", "products", 2, 8),
        ("path", "/a", 1, 2),
    ]
    assert run(traffic, "Revalidation blast radius", service=["other"]) == []


def test_route_and_build_filters_narrow_the_panels(traffic):
    assert run(traffic, "Warm-up coverage of data-cache hits", route=["/nowhere"]) == [(0, 0, 0.0)]
    assert run(traffic, "Warm-up queue", build=["build-9"]) == []
