"""The report's CDN hit ratio counts every CDN lookup, as the dashboards do: a CDN answers
most requests without the app, so its hits belong to no trace of a browser's."""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.testclient import TestClient

from collector.config import StoreConfig
from investigate.reader import StoreReader
from investigate.report import build_report
from tests.builders import make_request, make_span
from tests.conftest import running_collector, stored

DELIVERY = Path(__file__).parents[1] / "data" / "cdn" / "vendor-docs"
LINES = "cloudflare-formats-unixnano.ndjson"  # hit, miss, expired and dynamic, per truth.json
TOKEN = "logpush-token-0123456789"
PB = {"Content-Type": "application/x-protobuf"}


def test_the_cdn_hit_ratio_counts_the_lookups_no_browser_trace_holds(store_config: StoreConfig):
    truth = json.loads((DELIVERY / "truth.json").read_text())["files"][LINES]
    lines = (DELIVERY / LINES).read_text().splitlines()
    first = min(json.loads(line)["EdgeStartTimestamp"] for line in lines if line)
    trace = os.urandom(16)
    navigation = make_span(
        "navigation /", trace_id=trace, start_ns=first, attrs={"nextrace.phase": "navigation"}
    )
    lookup = make_span(
        "data cache lookup",
        trace_id=trace,
        start_ns=first + 10**6,
        attrs={"nextrace.phase": "cache", "cache.layer": "data", "cache.result": "hit"},
    )
    with running_collector(store_config, cloudflare_logpush_token=TOKEN) as collector:
        assert collector.app is not None
        assert collector.store is not None
        with TestClient(collector.app, base_url="http://localhost:4318") as client:
            for service, span in (("browser", navigation), ("shop", lookup)):
                body = make_request([span], service).SerializeToString()
                assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
            answer = client.post(
                "/v1/cdn/cloudflare?service=shop",
                content=(DELIVERY / LINES).read_bytes(),
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert answer.status_code == 200
        stored(collector, "SELECT 1")
        report = build_report(StoreReader(collector.store))
    [(_, ratios)] = report.periods
    served, lookups = truth["hits"], truth["cdn_lookups"]  # the dynamic request is no lookup
    assert ratios["cdn"] == served / lookups
    assert ratios["data"] == 1.0
