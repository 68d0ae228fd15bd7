"""What a test reads or changes in a store directly: counts, the derived rows a crash leaves
behind, and a ``requests`` row."""

from __future__ import annotations

import dataclasses
from typing import Any

from collector.nextjs.rows import RequestRow
from collector.service import Collector


def count(collector: Collector, sql: str = "SELECT count() FROM otel_traces") -> int:
    assert collector.store is not None
    return int(collector.store.client.query(sql).result_rows[0][0])


def forget_rows(collector: Collector, span_ids: list[str] | None = None) -> None:
    """Delete spans and the rows derived from them, but keep ClickHouse's record of the tokens
    that stored them: the state that a crash between recording a block's token and committing
    its part leaves behind. All of them by default; the per-minute sums only then."""
    assert collector.store is not None
    where = "1" if span_ids is None else f"SpanId IN {tuple(span_ids)!r}"
    tables = ["otel_traces", "cache_events"]
    if span_ids is None:
        tables += ["otel_traces_trace_id_ts", "cache_events_1m"]
    for table in tables:
        condition = where if table in ("otel_traces", "cache_events") else "1"
        collector.store.client.command(
            f"DELETE FROM {table} WHERE {condition}", settings={"mutations_sync": 2}
        )


def request_row(**changes: Any) -> RequestRow:
    """A request row of the shop's product page; ``changes`` override its fields."""
    row = RequestRow(
        timestamp_ns=1_767_261_600_000_000_000,
        trace_id="t" * 32,
        span_id="s" * 16,
        service="shop",
        route="/products/[id]",
        kind="document",
        kind_source="shape",
        prefetch="",
        method="GET",
        path="/products/1",
        status=200,
        duration_ns=5_000_000,
        ttfb_ms=1.5,
        render_ms=None,
        middleware_ms=0.25,
        build_id="b1",
    )
    return dataclasses.replace(row, **changes)
