"""The Cache health dashboard: valid Grafana JSON, and every query right on real ClickHouse."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from grafana_foundation_sdk.models import dashboard as model

from dashboards import cache_health
from dashboards.build import to_json
from dashboards.clickhouse import DATASOURCE_UID, ClickHouseQuery
from dashboards.common import BASE_URL
from dashboards.files import write
from dashboards.frontend import Values, interpolate
from dashboards.macros import QueryContext
from tests.builders import make_request, make_span
from tests.dashboards.panels import (
    HOUR_START_NS,
    PB,
    Traffic,
    dashboard_schema,
    ingest,
    panel_json,
    run_sql,
    stored_traffic,
)
from tests.examples.cache_components import load
from tests.support.captures import post_capture

USE_CACHE_RUN = Path(__file__).resolve().parents[1] / "data" / "cache-components-run"


def targets(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {panel["title"]: panel["targets"][0] for panel in document["panels"]}


def test_the_dashboard_is_valid_grafana_json_and_round_trips(tmp_path):
    document = to_json(cache_health.NAME)
    jsonschema.validate(document, dashboard_schema())
    back: Any = model.Dashboard.from_json(document)
    assert all(isinstance(p.targets[0], ClickHouseQuery) for p in back.panels)
    for target in targets(document).values():
        assert target["datasource"]["uid"] == DATASOURCE_UID
        assert target["editorType"] == "sql"
        assert (target["format"], target["queryType"]) in ((0, "timeseries"), (1, "table"))
    names = [v["name"] for v in document["templating"]["list"]]
    assert names == [*cache_health.VARIABLES, BASE_URL]
    assert document["annotations"]["list"][0]["name"] == "Deploys"
    written = write(tmp_path)
    assert json.loads((tmp_path / "dashboards" / "cache_health.json").read_text()) == document
    assert tmp_path / "dashboards" / "cache_health.json" in written


def cache_span(base: int, layer: str, result: str, **attrs: Any):
    attributes = {"nextrace.phase": "cache", "cache.layer": layer, "cache.result": result, **attrs}
    return make_span(f"{layer} cache lookup", start_ns=base, attrs=attributes)


@pytest.fixture
def traffic(client, collector):
    """Cache lookups whose right answers are known, all at one instant."""
    base = HOUR_START_NS
    a = {"next.route": "/a", "nextrace.build_id": "b2"}
    b = {"next.route": "/b", "nextrace.build_id": "b1"}
    spans = [
        cache_span(base, "data", "hit", **a, **{"cache.entry.source": "warmup"}),
        cache_span(base, "data", "hit", **a, **{"cache.entry.source": "warmup"}),
        cache_span(
            base,
            "data",
            "stale",
            **a,
            **{"cache.entry.source": "request", "cache.miss_reason": "expired"},
        ),
        cache_span(base, "data", "miss", **a, **{"cache.miss_reason": "deploy"}),
        cache_span(base, "data", "miss", **a, **{"cache.miss_reason": "deploy"}),
        cache_span(base, "data", "bypass", **a, **{"cache.miss_reason": "bypass"}),
        cache_span(base, "data", "miss", **b, **{"cache.miss_reason": "cold"}),
        cache_span(base, "data", "hit", **b, **{"cache.entry.source": "build"}),
        cache_span(
            base, "cdn", "hit", **{"nextrace.build_id": "b2", "cache.entry.source": "request"}
        ),
        cache_span(base, "cdn", "miss", **{"nextrace.build_id": "b2", "cache.miss_reason": "cold"}),
        make_span(
            "deploy", start_ns=base, attrs={"nextrace.phase": "deploy", "nextrace.build_id": "b2"}
        ),
    ]
    return ingest(client, collector, base, {"svc": spans})


def run(traffic: Traffic, sql: str, **chosen: Values) -> list[Any]:
    return run_sql(traffic, cache_health.VARIABLES, sql, **chosen)


def panel_sql(title: str) -> str:
    return str(panel_json(cache_health, title)["targets"][0]["rawSql"])


def test_hit_ratio_per_layer_counts_stale_as_served_and_ignores_bypasses(traffic):
    rows = run(traffic, panel_sql("Hit ratio per layer"))
    assert [(layer, round(ratio, 4)) for _, layer, ratio in rows] == [
        ("cdn", 0.5),
        ("data", round(4 / 7, 4)),
    ]
    only_a = run(traffic, panel_sql("Hit ratio per layer"), route=["/a"])
    assert [(layer, round(ratio, 4)) for _, layer, ratio in only_a] == [("data", 0.6)]
    only_b1 = run(traffic, panel_sql("Hit ratio per layer"), build=["b1"])
    assert [(layer, ratio) for _, layer, ratio in only_b1] == [("data", 0.5)]


def test_misses_by_reason(traffic):
    rows = run(traffic, panel_sql("Misses by reason"))
    assert [(reason, misses) for _, reason, misses in rows] == [("cold", 2), ("deploy", 2)]


def test_hits_by_entry_source(traffic):
    assert run(traffic, panel_sql("Hits by entry source")) == [
        ("data", "warmup", 2),
        ("cdn", "request", 1),
        ("data", "build", 1),
        ("data", "request", 1),
    ]


def test_top_routes_by_misses(traffic):
    assert run(traffic, panel_sql("Top routes by misses")) == [("/a", 2, 2, 0), ("/b", 1, 0, 0)]


def test_variables_and_deploy_annotations(traffic):
    document = to_json(cache_health.NAME)
    values = {
        v["name"]: [row[0] for row in run(traffic, v["query"])]
        for v in document["templating"]["list"]
        if v["type"] == "query"
    }
    assert values == {"service": ["svc"], "route": ["/a", "/b"], "build": ["b1", "b2"]}
    annotation = document["annotations"]["list"][0]["target"]["rawSql"]
    assert document["links"][0]["tags"] == ["nextrace"]
    assert [(text, tags) for _, text, tags in run(traffic, annotation)] == [("deploy b2", "deploy")]


def test_the_frontend_step_fills_variables_as_grafana_does():
    sql = "WHERE $__conditionalAll(Route IN (${route:singlequote}), $route) AND s = '$service'"
    assert interpolate(sql, {"route": None, "service": ["x"]}) == "WHERE 1=1 AND s = 'x'"
    assert interpolate(sql, {"route": ["/a", "/b"], "service": ["x"]}) == (
        "WHERE Route IN ('/a','/b') AND s = 'x'"
    )
    with pytest.raises(ValueError, match="unknown dashboard variable"):
        interpolate("$nope", {})


def test_services_whose_data_cache_is_invisible_are_listed(client, collector):
    from tests.support.spans import NEXT, request_spans, vercel_fetch_only

    (render, fetch), (request,) = request_spans()
    seen = make_request([request, render, fetch], "seen", scope=NEXT).SerializeToString()
    for body in [*vercel_fetch_only("blind"), seen]:
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    moment = dt.datetime.fromtimestamp(request.start_time_unix_nano / 1e9, dt.UTC)
    window = dt.timedelta(minutes=5)
    traffic = Traffic(collector, QueryContext(moment - window, moment + window))
    rows = run(traffic, panel_sql("Next.js services whose data cache is invisible"))
    assert rows == [("blind", 1, 0)]


@pytest.fixture
def cache_components(client, collector) -> Traffic:
    """The recorded run of examples/nextjs-cache-components (tests/collector/test_use_cache.py
    checks its rows one by one), replayed."""
    post_capture(client, USE_CACHE_RUN)
    return stored_traffic(collector)


def expected_outcomes(layer: str) -> Counter[tuple[str, str]]:
    """(result, reason) of each lookup of ``layer`` in the recorded run, as its steps say."""
    requests, _ = load(USE_CACHE_RUN)
    return Counter(tuple(r["expect"][layer]) for r in requests if layer in r["expect"])


def test_use_cache_functions_show_their_hit_ratio_and_why_they_ran(cache_components):
    rows = run(cache_components, panel_sql("'use cache' functions"))
    by_layer = {row[0]: row[1:] for row in rows}
    assert set(by_layer) == {"use_cache", "use_cache_remote"}  # one function each
    for layer, (function, lookups, ratio, misses, top, other) in by_layer.items():
        outcomes = expected_outcomes(layer)
        served = sum(n for (result, _), n in outcomes.items() if result in ("hit", "stale"))
        reasons = Counter({why: n for (result, why), n in outcomes.items() if result == "miss"})
        assert function.endswith(f"lib/data.js#$$RSC_SERVER_CACHE_{int(layer != 'use_cache')}")
        assert lookups == sum(outcomes.values())
        assert ratio == pytest.approx(served / lookups)
        assert misses == sum(reasons.values())
        assert top == reasons.most_common(1)[0][0]
        assert other == reasons["other_instance"]
    assert by_layer["use_cache"][4:] == ("other_instance", 3)  # the in-memory handler's cost


def test_hits_across_instances_tell_a_shared_cache_from_one_per_instance(cache_components):
    rows = {row[0]: row[1:] for row in run(cache_components, panel_sql("Hits across instances"))}
    served = {
        layer: sum(n for (result, _), n in expected_outcomes(layer).items() if result != "miss")
        for layer in ("use_cache", "use_cache_remote")
    }
    # Redis served b what a stored (products 1 in both builds, and after a's refresh) and a
    # what b stored (product 2): 4 hits; each instance's memory served only its own entries.
    assert rows["use_cache_remote"] == (served["use_cache_remote"], 4, 4 / 8, 0)
    assert rows["use_cache"] == (served["use_cache"], 0, 0.0, 3)
    assert served["use_cache_remote"] == 8
    # The incremental cache (Redis): b's pages read the route's shell a stored (4 in build 1,
    # 1 in build 2) and b's price read a's entry; the price entry kept across the deploy has
    # no storing instance the collector saw in build 2.
    shells_and_prices = sum(
        n for (result, _), n in expected_outcomes("incremental").items() if result != "miss"
    )
    assert rows["incremental"] == (shells_and_prices, 6, pytest.approx(6 / 13), 0)
    assert shells_and_prices == 13


def test_an_app_that_traces_its_cache_handlers_is_not_called_blind(cache_components, collector):
    # Its fetches have @vercel/otel's span and not Next.js's, but it traces its handlers: its
    # data cache shows at the incremental handler, its functions' fetches at theirs.
    ((fetches,),) = run(
        cache_components, "SELECT count() FROM otel_traces WHERE ScopeName = '@vercel/otel/fetch'"
    )
    assert fetches > 0
    assert run(cache_components, panel_sql("Next.js services whose data cache is invisible")) == []
    assert collector.telemetry.snapshot()["nextjs_services_without_fetch_spans"] == []
