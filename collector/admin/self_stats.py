"""The collector's own counters, written to ``nextrace_collector_stats`` every few seconds.

Prometheus can scrape ``/metrics``, but the dashboards and alerts read only
ClickHouse, so the collector also stores a snapshot of its counters there: spans
received, accepted, exported, waiting and dropped by reason, requests refused by
reason, and the cumulative time and number of inserts. Lifecycle: ``start``,
then ``shutdown``, which writes a last snapshot and is idempotent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from collector.storage.store import ClickHouseStore
from collector.telemetry import CollectorTelemetry

log = logging.getLogger(__name__)

TABLE = "nextrace_collector_stats"
COLUMNS = [
    "Timestamp",
    "Instance",
    "SpansReceived",
    "SpansAccepted",
    "SpansExported",
    "QueueSpans",
    "SpansDropped",
    "RequestsRejected",
    "ExportSeconds",
    "Exports",
]


def instance_name(port: int) -> str:
    return f"{socket.gethostname()}:{port}/{os.getpid()}"


class CollectorStatsWriter:
    def __init__(
        self,
        telemetry: CollectorTelemetry,
        store: ClickHouseStore,
        instance: str,
        interval_s: float,
    ) -> None:
        """``interval_s``: how often the counters are stored; 0: never."""
        self._telemetry = telemetry
        self._store = store
        self._instance = instance
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and self._interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="nextrace-stats", daemon=True)
            self._thread.start()

    def write(self) -> None:
        """Store one snapshot of the counters. A failure is logged, never raised: the
        collector's own statistics must not stop it from collecting."""
        snapshot = self._telemetry.snapshot()
        seconds, exports = self._telemetry.export_totals()
        row = [
            time.time_ns() // 1_000_000,  # DateTime64(3) ticks
            self._instance,
            snapshot["spans_received"],
            snapshot["spans_accepted"],
            snapshot["spans_exported"],
            snapshot["queue_spans"],
            snapshot["spans_dropped"],
            snapshot["requests_rejected"],
            seconds,
            exports,
        ]
        try:
            self._store.client.insert(
                TABLE, [row], database=self._store.config.database, column_names=COLUMNS
            )
        except Exception as exc:
            log.warning("could not store the collector's statistics: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.write()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop, and store a last snapshot; idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.write()
