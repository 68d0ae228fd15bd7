"""CDN deliveries written from the vendors' documentation alone, by someone who never read the
receivers (tests/data/cdn/vendor-docs/, with the truth they hold in truth.json): each request
is one CDN lookup, whatever the vendor logged around it, and a redelivery stores nothing
twice."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.config import StoreConfig
from collector.ingest.cloudflare_logpush import request_of
from collector.service import Collector
from dashboards import cache_health
from investigate.reader import StoreReader
from investigate.report import build_report, run_query, window
from tests.builders import make_request, make_span
from tests.conftest import running_collector, stored
from tests.dashboards.panels import run_panel, stored_traffic

DOCS = Path(__file__).parents[1] / "data" / "cdn" / "vendor-docs"
TRUTH: dict[str, Any] = json.loads((DOCS / "truth.json").read_text())
FILES: dict[str, dict[str, Any]] = TRUTH["files"]
SECRET = TRUTH["vercel_delivery"]["signature"]["test_secret"]
TOKEN = "logpush-token-0123456789"
LOOKUPS = (  # the CDN's lookups a hit ratio counts, by result
    "SELECT Result, count() FROM cache_events WHERE Layer = 'cdn' AND Result != 'bypass' "
    "GROUP BY Result ORDER BY Result"
)


@pytest.fixture
def collector(store_config: StoreConfig) -> Iterator[Collector]:
    with running_collector(
        store_config, vercel_drain_secret=SECRET, cloudflare_logpush_token=TOKEN
    ) as instance:
        yield instance


def deliver(collector: Collector, name: str) -> Any:
    """POST the file ``name`` as its vendor does, and the answer."""
    assert collector.app is not None
    body = (DOCS / name).read_bytes()
    truth = FILES[name]
    with TestClient(collector.app, base_url="http://localhost:4318") as client:
        if truth["vendor"] == "vercel":
            headers = {"x-vercel-signature": truth["x-vercel-signature"]}
            return client.post("/v1/cdn/vercel", content=body, headers=headers)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return client.post("/v1/cdn/cloudflare?service=shop", content=body, headers=headers)


def lookups(truth: dict[str, Any]) -> list[tuple[str, int]]:
    """The lookups ``truth`` counts, by result; a prerendered file, answered without the app,
    counts as a hit, as the receivers document."""
    results = {
        "hit": truth["hits"] + truth.get("prerender", 0),
        "miss": truth["misses"],
        "stale": truth["stale"],
    }
    return sorted((result, n) for result, n in results.items() if n)


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_request_is_one_cdn_lookup(collector, name):
    truth = FILES[name]
    assert deliver(collector, name).status_code == 200
    assert sum(truth_count for _, truth_count in lookups(truth)) == truth["cdn_lookups"]
    assert stored(collector, LOOKUPS) == lookups(truth)
    malformed = collector.health()["spans_dropped"].get("malformed_log_line", 0)
    assert malformed == truth.get("bad_lines", 0)


def test_a_redelivery_stores_nothing_twice(collector):
    # Both vendors send a delivery again when its answer is lost or late.
    for name in ("vercel-one-request-many-entries.json", "cloudflare-formats-unixnano.ndjson"):
        assert deliver(collector, name).status_code == 200
    before = stored(collector, "SELECT count() FROM otel_traces")
    for name in ("vercel-one-request-many-entries.json", "cloudflare-formats-unixnano.ndjson"):
        assert deliver(collector, name).status_code == 200
    assert stored(collector, "SELECT count() FROM otel_traces") == before
    # Each request's line, and each background revalidation's (recorded as what it is).
    lines = sum(
        FILES[n]["requests"] + len(background_revalidations(n))
        for n in ("vercel-one-request-many-entries.json", "cloudflare-formats-unixnano.ndjson")
    )
    assert collector.health()["cdn_lines_redelivered"] == lines


def background_revalidations(name: str) -> set[str]:
    """The request ids of Vercel's background revalidations (``proxy.statusCode`` -1) in the
    file ``name``, as its documentation describes them."""
    if FILES[name]["vendor"] != "vercel":
        return set()
    entries = json.loads((DOCS / name).read_text())
    return {e["requestId"] for e in entries if e.get("proxy", {}).get("statusCode") == -1}


@pytest.mark.parametrize("timestamp_format", ["unixnano", "unix", "rfc3339"])
def test_each_timestamp_format_says_when_the_request_came(timestamp_format):
    name = f"cloudflare-formats-{timestamp_format}.ndjson"
    lines = [json.loads(line) for line in (DOCS / name).read_text().splitlines() if line]
    found = [request_of(line) for line in lines]
    started = [
        dt.datetime.fromtimestamp(r.timestamp_ns / 1e9, dt.UTC) for r in found if r is not None
    ]
    expected = [
        dt.datetime.fromisoformat(at.replace("Z", "+00:00")) for at in FILES[name]["edge_start_utc"]
    ]
    # Whole seconds in the formats that have no more.
    precision = dt.timedelta(milliseconds=1 if timestamp_format == "unixnano" else 1000)
    assert len(started) == len(expected)
    for at, truth in zip(sorted(started), expected, strict=True):
        assert abs(at - truth) < precision, (at, truth)


def test_a_request_the_cdn_logged_no_duration_for_has_no_latency(collector):
    # Vercel logs no duration, and Logpush's whole seconds tell none: not 0 ms.
    for name in ("vercel-one-request-many-entries.json", "cloudflare-formats-unix.ndjson"):
        assert deliver(collector, name).status_code == 200
    stored(collector, "SELECT 1")
    assert collector.store is not None
    durations = stored(collector, "SELECT Duration FROM requests WHERE Source = 'cdn'")
    assert durations
    assert all(duration is None for (duration,) in durations), durations  # NULL, not 0 ms
    rows = run_query(StoreReader(collector.store), "server_latency", window())
    assert rows, "the CDN's requests have rows"
    assert all(row["p50_ms"] is None for row in rows), rows


@pytest.mark.parametrize("timestamp_format", ["unixnano", "unix", "rfc3339"])
def test_cloudflare_rows_carry_route_region_body_size_and_timings(collector, timestamp_format):
    # Read from the fields the docs name: ClientRequestPath, EdgeColoCode,
    # EdgeResponseBodyBytes (EdgeResponseBytes counts the headers), EdgeTimeToFirstByteMs and
    # OriginResponseDurationMs (0 on a hit: the origin was not asked).
    name = f"cloudflare-formats-{timestamp_format}.ndjson"
    assert deliver(collector, name).status_code == 200
    lines = [json.loads(line) for line in (DOCS / name).read_text().splitlines() if line]
    served = [line for line in lines if line["CacheCacheStatus"] in ("hit", "stale", "updating")]
    rows = stored(
        collector,
        "SELECT Route, Region, ResponseBytes, TtfbMs FROM requests ORDER BY Timestamp",
    )
    assert rows == [
        (
            line["ClientRequestPath"],
            line["EdgeColoCode"],
            line["EdgeResponseBodyBytes"],
            float(line["EdgeTimeToFirstByteMs"]),
        )
        for line in served
    ]
    lookups = stored(
        collector,
        "SELECT Route, Region FROM cache_events WHERE Layer = 'cdn' ORDER BY Route",
    )
    assert lookups == sorted((line["ClientRequestPath"], line["EdgeColoCode"]) for line in lines)
    origin = stored(
        collector,
        "SELECT SpanAttributes['url.path'], SpanAttributes['nextrace.cdn.origin_ms'] "
        "FROM otel_traces WHERE SpanName = 'cdn' ORDER BY 1",
    )
    assert origin == sorted(
        (line["ClientRequestPath"], str(line["OriginResponseDurationMs"] or "")) for line in lines
    )


ROUTES = {"/products/2": "/products/[id]", "/api/cart": "/api/cart"}  # the app's templates


def test_a_line_without_a_trace_id_joins_the_apps_request_by_time_and_path(collector):
    # The app traced /products/2 (which the CDN missed) and /api/cart (dynamic) on the server,
    # 3 ms after the edge logged each; /products/3 it never traced. The lines log no trace id.
    name = "cloudflare-formats-unixnano.ndjson"
    lines = {
        line["ClientRequestPath"]: line
        for line in map(json.loads, (DOCS / name).read_text().splitlines())
    }
    app = {path: os.urandom(16) for path in ("/products/2", "/api/cart")}
    parent = os.urandom(8)  # the browser's span, which sent the request
    spans = [
        make_span(
            f"GET {path}",
            trace_id=trace_id,
            parent=parent,
            start_ns=lines[path]["EdgeStartTimestamp"] + 3_000_000,
            attrs={"nextrace.phase": "request", "url.path": path, "next.route": ROUTES[path]},
        )
        for path, trace_id in app.items()
    ]
    assert collector.app is not None
    with TestClient(collector.app, base_url="http://localhost:4318") as client:
        body = make_request(spans, service="shop").SerializeToString()
        headers = {"content-type": "application/x-protobuf"}
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
    stored(collector, "SELECT 1")  # the app's requests are in the store
    assert deliver(collector, name).status_code == 200
    joined = stored(
        collector,
        "SELECT SpanAttributes['url.path'], TraceId, ParentSpanId, "
        "SpanAttributes['nextrace.cdn.joined_by'] FROM otel_traces WHERE SpanName = 'cdn' "
        "AND SpanAttributes['cache.result'] != 'hit' ORDER BY 1",
    )
    assert joined[0] == ("/api/cart", app["/api/cart"].hex(), parent.hex(), "time_path")
    assert joined[1] == ("/products/2", app["/products/2"].hex(), parent.hex(), "time_path")
    assert joined[2][0] == "/products/3"
    assert joined[2][3] == ""  # nothing near: a trace of its own
    # A joined line's route is the app's template; the others' is their path.
    routes = stored(collector, "SELECT Route FROM cache_events WHERE Layer = 'cdn' ORDER BY Key")
    assert sorted(r for (r,) in routes) == sorted(
        ["/products/1", "/products/[id]", "/products/3", "/api/cart"]
    )
    # Sent again, the joined lines are known by their own ids: nothing is stored twice.
    assert deliver(collector, name).status_code == 200
    assert stored(collector, "SELECT count() FROM otel_traces WHERE SpanName = 'cdn'") == [(4,)]


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_dashboards_cdn_hit_ratio_is_the_truths(collector, name):
    # Cache health's "Hit ratio per layer", as Grafana runs it: served (hit or stale) out of
    # the lookups that were not bypassed.
    truth = FILES[name]
    assert deliver(collector, name).status_code == 200
    if not truth["cdn_lookups"]:
        return
    rows = run_panel(stored_traffic(collector), cache_health, "Hit ratio per layer")
    served = truth["hits"] + truth.get("prerender", 0) + truth["stale"]
    assert [(layer, round(ratio, 4)) for _, layer, ratio in rows] == [
        ("cdn", round(served / truth["cdn_lookups"], 4))
    ]


def test_a_background_revalidation_is_recorded_as_what_it_is(collector):
    # Vercel refreshes a STALE entry in the background (proxy.statusCode -1): no user's
    # request and no second lookup, but a span that says it happened.
    name = "vercel-background-revalidation.json"
    truth = FILES[name]
    assert deliver(collector, name).status_code == 200
    assert stored(collector, LOOKUPS) == [("stale", 1)]
    assert stored(collector, "SELECT count() FROM requests") == [(truth["requests"],)]  # the user's
    background = stored(
        collector,
        "SELECT SpanAttributes['url.path'] FROM otel_traces "
        "WHERE SpanAttributes['nextrace.cdn.background'] = 'true'",
    )
    detail = truth["requests_detail"][truth["request_ids"][0]]
    assert background == [(detail["path"],)]


def test_a_redelivery_is_found_in_the_store_when_it_is_not_remembered(store_config):
    # No memory of recent lines: what stops the second copy is the store's answer alone.
    name = "cloudflare-formats-unixnano.ndjson"
    with running_collector(
        store_config, cloudflare_logpush_token=TOKEN, cdn_recent_lines=0
    ) as instance:
        assert deliver(instance, name).status_code == 200
        before = stored(instance, "SELECT count() FROM otel_traces")
        assert deliver(instance, name).status_code == 200
        assert stored(instance, "SELECT count() FROM otel_traces") == before
        assert instance.health()["cdn_lines_redelivered"] == FILES[name]["requests"]


def test_the_report_reads_a_store_of_cdn_rows_without_durations(collector):
    for name in sorted(FILES):
        assert deliver(collector, name).status_code == 200
    stored(collector, "SELECT 1")
    assert collector.store is not None
    report = build_report(StoreReader(collector.store)).as_json()
    (requests,) = stored(collector, "SELECT count() FROM requests")
    assert report["requests"] == requests[0]
