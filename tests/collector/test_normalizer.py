"""The Next.js normalizer stage: grouping across exports, bounds, late spans and failures."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.testclient import TestClient

from collector import decoder
from collector.clock import SYSTEM_CLOCK, Clock
from collector.config import BatchSettings, CollectorConfig, NextjsSettings, RetryPolicy
from collector.consumer import SpanColumns
from collector.errors import TransientError
from collector.pipeline.normalizer import NextjsTraceNormalizer
from collector.pipeline.translator import translate
from collector.service import Collector
from collector.telemetry import CollectorTelemetry
from tests.builders import make_request, make_span
from tests.conftest import stored
from tests.support.clock import ManualClock
from tests.support.spans import NEXT, request_spans, vercel_fetch_only
from tests.support.waiting import wait_until


def nextjs(spans: list[Span]) -> SpanColumns:
    return translate(make_request(spans, "shop", scope=NEXT)).spans


def make_collector(
    store_config, retry: RetryPolicy | None = None, clock: Clock = SYSTEM_CLOCK, **nextjs: Any
) -> Collector:
    """A started collector that batches every 0.1 s, with ``nextjs``: NextjsSettings's fields."""
    collector = Collector(
        CollectorConfig(
            store=store_config,
            batch=BatchSettings(timeout_s=0.1),
            nextjs=NextjsSettings(**nextjs),
            retry=retry or RetryPolicy(),
        ),
        clock=clock,
    )
    collector.start()
    return collector


def test_a_trace_split_across_exports_becomes_one_request_once_idle(store_config):
    clock = ManualClock()
    collector = make_collector(store_config, clock=clock, wait_s=1.0)
    try:
        first, second = request_spans()
        assert collector.normalizer is not None
        collector.normalizer.consume(nextjs(first))
        clock.advance(0.9)
        collector.normalizer.consume(nextjs(second))  # within the wait: the trace is open
        clock.advance(0.9)  # 1.8 s after the first part, 0.9 s after the last: still open
        assert collector.normalizer.oldest_wal_record() is None  # (no log here)
        assert collector.health()["nextjs_traces"] == 0
        clock.advance(0.1)
        wait_until(lambda: collector.health()["nextjs_traces"] >= 1, "the trace is normalized")
        assert collector.store is not None
        rows = collector.store.client.query(
            "SELECT Kind, Route, StatusCode, Source FROM requests"
        ).result_rows
        assert rows == [("document", "/products/[id]", 200, "nextjs")]
        events = stored(collector, "SELECT Layer, Result, Reason, Route FROM cache_events")
        assert events == [("data", "miss", "unknown", "/products/[id]")]
        assert stored(collector, "SELECT count() FROM otel_traces") == [(3,)]
    finally:
        collector.shutdown()


def test_spans_of_other_sources_are_not_held(store_config):
    collector = make_collector(store_config)
    try:
        first, second = request_spans()
        assert collector.normalizer is not None
        collector.normalizer.consume(translate(make_request(first + second, "shop")).spans)
        assert stored(collector, "SELECT count() FROM requests") == [(0,)]
        assert collector.health()["nextjs_traces"] == 0
    finally:
        collector.shutdown()


def test_the_buffer_is_bounded_and_a_late_span_is_counted(store_config):
    collector = make_collector(store_config, wait_s=60, max_traces=2)
    try:
        assert collector.normalizer is not None
        traces = [request_spans(f"/products/{n}") for n in range(3)]
        for render, request in traces:
            collector.normalizer.consume(nextjs(render + request))
        health = collector.health()
        assert health["nextjs_released_early"] == 1
        assert collector.store is not None
        store = collector.store
        wait_until(
            lambda: store.client.query("SELECT count() FROM requests").result_rows[0][0] > 0,
            "the oldest trace's row is written",
        )
        written = store.client.query("SELECT Path FROM requests").result_rows
        assert written == [("/products/0",)]  # the oldest, without its minute of waiting
        late = make_span("late", trace_id=traces[0][1][0].trace_id)
        collector.normalizer.consume(nextjs([late]))
        assert collector.health()["nextjs_late_spans"] == 1
        assert stored(collector, "SELECT count() FROM requests") == [(3,)]
    finally:
        collector.shutdown()


def test_a_refused_export_is_not_held_and_a_failed_write_is_counted(store_config):
    collector = make_collector(store_config)
    try:
        assert collector.normalizer is not None
        assert collector.processor is not None
        render, request = request_spans()
        original = collector.processor.consume

        def refuse(spans):
            raise TransientError("queue full")

        collector.processor.consume = refuse  # type: ignore[method-assign]
        with pytest.raises(TransientError):
            collector.normalizer.consume(nextjs(render + request))
        collector.processor.consume = original  # type: ignore[method-assign]
        assert stored(collector, "SELECT count() FROM requests") == [(0,)]

        assert collector.store is not None
        # The store now refuses every Next.js request row.
        collector.store.client.command(
            "ALTER TABLE requests ADD CONSTRAINT no_nextjs CHECK Source != 'nextjs'"
        )
        collector.normalizer.consume(nextjs(render + request))
        assert stored(collector, "SELECT count() FROM otel_traces") == [(3,)]
        assert collector.health()["derived_rows_dropped"] == {"requests": 1}
        assert stored(collector, "SELECT count() FROM cache_events") == [(1,)]
    finally:
        collector.shutdown()


class BlockedStore:
    """A row exporter that holds its first insert until released: a store that stalls."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.rows: dict[str, int] = {}

    def export(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.entered.set()
        assert self.release.wait(10)
        self.rows[table] = self.rows.get(table, 0) + len(rows)

    def existing_traces(self, table: str, trace_ids: Sequence[str]) -> set[str]:
        return set()

    def replace(
        self,
        table: str,
        column_names: Sequence[str],
        trace_ids: Sequence[str],
        span_ids: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> set[str]:
        raise AssertionError("no trace here has late spans")


class BuggyStore(BlockedStore):
    """A row exporter whose first insert fails with a bug, not a ClickHouse error."""

    def export(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not self.entered.is_set():
            self.entered.set()
            raise KeyError("a bug")
        self.rows[table] = self.rows.get(table, 0) + len(rows)


class NullDownstream:
    def consume(self, spans: SpanColumns) -> None:
        pass


def test_with_a_stalled_store_waiting_traces_stay_bounded_and_drops_are_counted():
    store, telemetry = BlockedStore(), CollectorTelemetry()
    normalizer = NextjsTraceNormalizer(
        NullDownstream(),
        store,
        telemetry,
        NextjsSettings(wait_s=60, max_traces=1),
        retry=RetryPolicy(),
    )
    normalizer.start()
    traces = [request_spans(f"/products/{n}") for n in range(4)]
    normalizer.consume(nextjs(traces[0][0] + traces[0][1]))
    normalizer.consume(nextjs(traces[1][0] + traces[1][1]))  # 0 goes to the worker early
    assert store.entered.wait(10)  # ...which is stuck writing it
    normalizer.consume(nextjs(traces[2][0] + traces[2][1]))  # 1 waits for the worker
    normalizer.consume(nextjs(traces[3][0] + traces[3][1]))  # 2 too: one too many, 1 dropped
    assert telemetry.snapshot()["nextjs_traces_dropped"] == 1
    store.release.set()
    normalizer.shutdown()
    normalizer.shutdown()  # idempotent
    assert store.rows["requests"] == 3  # 0, 2 and 3


def test_traces_dropped_by_the_thousand_are_all_counted_in_a_few_log_lines(caplog):
    telemetry = CollectorTelemetry()
    with caplog.at_level(logging.WARNING, logger="collector.telemetry"):
        for n in range(1000):
            telemetry.drop_nextjs_trace(f"{n:032x}", "the store is too slow")
    assert telemetry.snapshot()["nextjs_traces_dropped"] == 1000
    lines = [r.getMessage() for r in caplog.records if "dropped Next.js trace" in r.getMessage()]
    assert 1 <= len(lines) <= 2  # one per 10 s, the first at once
    assert "the store is too slow" in lines[0]


def test_a_bug_in_the_row_exporter_is_counted_and_normalization_goes_on():
    store, telemetry = BuggyStore(), CollectorTelemetry()
    normalizer = NextjsTraceNormalizer(
        NullDownstream(), store, telemetry, NextjsSettings(wait_s=0.05), retry=RetryPolicy()
    )
    normalizer.start()
    first, second = request_spans("/products/1"), request_spans("/products/2")
    normalizer.consume(nextjs(first[0] + first[1]))
    assert store.entered.wait(10)
    normalizer.consume(nextjs(second[0] + second[1]))
    wait_until(lambda: store.rows.get("requests", 0) >= 1, "the second trace's row is written")
    normalizer.shutdown()
    assert store.rows["requests"] == 1  # the worker survived the bug and wrote the second
    assert telemetry.snapshot()["derived_rows_dropped"]["requests"] == 1


def test_replayed_traces_whose_rows_exist_are_not_written_twice(collector: Collector):
    first, second = request_spans("/products/1"), request_spans("/products/2")
    assert collector.normalizer is not None
    collector.normalizer.observe(nextjs(first[0] + first[1]))
    stored(collector, "SELECT 1")
    # After a crash, the log replays both traces; the first one's rows are stored already.
    collector.normalizer.observe(nextjs(first[0] + first[1]), replayed=True)
    collector.normalizer.observe(nextjs(second[0] + second[1]), replayed=True)
    assert stored(collector, "SELECT Path FROM requests ORDER BY Path") == [
        ("/products/1",),
        ("/products/2",),
    ]


def test_a_service_whose_data_cache_is_invisible_is_named_once(client, collector, caplog):
    (render, fetch), (request,) = request_spans()
    seen = make_request([request, render, fetch], "seen", scope=NEXT).SerializeToString()
    bodies = [*vercel_fetch_only("blind"), *vercel_fetch_only("blind"), seen]
    for body in bodies:
        headers = {"Content-Type": "application/x-protobuf"}
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
    with caplog.at_level("WARNING", logger="collector.telemetry"):
        assert stored(collector, "SELECT count() FROM requests") == [(3,)]
    assert collector.health()["nextjs_services_without_fetch_spans"] == ["blind"]
    said = [r.getMessage() for r in caplog.records if "NEXT_OTEL_FETCH_DISABLED" in r.message]
    assert len(said) == 1  # once, not once per trace
    assert "'blind'" in said[0]


def arrivals(run: Path) -> SpanColumns:
    """Every span of a recorded capture, in the order its exports arrived."""
    spans = SpanColumns()
    for meta_file in sorted((run / "raw").glob("*.meta.json")):
        meta = json.loads(meta_file.read_text())
        body = asyncio.run(
            decoder.inflate(
                (run / "raw" / meta["file"]).read_bytes(), meta.get("content_encoding"), 1 << 26
            )
        )
        kind = decoder.JSON if meta["content_type"] == decoder.JSON else decoder.PROTOBUF
        spans.extend(translate(decoder.decode(body, kind)).spans)
    return spans


def copy(spans: SpanColumns, rows: list[int], number: int) -> SpanColumns:
    """The spans at ``rows``, their trace and span ids marked with ``number``: copy
    ``number`` of the same traces, stored next to the others."""

    def mark(span_id: str) -> str:
        return f"{number:02x}{span_id[2:]}" if span_id else ""

    part = spans.take(rows)
    columns = part.columns
    columns.trace_id[:] = [mark(t) for t in columns.trace_id]
    columns.span_id[:] = [mark(s) for s in columns.span_id]
    columns.parent_span_id[:] = [mark(p) for p in columns.parent_span_id]
    return part


@pytest.mark.parametrize("run_name", ["protobuf-verbose", "next15-protobuf-default"])
def test_late_spans_correct_the_rows_wherever_the_exports_split_a_trace(
    captures, collector, run_name
):
    # Copy 0 of every recorded trace arrives whole. Copy k arrives in two parts: its first k
    # spans (in the order Next.js exported them), normalized on their own, then the rest,
    # late. Each copy must end with exactly the rows of copy 0, and the per-minute sums with
    # the rows.
    spans = arrivals(captures / run_name)
    positions: dict[str, list[int]] = {}
    for i, trace_id in enumerate(spans.columns.trace_id):
        positions.setdefault(trace_id, []).append(i)
    longest = max(len(rows) for rows in positions.values())
    length = {trace_id[2:]: len(rows) for trace_id, rows in positions.items()}
    assert collector.normalizer is not None
    collector.normalizer.consume(copy(spans, list(range(len(spans))), 0))
    for phase in (0, 1):  # before the split, after it
        for k in range(1, longest):
            rows = [i for p in positions.values() if len(p) > k for i in p[:k] if phase == 0]
            rows += [i for p in positions.values() if len(p) > k for i in p[k:] if phase == 1]
            collector.normalizer.consume(copy(spans, rows, k))
        stored(collector, "SELECT 1")  # normalizes every trace waiting

    def rows_by_copy(table: str, columns: str) -> dict[str, set[tuple[Any, ...]]]:
        found: dict[str, set[tuple[Any, ...]]] = {}
        for trace_id, span_id, *rest in stored(
            collector, f"SELECT TraceId, SpanId, {columns} FROM {table}"
        ):
            found.setdefault(trace_id[:2], set()).add((trace_id[2:], span_id[2:], *rest))
        return found

    for table, columns in (
        ("requests", "Kind, Route, Path, StatusCode, Prefetch, TtfbMs, RenderMs, BuildId"),
        ("cache_events", "Layer, Result, Reason, Route, Key"),
    ):
        by_copy = rows_by_copy(table, columns)
        whole = by_copy.pop("00")
        assert whole
        assert len(by_copy) == longest - 1
        for number, copied in by_copy.items():
            k = int(number, 16)
            assert copied == {r for r in whole if length[r[0]] > k}, (table, k)
        [(signs, total)] = stored(collector, f"SELECT countIf(Sign != 1), count() FROM {table}")
        assert signs == 0  # no cancellation left behind
        sums = "Requests" if table == "requests" else "Lookups"
        assert stored(collector, f"SELECT sum({sums}) FROM {table}_1m") == [(total,)]
    assert collector.health()["nextjs_traces_corrected"] > 0


def test_a_data_cache_miss_after_a_deploy_is_stored_with_its_reason(collector):
    # Two builds of one service fetch the same URL, a minute apart: the new build's miss is
    # the deploy's doing, which Next.js does not say and the collector tells.
    assert collector.normalizer is not None
    for build, delay_ns in (("build-1", 0), ("build-2", 60 * 10**9)):
        (render, fetch), (request,) = request_spans()
        request.attributes.add(key="nextrace.build_id").value.string_value = build
        for span in (render, fetch, request):
            span.start_time_unix_nano += delay_ns
            span.end_time_unix_nano += delay_ns
        collector.normalizer.consume(nextjs([render, fetch, request]))
        stored(collector, "SELECT 1")
    reasons = stored(collector, "SELECT BuildId, Result, Reason FROM cache_events ORDER BY 1")
    assert reasons == [("build-1", "miss", "unknown"), ("build-2", "miss", "deploy")]


@pytest.mark.parametrize("root_arrives", ["last", "first"])
def test_a_warm_up_is_told_apart_and_the_hits_it_served_say_so(collector, root_arrives):
    # The warm-up's root span (the helper's) usually ends last and arrives after the trace was
    # normalized: the correction makes the request a warm-up's and its miss the warm-up's
    # filling of the entry. Exported alone and first, it is known by its scope.
    assert collector.normalizer is not None
    warmup_trace, warmup_id = os.urandom(16), os.urandom(8)
    (render, fetch), (request,) = request_spans(trace_id=warmup_trace)
    request.parent_span_id = warmup_id
    filled_at = fetch.start_time_unix_nano
    root = make_span(
        "warmup middleware",
        trace_id=warmup_trace,
        span_id=warmup_id,
        start_ns=request.start_time_unix_nano - 1_000_000,
        duration_ns=60_000_000,
        attrs={"nextrace.phase": "warmup", "nextrace.warmup.outcome": "ok"},
    )
    exports = [
        nextjs([render, fetch, request]),
        translate(make_request([root], "shop", scope="@nextrace/next")).spans,
    ]
    for spans in exports if root_arrives == "last" else reversed(exports):
        collector.normalizer.consume(spans)
        stored(collector, "SELECT 1")
    # A user's request, 2 s later, hits the entry the warm-up stored.
    (render, fetch), (request,) = request_spans()
    set_attribute(fetch, "next.fetch.cache_status", "hit")
    later = filled_at + 2 * 10**9 - fetch.start_time_unix_nano
    for span in (render, fetch, request):
        span.start_time_unix_nano += later
        span.end_time_unix_nano += later
    collector.normalizer.consume(nextjs([render, fetch, request]))
    kinds = stored(collector, "SELECT Kind, sum(Sign) FROM requests GROUP BY Kind ORDER BY Kind")
    assert kinds == [("document", 1), ("warmup", 1)]
    hits = stored(
        collector,
        "SELECT EntrySource, EntrySourceTraceId, EntryAgeMs FROM cache_events WHERE Result = 'hit'",
    )
    assert hits == [("warmup", warmup_trace.hex(), 2000.0)]


def set_attribute(span: Span, key: str, value: str) -> None:
    for attribute in span.attributes:
        if attribute.key == key:
            attribute.value.string_value = value


def test_a_trace_that_never_goes_idle_is_derived_after_the_hold_and_corrected_later(
    store_config,
):
    # Never idle here: a wait of a minute, and a hold of 30 s, on a clock the test moves.
    clock = ManualClock()
    collector = make_collector(store_config, clock=clock, wait_s=60, max_hold_s=30)
    normalizer = collector.normalizer
    assert normalizer is not None
    trace = os.urandom(16)
    paths = ("/products/1", "/products/2")
    try:
        assert collector.app is not None
        with TestClient(collector.app, base_url="http://localhost:4318") as client:

            def send(spans: list[Span]) -> None:
                body = make_request(spans, "shop", scope=NEXT).SerializeToString()
                headers = {"Content-Type": "application/x-protobuf"}
                assert client.post("/v1/traces", content=body, headers=headers).status_code == 200

            (render, fetch), (request,) = request_spans(paths[0], trace_id=trace)
            send([render, fetch, request])
            first = normalizer.oldest_wal_record()
            assert first is not None  # the trace holds the log from its first record
            clock.advance(30)
            wait_until(lambda: normalizer.oldest_wal_record() is None, "the held trace is let go")
            assert stored(collector, "SELECT Path FROM requests") == [(paths[0],)]
            assert collector.health()["nextjs_released_busy"] == 1
            (render, fetch), (request,) = request_spans(paths[1], trace_id=trace)
            send([render, fetch])
            # Reopened: it holds the record of the spans that reopened it, not its first again.
            assert normalizer.oldest_wal_record() != first
            send([request])
            clock.advance(30)
            wait_until(lambda: normalizer.oldest_wal_record() is None, "the trace is let go again")
        assert stored(collector, "SELECT Path, Sign FROM requests ORDER BY Path") == [
            (path, 1) for path in paths
        ]
        assert stored(collector, "SELECT count(), sum(Sign) FROM cache_events") == [(2, 2)]
        assert stored(collector, "SELECT sum(Requests) FROM requests_1m") == [(2,)]
        assert stored(collector, "SELECT sum(Lookups) FROM cache_events_1m") == [(2,)]
        assert collector.health()["nextjs_traces_corrected"] >= 1
    finally:
        collector.shutdown()


def test_the_configured_retry_bound_governs_derived_rows_too(store_config):
    # --retry-max-elapsed bounds how long a failing store is retried; the derived rows of a
    # Next.js trace used to be retried under the default (600 s) whatever it said.
    collector = make_collector(store_config, RetryPolicy(max_elapsed_s=1.0), wait_s=0.1)
    store = collector.store
    assert store is not None
    try:
        assert collector.normalizer is not None
        store.client.command("DETACH TABLE requests")  # its inserts fail from now on
        first, second = request_spans()
        collector.normalizer.consume(nextjs(first + second))
        wait_until(
            lambda: collector.health()["derived_rows_dropped"].get("requests", 0) == 1,
            "the request's row is given up after the configured bound",
            timeout_s=60,
            detail=lambda: str(collector.health()),
        )
    finally:
        store.client.command("ATTACH TABLE requests")
        collector.shutdown()
