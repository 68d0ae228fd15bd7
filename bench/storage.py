"""How many bytes a span costs on disk, per table and per column, after merges.

A store is filled with the demo's own traffic copied over 24 hours (``bench/workload.py``)
through the collector's schema, every table merged as time would merge it (``OPTIMIZE …
FINAL``), and then measured from ClickHouse's own accounting: ``system.parts`` (bytes on disk
per table, skip indexes and marks included), ``system.columns`` (compressed and uncompressed
bytes per column) and ``system.data_skipping_indices``. Every figure is divided by the number
of spans in ``otel_traces``, so the derived tables show what they add per span stored. The
baseline, in the same run: the same spans in a table laid out as the contrib exporter lays
out ``otel_traces`` (sort key, codecs, skip indexes), merged the same way.

Printed, and written to ``bench/results/storage-<spans>.json``. With ``--dsn``, measures an
existing store instead (nothing is filled or merged): ``--dsn chdb://.nextrace/demo/<run>/store``.

Run: ``PYTHONPATH=. python -m bench.storage [--spans 10000000]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.measure import write_result
from bench.workload import fill
from collector.config import StoreConfig
from collector.storage.migrations import load_sql, render
from collector.storage.store import ClickHouseStore, open_store

RESULTS = Path(__file__).parent / "results"
BASELINE_TABLE = "bench_exporter_layout"


def measure(store: ClickHouseStore) -> dict[str, Any]:
    """Bytes per span stored, per table, per column of ``otel_traces`` and per skip index."""
    client = store.client
    database = store.config.database
    spans = int(client.query("SELECT count() FROM otel_traces").result_rows[0][0])
    per_span = max(spans, 1)
    tables = {
        table: {
            "rows": int(rows),
            "bytes_per_span": round(on_disk / per_span, 2),
            "ratio": round(uncompressed / max(compressed, 1), 1),
        }
        for table, rows, on_disk, compressed, uncompressed in client.query(
            "SELECT table, sum(rows), sum(bytes_on_disk), sum(data_compressed_bytes), "
            "sum(data_uncompressed_bytes) FROM system.parts "
            "WHERE database = {db:String} AND active GROUP BY table ORDER BY table",
            parameters={"db": database},
        ).result_rows
    }

    def otel_traces_bytes(system_table: str) -> dict[str, float]:
        return {
            name: round(compressed / per_span, 2)
            for name, compressed in client.query(
                f"SELECT name, data_compressed_bytes FROM system.{system_table} "
                "WHERE database = {db:String} AND table = 'otel_traces' "
                "ORDER BY data_compressed_bytes DESC, name",
                parameters={"db": database},
            ).result_rows
        }

    columns = otel_traces_bytes("columns")
    indexes = otel_traces_bytes("data_skipping_indices")
    return {
        "spans": spans,
        "otel_traces_bytes_per_span": tables.get("otel_traces", {}).get("bytes_per_span"),
        "store_bytes_per_span": round(sum(t["bytes_per_span"] for t in tables.values()), 2),
        "tables": tables,
        "otel_traces_columns": columns,
        "otel_traces_skip_indexes": indexes,
    }


def exporter_layout_baseline(store: ClickHouseStore, spans: int) -> dict[str, Any]:
    """The ``spans`` spans of ``otel_traces`` as the contrib exporter lays it out (migration
    0001: its sort key, codecs and skip indexes), merged: bytes per span, and per column."""
    client = store.client
    config = dataclasses.replace(store.config, traces_table=BASELINE_TABLE)
    client.command(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
    client.command(render(load_sql("0001_otel_traces.sql"), config))
    # In time order, as spans arrive: rows that tie on the exporter's key (one second of one
    # span name) keep their order of insertion, which its Delta codec on Timestamp relies on.
    client.command(f"INSERT INTO {BASELINE_TABLE} SELECT * FROM otel_traces ORDER BY Timestamp")
    client.command(f"OPTIMIZE TABLE {BASELINE_TABLE} FINAL")
    spans = max(spans, 1)
    ((on_disk,),) = client.query(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() "
        f"AND table = '{BASELINE_TABLE}' AND active"
    ).result_rows
    columns = client.query(
        "SELECT name, data_compressed_bytes FROM system.columns WHERE database = "
        f"currentDatabase() AND table = '{BASELINE_TABLE}' ORDER BY data_compressed_bytes DESC"
    ).result_rows
    client.command(f"DROP TABLE {BASELINE_TABLE}")
    return {
        "bytes_per_span": round(on_disk / spans, 2),
        "columns": {name: round(size / spans, 2) for name, size in columns[:6]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--dsn", help="measure this store as it is instead of filling one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
        store = open_store(StoreConfig.from_dsn(args.dsn or f"chdb://{tmp}/store"))
        try:
            if not args.dsn:
                print(f"filling a store with {args.spans:,} spans over 24 hours", flush=True)
                fill(store, args.spans)
            figures = measure(store)
            if not args.dsn:
                baseline = exporter_layout_baseline(store, figures["spans"])
                figures["exporter_layout"] = baseline
                figures["otel_traces_vs_exporter_layout"] = round(
                    figures["otel_traces_bytes_per_span"] / baseline["bytes_per_span"], 3
                )
        finally:
            store.close()
    print(json.dumps({k: v for k, v in figures.items() if k != "otel_traces_columns"}, indent=2))
    print("otel_traces, bytes per span by column:", json.dumps(figures["otel_traces_columns"]))
    if not args.dsn:
        write_result(RESULTS / f"storage-{args.spans // 1_000_000}M.json", "storage", figures)


if __name__ == "__main__":
    main()
