"""`nextrace report` on stores without the reference server's browser spans: a real Next.js
app's, and hand-built server rows. It counts from the server's own rows (`requests`,
`cache_events`, `builds`) every request and every cache miss that the recordings' own truth
holds (what the driver sent, the upstream's log of the calls it received), finds deploys as
the dashboards do, and keeps to --since and --until."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.config import StoreConfig
from collector.service import Collector
from dashboards.cache_health import VARIABLES
from dashboards.clickhouse import load_sql
from dashboards.frontend import interpolate
from dashboards.macros import QueryContext, expand
from investigate import slow
from investigate.reader import StoreReader
from investigate.report import Report, ReportError, Window, build_report, parse_moment, window
from investigate.waterfall import utc
from tests.builders import make_request, make_span
from tests.conftest import loopback_client, running_collector, stored
from tests.examples.runs import RUN_NAMES, Run, UpstreamCall, load_run
from tests.support.captures import RUNS as CAPTURES
from tests.support.captures import expected_spans, post_capture

S = 10**9
MS = 10**6


def report_of(collector: Collector, window: Window | None = None) -> tuple[Report, StoreReader]:
    stored(collector, "SELECT 1")  # every span stored, every Next.js trace normalized
    assert collector.store is not None
    reader = StoreReader(collector.store)
    return build_report(reader, window=window), reader


def slow_list(reader: StoreReader, window: Window | None = None) -> list[dict[str, Any]]:
    """What `nextrace slow --format json` lists, in the window, 5 of them (the report's)."""
    window = window or Window()
    filters = slow.Filters(limit=5, since_ns=window.since_ns, until_ns=window.until_ns)
    return slow.as_json(slow.slowest(reader, filters))


# -- the project's recorded Next.js exports (tests/data/nextjs-captures) ---------------------


def capture_truth(run: Path) -> tuple[int, int, int]:
    """What a capture holds, from its recording: the requests the app traced (every line of
    requests.jsonl, and the home page the driver fetched first to find a script's path, less
    that script: Next.js traces no static file); the product pages it rendered (each reads its
    product through the data cache once); and the calls that left the app for the upstream
    (the HTTP client spans of `@vercel/otel`, one per call: each lookup that did not find a
    fresh entry made one)."""
    sent = [json.loads(line) for line in (run / "requests.jsonl").read_text().splitlines()]
    traced = 1 + sum(not r["path"].startswith("/_next/static/") for r in sent)
    renders = sum(
        r["path"].startswith("/products/") and "Next-Router-Prefetch" not in r["req_headers"]
        for r in sent
    )
    calls = 0
    for span in expected_spans(run).values():
        attributes = {a["key"]: a["value"] for a in span.get("attributes", [])}
        url = next(iter(attributes.get("http.url", {}).values()), "")
        calls += "/api/product/" in url and "next.span_type" not in attributes
    return traced, renders, calls


@pytest.mark.parametrize("capture", CAPTURES)
def test_the_report_of_a_capture_counts_every_request_and_miss(
    captures: Path, client: TestClient, collector: Collector, capture: str
) -> None:
    run = captures / capture
    post_capture(client, run)
    report, reader = report_of(collector)
    traced, renders, calls = capture_truth(run)
    found = report.as_json()
    assert found["text_reads"] == "server rows"
    assert found["requests"] == traced == 23
    assert sum(found["requests_by_kind"].values()) == traced
    data = found["cache"]["data"]
    assert data["lookups"] == renders == 8
    assert data["misses"] + data["stale"] == calls == 4
    assert data["hits"] == renders - calls
    assert found["cache_misses"] == {"data": data["misses"]}
    assert sum(found["misses_by_cause"]["data"].values()) == data["misses"]
    assert found["deploys"] == []  # the captures were recorded on one build
    assert found["slowest"] == slow_list(reader)
    text = report.render()
    assert f"{traced} requests: " in text
    assert f"{data['misses']} misses (0 caused by a deploy)" in text
    assert "no deploy in this window" in text


# -- the recorded runs (tests/data/nextjs-runs): traffic, a deploy, revalidations -------------


@pytest.fixture(scope="module", params=RUN_NAMES)
def recorded(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[tuple[Run, Collector]]:
    """A recorded run replayed into a real collector and chDB, once per module."""
    try:
        run = load_run(request.param)
    except FileNotFoundError:
        pytest.skip(f"{request.param} is not recorded yet (tests/examples/record_captures.py)")
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=t_{uuid.uuid4().hex[:12]}")
    origin = run.info["app_origin"]
    # Not the default browser rate: the replay posts a whole session's browser exports at once,
    # faster than any page sends them.
    with (
        running_collector(config, browser_origins=(origin,), browser_rate=1e6) as collector,
        loopback_client(collector) as client,
    ):
        replay(client, run, origin)
        stored(collector, "SELECT 1")
        yield run, collector


def replay(client: TestClient, run: Run, origin: str) -> None:
    """Post the run's exports as its app and its pages sent them."""
    for content_type, body in run.bodies():
        response = client.post("/v1/traces", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text
    for content_type, body in run.browser_bodies():
        response = client.post(
            "/v1/browser/traces",
            content=body,
            headers={"Content-Type": content_type, "Origin": origin},
        )
        assert response.status_code == 200, response.text


def answered(run: Run, since_ns: int = 0, until_ns: int = 1 << 63) -> Counter[str]:
    """The driver's requests that the server answered (not cut off by the browser), sent in
    the window, by trace (those that name one: a few are sent without a traceparent)."""
    return Counter(
        r.trace_id
        for r in run.requests
        if r.trace_id and not r.failed and since_ns <= r.t_start_ns and r.t_end_ns <= until_ns
    )


def stored_requests(collector: Collector, window: Window | None = None) -> Counter[str]:
    """The rows of `requests` in the window, by trace."""
    since_ns, until_ns = (window or Window()).parameters().values()
    rows = stored(
        collector,
        "SELECT TraceId FROM requests WHERE Sign = 1 AND Timestamp >= "
        f"fromUnixTimestamp64Nano({since_ns}) AND Timestamp < fromUnixTimestamp64Nano({until_ns})",
    )
    return Counter(row[0] for row in rows)


def calls_of_requests(run: Run) -> list[UpstreamCall]:
    """The upstream calls of the driver's requests' traces (a background refresh may come
    after its request ended): each is one lookup that found no fresh entry (a miss, a stale
    entry refreshed in the background, or an uncached fetch)."""
    traces = {r.trace_id for r in run.requests if r.trace_id}
    return [c for c in run.upstream_calls if c.trace_id in traces]


def test_the_report_of_a_recorded_run_counts_every_request_and_miss(
    recorded: tuple[Run, Collector],
) -> None:
    run, collector = recorded
    report, reader = report_of(collector)
    found = report.as_json()
    assert found["text_reads"] == "server rows"
    rows = stored_requests(collector)
    assert found["requests"] == rows.total()
    # Every request the server answered is counted (a browser's cut-off ones may be too).
    assert answered(run) <= rows
    if run.info["driver"] == "curl":  # nothing cut off, nothing the driver did not send
        assert found["requests"] == len(run.requests) == run.info["counts"]["requests"]
    data = found["cache"]["data"]
    assert data["misses"] + data["stale"] + data["bypassed"] == len(calls_of_requests(run))
    assert found["cache_misses"]["data"] == data["misses"] >= 1
    assert sum(found["misses_by_cause"]["data"].values()) == data["misses"]
    assert found["slowest"] == slow_list(reader)
    text = report.render()
    assert f"{found['requests']} requests: " in text
    assert f"{data['misses']} misses (" in text


def test_a_recorded_runs_misses_are_the_waits_on_its_upstream(
    recorded: tuple[Run, Collector],
) -> None:
    run, collector = recorded
    found = report_of(collector)[0].as_json()
    calls = calls_of_requests(run)
    data_calls = [c for c in calls if c.data_cache]
    data = found["cache"]["data"]
    misses, bypassed = len(run.blocking_misses()), len(calls) - len(data_calls)
    if run.info["next_major"] == 15:
        # Next.js 15's spans do not tell an uncached fetch (`no-store`) from a miss: both wait
        # for their call (docs/semantic-conventions.md, "What Next.js cannot tell"), so the
        # profile page's uncached waits count as misses there, and none as bypassed.
        misses, bypassed = misses + len(run.uncached_waits()), 0
    assert data["misses"] == misses
    assert data["stale"] == len(data_calls) - len(run.blocking_misses())
    assert data["bypassed"] == bypassed


def test_a_recorded_runs_deploy_is_found_where_a_span_names_the_build(
    recorded: tuple[Run, Collector],
) -> None:
    run, collector = recorded
    found = report_of(collector)[0].as_json()
    (deploy,) = run.deploys()
    if not run.info["helper"]:
        # Without @nextrace/next (and without service.version or deployment.id on the
        # resource) no span names the build that served it: no deploy can be told.
        assert found["deploys"] == []
        return
    (listed,) = found["deploys"]
    assert listed["build"] == deploy.data["build"]
    # The new build's first request: after its server was up, by the first request after it.
    first_after = min(r.t_end_ns for r in run.requests if r.t_start_ns >= deploy.t_ns)
    assert utc(deploy.t_ns - MS) <= listed["time"] <= utc(first_after)
    assert 0 <= listed["deploy_misses"] <= found["cache_misses"]["data"]


def dashboard_rows(collector: Collector, folder: str, name: str) -> list[Any]:
    """A dashboards query (dashboards/sql/), every variable at All, over the whole store."""
    assert collector.store is not None
    context = QueryContext(
        dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
    )
    sql = expand(interpolate(load_sql(folder, name), dict.fromkeys(VARIABLES)), context)
    return list(collector.store.client.query(sql).result_rows)


def test_a_recorded_runs_deploys_and_misses_are_the_dashboards(
    recorded: tuple[Run, Collector],
) -> None:
    """The issue's store: the dashboards showed the deploy and its misses, the report none."""
    _, collector = recorded
    found = report_of(collector)[0].as_json()
    annotations = dashboard_rows(collector, "common", "deploys")
    assert [text for _, text, _ in annotations] == [
        f"deploy {d['build']} ({d['service']})" for d in found["deploys"]
    ]
    by_route = dashboard_rows(collector, "cache_health", "top_routes_by_misses")
    assert sum(row[2] for row in by_route) == sum(d["deploy_misses"] for d in found["deploys"])


def test_since_and_until_split_a_recorded_run_at_its_deploy(
    recorded: tuple[Run, Collector],
) -> None:
    run, collector = recorded
    stop = next(e for e in run.events if e.kind == "stop")  # the old build stopped serving
    (deploy,) = run.deploys()  # the new one is up: no request in between
    whole = report_of(collector)[0].as_json()
    before_window, after_window = Window(until_ns=stop.t_ns), Window(since_ns=deploy.t_ns)
    before = report_of(collector, before_window)[0].as_json()
    after, reader = report_of(collector, after_window)
    after_json = after.as_json()
    assert before["requests"] + after_json["requests"] == whole["requests"]
    assert before["requests"] == stored_requests(collector, before_window).total()
    assert answered(run, until_ns=stop.t_ns) <= stored_requests(collector, before_window)
    assert answered(run, since_ns=deploy.t_ns) <= stored_requests(collector, after_window)
    data_before, data_after = before["cache"]["data"], after_json["cache"]["data"]
    assert data_before["misses"] + data_after["misses"] == whole["cache"]["data"]["misses"]
    assert before["deploys"] == []
    # The same deploys (their baseline, before --since, is not in the window).
    assert [(d["build"], d["time"], d["deploy_misses"]) for d in after_json["deploys"]] == [
        (d["build"], d["time"], d["deploy_misses"]) for d in whole["deploys"]
    ]
    assert after_json["slowest"] == slow_list(reader, after_window)
    assert all(s["start"] >= utc(deploy.t_ns) for s in after_json["slowest"])


# -- hand-built server rows: a deploy, its cold misses, and a window -------------------------


def server_request(
    at: int, kind: str, build: str, lookup: dict[str, str] | None = None
) -> list[Any]:
    """A request span of the reference server's kind (its phase and kind as attributes: it
    lands in `requests`) and, with ``lookup``, a data-cache lookup under it (`cache_events`)."""
    route = "/products/[id]"
    request = make_span(
        f"GET {route}",
        start_ns=at,
        duration_ns=40 * MS,
        attrs={
            "nextrace.phase": "request",
            "nextrace.request.kind": kind,
            "next.route": route,
            "nextrace.build_id": build,
        },
    )
    if lookup is None:
        return [request]
    cache = make_span(
        "data cache lookup",
        trace_id=request.trace_id,
        parent=request.span_id,
        start_ns=at + MS,
        duration_ns=MS,
        attrs={
            "nextrace.phase": "cache",
            "cache.layer": "data",
            "next.route": route,
            "nextrace.build_id": build,
            **lookup,
        },
    )
    return [request, cache]


def post(client: TestClient, spans: list[Any]) -> None:
    body = make_request(spans, service="shop").SerializeToString()
    response = client.post(
        "/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
    )
    assert response.status_code == 200, response.text


def test_a_deploy_and_its_cold_misses_from_server_rows_alone(
    client: TestClient, collector: Collector
) -> None:
    t0 = time.time_ns() - 600 * S
    deploy_at = t0 + 30 * S
    hit = {"cache.result": "hit"}
    spans: list[Any] = []
    for i in range(10):  # build-1: documents, every lookup a hit
        spans += server_request(t0 + i * S, "document", "build-1", hit)
    for i in range(3):  # prefetches, which read no data
        spans += server_request(t0 + 5 * S + i * MS, "rsc_prefetch", "build-1")
    spans.append(
        make_span(
            "deploy",
            start_ns=deploy_at,
            attrs={"nextrace.phase": "deploy", "nextrace.build_id": "build-2"},
        )
    )
    cold = {"cache.result": "miss", "cache.miss_reason": "deploy"}
    for i in range(4):  # build-2's first requests miss what build-1 had
        spans += server_request(deploy_at + (1 + i) * S, "document", "build-2", cold)
    for i in range(3):
        spans += server_request(deploy_at + (10 + i) * S, "rsc_navigation", "build-2", hit)
    stale = {"cache.result": "stale", "cache.miss_reason": "expired"}
    spans += server_request(deploy_at + 20 * S, "document", "build-2", stale)
    post(client, spans)

    report, reader = report_of(collector)
    found = report.as_json()
    assert found["text_reads"] == "server rows"
    assert found["requests"] == 21
    assert found["navigations"] == 18
    assert found["prefetches"] == 3
    assert found["cache"]["data"] == {
        "lookups": 18,
        "hits": 13,
        "stale": 1,
        "misses": 4,
        "deploy_misses": 4,
        "bypassed": 0,
        "hit_ratio": 14 / 18,
    }
    assert found["cache_misses"] == {"data": 4}
    assert found["misses_by_cause"] == {"data": {"deploy": 4}}
    assert found["stale_by_cause"] == {"data": {"expired": 1}}
    (deploy,) = found["deploys"]
    assert deploy["build"] == "build-2"
    assert deploy["service"] == "shop"
    assert deploy["time"] == utc(deploy_at)
    assert deploy["deploy_misses"] == 4
    assert deploy["miss_ratio_before"] == 0.0  # 10 hits in the minute before
    assert deploy["miss_ratio_after"] == 4 / 8  # 4 misses, 3 hits and a stale hit after
    assert found["slowest"] == slow_list(reader)
    text = report.render()
    assert "deploy build-2 (shop): 4 misses on entries the new build lacked" in text
    assert "3 prefetch requests for 18 navigation requests" in text

    before = report_of(collector, Window(until_ns=deploy_at))[0].as_json()
    assert (before["requests"], before["deploys"], before["cache_misses"]) == (13, [], {"data": 0})
    after = report_of(collector, Window(since_ns=deploy_at))[0].as_json()
    assert (after["requests"], after["cache_misses"]) == (8, {"data": 4})
    assert [d["build"] for d in after["deploys"]] == ["build-2"]


def test_since_and_until_read_iso_times_and_durations_back_from_now() -> None:
    now = 1_800_000_000 * S
    assert parse_moment("15m", "--since", now) == now - 900 * S
    assert parse_moment("1.5h", "--since", now) == now - 5400 * S
    assert parse_moment("2027-01-15T08:00:00Z", "--since", now) == 1_800_000_000 * S
    assert parse_moment("2027-01-15 08:00:00", "--since", now) == 1_800_000_000 * S  # UTC
    assert parse_moment("2027-01-15T09:00:00+01:00", "--since", now) == 1_800_000_000 * S
    assert window("2h", "1h", now) == Window(now - 7200 * S, now - 3600 * S)
    assert window(now_ns=now) == Window()
    with pytest.raises(ReportError, match=r"^--until 'yesterday': give an ISO time"):
        window("", "yesterday", now)
    with pytest.raises(ReportError, match="is not before --until"):
        window("1h", "2h", now)
    with pytest.raises(ReportError) as one_line:
        window("x", "", now)
    assert "\n" not in str(one_line.value)
