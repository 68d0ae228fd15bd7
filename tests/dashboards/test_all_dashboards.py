"""What every dashboard shares: filters, links, deploy annotations, and runnable variables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jsonschema
import pytest

from dashboards import cache_health, cold_cache, collector_health, prefetch, slow_navigations
from dashboards.build import DASHBOARDS, to_json
from dashboards.common import BASE_URL, NEEDS_BROWSER
from dashboards.macros import QueryContext, expand
from tests.builders import make_request, make_span
from tests.conftest import stored
from tests.dashboards.panels import PB, dashboard_schema, run_panel, stored_traffic
from tests.support.captures import post_capture

TRAFFIC_DASHBOARDS = (cache_health, cold_cache, prefetch, slow_navigations)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_dashboard_is_valid_grafana_json(name):
    jsonschema.validate(to_json(name), dashboard_schema())


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_says_its_unit_what_it_answers_and_what_to_do(name):
    for panel in to_json(name)["panels"]:
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        answers, act = panel["description"].split("\n\n")[:2]
        assert len(answers) > 40, panel["title"]
        assert act.startswith("When it is bad: "), panel["title"]
        assert len(act) > 40, panel["title"]


def thresholds(panel: dict[str, Any]) -> list[Any]:
    """The threshold steps of a panel: its own, or a column's."""
    config = panel["fieldConfig"]
    found = [config["defaults"].get("thresholds", {}).get("steps", [])]
    found += [
        p["value"]["steps"]
        for o in config["overrides"]
        for p in o["properties"]
        if p["id"] == "thresholds"
    ]
    return [steps for steps in found if steps]


def test_goals_are_marked_where_a_goal_exists():
    """Hit ratio, warm-up backlog, amplification, latency, the collector's inserts and drops."""
    marked = {
        (name, panel["title"])
        for name in DASHBOARDS
        for panel in to_json(name)["panels"]
        if thresholds(panel)
    }
    assert marked == {
        ("cache_health", "Hit ratio per layer"),
        ("cache_health", "'use cache' functions"),
        ("cold_cache", "Warm-up coverage of data-cache hits"),
        ("cold_cache", "Warm-up queue"),
        ("prefetch", "Prefetches per navigation"),
        ("slow_navigations", "Navigation latency per route"),
        ("slow_navigations", "Request latency and TTFB per route"),
        ("collector_health", "Insert latency (ms)"),
        ("collector_health", "Drops and refusals by reason"),
    }


def test_the_five_dashboards_are_built():
    assert set(DASHBOARDS) == {m.NAME for m in (*TRAFFIC_DASHBOARDS, collector_health)}
    uids = [to_json(name)["uid"] for name in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("module", TRAFFIC_DASHBOARDS, ids=lambda m: m.NAME)
def test_traffic_dashboards_filter_by_service_route_and_build(module):
    document = to_json(module.NAME)
    names = [v["name"] for v in document["templating"]["list"]]
    assert names == ["service", "route", "build", BASE_URL]
    assert module.VARIABLES == ("service", "route", "build")
    assert document["links"][0]["type"] == "dashboards"
    assert document["annotations"]["list"][0]["name"] == "Deploys"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_variable_and_annotation_query_runs(name, collector):
    document = to_json(name)
    now = dt.datetime.now(dt.UTC)
    context = QueryContext(now - dt.timedelta(hours=1), now)
    queries = [v["query"] for v in document["templating"]["list"] if v["type"] == "query"]
    queries += [a["target"]["rawSql"] for a in document["annotations"]["list"]]
    for sql in queries:
        assert stored(collector, expand(sql, context)) == []  # an empty store: no rows, no error


def shows_something(rows: list[Any]) -> bool:
    """Whether a panel's rows hold any non-zero number (a count of 0 shows nothing)."""
    return any(isinstance(value, int | float) and value != 0 for row in rows for value in row)


def test_panels_say_truly_whether_a_nextjs_service_shows_there(captures, client, collector):
    post_capture(client, captures / "protobuf-default")
    traffic = stored_traffic(collector)
    labelled, filled = set(), set()
    for module in TRAFFIC_DASHBOARDS:
        for panel in to_json(module.NAME)["panels"]:
            if NEEDS_BROWSER in panel["description"]:
                labelled.add(panel["title"])
            if shows_something(run_panel(traffic, module, panel["title"])):
                filled.add(panel["title"])
    assert labelled, "no panel is labelled as needing the browser: is this test still needed?"
    assert labelled & filled == set(), "labelled as empty for Next.js, but shows its numbers"


def nextjs_request(service: str, build: str, start_ns: int) -> bytes:
    span = make_span(
        "GET /",
        start_ns=start_ns,
        attrs={
            "next.span_type": "BaseServer.handleRequest",
            "http.method": "GET",
            "http.target": "/",
            "http.status_code": 200,
            "next.route": "/",
            "nextrace.build_id": build,
        },
    )
    return make_request([span], service, scope="next.js").SerializeToString()


def test_deploys_are_annotated_for_the_reference_server_and_for_nextjs(client, collector):
    second = dt.timedelta(seconds=1)
    base = dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)

    def ns(moment: dt.datetime) -> int:
        return int(moment.timestamp()) * 1_000_000_000

    deploy = make_span(
        "deploy", start_ns=ns(base + 5 * second),
        attrs={"nextrace.phase": "deploy", "nextrace.build_id": "build-2"},
    )  # fmt: skip
    bodies = [
        make_request([deploy], "reference").SerializeToString(),
        nextjs_request("shop", "b1", ns(base)),  # the first build in the store: not a deploy
        nextjs_request("shop", "b1", ns(base + 10 * second)),
        nextjs_request("shop", "b2", ns(base + 20 * second)),  # a new build takes traffic
        nextjs_request("shop", "b2", ns(base + 30 * second)),
        nextjs_request("blog", "b9", ns(base + 40 * second)),  # another service's only build
    ]
    for body in bodies:
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    document = to_json(cache_health.NAME)
    sql = document["annotations"]["list"][0]["target"]["rawSql"]
    context = QueryContext(base - 60 * second, base + 60 * second)
    rows = stored(collector, expand(sql, context))
    assert [(time.replace(tzinfo=dt.UTC), text) for time, text, _ in rows] == [
        (base + 5 * second, "deploy build-2"),
        (base + 20 * second, "deploy b2 (shop)"),
    ]
