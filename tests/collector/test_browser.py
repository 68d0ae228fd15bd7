"""The browser endpoint, /v1/browser/traces: hostile and honest requests against a real
collector (token set, as beyond loopback) storing into real chDB."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.testclient import TestClient

from collector.config import CollectorConfig, StoreConfig
from collector.consumer import SpanColumns
from collector.errors import ConfigError
from collector.ingest.browser import BrowserSpansOnly
from collector.pipeline.translator import screen
from collector.pipeline.wal import KIND_JSON, KIND_PROTOBUF
from collector.service import Collector
from collector.telemetry import CollectorTelemetry
from tests.builders import make_request, make_span
from tests.conftest import running_collector, stored

SHOP = "https://shop.example.com"
PREVIEWS = "https://*.shop-preview.example.com"
KEY = "pk-shop-2026"
TOKEN = "collector-token-0123456789"
PB = {"Content-Type": "application/x-protobuf"}
PATH = f"/v1/browser/traces?key={KEY}"


@pytest.fixture
def browser_collector(store_config: StoreConfig) -> Iterator[Collector]:
    with running_collector(
        store_config,
        token=TOKEN,
        browser_origins=(SHOP, "http://localhost:3000", PREVIEWS),
        browser_key=KEY,
        browser_rate=0.01,  # one request, then one each 100 s: a second one is refused
    ) as instance:
        yield instance


@pytest.fixture
def browser(browser_collector: Collector) -> Iterator[TestClient]:
    assert browser_collector.app is not None
    with TestClient(browser_collector.app, base_url="http://localhost:4318") as client:
        yield client


def page_spans(*names: str, scope: str = "@nextrace/next/browser") -> bytes:
    request = make_request([make_span(name) for name in names], "shop-web", scope=scope)
    return request.SerializeToString()


def names(collector: Collector) -> list[str]:
    return [name for (name,) in stored(collector, "SELECT SpanName FROM otel_traces ORDER BY 1")]


def test_a_listed_page_sends_spans_without_the_token(browser, browser_collector):
    response = browser.post(
        PATH, content=page_spans("navigation /b"), headers={**PB, "Origin": SHOP}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    assert names(browser_collector) == ["navigation /b"]
    # The token still guards everything else.
    assert browser.post("/v1/traces", content=page_spans("x"), headers=PB).status_code == 401
    assert browser.post("/sql", json={"query": "SELECT 1"}).status_code == 401


def test_preflights_are_answered_for_listed_origins_only(browser):
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = browser.options(PATH, headers={**asked, "Origin": SHOP})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "POST" in allowed.headers["access-control-allow-methods"]
    other = browser.options(PATH, headers={**asked, "Origin": "https://evil.example"})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    ("path", "origin", "status"),
    [
        (PATH, "https://evil.example", 403),  # another site
        (PATH, "https://shop.example.com.evil.example", 403),  # not a prefix match
        (PATH, None, 403),  # no browser: a cross-origin POST always names its origin
        ("/v1/browser/traces", SHOP, 401),  # no key
        ("/v1/browser/traces?key=pk-other", SHOP, 401),  # a wrong key
    ],
)
def test_refused_requests_store_nothing(browser, browser_collector, path, origin, status):
    headers = {**PB, **({"Origin": origin} if origin else {})}
    response = browser.post(path, content=page_spans("forged"), headers=headers)
    assert response.status_code == status
    assert names(browser_collector) == []
    reason = {403: "forbidden_origin", 401: "wrong_key"}[status]
    assert browser_collector.telemetry.snapshot()["requests_rejected"][reason] == 1


def test_each_origin_has_its_own_rate(browser, browser_collector):
    body = page_spans("navigation")
    first = browser.post(PATH, content=body, headers={**PB, "Origin": SHOP})
    second = browser.post(PATH, content=body, headers={**PB, "Origin": SHOP})
    other = browser.post(PATH, content=body, headers={**PB, "Origin": "http://localhost:3000"})
    assert (first.status_code, second.status_code, other.status_code) == (200, 429, 200)
    assert int(second.headers["retry-after"]) >= 99  # one request each 100 s
    assert names(browser_collector) == ["navigation", "navigation"]


def test_bodies_beyond_what_a_browser_sends_are_refused(browser, browser_collector):
    big = page_spans(*(f"navigation {i:05d} " + "x" * 100 for i in range(600)))
    assert len(big) > 64 * 1024
    response = browser.post(PATH, content=big, headers={**PB, "Origin": SHOP})
    assert response.status_code == 413
    assert names(browser_collector) == []


def test_a_page_cannot_send_a_servers_spans(browser, browser_collector):
    request = ExportTraceServiceRequest()
    request.MergeFrom(make_request([make_span("navigation /p")], scope="@nextrace/next/browser"))
    for scope in ("next.js", "@vercel/otel/fetch", "@nextrace/next"):
        forged = make_request([make_span("BaseServer.handleRequest")], scope=scope)
        request.resource_spans.extend(forged.resource_spans)
    response = browser.post(
        PATH, content=request.SerializeToString(), headers={**PB, "Origin": SHOP}
    )
    assert response.status_code == 200
    assert names(browser_collector) == ["navigation /p"]
    dropped = browser_collector.telemetry.snapshot()["spans_dropped"]
    assert dropped["server_scope_from_browser"] == 3


PAGE = "@nextrace/next/browser"
FORGERIES = [  # (scope, attributes, the reason it is dropped), each once a server's row
    ("nextrace.cdn", {"cache.layer": "cdn", "cache.result": "miss"}, "server_scope_from_browser"),
    (
        PAGE,
        {"nextrace.phase": "cache", "cache.layer": "data", "cache.result": "miss"},
        "server_cache_from_browser",
    ),
    (PAGE, {"nextrace.phase": "request", "next.route": "/checkout"}, "server_phase_from_browser"),
    (PAGE, {"nextrace.phase": "deploy"}, "server_phase_from_browser"),
    (
        PAGE,
        {"nextrace.phase": "navigation", "nextrace.build_id": "forged"},
        "server_attribute_from_browser",
    ),
    (PAGE, {"nextrace.cdn.vendor": "vercel"}, "server_attribute_from_browser"),
]


def test_a_page_can_make_no_server_row(browser, browser_collector):
    page = [
        make_span("navigation /p", attrs={"nextrace.phase": "navigation"}),
        make_span(
            "router cache lookup",
            attrs={"nextrace.phase": "cache", "cache.layer": "router", "cache.result": "hit"},
        ),
        make_span("GET /p", attrs={"url.path": "/p"}),
    ]
    request = make_request(page, "shop-web", scope=PAGE)
    for i, (scope, attrs, _) in enumerate(FORGERIES):
        forged = make_request([make_span(f"forged {i}", attrs=attrs)], "shop", scope=scope)
        request.resource_spans.extend(forged.resource_spans)
    response = browser.post(
        PATH, content=request.SerializeToString(), headers={**PB, "Origin": SHOP}
    )
    assert response.status_code == 200
    assert names(browser_collector) == ["GET /p", "navigation /p", "router cache lookup"]
    assert stored(browser_collector, "SELECT Layer FROM cache_events") == [("router",)]
    for table in ("requests", "builds", "deploys"):
        assert stored(browser_collector, f"SELECT count() FROM {table}") == [(0,)], table
    dropped = browser_collector.telemetry.snapshot()["spans_dropped"]
    expected: dict[str, int] = {}
    for _, _, reason in FORGERIES:
        expected[reason] = expected.get(reason, 0) + 1
    assert {k: v for k, v in dropped.items() if k.endswith("_from_browser")} == expected


def test_the_endpoint_is_off_unless_origins_are_listed(client):
    response = client.post(
        "/v1/browser/traces", content=page_spans("x"), headers={**PB, "Origin": SHOP}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "https://*.com",
        "https://shop.*.example.com",
        "https://*example.com",
        "https://*.*.example.com",
        "https://shop.example.com/",
        "https://shop.example.com/app",
        "shop.example.com",
        "ftp://shop.example.com",
    ],
)
def test_origins_must_be_listed_one_by_one_as_browsers_send_them(store_config, origin):
    with pytest.raises(ConfigError, match="browser origin"):
        CollectorConfig(store=store_config, browser_origins=(origin,))


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_the_kept_spans_are_what_the_write_ahead_log_is_given(encoding):
    # The log stores a batch's source: it must hold the kept spans, not an empty body.
    request = make_request([make_span(f"click {i}") for i in range(30)], scope="browser")
    request.resource_spans.extend(
        make_request([make_span("BaseServer.handleRequest")], scope="next.js").resource_spans
    )
    if encoding == "json":
        document = json_format.MessageToDict(request)
        for resource_spans in document["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:  # OTLP/JSON ids are hex
                    for key in ("traceId", "spanId"):
                        span[key] = base64.b64decode(span[key]).hex()
        body = json.dumps(document).encode()
        spans = screen(request, None).spans
        spans.source, spans.source_kind, spans.encoded = body, KIND_JSON, None
    else:
        body = request.SerializeToString()
        spans = screen(request, body).spans
        spans.source, spans.source_kind = body, KIND_PROTOBUF
    passed: list[SpanColumns] = []

    class Downstream:
        def consume(self, batch: SpanColumns) -> None:
            passed.append(batch)

    BrowserSpansOnly(Downstream(), CollectorTelemetry()).consume(spans)
    (kept,) = passed
    assert len(kept) == 30
    assert kept.source_kind == KIND_PROTOBUF
    logged = ExportTraceServiceRequest.FromString(kept.source)
    names = [s.name for r in logged.resource_spans for ss in r.scope_spans for s in ss.spans]
    assert names == [f"click {i}" for i in range(30)]
    assert kept.encoded == [kept.source]


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://pr-42.shop-preview.example.com", 200),
        ("https://a.b.shop-preview.example.com", 403),  # one label, not two
        ("https://pr-42.shop-preview.example.com.evil.com", 403),
        ("https://shop-preview.example.com", 403),
    ],
)
def test_preview_deployments_send_through_a_pattern(browser, browser_collector, origin, status):
    answer = browser.post(
        PATH, content=page_spans("navigation /p"), headers={**PB, "Origin": origin}
    )
    assert answer.status_code == status
    if status == 200:
        assert answer.headers["access-control-allow-origin"] == origin
        assert names(browser_collector) == ["navigation /p"]
    else:
        assert names(browser_collector) == []


def test_a_beacon_of_otlp_json_as_text_plain_is_read(browser, browser_collector):
    # navigator.sendBeacon(url, JSON.stringify(otlp)) sends text/plain;charset=UTF-8.
    document = json_format.MessageToDict(
        make_request([make_span("navigation /p")], "shop-web", scope="@nextrace/next/browser")
    )
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:  # OTLP/JSON ids are hex
                for key in ("traceId", "spanId"):
                    span[key] = base64.b64decode(span[key]).hex()
    answer = browser.post(
        PATH,
        content=json.dumps(document).encode(),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": SHOP},
    )
    assert answer.status_code == 200
    assert names(browser_collector) == ["navigation /p"]
