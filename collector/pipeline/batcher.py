"""Batch spans in a bounded queue and pass them on in large columnar batches.

ClickHouse wants few, large inserts: each insert has a fixed cost, and every
insert makes a part that background merges must later combine. The
processor therefore buffers spans and hands a batch to the next stage when
``max_batch_spans`` are waiting or ``timeout_s`` has passed since the oldest
waiting span arrived.

The queue is bounded in spans (``max_queue_spans``) and in bytes of the request
bodies they came from (the collector's :class:`collector.memory.MemoryLimiter`),
counting the batch being exported.
When either is full, ``consume`` raises :class:`TransientError`: the receiver
answers 503, the sender retries, and the spans are counted as *refused*, not
dropped.

A failed export is retried by :func:`collector.retry.call_with_retry` while the
write-ahead log holds the spans. Spans are dropped (and counted by reason) only
when the store refuses them (``export_rejected``, just the refused rows) or the
retries outlast ``RetryPolicy.max_elapsed_s`` (``export_failed``). With a
write-ahead log, each batch is a contiguous range of its records: the range is
recorded before the insert and committed after it (see :mod:`collector.pipeline.wal`).
"""

from __future__ import annotations

import logging
import threading
import time

from collector.clock import SYSTEM_CLOCK, Clock
from collector.config import BatchSettings, RetryPolicy
from collector.consumer import SpanColumns, TracesConsumer
from collector.errors import RowsRejected, TransientError
from collector.memory import MemoryLimiter
from collector.pipeline.wal import WriteAheadLog
from collector.retry import Outcome, call_with_retry
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
        settings: BatchSettings,
        *,
        memory: MemoryLimiter,
        retry: RetryPolicy,
        wal: WriteAheadLog | None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``wal``: the log whose records the batches carry, or None without one."""
        self._clock = clock
        self._downstream = downstream
        self._telemetry = telemetry
        self._max_batch = settings.max_spans
        self._timeout_s = settings.timeout_s
        self._max_queue = settings.max_queue_spans
        self._memory = memory
        self._retry = retry
        self._wal = wal
        self._lock = threading.Condition()
        self._pending = SpanColumns()
        self._oldest: float | None = None  # monotonic arrival time of the oldest pending span
        self._queued = 0  # pending spans plus the batch being exported
        self._flush_requested = False
        self._stopping = False
        self._interrupt = threading.Event()  # set when a shutdown stops waiting for the store
        self._thread: threading.Thread | None = None
        self.failing: str | None = None  # the store's last error while retries go on

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
                self._refuse(count, "shutting_down", "the collector is shutting down", 5)
            if self._queued + count > self._max_queue:
                self._refuse(
                    count,
                    "queue_full",
                    f"the batch queue is full ({self._queued} of {self._max_queue} spans "
                    "waiting for ClickHouse); retry later",
                )
            try:
                self._memory.reserve(spans.nbytes)
            except TransientError as exc:
                self._refuse(count, "memory_limit", str(exc))
            self._pending.extend(spans)
            self._queued += count
            self._telemetry.spans_accepted.inc(count)
            self._telemetry.queue_spans.set(self._queued)
            if self._oldest is None:
                # The first waiting span starts the batch timer of the worker.
                self._oldest = self._clock.monotonic()
                self._lock.notify_all()
            elif len(self._pending) >= self._max_batch:
                self._lock.notify_all()

    def _refuse(self, count: int, reason: str, message: str, retry_after_s: int = 1) -> None:
        self._telemetry.refuse(reason, count)
        raise TransientError(message, retry_after_s=retry_after_s)

    @property
    def stopping(self) -> bool:
        """Whether :meth:`shutdown` has begun: nothing more is accepted."""
        return self._stopping

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Hand on every span accepted so far; False if that took longer than ``timeout_s``."""
        deadline = self._clock.monotonic() + timeout_s
        with self._lock:
            self._flush_requested = True
            self._lock.notify_all()
            while self._queued:
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    return False
                self._clock.wait(self._lock, remaining)
        return True

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Flush what was accepted, then stop the worker. Safe to call more than once.

        If the store still fails after ``timeout_s``, the retries stop: the spans stay in the
        write-ahead log for the next start, or (without one) are counted as dropped.
        """
        with self._lock:
            if self._stopping and self._thread is None:
                return
            self._stopping = True
            self._lock.notify_all()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.join(timeout_s)
        if thread.is_alive():
            self._interrupt.set()
            thread.join()

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
                        or self._clock.monotonic() - (self._oldest or 0) >= self._timeout_s
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
                    self._clock.wait(self._lock, None)
                else:
                    waited = self._clock.monotonic() - (self._oldest or 0)
                    self._clock.wait(self._lock, max(0.0, self._timeout_s - waited))

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self._export(batch)
            with self._lock:
                self._queued -= len(batch)
                self._memory.release(batch.nbytes)
                self._telemetry.queue_spans.set(self._queued)
                self._lock.notify_all()

    def _export(self, batch: SpanColumns) -> None:
        count = len(batch)
        wal, wal_range = self._wal, batch.wal_range

        def insert() -> None:
            if wal and wal_range:
                wal.begin_batch(*wal_range)  # the log knows the batch before the store sees it
            self._downstream.consume(batch)

        started = time.perf_counter()
        attempt = call_with_retry(
            insert,
            self._retry,
            self._interrupt,
            what=f"export of {count} spans",
            on_failing=self._set_failing,
        )
        stored = count
        if attempt.outcome is Outcome.STOPPED:
            if wal and wal_range:
                self._telemetry.left_in_wal(count)
            else:
                self._telemetry.drop("shutdown", count, attempt.reason)
            return  # not committed: the next start replays these records
        if attempt.outcome is Outcome.GAVE_UP:
            self._telemetry.drop("export_failed", count, attempt.reason)
            stored = 0
        elif attempt.outcome is Outcome.REJECTED:
            error = attempt.error
            rejected = error.rejected if isinstance(error, RowsRejected) else count
            self._telemetry.drop("export_rejected", rejected, attempt.reason)
            stored = count - rejected
        if stored:
            self._telemetry.export_seconds.observe(time.perf_counter() - started)
            self._telemetry.export_batch_spans.observe(stored)
            self._telemetry.spans_exported.inc(stored)
            self._telemetry.log_progress()
        if wal and wal_range:
            wal.commit_batch(wal_range[1])

    def _set_failing(self, error: Exception | None) -> None:
        self.failing = None if error is None else str(error)
