"""The Cloudflare Logpush endpoint, /v1/cdn/cloudflare, against a real collector (token set,
as beyond loopback) storing into real chDB.

``tests/data/cdn/cloudflare-logpush.ndjson`` is written field for field from Cloudflare's
``http_requests`` dataset reference (developers.cloudflare.com/logs/reference/log-fields:
``ClientRequestHost``, ``ClientRequestMethod``, ``ClientRequestURI``,
``ClientRequestProtocol``, ``EdgeResponseStatus``, ``CacheCacheStatus`` with its values
``hit``, ``dynamic`` and ``updating``, ``EdgeStartTimestamp`` and ``EdgeEndTimestamp`` as RFC
3339, ``EdgeResponseBytes`` and ``EdgeResponseBodyBytes``, ``EdgeColoCode``, ``RayID``,
``ZoneName``, ``OriginResponseStatus``, and ``RequestHeaders``, the custom fields a job is
told to log). Logpush sends it gzip-compressed, with the token in the header its destination URL's
``header_Authorization`` parameter sets.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from collector.config import StoreConfig
from collector.ingest.cloudflare_logpush import nanoseconds
from collector.service import Collector
from tests.conftest import running_collector, stored
from tests.support.cdn_payloads import LINES

LOGPUSH_TOKEN = "logpush-token-0123456789"
TOKEN = "collector-token-0123456789"
PATH = "/v1/cdn/cloudflare?service=shop"
AUTH = {"Authorization": f"Bearer {LOGPUSH_TOKEN}"}


@pytest.fixture
def logpush_collector(store_config: StoreConfig) -> Iterator[Collector]:
    with running_collector(
        store_config, token=TOKEN, cloudflare_logpush_token=LOGPUSH_TOKEN
    ) as instance:
        yield instance


@pytest.fixture
def cloudflare(logpush_collector: Collector) -> Iterator[TestClient]:
    assert logpush_collector.app is not None
    with TestClient(logpush_collector.app, base_url="http://localhost:4318") as client:
        yield client


@pytest.mark.parametrize("encoding", [{"Content-Encoding": "gzip"}, {}])
def test_a_gzipped_delivery_becomes_cdn_rows(cloudflare, logpush_collector, encoding):
    body = gzip.compress(LINES)
    answer = cloudflare.post(PATH, content=body, headers={**AUTH, **encoding})
    assert answer.status_code == 200
    events = stored(
        logpush_collector,
        "SELECT Result, ServiceName FROM cache_events WHERE Layer = 'cdn' ORDER BY Timestamp",
    )
    assert events == [("hit", "shop"), ("hit", "shop"), ("bypass", "shop"), ("stale", "shop")]
    requests = stored(
        logpush_collector,
        "SELECT Kind, Prefetch, Path, ResponseBytes, Duration FROM requests ORDER BY Timestamp",
    )
    assert requests == [
        ("document", "none", "/products/3", 18211, 12_000_000),
        ("rsc_prefetch", "auto", "/products/4", 2210, 4_000_000),  # from the logged headers
        ("document", "none", "/products", 40960, 9_000_000),
    ]
    # The request that reached the app joins its trace through the logged traceparent.
    [(parent, result)] = stored(
        logpush_collector,
        "SELECT ParentSpanId, SpanAttributes['cache.result'] FROM otel_traces "
        "WHERE TraceId = '4bf92f3577b34da6a3ce929d0e0e4736'",
    )
    assert (parent, result) == ("00f067aa0ba902b7", "bypass")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer another-token"},
        {"Authorization": f"Bearer {TOKEN}"},  # the collector's own token opens only its paths
    ],
)
def test_a_delivery_without_the_logpush_token_is_refused_and_nothing_is_kept(
    cloudflare, logpush_collector, headers
):
    assert cloudflare.post(PATH, content=LINES, headers=headers).status_code == 401
    assert stored(logpush_collector, "SELECT count() FROM otel_traces") == [(0,)]


def test_the_check_logpush_makes_of_a_destination_is_answered_and_stores_nothing(
    cloudflare, logpush_collector
):
    body = gzip.compress(b'{"content":"tests"}\n')
    assert cloudflare.post(PATH, content=body, headers=AUTH).status_code == 200
    assert stored(logpush_collector, "SELECT count() FROM otel_traces") == [(0,)]
    assert logpush_collector.health()["spans_dropped"]["malformed_log_line"] == 0


def test_lines_that_cannot_be_read_are_counted_and_the_rest_stored(cloudflare, logpush_collector):
    first = LINES.splitlines()[0]
    broken = first.replace(b'"2025-11-26T10:30:00Z"', b'"yesterday"')
    body = gzip.compress(b"\n".join([first, b"{oops", broken, b'"a string"']))
    assert cloudflare.post(PATH, content=body, headers=AUTH).status_code == 200
    assert stored(logpush_collector, "SELECT count() FROM cache_events") == [(1,)]
    assert logpush_collector.health()["spans_dropped"]["malformed_log_line"] == 3


def test_a_compressed_bomb_is_refused(cloudflare):
    body = gzip.compress(b"\n" * (64 * 1024 * 1024))
    assert cloudflare.post(PATH, content=body, headers=AUTH).status_code == 413


def test_a_delivery_without_the_token_is_refused_before_its_body_is_read(cloudflare):
    # Over the 8 MiB limit, and inflating far past it: reading it would answer 413.
    body = b"\n" * (9 * 1024 * 1024)
    for wrong in ({}, {"Authorization": "Bearer another-token"}):
        assert cloudflare.post(PATH, content=body, headers=wrong).status_code == 401


@pytest.mark.parametrize(
    "value",
    ["2025-11-26T10:30:00Z", 1764153000, 1764153000000000000, "2025-11-26T10:30:00+00:00"],
)
def test_every_timestamp_format_a_job_may_use(value):
    assert nanoseconds(value) == 1_764_153_000_000_000_000
