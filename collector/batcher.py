"""Batch spans in a bounded queue and pass them on in large columnar batches.

ClickHouse wants few, large inserts: each insert has a fixed cost, and every
insert makes a part that background merges must later combine. The
processor therefore buffers spans and hands a batch to the next stage when
``max_batch_spans`` are waiting or ``timeout_s`` has passed since the oldest
waiting span arrived.

The queue is bounded by ``max_queue_spans`` (spans accepted but not yet
exported, including the batch being exported). When it is full, ``consume``
raises :class:`TransientError` and the receiver answers 503, so the sender
retries instead of the collector growing without bound.

Failed exports are retried with exponential backoff when the error is
transient; spans are dropped (and counted) only when retries run out or the
store refuses them as invalid.
"""

from __future__ import annotations

import logging
import threading
import time

from collector.consumer import SpanColumns, TracesConsumer
from collector.errors import PermanentError, TransientError
from collector.telemetry import CollectorTelemetry

log = logging.getLogger(__name__)


class BatchSpanProcessor:
    """A :class:`TracesConsumer` that batches spans for another one.

    Lifecycle: ``start`` once, then ``consume`` from any thread;
    ``force_flush`` waits until everything accepted so far has been handed on;
    ``shutdown`` flushes and stops, and is idempotent.
    """

    def __init__(
        self,
        downstream: TracesConsumer,
        telemetry: CollectorTelemetry,
        *,
        max_batch_spans: int = 20_000,
        timeout_s: float = 1.0,
        max_queue_spans: int = 200_000,
        max_retries: int = 5,
        retry_backoff_s: float = 0.5,
    ) -> None:
        self._downstream = downstream
        self._telemetry = telemetry
        self._max_batch = max_batch_spans
        self._timeout_s = timeout_s
        self._max_queue = max_queue_spans
        self._max_retries = max_retries
        self._backoff_s = retry_backoff_s
        self._lock = threading.Condition()
        self._pending = SpanColumns()
        self._oldest: float | None = None  # monotonic arrival time of the oldest pending span
        self._queued = 0  # pending spans plus the batch being exported
        self._flush_requested = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def queued_spans(self) -> int:
        return self._queued

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="nextrace-batcher", daemon=True)
        self._thread.start()

    def consume(self, spans: SpanColumns) -> None:
        count = len(spans)
        if count == 0:
            return
        with self._lock:
            if self._stopping:
                raise TransientError("the collector is shutting down", retry_after_s=5)
            if self._queued + count > self._max_queue:
                self._telemetry.drop("queue_full", count, f"{self._queued} spans waiting")
                raise TransientError(
                    f"the batch queue is full ({self._queued} of {self._max_queue} spans "
                    "waiting for ClickHouse); retry later",
                    retry_after_s=1,
                )
            self._pending.extend(spans)
            self._queued += count
            self._telemetry.spans_accepted.inc(count)
            self._telemetry.queue_spans.set(self._queued)
            if self._oldest is None:
                # The first waiting span starts the batch timer of the worker.
                self._oldest = time.monotonic()
                self._lock.notify_all()
            elif len(self._pending) >= self._max_batch:
                self._lock.notify_all()

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Hand on every span accepted so far; False if that took longer than ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._flush_requested = True
            self._lock.notify_all()
            while self._queued:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Flush what was accepted, then stop the worker. Safe to call more than once."""
        with self._lock:
            if self._stopping and self._thread is None:
                return
            self._stopping = True
            self._lock.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("batch processor did not finish flushing within %.0fs", timeout_s)

    def _take_batch(self) -> SpanColumns | None:
        """Wait for a batch to be due; None once stopping with nothing left."""
        with self._lock:
            while True:
                size = len(self._pending)
                due = size >= self._max_batch or (
                    size > 0
                    and (
                        self._stopping
                        or self._flush_requested
                        or time.monotonic() - (self._oldest or 0) >= self._timeout_s
                    )
                )
                if due:
                    batch, self._pending = self._pending, SpanColumns()
                    self._oldest = None
                    return batch
                if self._stopping:
                    return None
                if size == 0:
                    self._flush_requested = False
                    self._lock.wait()
                else:
                    self._lock.wait(
                        max(0.0, self._timeout_s - (time.monotonic() - (self._oldest or 0)))
                    )

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self._export(batch)
            with self._lock:
                self._queued -= len(batch)
                self._telemetry.queue_spans.set(self._queued)
                self._lock.notify_all()

    def _export(self, batch: SpanColumns) -> None:
        count = len(batch)
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                self._downstream.consume(batch)
            except TransientError as exc:
                attempt += 1
                if attempt > self._max_retries:
                    self._telemetry.drop("export_failed", count, f"after {attempt} attempts: {exc}")
                    return
                delay = self._backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "export of %d spans failed (%s); retry %d in %.1fs", count, exc, attempt, delay
                )
                time.sleep(delay)
                continue
            except PermanentError as exc:
                self._telemetry.drop("export_rejected", count, str(exc))
                return
            except Exception as exc:  # a bug downstream must not kill the worker
                log.exception("unexpected export failure")
                self._telemetry.drop("export_rejected", count, repr(exc))
                return
            self._telemetry.export_seconds.observe(time.perf_counter() - started)
            self._telemetry.export_batch_spans.observe(count)
            self._telemetry.spans_exported.inc(count)
            self._telemetry.log_progress()
            return
