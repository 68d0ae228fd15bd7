"""`nextrace demo`'s other scenarios, shortened: each leaves the stored facts that define it
(slow)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from collector.config import StoreConfig
from collector.storage.store import open_store
from dashboards import cache_health
from dashboards.alerts import PREFETCH_AMPLIFICATION
from dashboards.frontend import Values, interpolate
from dashboards.macros import QueryContext, expand
from investigate.reader import open_reader
from investigate.slow import Filters, slowest
from tests.dashboards.panels import panel_json
from tests.support.alerts import evaluate_with
from tests.support.demo import demo

pytestmark = pytest.mark.slow


def test_webhook_flood_stays_under_the_upstream_rate_limit(tmp_path):
    result = demo(tmp_path, "webhook-flood", speed=2)
    report = result.report
    # What the reference server's SDK dropped is counted, and reported (0 or more).
    assert report.server_spans_dropped is not None
    text = (result.run_dir / "report.txt").read_text()
    assert "reference server's OpenTelemetry SDK: " in text
    # The figures say what they are: the limit the warm-ups keep to, the webhooks' arrival.
    assert "calls left for upstream APIs, against the limit of 20 a second" in text
    assert f"{report.webhooks} revalidation webhooks arrived, from " in text
    assert report.webhooks == len(report.webhooks_ms) == 41  # the tag and the 40 paths
    page = (result.run_dir / "report.html").read_text()
    assert page.count("stroke: #8e44ad") >= 41  # each marked on the timeline
    webhook_jobs = sum(r["jobs"] for r in report.warmups if r["trigger"] == "webhook")
    assert webhook_jobs >= 20
    assert 0 < report.warmup_busiest_second <= 20  # warmup.rate_per_s of the default app


def test_prefetch_storm_multiplies_prefetches_against_steady(tmp_path):
    steady_run = demo(tmp_path, "steady", speed=3)
    steady = steady_run.report.prefetch
    storm_run = demo(tmp_path, "prefetch-storm", speed=3)
    storm = storm_run.report.prefetch
    # The report names the storm's links: the grid's 24 product links on every shop page.
    (advice,) = [a for a in storm_run.report.advice if a.startswith("A prefetch storm")]
    assert "The links to /products/[id] (" in advice, advice
    assert not any(a.startswith("A prefetch storm") for a in steady_run.report.advice)
    assert storm["prefetch_per_navigation"] > 2 * steady["prefetch_per_navigation"]
    # Some slow navigation waited for the server, and its cause names the prefetches.
    with open_reader(StoreConfig.from_dsn(storm_run.store_dsn)) as reader:
        found = slowest(reader, Filters(limit=20))
    queued = [n.diagnosis for n in found if n.diagnosis and n.diagnosis.cause.startswith("queued")]
    assert queued, [n.diagnosis.cause for n in found if n.diagnosis]
    # Some waited behind the storm's prefetches. Not every one need: on a loaded machine a
    # navigation also queues with no prefetch in flight (one, 810 ms, in a busy suite run).
    assert any("prefetch requests" in d.cause for d in queued), [d.cause for d in queued]
    assert steady["middleware_share"] == 0  # the documented matcher skips prefetches
    assert storm["middleware_share"] > 0.3  # the storm's middleware runs on them


def test_a_release_that_starts_a_prefetch_storm_fires_the_amplification_alert(tmp_path):
    # At speed 2 the release comes 10 s into a 20 s run. The alert's windows are scaled from
    # 5 min / 1 h to the run: "recent" is the storm (from 1 s after the release to the last
    # request stored), and the evaluated range reaches back to the start of the run. Both come
    # from what was stored, so a slow machine that served fewer requests changes no window.
    result = demo(tmp_path, "prefetch-release", speed=2)
    (release,) = [e for e in result.run.events if e["event"] == "release"]
    released = dt.datetime.fromtimestamp(float(str(release["at_unix_s"])), dt.UTC)
    store = open_store(StoreConfig.from_dsn(result.store_dsn), migrate=False)
    try:

        def run(sql: str) -> list[Any]:
            return list(store.client.query(sql).result_rows)

        [(first, last)] = run("SELECT min(Timestamp), max(Timestamp) FROM requests")
        first, last = first.replace(tzinfo=dt.UTC), last.replace(tzinfo=dt.UTC)
        storm_s = int((last - released).total_seconds()) - 1
        calm_s = int((released - first).total_seconds())
        assert min(storm_s, calm_s) >= 4, (first, released, last)
        before = replace(PREFETCH_AMPLIFICATION, windows={"recent_s": calm_s // 2}, range_s=calm_s)
        assert evaluate_with(run, before, released) == {}
        # What the stored requests say the storm did: prefetches per navigation, before and
        # during it, and how many navigations it let through.
        storm_from = released + dt.timedelta(seconds=1)
        evaluated = storm_from + dt.timedelta(seconds=storm_s)  # the storm's window's end

        def moment(at: dt.datetime) -> str:
            return f"toDateTime64('{at:%Y-%m-%d %H:%M:%S.%f}', 9, 'UTC')"

        storm = f"Timestamp BETWEEN {moment(storm_from)} AND {moment(evaluated)}"
        calm = f"Timestamp < {moment(released)}"
        [(calm_p, calm_n, storm_p, storm_n)] = run(
            f"SELECT countIf({calm} AND Kind = 'rsc_prefetch'), "
            f"countIf({calm} AND Kind != 'rsc_prefetch'), "
            f"countIf({storm} AND Kind = 'rsc_prefetch'), "
            f"countIf({storm} AND Kind != 'rsc_prefetch') FROM requests "
            "WHERE Kind IN ('rsc_prefetch', 'rsc_navigation', 'document')"
        )
        assert storm_p / max(storm_n, 1) > 3 * calm_p / max(calm_n, 1), "no storm was stored"
        rule = replace(
            PREFETCH_AMPLIFICATION, windows={"recent_s": storm_s}, range_s=storm_s + calm_s
        )
        fired = evaluate_with(run, rule, evaluated)
        # The rule scores a service only with 10 navigations in each window. A loaded machine
        # can starve the storm's navigations below that (they queue behind its prefetches,
        # 8 in one 10 s storm beside a busy core): the rule is silent then, as it says.
        assert set(fired) == ({"nextrace-shop"} if storm_n >= 10 else set()), (storm_n, fired)
    finally:
        store.close()


def test_instances_tell_a_cache_in_each_instance_from_a_shared_one(tmp_path):
    """Two instances behind the CDN: the product in 'use cache' (each instance's memory), the
    price in 'use cache: remote' (shared), read by the same requests. The panels, the
    report and its advice tell the two apart."""
    result = demo(tmp_path, "instances", speed=4)
    store = open_store(StoreConfig.from_dsn(result.store_dsn), migrate=False)
    try:

        def panel(title: str) -> list[Any]:
            sql = panel_json(cache_health, title)["targets"][0]["rawSql"]
            everything: dict[str, Values] = {"service": None, "route": None, "build": None}
            context = QueryContext(
                dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
            )
            return list(
                store.client.query(expand(interpolate(sql, everything), context)).result_rows
            )

        across = {row[0]: row[1:] for row in panel("Hits across instances")}
        # Each instance's memory serves only what it stored; Redis serves either's entries.
        hits, from_others, _, missed_elsewhere = across["use_cache"]
        assert (hits > 0, from_others, missed_elsewhere > 0) == (True, 0, True)
        hits, from_others, _, missed_elsewhere = across["use_cache_remote"]
        assert (0 < from_others <= hits, missed_elsewhere) == (True, 0)
        # The CDN's lookups are of no one instance: they name none, and are not counted.
        assert "cdn" not in across
        assert "data" in across
        functions = {(row[0], row[1]): row[2:] for row in panel("'use cache' functions")}
        assert set(functions) == {
            ("use_cache", "product"),
            ("use_cache_remote", "price"),
            ("use_cache_private", "activity"),
        }
        assert functions[("use_cache_private", "activity")][1] == 0  # nothing kept: 0 served
        # The two instances: the lookups' own resources say which.
        ((instances,),) = store.client.query(
            "SELECT groupUniqArray(ResourceAttributes['service.instance.id']) FROM otel_traces "
            "WHERE startsWith(SpanAttributes['cache.layer'], 'use_cache')"
        ).result_rows
        assert sorted(instances) == ["nextrace-shop-1", "nextrace-shop-2"]
    finally:
        store.close()
    text = (result.run_dir / "report.txt").read_text()
    assert "== 'use cache' functions ==" in text
    page = (result.run_dir / "report.html").read_text()
    assert "<h2>&#x27;use cache&#x27; functions</h2>" in page  # the plot's section
    assert "miss: other_instance" in page  # the plot's legend
    assert "'use cache: remote' (a handler every instance shares) would have served them" in text
    (remote,) = [
        f for f in result.report.as_json()["use_cache_functions"] if f["function"] == "price"
    ]
    assert remote["from_other_instances"] == from_others
