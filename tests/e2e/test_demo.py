"""`nextrace demo`'s deploy scenario at full speed: the stored facts that define it, its
panels and its report page (slow)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.config import StoreConfig
from collector.storage.store import open_store
from dashboards.alerts import COLD_CACHE_SPIKE
from dashboards.build import DASHBOARDS, to_json
from dashboards.frontend import Values, interpolate
from dashboards.macros import QueryContext, expand
from nextrace.demo import DemoResult
from tests.dashboards.panels import follow_links
from tests.support.alerts import evaluate_with
from tests.support.collector_process import start as start_collector
from tests.support.collector_process import stop as stop_collector
from tests.support.demo import demo
from tests.support.processes import free_port
from traffic.chromium import Chromium

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deploy_run(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    # Full speed: the first deploy comes after 20 s, once the caches have settled.
    return demo(tmp_path_factory.mktemp("deploy"), "deploy", speed=1)


def test_deploy_scenario_spikes_and_the_warm_up_prevents_misses(deploy_run: DemoResult):
    result = deploy_run
    report = result.report
    without, with_warmup = report.spikes
    assert (without.warm_routes, with_warmup.warm_routes) == (0, 10)
    # The deploy emptied entries that were then missed: the miss ratio peaks after it…
    assert without.cold_misses > 0
    assert without.peak_miss_ratio > without.baseline_miss_ratio
    # …and falls again. (Not the 6 s window's average against the minute before: on a loaded
    # machine the cold start's misses raised the baseline to 8.7%, above the window's 7.9%,
    # while the peak was 42%.)
    assert without.settled_miss_ratio < without.peak_miss_ratio
    assert report.prevented_misses is not None
    # An estimate: the first deploy's cold-miss rate applied to the second's lookups, less the
    # second's cold misses.
    expected = without.cold_misses / without.lookups * with_warmup.lookups
    assert report.prevented_misses == round(expected - with_warmup.cold_misses)
    text = report.render()
    assert "Cold-cache spikes after deploys" in text
    assert "trace " in text  # the slowest navigations name their traces

    # The cold-cache alert's query, with its windows shrunk from 2 min / 30 min to the
    # scenario's scale (seconds / 20 s): right after the deploy it fires exactly where the rule,
    # counted on the stored rows, says it must (tests/dashboards/test_alerts.py proves it fires
    # on a spike whose size it knows), and it is quiet in steady traffic.
    store = open_store(StoreConfig.from_dsn(result.store_dsn), migrate=False)
    try:

        def run(sql: str) -> list[Any]:
            return list(store.client.query(sql).result_rows)

        def fired(recent_s: int, at: dt.datetime) -> set[str]:
            scaled = replace(COLD_CACHE_SPIKE, windows={"recent_s": recent_s}, range_s=20)
            return {layer for _, _, layer in evaluate_with(run, scaled, at)}

        assert_the_warm_up_came_first(run, with_warmup.build_id)
        first = without.deploy_at.replace(tzinfo=dt.UTC)
        # Grafana evaluates at whole seconds ($__toTime): each evaluation of the first 10 s,
        # its window reaching back to the second the deploy fell in. Whether one fires is the
        # machine's pace (a busy one served too few lookups a second for the rule's 20), so
        # each verdict is held against the rule counted here, in Python, on the stored rows.
        deployed = first.replace(microsecond=0)
        lookups = [
            (at.replace(tzinfo=dt.UTC), build, result in ("miss", "revalidated"))
            for at, build, result in run(
                "SELECT Timestamp, BuildId, Result FROM cache_events "
                "WHERE Layer = 'data' AND Result != 'bypass'"
            )
        ]
        for k in range(1, 11):
            at = deployed + dt.timedelta(seconds=k)
            verdict = "data" in fired(k, at)
            assert verdict == data_spike(lookups, at, recent_s=k, range_s=20), (k, verdict)
        assert fired(2, first - dt.timedelta(seconds=2)) == set()
        last = with_warmup.deploy_at.replace(tzinfo=dt.UTC)
        assert fired(2, last + dt.timedelta(seconds=15)) == set()
        check_every_panel_on_scenario_traffic(run, first, last)
    finally:
        store.close()


def assert_the_warm_up_came_first(run: Callable[[str], list[Any]], build: str) -> None:
    """What the stored spans say of the deploy of ``build``, which warmed its most visited
    routes: every data warm-up finished before the new build served its first request, and
    no key those warm-ups filled missed for the deploy afterwards. Whatever the machine's
    speed, those hold; how many lookups came after the deploy does not."""
    ((switched,),) = run(f"SELECT min(Timestamp) FROM requests WHERE BuildId = '{build}'")
    warmups = run(
        "SELECT TraceId, Timestamp + toIntervalNanosecond(Duration), "
        "SpanAttributes['nextrace.warmup.outcome'] FROM otel_traces "
        "WHERE SpanAttributes['nextrace.warmup.trigger'] = 'deploy' "
        # Only a deploy that warms routes warms their data (the scenario's second).
        "AND startsWith(SpanAttributes['nextrace.warmup.target'], 'data-of:')"
    )
    assert warmups, "the deploy warmed nothing"
    assert {outcome for _, _, outcome in warmups} == {"ok"}
    assert max(ended for _, ended, _ in warmups) <= switched
    traces = ", ".join(f"'{trace}'" for trace, _, _ in warmups)
    ((warmed, cold),) = run(
        "SELECT uniqExact(Key), (SELECT count() FROM cache_events WHERE Layer = 'data' "
        f"AND BuildId = '{build}' AND Reason = 'deploy' AND Key IN (SELECT Key FROM "
        f"cache_events WHERE TraceId IN ({traces}))) FROM cache_events "
        f"WHERE Layer = 'data' AND TraceId IN ({traces})"
    )
    assert warmed > 0
    assert cold == 0


def data_spike(
    lookups: list[tuple[dt.datetime, str, bool]], at: dt.datetime, *, recent_s: int, range_s: int
) -> bool:
    """The cold-cache rule (dashboards/sql/alerts/cold_cache_spike.sql's text), counted over
    (time, build, missed) of each data-cache lookup: evaluated at ``at`` over ``range_s``, some
    build has at least 20 lookups in the last ``recent_s`` and a miss ratio there above twice
    the rest of the range's, all builds', plus the threshold."""
    threshold = COLD_CACHE_SPIKE.threshold
    since, recent_from = at - dt.timedelta(seconds=range_s), at - dt.timedelta(seconds=recent_s)
    seen = [(t >= recent_from, build, missed) for t, build, missed in lookups if since <= t <= at]
    before = [missed for recent, _, missed in seen if not recent]
    baseline = sum(before) / len(before) if before else 0.0
    for build in {build for recent, build, _ in seen if recent}:
        mine = [missed for recent, b, missed in seen if recent and b == build]
        if len(mine) >= 20 and sum(mine) / len(mine) - 2 * baseline > threshold:
            return True
    return False


def check_every_panel_on_scenario_traffic(
    run: Callable[[str], list[Any]], first: dt.datetime, last: dt.datetime
) -> None:
    """Every dashboard panel, on the deploy scenario's spans, as Grafana would query them."""
    context = QueryContext(
        first - dt.timedelta(minutes=5), last + dt.timedelta(minutes=5), dt.timedelta(hours=1)
    )
    everything: dict[str, Values] = {"service": None, "route": None, "build": None}
    # The deploy scenario sends no webhook, loses no span, runs no Next.js service and no
    # 'use cache' function (the instances scenario does): those panels must be empty. Its one
    # instance is named by the OpenTelemetry SDK, so its hits are all its own.
    empty = {
        ("cold_cache", "Revalidation blast radius"),
        ("collector_health", "Drops and refusals by reason"),
        ("cache_health", "Next.js services whose data cache is invisible"),
        ("cache_health", "'use cache' functions"),
    }
    results = {}
    for name in DASHBOARDS:
        for panel in to_json(name)["panels"]:
            sql = expand(interpolate(panel["targets"][0]["rawSql"], everything), context)
            rows = run(sql)
            assert bool(rows) != ((name, panel["title"]) in empty), (name, panel["title"], rows)
            results[(name, panel["title"])] = rows
    # One instance: every hit served an entry it stored itself, and no miss was another's.
    assert {(row[2], row[4]) for row in results[("cache_health", "Hits across instances")]} == {
        (0, 0)
    }
    # A few panels against the raw spans, counted another way, bucket by bucket: the run may
    # cross the start of an hour, which splits its one-hour buckets in two.
    raw_data_ratio = run(
        "SELECT toStartOfInterval(toDateTime(Timestamp), INTERVAL 3600 second) AS time, "
        "countIf(SpanAttributes['cache.result'] IN ('hit', 'stale')) / count() "
        "FROM otel_traces WHERE SpanAttributes['cache.layer'] = 'data' "
        "AND SpanAttributes['cache.result'] != 'bypass' GROUP BY time ORDER BY time"
    )
    panel_ratio = [
        (time, ratio)
        for time, layer, ratio in results[("cache_health", "Hit ratio per layer")]
        if layer == "data"
    ]
    assert [t for t, _ in panel_ratio] == [t for t, _ in raw_data_ratio]
    assert [r for _, r in panel_ratio] == pytest.approx([r for _, r in raw_data_ratio])
    browser_prefetches = run(
        "SELECT count() FROM otel_traces WHERE ServiceName = 'browser' "
        "AND SpanAttributes['nextrace.phase'] = 'prefetch'"
    )[0][0]
    server_prefetches = sum(row[1] for row in results[("prefetch", "Prefetches and navigations")])
    assert server_prefetches == browser_prefetches  # every browser prefetch reached the server
    slowest = run(
        "SELECT max(Duration) / 1e6 FROM otel_traces WHERE ParentSpanId = '' "
        "AND SpanAttributes['nextrace.phase'] IN ('navigation', 'request')"
    )[0][0]
    assert results[("slow_navigations", "Slowest traces")][0][3] == pytest.approx(slowest, abs=0.1)


def test_the_report_page_renders_its_plots_and_waterfalls_in_chromium(
    deploy_run: DemoResult, tmp_path: Path
):
    if not shutil.which("chromium"):
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    page = deploy_run.run_dir / "report.html"
    text = page.read_text(encoding="utf-8")
    # Self-contained: nothing to load from anywhere.
    external = r"(?:(?:src|href)\s*=|url\()\s*[\"']?(?:https?:)?//|@import"
    assert not re.findall(external, text)
    with Chromium(tmp_path) as browser:
        browser.goto(page.as_uri())
        # Per plot: the data lines of 10 points or more, and the bars of each colour.
        plots = browser.evaluate(
            "[...document.querySelectorAll('section.plot svg')].map(svg => {"
            " const paths = [...svg.querySelectorAll('g[id^=line2d] path, g[id^=patch] path')];"
            " const colour = c => paths.filter("
            "   p => (p.getAttribute('style') || '').includes(c)).length;"
            " return {lines: paths.filter("
            "   p => (p.getAttribute('d') || '').split('L').length > 10).length,"
            "   red: colour('#c0392b'), orange: colour('#f39c12')}; })"
        )
        # Bars in the critical path's red, in each waterfall.
        red_bars = browser.evaluate(
            "[...document.querySelectorAll('section.waterfall svg')]"
            ".map(svg => [...svg.querySelectorAll('path')]"
            ".filter(p => (p.getAttribute('style') || '').includes('#c0392b')).length)"
        )
        sizes = browser.evaluate(
            "[...document.querySelectorAll('svg')].map(svg => svg.getBoundingClientRect().height)"
        )
        shot = browser.screenshot(tmp_path / "report.png")
        assert browser.console_errors == [], browser.console_errors
    hit_ratio, spikes, traffic, latency = plots
    assert hit_ratio["lines"] >= 4, (plots, shot)  # a line per cache layer
    assert spikes["red"] == 2 + 1, (plots, shot)  # the spike window of each deploy, the legend
    assert traffic["orange"] >= 30 + 1, (plots, shot)  # a bar a second, the legend
    assert traffic["lines"] == 1, (plots, shot)  # the amplification
    # The first deploy's spike (the red period), a bar on each of the plot's six busiest
    # routes that had navigations to the server then (router-cache hits are left out).
    busiest: dict[str, int] = {}
    for row in deploy_run.report.latency:
        if row["route"]:
            busiest[row["route"]] = busiest.get(row["route"], 0) + row["navigations"]
    shown = sorted(busiest, key=lambda route: -busiest[route])[:6]
    spiked = [r for r in deploy_run.report.latency if r["period"] == 1 and r["route"] in shown]
    assert latency["red"] == 1 + sum(r["navigations"] > 0 for r in spiked), (plots, shot)
    assert latency["red"] >= 2, (plots, shot)  # the legend, and one route at least
    assert len(red_bars) == len(deploy_run.report.slowest) == 5, shot
    assert all(count > 0 for count in red_bars), (red_bars, shot)
    assert all(height > 100 for height in sizes), (sizes, shot)
    assert shot.stat().st_size > 50_000


def test_a_demo_trace_has_its_page_in_chromium(deploy_run: DemoResult, tmp_path: Path):
    """`nextrace collect` on the demo's store serves the slowest navigation's page, which says
    what `nextrace trace` says of it."""
    if not shutil.which("chromium"):
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    slowest = deploy_run.report.slowest[0].trace_id
    store = Path(deploy_run.store_dsn.removeprefix("chdb://").removeprefix("chdb:"))
    port = free_port()
    collector = start_collector(store, port, tmp_path / "collector.log")
    try:
        said = subprocess.run(
            [sys.executable, "-m", "nextrace.cli", "trace", slowest, f"--dsn=chdb:{store}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert said.returncode == 0, said.stderr
        with Chromium(tmp_path) as browser:
            browser.goto(f"http://127.0.0.1:{port}/trace/{slowest}")
            assert browser.evaluate("document.querySelector('pre').textContent") == said.stdout
            assert browser.evaluate("document.querySelectorAll('svg').length") == 1
            assert browser.console_errors == [], browser.console_errors
        # Every panel's links, followed on this run, which fills the browser's panels too: the
        # rows come from the panels' queries through the collector's /sql, as Grafana's would.
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            context = QueryContext(
                deploy_run.report.summary["first_span"].replace(tzinfo=dt.UTC)
                - dt.timedelta(minutes=5),
                deploy_run.report.summary["last_span"].replace(tzinfo=dt.UTC)
                + dt.timedelta(minutes=5),
            )
            followed = follow_links(lambda sql: SqlResult(client, sql), client.get, base, context)
        assert {
            "Navigation latency per route",
            "What prefetches got back",
            "Prefetch payload sizes",
            "Slowest traces",
        } <= set(followed), followed
    finally:
        stop_collector(collector)


class SqlResult:
    """A query's rows through a collector's ``/sql``, as ``client.query`` gives them."""

    def __init__(self, client: httpx.Client, sql: str) -> None:
        answer = client.post("/sql", json={"query": sql, "format": "JSONCompact"})
        assert answer.status_code == 200, answer.text
        found = answer.json()
        self.column_names = tuple(column["name"] for column in found["meta"])
        self.result_rows = [tuple(row) for row in found["data"]]
