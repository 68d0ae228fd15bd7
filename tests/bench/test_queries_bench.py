"""The query benchmark's store holds the demo's traffic, and every query it times runs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from bench.queries import alert_queries, dashboard_queries, run, trace_queries
from bench.workload import fill, load_template
from collector.config import StoreConfig
from collector.storage.store import open_store

HOUR_NS = 3600 * 10**9
END_NS = 1_767_261_600 * 10**9  # 2026-01-01T10:00:00Z: the test never reads the clock


def test_the_workload_copies_the_demo_with_fresh_ids_and_every_query_runs(
    store_config: StoreConfig,
):
    store = open_store(store_config)

    def rows(sql: str) -> list[Any]:
        return list(store.client.query(sql).result_rows)

    try:
        template_spans, _ = load_template(store)
        template = dict(rows("SELECT Phase, count() FROM bench_template GROUP BY Phase"))
        template_traces = rows("SELECT uniqExact(TraceId) FROM bench_template")[0][0]
        stored = fill(
            store, template_spans + 1, window_ns=HOUR_NS, end_ns=END_NS, progress=lambda _: None
        )
        assert stored == 2 * template_spans  # whole copies
        phases = dict(rows("SELECT Phase, count() FROM otel_traces GROUP BY Phase"))
        assert phases == {phase: 2 * count for phase, count in template.items()}
        assert rows("SELECT uniqExact(TraceId), uniqExact(SpanId) FROM otel_traces") == [
            (2 * template_traces, stored)
        ]
        assert rows(
            "SELECT count() FROM otel_traces WHERE ParentSpanId != '' "
            "AND ParentSpanId NOT IN (SELECT SpanId FROM otel_traces)"
        ) == [(0,)]
        first, last = rows("SELECT min(Timestamp), max(Timestamp) FROM otel_traces")[0]
        end = dt.datetime.fromtimestamp(END_NS / 1e9, dt.UTC).replace(tzinfo=None)
        assert end - dt.timedelta(hours=1) <= first
        assert last <= end + dt.timedelta(minutes=1)
        assert rows("SELECT count() FROM requests") == [(2 * template["request"],)]
        assert rows("SELECT count() FROM lifecycle_spans WHERE Phase = 'warmup'") == [
            (2 * template["warmup"],)
        ]

        at = dt.datetime.fromtimestamp(END_NS / 1e9, dt.UTC)
        queries = [*dashboard_queries(at, "1h"), *alert_queries(at)]
        assert len({q.name for q in queries}) == len(queries) > 40
        for query in queries:
            run(store, query.sql)  # as Grafana sends it: no error
        (trace,) = trace_queries(store, 1)
        spans = json.loads(run(store, trace))["data"]  # Grafana's trace view: one whole trace
        ((trace_id, stored_spans),) = rows(
            f"SELECT TraceId, count() FROM otel_traces WHERE TraceId = '{spans[0][0]}' "
            "GROUP BY TraceId"
        )
        assert {span[0] for span in spans} == {trace_id}
        assert len(spans) == stored_spans
    finally:
        store.close()
