"""cache_events and requests: one row per cache interaction and per request, with their
per-minute counts, kept right for late spans and old stores."""

from __future__ import annotations

import os
import time
from typing import Any

from collector.config import StoreConfig
from collector.storage.migrations import apply_migrations, migrations
from collector.storage.store import connect, open_store
from tests.builders import insert_spans, make_request, make_span
from tests.conftest import stored

PB = {"Content-Type": "application/x-protobuf"}


def cache_span(layer: str, result: str, start_ns: int, **attrs):
    return make_span(
        f"{layer} cache lookup",
        start_ns=start_ns,
        attrs={
            "nextrace.phase": "cache",
            "cache.layer": layer,
            "cache.result": result,
            "nextrace.build_id": "build-7",
            **attrs,
        },
    )


def test_cache_spans_become_cache_events_whatever_order_they_arrive_in(client, collector):
    now = time.time_ns()
    late = make_request(
        [
            cache_span(
                "data",
                "miss",
                now,
                **{
                    "cache.miss_reason": "deploy",
                    "cache.key": "api/p/1",
                    "next.route": "/products/[id]",
                    "nextrace.warmup.pending": True,
                },
            ),
        ]
    )
    earlier = make_request(
        [
            cache_span(
                "data",
                "hit",
                now - 60_000_000_000,
                **{
                    "cache.key": "api/p/1",
                    "cache.tags": ["products", "product-1"],
                    "cache.entry.source": "warmup",
                    "cache.entry.age_ms": 12.5,
                    "cache.entry.source_trace_id": "ab" * 16,
                },
            ),
            cache_span("cdn", "bypass", now - 30_000_000_000, **{"cache.miss_reason": "dynamic"}),
            make_span(
                "GET /products/[id]",
                start_ns=now - 1,
                attrs={
                    "nextrace.phase": "request",
                    "nextrace.request.kind": "document",
                    "next.route": "/products/[id]",
                    "http.response.status_code": 200,
                    "nextrace.stream.ttfb_ms": 4.5,
                },
            ),
        ]
    )
    for request in (late, earlier):  # the later span arrives first
        assert (
            client.post("/v1/traces", content=request.SerializeToString(), headers=PB).status_code
            == 200
        )
    rows = stored(
        collector,
        "SELECT Layer, Result, Reason, Key, Tags, EntrySource, EntryAgeMs, "
        "EntrySourceTraceId, WarmupPending, Route, BuildId, ServiceName "
        "FROM cache_events ORDER BY Timestamp",
    )
    assert rows == [
        (
            "data",
            "hit",
            "",
            "api/p/1",
            ["products", "product-1"],
            "warmup",
            12.5,
            "ab" * 16,
            False,
            "",
            "build-7",
            "svc",
        ),
        ("cdn", "bypass", "dynamic", "", [], "", 0.0, "", False, "", "build-7", "svc"),
        (
            "data",
            "miss",
            "deploy",
            "api/p/1",
            [],
            "",
            0.0,
            "",
            True,
            "/products/[id]",
            "build-7",
            "svc",
        ),
    ]
    # The per-minute counts agree with the rows, whatever order the spans came in.
    assert stored(
        collector,
        "SELECT Minute, Layer, Result, sum(Lookups) FROM cache_events_1m GROUP BY ALL ORDER BY ALL",
    ) == stored(
        collector,
        "SELECT toStartOfMinute(Timestamp), Layer, Result, count() FROM cache_events "
        "GROUP BY ALL ORDER BY ALL",
    )
    requests = "SELECT Kind, Route, StatusCode, TtfbMs, Source FROM requests"
    assert stored(collector, requests) == [("document", "/products/[id]", 200, 4.5, "nextrace")]
    per_minute = stored(collector, "SELECT Kind, sum(Requests) FROM requests_1m GROUP BY Kind")
    assert per_minute == [("document", 1)]


def test_an_older_store_is_backfilled_once(chdb_path):
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=before_cache_events")
    client = connect(config)
    try:
        apply_migrations(client, config, up_to=3)  # the schema of the first release
        spans = [
            cache_span("cdn", "hit", time.time_ns()),
            make_span("no cache"),
            make_span("GET /", attrs={"nextrace.phase": "request", "nextrace.request.kind": "api"}),
        ]
        insert_spans(client, spans, config.database)
    finally:
        client.close()
    store = open_store(config)  # the collector starting on it applies every later migration

    def rows(sql: str) -> list[Any]:
        return list(store.client.query(sql).result_rows)

    try:
        assert rows("SELECT Layer, Result FROM cache_events") == [("cdn", "hit")]
        assert rows("SELECT Kind FROM requests") == [("api",)]
        assert apply_migrations(store.client, config) == []
        versions = rows("SELECT max(Version) FROM nextrace_schema_migrations")
        assert versions == [(migrations()[-1].version,)]
        # Backfilled exactly once, into the rows and into their per-minute counts.
        assert rows("SELECT count() FROM cache_events") == [(1,)]
        assert rows("SELECT sum(Lookups) FROM cache_events_1m") == [(1,)]
        assert rows("SELECT count() FROM requests") == [(1,)]
        assert rows("SELECT sum(Requests) FROM requests_1m") == [(1,)]
        # A backfill runs its view's own query: the same spans stored now (under new span ids),
        # through the views, give the same rows.
        for span in spans:
            span.span_id = os.urandom(8)
        insert_spans(store.client, spans)
        for table in ("cache_events", "requests"):
            first, second = rows(f"SELECT * EXCEPT (SpanId) FROM {table}")
            assert first == second, table
    finally:
        store.close()
