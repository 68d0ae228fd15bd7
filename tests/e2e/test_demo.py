"""`nextrace demo`: each scenario, shortened, leaves the stored facts that define it (slow)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from collector.config import StoreConfig
from collector.storage.store import open_store
from dashboards.alerts import COLD_CACHE_SPIKE, PREFETCH_AMPLIFICATION
from dashboards.build import DASHBOARDS, to_json
from dashboards.frontend import Values, interpolate
from dashboards.macros import QueryContext, expand
from investigate.reader import open_reader
from investigate.slow import Filters, slowest
from nextrace.demo import DemoError, DemoResult, run_demo
from nextrace.listen import bind_socket
from tests.support.alerts import evaluate_with
from tests.support.processes import free_port, nextrace
from traffic.chromium import Chromium

pytestmark = pytest.mark.slow


def demo(tmp_path: Path, scenario: str, speed: float) -> DemoResult:
    lines: list[str] = []
    result = run_demo(
        scenario,
        workdir=tmp_path,
        speed=speed,
        collector_port=free_port(),
        server_port=free_port(),
        say=lines.append,
    )
    assert any("navigations" in line for line in lines)  # progress was shown
    assert not _processes_using(result.run_dir)  # nothing left running
    return result


def _processes_using(path: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in text:
            found.append(text)
    return found


@pytest.fixture(scope="module")
def deploy_run(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    # Full speed: the first deploy comes after 20 s, once the caches have settled.
    return demo(tmp_path_factory.mktemp("deploy"), "deploy", speed=1)


def test_deploy_scenario_spikes_and_the_warm_up_prevents_misses(deploy_run: DemoResult):
    result = deploy_run
    report = result.report
    without, with_warmup = report.spikes
    assert (without.warm_routes, with_warmup.warm_routes) == (0, 10)
    # The miss ratio rises after the deploy…
    assert without.cold_misses > 0
    assert without.window_miss_ratio > without.baseline_miss_ratio
    # …and falls again.
    assert without.settled_miss_ratio < without.window_miss_ratio
    assert report.prevented_misses is not None
    # An estimate: the first deploy's cold-miss rate applied to the second's lookups, less the
    # second's cold misses.
    expected = without.cold_misses / without.lookups * with_warmup.lookups
    assert report.prevented_misses == round(expected - with_warmup.cold_misses)
    text = report.render()
    assert "Cold-cache spikes after deploys" in text
    assert "trace " in text  # the slowest navigations name their traces

    # The cold-cache alert's query, with its windows shrunk from 2 min / 30 min to the
    # scenario's scale (seconds / 20 s), fires right after the deploy and is quiet in steady
    # traffic.
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
        # its window reaching back to the second the deploy fell in. How many lookups each
        # second holds is the machine's pace, so which evaluation fires is not asserted.
        deployed = first.replace(microsecond=0)
        after = [fired(k, deployed + dt.timedelta(seconds=k)) for k in range(1, 11)]
        assert any("data" in layers for layers in after), after
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


def check_every_panel_on_scenario_traffic(
    run: Callable[[str], list[Any]], first: dt.datetime, last: dt.datetime
) -> None:
    """Every dashboard panel, on the deploy scenario's spans, as Grafana would query them."""
    context = QueryContext(
        first - dt.timedelta(minutes=5), last + dt.timedelta(minutes=5), dt.timedelta(hours=1)
    )
    everything: dict[str, Values] = {"service": None, "route": None, "build": None}
    # The deploy scenario sends no webhook, loses no span and runs no Next.js service: those
    # panels must be empty.
    empty = {
        ("cold_cache", "Revalidation blast radius"),
        ("collector_health", "Drops and refusals by reason"),
        ("cache_health", "Next.js services whose data cache is invisible"),
    }
    results = {}
    for name in DASHBOARDS:
        for panel in to_json(name)["panels"]:
            sql = expand(interpolate(panel["targets"][0]["rawSql"], everything), context)
            rows = run(sql)
            assert bool(rows) != ((name, panel["title"]) in empty), (name, panel["title"], rows)
            results[(name, panel["title"])] = rows
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
    assert latency["red"] >= 3, (plots, shot)  # the first deploy's spike, on several routes
    assert len(red_bars) == len(deploy_run.report.slowest) == 5, shot
    assert all(count > 0 for count in red_bars), (red_bars, shot)
    assert all(height > 100 for height in sizes), (sizes, shot)
    assert shot.stat().st_size > 50_000


def test_webhook_flood_stays_under_the_upstream_rate_limit(tmp_path):
    result = demo(tmp_path, "webhook-flood", speed=2)
    report = result.report
    # What the reference server's SDK dropped is counted, and reported (0 or more).
    assert report.server_spans_dropped is not None
    assert "reference server's OpenTelemetry SDK: " in (result.run_dir / "report.txt").read_text()
    webhook_jobs = sum(r["jobs"] for r in report.warmups if r["trigger"] == "webhook")
    assert webhook_jobs >= 20
    assert 0 < report.warmup_busiest_second <= 20  # warmup.rate_per_s of the default app


def test_prefetch_storm_multiplies_prefetches_against_steady(tmp_path):
    steady = demo(tmp_path, "steady", speed=3).report.prefetch
    storm_run = demo(tmp_path, "prefetch-storm", speed=3)
    storm = storm_run.report.prefetch
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
        storm = replace(
            PREFETCH_AMPLIFICATION, windows={"recent_s": storm_s}, range_s=storm_s + calm_s
        )
        fired = evaluate_with(run, storm, released + dt.timedelta(seconds=1 + storm_s))
        assert set(fired) == {"nextrace-shop"}
    finally:
        store.close()


def test_a_run_goes_to_the_store_it_is_given(tmp_path):
    shared = tmp_path / "shared-store"  # as a ClickHouse server that Grafana reads would be
    result = run_demo(
        "steady",
        workdir=tmp_path / "runs",
        speed=6,
        collector_port=free_port(),
        server_port=free_port(),
        dsn=f"chdb:{shared}",
        say=lambda _: None,
    )
    assert result.store_dsn == f"chdb:{shared}"
    assert not (result.run_dir / "store").exists()
    store = open_store(StoreConfig.from_dsn(result.store_dsn), migrate=False)
    try:
        (count,) = store.client.query("SELECT count() FROM otel_traces").result_rows[0]
    finally:
        store.close()
    assert count > 0
    assert result.report.render()  # the report read the store it was given


def test_real_chromium_sessions_browse_beside_the_virtual_browsers(tmp_path):
    lines: list[str] = []
    result = run_demo(
        "steady",
        workdir=tmp_path,
        speed=3,
        collector_port=free_port(),
        server_port=free_port(),
        browser="chromium",
        say=lines.append,
    )
    assert any("Chromium sessions browsing" in line for line in lines)
    assert not _processes_using(result.run_dir)  # every Chromium closed
    store = open_store(StoreConfig.from_dsn(result.store_dsn), migrate=False)
    try:
        counts = dict(
            ((scope, phase), count)
            for scope, phase, count in store.client.query(
                "SELECT ScopeName, SpanAttributes['nextrace.phase'], count() FROM otel_traces "
                "WHERE ServiceName = 'browser' GROUP BY ALL"
            ).result_rows
        )
        # Real navigations that asked the server share their trace with the server's spans.
        (joined,) = store.client.query(
            "SELECT count() FROM otel_traces WHERE ServiceName != 'browser' "
            "AND SpanAttributes['nextrace.phase'] = 'request' AND TraceId IN (SELECT TraceId "
            "FROM otel_traces WHERE ScopeName = '@nextrace/next/browser' "
            "AND SpanAttributes['nextrace.phase'] = 'navigation')"
        ).result_rows[0]
    finally:
        store.close()
    for phase in ("navigation", "prefetch"):
        assert counts.get(("@nextrace/next/browser", phase), 0) > 0, (phase, counts)
        assert counts.get(("nextrace.browser", phase), 0) > 0, (phase, counts)
    assert joined > 0


def test_the_commands_the_demo_suggests_work_when_pasted(tmp_path):
    demo_run = subprocess.run(
        [
            sys.executable, "-m", "nextrace.cli", "demo", "--scenario", "steady",
            "--speed", "10", "--collector-port", str(free_port()),
            "--server-port", str(free_port()),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert demo_run.returncode == 0, demo_run.stderr
    assert not _processes_using(tmp_path)  # nothing left running
    lines = demo_run.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("The slowest navigations"))
    slow_line, trace_line = lines[at + 1].strip(), lines[at + 2].strip()
    assert " slow --dsn " in slow_line
    assert " trace --dsn " in trace_line
    # Pasted in another folder, with a scratch folder for any temporary file.
    elsewhere, scratch = tmp_path / "elsewhere", tmp_path / "tmp"
    elsewhere.mkdir()
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    pasted = [
        subprocess.run(
            ["bash", "-c", line],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for line in (slow_line, trace_line)
    ]
    for result in pasted:
        assert result.returncode == 0, result.stderr
    listed, shown = (result.stdout for result in pasted)
    slowest = trace_line.rsplit(" ", 1)[1]
    assert listed.split("\n", 1)[0].endswith(f"trace {slowest}")
    assert "cause: " in listed
    assert shown.startswith(f"trace {slowest}")
    assert "\ncause: " in shown
    # Without --dsn, in the demo's folder, the latest run's store is read, and none is made.
    bare = nextrace("slow", "--format", "json", cwd=tmp_path, env={"TMPDIR": str(scratch)})
    assert bare.returncode == 0, bare.stderr
    assert "reading the latest demo run's store" in bare.stderr
    assert json.loads(bare.stdout)[0]["trace_id"] == slowest
    assert not (tmp_path / ".nextrace" / "store").exists()
    assert list(elsewhere.iterdir()) == []
    assert list(scratch.iterdir()) == []


def test_a_taken_port_is_a_clear_error(tmp_path):
    port = free_port()
    held = bind_socket("127.0.0.1", port)
    try:
        with pytest.raises(DemoError, match=f"port {port} on 127.0.0.1 is already in use"):
            run_demo("steady", workdir=tmp_path, collector_port=port, server_port=free_port())
    finally:
        held.close()
    with pytest.raises(DemoError, match="unknown scenario"):
        run_demo("nope", workdir=tmp_path)
