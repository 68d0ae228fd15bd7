"""A process that stores numbered batches through the span exporter until it is killed, and
then plays the collector's replay of the batch it was inserting (for ``test_faults``).

``python -m tests.collector.inserter MODE STORE NUMBERS``, ``NUMBERS`` being a file that lists
the batches stored, one per line. Modes: ``insert`` (until killed), ``replay`` (the batch after
the last one listed, as the collector's replay inserts the batch a crash interrupted),
``count`` (JSON: spans per batch, ``cache_events`` rows, and the uuid of each table).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import sys
from pathlib import Path

from collector.config import StoreConfig
from collector.consumer import SpanColumns
from collector.pipeline.translator import translate
from collector.storage.exporter import ClickHouseSpanExporter
from collector.storage.store import open_store
from collector.telemetry import CollectorTelemetry
from tests.builders import make_request, make_span

SPANS_PER_BATCH = 100
START_NS = 1_767_225_600 * 10**9  # 2026-01-01: every run writes the same spans


def batch(number: int) -> SpanColumns:
    """Batch ``number``, the same every time: record ``number`` of a write-ahead log."""
    first = number * SPANS_PER_BATCH
    spans = [
        make_span(
            "crash",
            trace_id=first.to_bytes(16, "big"),
            span_id=(first + k).to_bytes(8, "big"),
            start_ns=START_NS + first + k,
            attrs={"cache.layer": "data"},
        )
        for k in range(SPANS_PER_BATCH)
    ]
    columns = translate(make_request(spans)).spans
    columns.wal_ids = [number]
    return columns


def load_chdb_for_fault_injection() -> None:
    """Load chDB's engine without ``RTLD_DEEPBIND``, with which chDB loads it itself: that flag
    binds its libc calls past an ``LD_PRELOAD`` library (``kill_on_rename.c``)."""
    spec = importlib.util.find_spec("chdb")
    origin = spec.origin if spec is not None else None
    if origin is None:
        raise RuntimeError("chdb is not installed")
    ctypes.CDLL(os.path.join(os.path.dirname(origin), "_chdb.abi3.so"), sys.getdlopenflags())


def main(mode: str, path: str, numbers_file: str) -> None:
    if "LD_PRELOAD" in os.environ:
        load_chdb_for_fault_injection()
    store = open_store(StoreConfig.from_dsn(f"chdb:{path}"))
    numbers = Path(numbers_file)
    done = [int(line) for line in numbers.read_text().split()] if numbers.exists() else []
    exporter = ClickHouseSpanExporter(store, CollectorTelemetry(), staged=True)
    if mode == "count":
        rows = store.client.query(
            "SELECT intDiv(reinterpretAsUInt64(reverse(unhex(SpanId))), {n:UInt64}), count() "
            "FROM otel_traces GROUP BY 1",
            parameters={"n": SPANS_PER_BATCH},
        ).result_rows
        events = store.client.query("SELECT count() FROM cache_events").result_rows[0][0]
        tables = store.client.query(
            "SELECT name, toString(uuid) FROM system.tables WHERE database = 'otel'"
        ).result_rows
        batches = {number: spans for number, spans in rows}
        uuids = {name: uuid for name, uuid in tables}
        print(json.dumps({"batches": batches, "events": events, "uuids": uuids}))
        return
    with numbers.open("a") as out:
        number = max(done, default=0)
        if mode == "replay":
            in_flight = batch(number + 1)
            in_flight.maybe_stored = True
            exporter.consume(in_flight)
            out.write(f"{number + 1}\n")
            return
        while True:
            number += 1
            exporter.consume(batch(number))
            out.write(f"{number}\n")
            out.flush()


if __name__ == "__main__":
    main(*sys.argv[1:4])
