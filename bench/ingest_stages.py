"""Where a span's ingest CPU goes: each step of the staged insert, against the whole path.

In one run, on the same synthetic traces as ``bench.ingest`` (the reference server's):

- **end to end**: OTLP/HTTP protobuf requests to a real ``nextrace collect`` until every span
  is committed (``bench.ingest.measure_end_to_end``);
- in this process, on an embedded store of its own with merges stopped (merges are in the
  end-to-end figure, not here), the steps of ``collector/storage/staging.py`` on the same batches:

  - **staging**: the bodies parsed into the staging table by ClickHouse (``FORMAT
    ProtobufSingle``), and the count of values only Python writes exactly;
  - **flattening**: ``INSERT … SELECT`` into a ``Null`` table shaped like ``otel_traces``,
    less staging;
  - **writing**: the same into a plain copy of ``otel_traces`` (same sort key, codecs and
    blocks, no views), less the insert into ``Null``;
  - **views**: the same into ``otel_traces`` itself, whose materialized views derive the
    ``requests``, ``cache_events``, ``lifecycle_spans``, per-minute and trace-id rows, less
    the insert into the plain copy;
  - **the rest**: end to end less the insert into ``otel_traces``: HTTP, the receiver's
    screening, the write-ahead log, batching, merges.

Each figure is CPU microseconds per span (all threads of the process doing the work), the
median of ``--runs`` runs with the lowest and highest run; the steps are timed alternately,
``--repeat`` times each per run, and the best pass kept, so that every step sees the same
machine. Printed, and written to ``bench/results/ingest_stages.json``.

Run: ``PYTHONPATH=. python -m bench.ingest_stages [--traces 6000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.ingest import measure_end_to_end, progress, staged_batches
from bench.measure import write_result
from bench.synthetic import make_requests
from collector.config import StoreConfig
from collector.consumer import SpanColumns
from collector.storage.staging import StagedProtobufInsert
from collector.storage.store import open_store

RESULTS = Path(__file__).parent / "results"
STEPS = ("staging", "flattening", "writing", "views", "rest")


def cpu_per_span(work: Callable[[], object], spans: int) -> float:
    """CPU microseconds per span of ``work``, all threads of this process counted."""
    started = time.process_time()
    work()
    return (time.process_time() - started) / spans * 1e6


def measure_steps(batches: list[SpanColumns], folder: Path, repeat: int) -> dict[str, float]:
    """CPU microseconds per span of each insert target, the best of ``repeat`` passes each,
    on a store whose merges are stopped. Every pass stores the batches again, undeduplicated."""
    store = open_store(StoreConfig.from_dsn(f"chdb://{folder}"))
    try:
        client = store.client
        client.command("SYSTEM STOP MERGES")
        traces = store.config.traces_table
        client.command(f"CREATE TABLE bench_null AS {traces} ENGINE = Null")
        client.command(f"CREATE TABLE bench_plain AS {traces}")
        inserts = {
            "null": StagedProtobufInsert(store, table="bench_null"),
            "plain": StagedProtobufInsert(store, table="bench_plain"),
            "traces": StagedProtobufInsert(store),
        }
        spans = sum(len(batch) for batch in batches)
        assert all(b.encoded is not None for b in batches), "with bodies, as the receiver makes"
        best: dict[str, float] = {}

        def stage() -> None:
            for batch in batches:
                assert batch.encoded is not None
                inserts["null"].stage(batch.encoded)

        def into(target: StagedProtobufInsert) -> Callable[[], None]:
            def insert() -> None:
                for batch in batches:
                    assert batch.encoded is not None
                    target.insert(batch.encoded, {"insert_deduplicate": 0}, batch.rows_at)

            return insert

        work = {"stage": stage, **{name: into(target) for name, target in inserts.items()}}
        for _ in range(repeat):
            for name, step in work.items():
                best[name] = min(best.get(name, float("inf")), cpu_per_span(step, spans))
        for table in (traces, "bench_plain"):
            (stored,) = client.query(f"SELECT count() FROM {table}").result_rows[0]
            assert stored == repeat * spans, f"{table} holds {stored} of {repeat * spans} spans"
        for target in inserts.values():
            target.close()
        return best
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=6_000)
    parser.add_argument("--batch", type=int, default=20_000, help="spans per insert")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="passes of each step per run")
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest_stages.json")
    args = parser.parse_args()

    requests = make_requests(args.traces)
    bodies = [request.SerializeToString() for request in requests]
    batches = staged_batches(requests, args.batch)
    spans = sum(len(batch) for batch in batches)
    progress(f"{spans} spans in {len(bodies)} requests, batches of {args.batch}")
    runs: list[dict[str, float]] = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
            progress(f"run {run} of {args.runs}: end to end, then each step")
            end_to_end = measure_end_to_end(bodies, spans, args.batch, Path(tmp) / "e2e", 2)
            best = measure_steps(batches, Path(tmp) / "steps", args.repeat)
        total = 1e6 / end_to_end["spans_per_cpu_s"]
        runs.append(
            {
                "end_to_end": total,
                "staging": best["stage"],
                "flattening": best["null"] - best["stage"],
                "writing": best["plain"] - best["null"],
                "views": best["traces"] - best["plain"],
                "rest": total - best["traces"],
            }
        )
        print(f"run {run}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[-1].items()), flush=True)

    def figure(name: str) -> dict[str, Any]:
        values = [r[name] for r in runs]
        return {
            "us_per_span": round(statistics.median(values), 1),
            "range": [round(min(values), 1), round(max(values), 1)],
        }

    figures: dict[str, Any] = {
        "spans": spans,
        "batch_spans": args.batch,
        "runs": args.runs,
        "end_to_end": figure("end_to_end"),
        "steps": {name: figure(name) for name in STEPS},
        "engine_share": round(
            statistics.median(
                (r["staging"] + r["flattening"] + r["writing"] + r["views"]) / r["end_to_end"]
                for r in runs
            ),
            3,
        ),
        "target_us_per_span": round(1e6 / 90_000, 1),
    }
    print(f"CPU µs per span, medians of {args.runs} runs (lowest-highest):")
    for name in ("end_to_end", *STEPS):
        row = figure(name)
        low, high = row["range"]
        print(f"  {name:<12} {row['us_per_span']:>6.1f} ({low}-{high})")
    write_result(args.out, "ingest_stages", figures)


if __name__ == "__main__":
    main()
