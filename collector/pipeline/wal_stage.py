"""The pipeline stage that puts every accepted request in the write-ahead log first.

It appends the request body to the :class:`~collector.pipeline.wal.WriteAheadLog`, tags
the spans with the record id and the log's id, and hands them on. If the next stage refuses
them (a 503 for the sender, who will send them again), the record is voided so
that a restart does not store them twice. Appending and handing on happen under
one lock, so the batch processor sees records in log order and every batch is
a contiguous range of records. Spans replayed from the log already carry their
record id and pass straight through.
"""

from __future__ import annotations

import threading

from collector.consumer import SpanColumns, TracesConsumer
from collector.errors import TransientError
from collector.pipeline.wal import WriteAheadLog
from collector.telemetry import CollectorTelemetry


class WriteAheadStage:
    """A :class:`TracesConsumer` that logs before ``downstream`` sees anything."""

    def __init__(
        self, wal: WriteAheadLog, downstream: TracesConsumer, telemetry: CollectorTelemetry
    ) -> None:
        self._wal = wal
        self._downstream = downstream
        self._telemetry = telemetry
        self._lock = threading.Lock()

    def consume(self, spans: SpanColumns) -> None:
        if spans.wal_ids or not len(spans):
            self._downstream.consume(spans)
            return
        with self._lock:
            try:
                record = self._wal.append(spans.source_kind, spans.source)
            except TransientError:
                self._telemetry.refuse("wal_full", len(spans))
                raise
            spans.wal_ids, spans.wal_log = [record], self._wal.id
            try:
                self._downstream.consume(spans)
            except BaseException:
                self._wal.void(record)
                raise
