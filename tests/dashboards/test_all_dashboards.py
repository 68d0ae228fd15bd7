"""What every dashboard shares: filters, links, deploy annotations, and runnable variables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dashboards import cache_health, cold_cache, collector_health, prefetch, slow_navigations
from dashboards.build import DASHBOARDS, to_json
from dashboards.common import REFERENCE_ONLY
from dashboards.macros import QueryContext, expand
from tests.collector.test_captures import post_capture
from tests.conftest import stored
from tests.dashboards.panels import Traffic, run_panel

TRAFFIC_DASHBOARDS = (cache_health, cold_cache, prefetch, slow_navigations)


def test_the_five_dashboards_are_built():
    assert set(DASHBOARDS) == {m.NAME for m in (*TRAFFIC_DASHBOARDS, collector_health)}
    uids = [to_json(name)["uid"] for name in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("module", TRAFFIC_DASHBOARDS, ids=lambda m: m.NAME)
def test_traffic_dashboards_filter_by_service_route_and_build(module):
    document = to_json(module.NAME)
    assert [v["name"] for v in document["templating"]["list"]] == ["service", "route", "build"]
    assert module.VARIABLES == ("service", "route", "build")
    assert document["links"][0]["type"] == "dashboards"
    assert document["annotations"]["list"][0]["name"] == "Deploys"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_variable_and_annotation_query_runs(name, collector):
    document = to_json(name)
    now = dt.datetime.now(dt.UTC)
    context = QueryContext(now - dt.timedelta(hours=1), now)
    queries = [v["query"] for v in document["templating"].get("list", [])]
    queries += [a["target"]["rawSql"] for a in document["annotations"]["list"]]
    for sql in queries:
        assert stored(collector, expand(sql, context)) == []  # an empty store: no rows, no error


def shows_something(rows: list[Any]) -> bool:
    """Whether a panel's rows hold any non-zero number (a count of 0 shows nothing)."""
    return any(isinstance(value, int | float) and value != 0 for row in rows for value in row)


def test_panels_say_truly_whether_a_nextjs_service_shows_there(captures, client, collector):
    post_capture(client, captures / "protobuf-default")
    ((first, last),) = stored(collector, "SELECT min(Timestamp), max(Timestamp) FROM otel_traces")
    window = dt.timedelta(minutes=1)
    utc = dt.UTC
    context = QueryContext(
        first.replace(tzinfo=utc) - window,
        last.replace(tzinfo=utc) + window,
        dt.timedelta(minutes=1),
    )
    traffic = Traffic(collector, context)
    labelled, filled = set(), set()
    for module in TRAFFIC_DASHBOARDS:
        for panel in to_json(module.NAME)["panels"]:
            if panel.get("description") == REFERENCE_ONLY:
                labelled.add(panel["title"])
            if shows_something(run_panel(traffic, module, panel["title"])):
                filled.add(panel["title"])
    assert labelled, "no panel is labelled reference-only: is this test still needed?"
    assert labelled & filled == set(), "labelled as empty for Next.js, but shows its numbers"
