"""How fast ``nextrace trace``, ``compare`` and ``slow`` answer on a store of 10 million spans.

A store is filled with navigation traces of 20 spans each (``bench/sql/navigation_traces.sql``:
the browser's navigation, the server's request, middleware, render, stream, five fetches and
their data-cache lookups, CDN and request-memo lookups) spread over 24 hours, through the
collector's schema, so its materialized views fill ``cache_events``, ``requests`` and the
trace-id lookup table as they do for real traffic. Then, ``--runs`` times over the same
sample of ``--sample`` random traces no earlier run read:

- **baseline**: Grafana's trace-by-id query (``dashboards/sql/common/trace.sql``,
  the anchor of the issue: every span of one trace) through the same read path: the trace's
  time range from the trace-id lookup table, then its 15-minute buckets and id in the sort key;
- **by_id_alone**: the same query with the trace id alone (as it was), on other traces of the
  sample: each of the two reads its traces for the first time;
- **trace**: what ``nextrace trace ID`` does after start-up: the spans with their cache
  outcomes and request kinds, the context (prefetches in flight, the last deploy), the
  critical path and the diagnosis;
- **compare**: what ``nextrace compare ID`` does: both traces, the typical fast peer found
  among the same route's navigations, both diagnosed and aligned;
- **slow**: ``nextrace slow --limit 10`` over the whole store, and with ``--route``.

Every query goes through the collector's read-only guard (``ClickHouseStore.read``), as the
commands' do; the process start-up of the command line (about a second of Python imports and
opening chDB) is not counted. Printed, and written to ``bench/results/trace_view.json``:
p50 and p95 per operation, per run, and their ratio to the baseline in the same run.

Run: ``PYTHONPATH=. python -m bench.trace_view [--spans 10000000] [--runs 3] [--sample 30]``
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import across_runs, percentiles, timed
from collector.config import StoreConfig
from collector.storage.store import ClickHouseStore, open_store
from investigate.compare import compare, typical_peer
from investigate.diagnosis import diagnose_stored
from investigate.reader import StoreReader
from investigate.slow import Filters, slowest

RESULTS = Path(__file__).parent / "results"
SPANS_PER_TRACE = 20
CHUNK_TRACES = 50_000
DAY_NS = 86_400 * 10**9
GRAFANA_TRACE = Path(__file__).parent.parent / "dashboards/sql/common/trace.sql"


def fill(store: ClickHouseStore, spans: int) -> int:
    """Insert ``spans`` spans of navigation traces over the last 24 hours; the trace count."""
    traces = spans // SPANS_PER_TRACE
    sql = (Path(__file__).parent / "sql" / "navigation_traces.sql").read_text("utf-8")
    start = time.time_ns() - DAY_NS
    started = time.monotonic()
    for first in range(0, traces, CHUNK_TRACES):
        store.client.command(
            sql,
            parameters={
                "first": first,
                "count": min(CHUNK_TRACES, traces - first),
                "start_ns": start,
                "spacing_ns": DAY_NS // traces,
            },
        )
        done = min(first + CHUNK_TRACES, traces) * SPANS_PER_TRACE
        print(f"  {done:>10,} spans stored ({time.monotonic() - started:.0f} s)", flush=True)
    store.client.command("OPTIMIZE TABLE otel_traces FINAL")  # as merges leave it, in time
    return traces


def trace_ids(store: ClickHouseStore, count: int, seed: int = 7) -> list[str]:
    rows = store.client.query(
        "SELECT TraceId FROM otel_traces WHERE ParentSpanId = '' AND ServiceName = 'browser' "
        f"ORDER BY cityHash64(TraceId, {seed}) LIMIT {count}"
    ).result_rows
    return [r[0] for r in rows]


def by_id_alone(grafana: str) -> str:
    """Grafana's trace query as it was before it looked the trace's time range up: the trace id
    alone narrows ``otel_traces``."""
    lines = grafana.splitlines()
    kept = [
        line.rstrip(",") if line.startswith("WITH") else line
        for line in lines
        if "trace_range" not in line and "toStartOf" not in line
    ]
    assert len(kept) == len(lines) - 3, "trace.sql changed: update by_id_alone"
    return "\n".join(kept)


def one_run(store: ClickHouseStore, reader: StoreReader, sample: list[str]) -> dict[str, Any]:
    grafana = GRAFANA_TRACE.read_text("utf-8")
    id_alone = by_id_alone(grafana)

    def by_id(trace_id: str) -> None:
        store.read(id_alone.replace("${trace_id}", trace_id), "JSONCompactEachRow")

    def baseline(trace_id: str) -> None:
        store.read(grafana.replace("${trace_id}", trace_id), "JSONCompactEachRow")

    def trace(trace_id: str) -> None:
        diagnose_stored(reader, trace_id)

    def compared(trace_id: str) -> None:
        slow = diagnose_stored(reader, trace_id)
        compare(slow, diagnose_stored(reader, typical_peer(reader, slow.trace)))

    works: dict[str, Callable[[str], None]] = {
        "by_id_alone": by_id,
        "baseline": baseline,
        "trace": trace,
        "compare": compared,
    }
    # The two trace-by-id queries each read half the sample's traces for the first time (read
    # twice, a trace's granule is cached), interleaved, so that neither reads only after the
    # other has warmed what they share; the commands read the traces after.
    by_id_ms, baseline_ms = [], []
    for first, second in zip(sample[0::2], sample[1::2], strict=False):
        by_id_ms.append(timed(functools.partial(by_id, first)))
        baseline_ms.append(timed(functools.partial(baseline, second)))
    times = {"by_id_alone": percentiles(by_id_ms), "baseline": percentiles(baseline_ms)}
    times |= {
        name: percentiles([timed(functools.partial(work, t)) for t in sample])
        for name, work in works.items()
        if name not in times
    }
    times["slow"] = percentiles(
        [timed(lambda: slowest(reader, Filters(limit=10))) for _ in range(5)]
    )
    times["slow_route"] = percentiles(
        [timed(lambda: slowest(reader, Filters(route="/feed", limit=10))) for _ in range(5)]
    )
    base = times["baseline"]["p50_ms"]
    times["by_id_alone"]["p50_vs_baseline"] = round(times["by_id_alone"]["p50_ms"] / base, 2)
    for name in ("trace", "compare", "slow", "slow_route"):
        times[name]["p50_vs_baseline"] = round(times[name]["p50_ms"] / base, 2)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
        config = StoreConfig.from_dsn(f"chdb://{tmp}/store")
        store = open_store(config)
        try:
            print(f"filling a store with {args.spans:,} spans", flush=True)
            traces = fill(store, args.spans)
            stored = store.client.query("SELECT count() FROM otel_traces").result_rows[0][0]
            samples = trace_ids(store, args.sample * (args.runs + 1))
            reader = StoreReader(store)
            one_run(store, reader, samples[-3:])  # warm the caches the runs share
            runs = []
            for index in range(args.runs):
                # Each run reads traces no run has read: a trace's first read.
                sample = samples[index * args.sample : (index + 1) * args.sample]
                runs.append(one_run(store, reader, sample))
                print(f"run {index + 1}: {json.dumps(runs[-1])}", flush=True)
        finally:
            store.close()
    summary = across_runs(runs)
    result = {
        "benchmark": "trace_view",
        "when": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "spans": stored,
        "traces": traces,
        "sample_traces": len(sample),
        "runs": runs,
        "summary": summary,
        "goals_ms": {"trace": 200, "compare": 200, "slow": 1000},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trace_view.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
