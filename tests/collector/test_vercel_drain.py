"""The Vercel Log Drains endpoint, /v1/cdn/vercel, against a real collector (token set, as
beyond loopback) storing into real chDB.

``tests/data/cdn/vercel-drain.json`` is written field for field from Vercel's Log Drains
reference (vercel.com/docs/drains/reference/logs: ``id``, ``deploymentId``, ``source``,
``host``, ``timestamp``, ``projectId``, ``projectName``, ``level``, ``path``, ``statusCode``,
``traceId``, ``spanId``, and the ``proxy`` object's ``timestamp``, ``method``, ``host``,
``path``, ``userAgent``, ``referer``, ``region``, ``clientIp``, ``scheme``, ``statusCode``,
``vercelCache``, ``vercelId``); the cache statuses are those of Vercel's cache status
reference (vercel.com/docs/caching/cache-status), and the ``.prefetch.rsc`` path is how
Next.js's build output names a page's prefetch payload.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.config import StoreConfig
from collector.service import Collector
from tests.conftest import running_collector, stored
from tests.support.cdn_payloads import SECRET, signed

TOKEN = "collector-token-0123456789"
PATH = "/v1/cdn/vercel"
DELIVERY = (Path(__file__).parents[1] / "data" / "cdn" / "vercel-drain.json").read_bytes()


@pytest.fixture
def drain_collector(store_config: StoreConfig) -> Iterator[Collector]:
    with running_collector(
        store_config,
        token=TOKEN,
        vercel_drain_secret=SECRET,
        vercel_verify="verify-code-42",
        cdn_max_body_bytes=16 * 1024,
    ) as instance:
        yield instance


@pytest.fixture
def vercel(drain_collector: Collector) -> Iterator[TestClient]:
    assert drain_collector.app is not None
    with TestClient(drain_collector.app, base_url="http://localhost:4318") as client:
        yield client


def test_a_signed_delivery_becomes_cdn_cache_events_and_the_requests_the_app_never_saw(
    vercel, drain_collector
):
    answer = vercel.post(PATH, content=DELIVERY, headers=signed(DELIVERY))
    assert answer.status_code == 200
    assert answer.headers["x-vercel-verify"] == "verify-code-42"
    events = stored(
        drain_collector,
        "SELECT Result, Route, BuildId, ServiceName FROM cache_events WHERE Layer = 'cdn' "
        "ORDER BY Timestamp",
    )
    build = "dpl_233NRGRjVZX1caZrXWtz5g1TAksD"
    assert events == [
        ("hit", "/products/[id]", build, "shop"),
        ("hit", "/products/[id]", build, "shop"),  # PRERENDER: the build's static file
        ("stale", "/products/[id]", build, "shop"),
        ("miss", "/cart", build, "shop"),
    ]
    # The CDN answered three without the app: they are requests of their own. The miss
    # reached the app, whose own trace makes its request row.
    requests = stored(
        drain_collector,
        "SELECT Kind, Prefetch, Path, StatusCode, Source, KindSource FROM requests "
        "ORDER BY Timestamp",
    )
    assert requests == [
        ("document", "none", "/products/3", 200, "cdn", "cdn_log"),
        ("rsc_prefetch", "auto", "/products/4.prefetch.rsc", 200, "cdn", "cdn_log"),
        ("rsc_navigation", "none", "/products/5", 200, "cdn", "cdn_log"),
    ]
    # The logged trace id joins the CDN's lookup to the app's trace of that request.
    [(parent,)] = stored(
        drain_collector,
        "SELECT ParentSpanId FROM otel_traces WHERE TraceId = '4bf92f3577b34da6a3ce929d0e0e4736'",
    )
    assert parent == "00f067aa0ba902b7"


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},  # unsigned
        signed(DELIVERY, "another-secret"),
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ],
)
def test_a_delivery_without_the_right_signature_is_refused_and_nothing_is_kept(
    vercel, drain_collector, headers
):
    answer = vercel.post(PATH, content=DELIVERY, headers=headers)
    assert answer.status_code == 401
    assert stored(drain_collector, "SELECT count() FROM otel_traces") == [(0,)]
    health = drain_collector.health()
    assert health["requests_rejected"]["wrong_signature"] == 1


def test_ndjson_lines_that_cannot_be_read_are_counted_and_the_rest_stored(vercel, drain_collector):
    entries = json.loads(DELIVERY)
    wrong = {
        **entries[0],
        "id": "another-entry",
        "requestId": "another-request",
        "proxy": {**entries[0]["proxy"], "timestamp": "soon"},
    }
    lines = [json.dumps(entries[0]), "{not json", json.dumps(entries[3]), "[1, 2]"]
    lines.append(json.dumps(wrong))
    body = "\n".join(lines).encode()
    answer = vercel.post(
        PATH, content=body, headers={**signed(body), "Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code == 200
    rows = stored(drain_collector, "SELECT Result FROM cache_events ORDER BY Timestamp")
    assert rows == [("hit",), ("miss",)]
    assert drain_collector.health()["spans_dropped"]["malformed_log_line"] == 3


def test_a_delivery_over_the_size_limit_is_refused(vercel, drain_collector):
    body = json.dumps([json.loads(DELIVERY)[0]] * 40).encode()  # about 30 KiB
    assert vercel.post(PATH, content=body, headers=signed(body)).status_code == 413
    assert stored(drain_collector, "SELECT count() FROM otel_traces") == [(0,)]


def test_vercel_checks_the_endpoint_and_gets_its_code_back(vercel):
    answer = vercel.get(PATH)
    assert answer.status_code == 200
    assert answer.headers["x-vercel-verify"] == "verify-code-42"


def test_the_endpoint_is_off_without_a_secret(client):
    body = DELIVERY
    assert client.post(PATH, content=body, headers=signed(body)).status_code == 404


def test_a_body_is_decompressed_only_once_its_signature_is_checked(vercel, drain_collector):
    # A bomb that inflates far past the 16 KiB limit: with a wrong signature it is refused
    # as unsigned (401), never inflated (which would have been a 413).
    bomb = gzip.compress(b"\0" * 1_000_000)
    gz = {"Content-Encoding": "gzip"}
    wrong = vercel.post(PATH, content=bomb, headers={**signed(bomb, "another-secret"), **gz})
    assert wrong.status_code == 401
    assert vercel.post(PATH, content=bomb, headers={**signed(bomb), **gz}).status_code == 413
    body = gzip.compress(DELIVERY)
    assert vercel.post(PATH, content=body, headers={**signed(body), **gz}).status_code == 200
    assert drain_collector.health()["unverified_bytes"] == 0


def test_a_request_without_a_signature_is_refused_before_its_body_is_read(vercel):
    # Its body is over the size limit: a read would answer 413.
    answer = vercel.post(
        PATH, content=b"[" + b" " * 20_000 + b"]", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 401
