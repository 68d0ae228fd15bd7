"""Alert rules: valid provisioning JSON, and each condition evaluated on stored data."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import replace
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from dashboards.alerts import (
    ALERTS,
    COLD_CACHE_SPIKE,
    PREFETCH_AMPLIFICATION,
    WARMUP_FAILURES,
)
from dashboards.macros import QueryContext, UnknownMacroError, expand
from investigate.pages import store_pages
from tests.builders import make_request, make_span
from tests.conftest import GRAFANA_SCHEMAS, LOCAL, loopback_client, running_collector, stored
from tests.support.alerts import evaluate, render_annotation, rule_json
from tests.support.cdn_payloads import signed

PB = {"Content-Type": "application/x-protobuf"}
MINUTE = 60_000_000_000


def test_a_window_without_a_value_is_refused():
    with pytest.raises(ValueError, match="no value for"):
        replace(COLD_CACHE_SPIKE, windows={}).sql()


@pytest.mark.parametrize("spec", ALERTS, ids=lambda s: s.uid)
def test_rules_are_valid_and_never_use_dashboard_variables(spec):
    rule = rule_json(spec)
    schema = json.loads((GRAFANA_SCHEMAS / "alerting.jsonschema.json").read_text())
    jsonschema.validate(rule, {**schema, "$ref": "#/definitions/Rule"})
    assert [q["refId"] for q in rule["data"]] == ["A", "B", "C"]
    assert rule["condition"] == "C"
    sql = rule["data"][0]["model"]["rawSql"]
    now = dt.datetime.now(dt.UTC)
    expand(sql, QueryContext(now - dt.timedelta(minutes=30), now))  # backend macros only
    assert "$__conditionalAll" not in sql
    with pytest.raises(UnknownMacroError):
        expand(sql + " AND x = $route", QueryContext(now, now))


def lookups(
    now_ns: int,
    start_min: float,
    end_min: float,
    count: int,
    misses: int,
    layer: str = "data",
    build: str = "",
):
    step = (end_min - start_min) * MINUTE / count
    return [
        make_span(
            f"{layer} cache lookup",
            start_ns=int(now_ns + start_min * MINUTE + i * step),
            attrs={
                "nextrace.phase": "cache",
                "cache.layer": layer,
                "cache.result": "miss" if i < misses else "hit",
                **({"cache.miss_reason": "deploy"} if i < misses else {}),
                **({"nextrace.build_id": build} if build else {}),
            },
        )
        for i in range(count)
    ]


def ingest(client, collector, spans) -> None:
    body = make_request(spans).SerializeToString()
    assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    stored(collector, "SELECT 1")


def test_the_cold_cache_alert_fires_on_a_spike_over_the_baseline(client, collector):
    now_ns = time.time_ns()
    at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
    baseline = lookups(now_ns, -28, -2, 300, 15)  # 5 % misses for 26 minutes
    ingest(client, collector, baseline + lookups(now_ns, -28, -2, 100, 5, layer="cdn"))
    assert evaluate(collector, COLD_CACHE_SPIKE, at) == {}  # steady traffic: quiet

    ingest(client, collector, lookups(now_ns, -1.9, -0.1, 60, 36))  # a deploy: 60 % misses
    firing = evaluate(collector, COLD_CACHE_SPIKE, at)
    assert list(firing) == [("svc", "", "data")]  # service, build, layer
    assert firing["svc", "", "data"] == pytest.approx(0.6 - 2 * 15 / 300)


def test_the_cold_cache_alert_names_the_build_that_went_cold(client, collector):
    now_ns = time.time_ns()
    at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
    ingest(client, collector, lookups(now_ns, -28, -2, 300, 15, build="b1"))  # 5 % misses
    still_warm = lookups(now_ns, -1.9, -0.1, 40, 2, build="b1")  # the old build, still 5 %
    just_deployed = lookups(now_ns, -1.9, -0.1, 60, 36, build="b2")  # no history of its own
    ingest(client, collector, still_warm + just_deployed)
    # The new build is measured against its service's baseline, and fires alone.
    assert evaluate(collector, COLD_CACHE_SPIKE, at) == {
        ("svc", "b2", "data"): pytest.approx(0.6 - 2 * 15 / 300)
    }


def test_the_cold_cache_alert_watches_use_cache_handlers_and_not_the_browsers_router(
    client, collector
):
    now_ns = time.time_ns()
    at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
    for layer in ("use_cache_remote", "router"):
        ingest(client, collector, lookups(now_ns, -28, -2, 300, 15, layer=layer))
        ingest(client, collector, lookups(now_ns, -1.9, -0.1, 60, 36, layer=layer))
    # A deploy empties a 'use cache' handler's entries as it does the data cache's; the
    # client's router cache is the browser's, not the deploy's.
    assert list(evaluate(collector, COLD_CACHE_SPIKE, at)) == [("svc", "", "use_cache_remote")]


def test_the_cold_cache_alert_ignores_a_trickle_and_a_high_but_steady_miss_ratio(client, collector):
    now_ns = time.time_ns()
    at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
    steady_high = lookups(now_ns, -28, -2, 300, 120)  # 40 % misses all along
    ingest(client, collector, steady_high + lookups(now_ns, -1.9, -0.1, 60, 26))
    trickle = lookups(now_ns, -1.9, -0.1, 5, 5, layer="cdn")  # 100 % of 5 lookups
    ingest(client, collector, trickle)
    assert evaluate(collector, COLD_CACHE_SPIKE, at) == {}


def requests(now_ns: int, start_min: float, end_min: float, prefetches: int, navigations: int):
    total = prefetches + navigations
    step = (end_min - start_min) * MINUTE / total
    return [
        make_span(
            "GET /x",
            start_ns=int(now_ns + start_min * MINUTE + i * step),
            attrs={
                "nextrace.phase": "request",
                "nextrace.request.kind": "rsc_prefetch" if i < prefetches else "rsc_navigation",
            },
        )
        for i in range(total)
    ]


def test_prefetch_amplification_fires_on_a_storm_and_not_on_steady_prefetching(client, collector):
    now_ns = time.time_ns()
    at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
    ingest(client, collector, requests(now_ns, -55, -5, 300, 200))  # 1.5 per navigation
    ingest(client, collector, requests(now_ns, -4.9, -0.1, 45, 30))  # still 1.5
    assert evaluate(collector, PREFETCH_AMPLIFICATION, at) == {}
    ingest(client, collector, requests(now_ns, -4.9, -0.1, 300, 0))  # the storm: 345 for 30
    firing = evaluate(collector, PREFETCH_AMPLIFICATION, at)
    assert firing == {"svc": pytest.approx((345 / 30) / 1.5)}


def test_warm_up_failures_and_refusals_fire_above_a_fifth_of_the_jobs(client, collector):
    now_ns = time.time_ns()
    at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)

    def jobs(trigger: str, outcomes: list[str]):
        return [
            make_span(
                f"warmup {trigger}",
                start_ns=now_ns - (i + 1) * MINUTE // 10,
                attrs={
                    "nextrace.phase": "warmup",
                    "nextrace.warmup.trigger": trigger,
                    "nextrace.warmup.outcome": outcome,
                },
            )
            for i, outcome in enumerate(outcomes)
        ]

    ingest(
        client,
        collector,
        jobs("webhook", ["ok"] * 9 + ["error"])  # 10 %: fine
        + jobs("deploy", ["ok"] * 2 + ["queue_full"] * 2)  # too few jobs to judge
        + jobs("middleware", ["ok"] * 6 + ["queue_full", "error", "error"]),
    )  # 33 %
    assert evaluate(collector, WARMUP_FAILURES, at) == {("svc", "middleware"): pytest.approx(3 / 9)}


def test_a_prefetch_loop_the_cdn_serves_fires_the_amplification_alert(store_config):
    # vercel/next.js#98345: a prefetch loop 99.8 % served by the CDN, invisible at the origin.
    # Here the app sees its navigations and 3 of 300 prefetches; Vercel's log drain, the rest.
    secret = "drain-secret-0123456789"
    with running_collector(store_config, vercel_drain_secret=secret) as collector:
        assert collector.app is not None
        with TestClient(collector.app, base_url="http://localhost:4318") as client:
            now_ns = time.time_ns()
            at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)
            app_spans = requests(now_ns, -55, -5, 300, 200) + requests(now_ns, -4.9, -0.1, 3, 30)
            body = make_request(app_spans, "shop").SerializeToString()
            assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
            assert evaluate(collector, PREFETCH_AMPLIFICATION, at) == {}  # the origin: quiet
            served = [
                {
                    "id": f"log-{i}",
                    "projectName": "shop",
                    "proxy": {
                        "timestamp": (now_ns - 4 * MINUTE + i * MINUTE // 100) // 1_000_000,
                        "method": "GET",
                        "host": "shop.example.com",
                        "path": f"/products/{i % 40}.prefetch.rsc",
                        "statusCode": 200,
                        "vercelCache": "HIT",
                    },
                }
                for i in range(297)
            ]
            delivery = json.dumps(served).encode()
            answer = client.post(
                "/v1/cdn/vercel", content=delivery, headers=signed(delivery, secret)
            )
            assert answer.status_code == 200
            firing = evaluate(collector, PREFETCH_AMPLIFICATION, at)
            assert firing == {"shop": pytest.approx((300 / 30) / 1.5)}


def test_a_cold_cache_notification_links_to_the_slow_list_of_its_build(store_config):
    """The rule's slow_list_url, rendered for the series that fired as Grafana renders it,
    opens the slow list of that service's build on a running collector."""
    now_ns = time.time_ns()
    at = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC)

    def page_request(build: str, offset_min: float) -> Any:
        return make_span(
            "GET /products/[id]",
            start_ns=int(now_ns + offset_min * MINUTE),
            duration_ns=300_000_000,
            attrs={
                "nextrace.phase": "request",
                "nextrace.request.kind": "document",
                "next.route": "/products/[id]",
                "http.response.status_code": 200,
                "nextrace.build_id": build,
            },
        )

    with (
        running_collector(store_config, pages=store_pages) as collector,
        loopback_client(collector) as client,
    ):
        cold = [page_request("b2 (new)", -1.5), page_request("b2 (new)", -0.5)]
        ingest(client, collector, lookups(now_ns, -28, -2, 300, 15, build="b1"))
        ingest(client, collector, [page_request("b1", -10), *cold])
        ingest(client, collector, lookups(now_ns, -1.9, -0.1, 60, 36, build="b2 (new)"))
        ((service, build, layer),) = evaluate(collector, COLD_CACHE_SPIKE, at)
        annotations = rule_json(COLD_CACHE_SPIKE, pages_url=LOCAL)["annotations"]
        labels = {"service": service, "build": build, "layer": layer}
        url = render_annotation(annotations["slow_list_url"], labels)
        assert url == f"{LOCAL}/slow?service=svc&build=b2+%28new%29"
        page = client.get(url.removeprefix(LOCAL))
    assert page.status_code == 200
    listed = set(re.findall(r"href='trace/([0-9a-f]{32})'", page.text))
    assert listed == {span.trace_id.hex() for span in cold}  # that build's, not b1's
