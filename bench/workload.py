"""A store of realistic spans for the benchmarks: the demo's own traffic, copied with fresh ids.

The template (``bench/data/deploy_demo_spans.parquet``) is every span one run of
``nextrace demo --scenario deploy`` stored: 6,593 spans of 692 traces from the reference server
and its virtual browsers (navigations, prefetches, requests with middleware, render, stream,
fetches and four cache layers, warm-ups, two deploys). :func:`fill` copies it, with fresh ids,
evenly over a time window (24 hours by default) until the store holds the spans asked for, so
the span mix, the attributes and their cardinalities are the demo's. The copies go through
``otel_traces``, so the schema's materialized views fill ``cache_events``, ``requests``, the
per-minute tables and the trace-id lookup table as real traffic does.

Record a new template from a demo's store:
``PYTHONPATH=. python -m bench.workload --record chdb://.nextrace/demo/<run>/store``
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

from collector.config import StoreConfig
from collector.storage.store import ClickHouseStore, open_store

TEMPLATE = Path(__file__).parent / "data" / "deploy_demo_spans.parquet"
COPY_SQL = Path(__file__).parent / "sql" / "copy_template.sql"
DAY_NS = 86_400 * 10**9
SPANS_PER_INSERT = 500_000


def load_template(store: ClickHouseStore) -> tuple[int, int]:
    """Load the template into ``bench_template``; its span count and its first start (ns)."""
    store.client.command("DROP TABLE IF EXISTS bench_template")
    store.client.command("CREATE TABLE bench_template AS otel_traces ENGINE = Memory")
    store.client.raw_insert("bench_template", insert_block=TEMPLATE.read_bytes(), fmt="Parquet")
    spans, start_ns = store.client.query(
        "SELECT count(), toUnixTimestamp64Nano(min(Timestamp)) FROM bench_template"
    ).result_rows[0]
    return int(spans), int(start_ns)


def fill(
    store: ClickHouseStore,
    spans: int,
    *,
    window_ns: int = DAY_NS,
    end_ns: int | None = None,
    progress: Callable[[str], None] = print,
) -> int:
    """Copy the template into the store until it holds about ``spans`` more spans, evenly
    over the ``window_ns`` before ``end_ns`` (now), then merge every table as merges in time
    would leave it. Returns the number of spans stored."""
    per_copy, template_start = load_template(store)
    copies = max(1, math.ceil(spans / per_copy))
    end = time.time_ns() if end_ns is None else end_ns
    spacing = window_ns // copies
    sql = COPY_SQL.read_text("utf-8")
    chunk = max(1, SPANS_PER_INSERT // per_copy)
    started = time.monotonic()
    for first in range(0, copies, chunk):
        count = min(chunk, copies - first)
        store.client.command(
            sql,
            parameters={
                "first": first,
                "count": count,
                "start_ns": end - window_ns,
                "spacing_ns": spacing,
                "template_start_ns": template_start,
            },
        )
        done = (first + count) * per_copy
        progress(f"  {done:>12,} spans stored ({time.monotonic() - started:.0f} s)")
    store.client.command("DROP TABLE bench_template")
    tables = store.client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree' AND name != 'nextrace_schema_migrations'"
    ).result_rows
    for (table,) in tables:
        store.client.command(f"OPTIMIZE TABLE `{table}` FINAL")
    return copies * per_copy


def record(dsn: str) -> None:
    """Write every span of the store at ``dsn`` to the template file."""
    store = open_store(StoreConfig.from_dsn(dsn))
    try:
        data = store.client.raw_query(
            "SELECT * FROM otel_traces ORDER BY Timestamp",
            fmt="Parquet",
            settings={"output_format_parquet_compression_method": "zstd"},
        )
    finally:
        store.close()
    TEMPLATE.write_bytes(data)
    print(f"{TEMPLATE}: {len(data):,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", metavar="DSN", required=True, help="the demo store to copy")
    record(parser.parse_args().record)


if __name__ == "__main__":
    main()
