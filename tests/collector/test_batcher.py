"""Batching: flush on size and on time, bounded queue, retries, and a flushing shutdown."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from collector.clock import SYSTEM_CLOCK, Clock
from collector.config import BatchSettings, RetryPolicy
from collector.consumer import SpanColumns
from collector.errors import PermanentError, RowsRejected, TransientError
from collector.memory import MemoryLimiter
from collector.pipeline.batcher import BatchSpanProcessor
from collector.pipeline.translator import translate
from collector.telemetry import CollectorTelemetry
from tests.builders import make_request, make_span
from tests.support.clock import ManualClock


def spans(count: int) -> SpanColumns:
    return translate(make_request([make_span(f"s{i}") for i in range(count)])).spans


class RecordingConsumer:
    """The next stage, recording the batch sizes it was handed."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.batches: list[int] = []
        self.failures = list(failures or [])
        self.arrived = threading.Event()

    def consume(self, batch: SpanColumns) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(len(batch))
        self.arrived.set()


def make_processor(
    downstream,
    *,
    retry: RetryPolicy | None = None,
    memory: MemoryLimiter | None = None,
    clock: Clock = SYSTEM_CLOCK,
    **settings: Any,
) -> tuple[BatchSpanProcessor, CollectorTelemetry]:
    """A started processor of small batches (``settings``: BatchSettings's fields) that retries
    quickly, without a log."""
    telemetry = CollectorTelemetry()
    processor = BatchSpanProcessor(
        downstream,
        telemetry,
        BatchSettings(**{"max_spans": 10, "timeout_s": 60.0, "max_queue_spans": 100, **settings}),
        memory=memory or MemoryLimiter(1 << 30),
        retry=retry or RetryPolicy(initial_backoff_s=0.01),
        wal=None,
        clock=clock,
    )
    processor.start()
    return processor, telemetry


def test_a_full_batch_is_sent_without_waiting_for_the_timer():
    downstream = RecordingConsumer()
    processor, _ = make_processor(downstream)
    processor.consume(spans(6))
    processor.consume(spans(6))
    assert downstream.arrived.wait(5)
    assert downstream.batches == [12]
    processor.shutdown()


def test_a_partial_batch_is_sent_when_the_timer_expires_and_not_before():
    clock = ManualClock()
    downstream = RecordingConsumer()
    processor, _ = make_processor(downstream, timeout_s=1.0, clock=clock)
    processor.consume(spans(3))
    clock.advance(0.9)
    assert not downstream.arrived.wait(0.2)  # a real pause: the batch stays, whatever it lasts
    clock.advance(0.1)
    assert downstream.arrived.wait(10)
    assert downstream.batches == [3]
    processor.shutdown()


def test_shutdown_flushes_everything_accepted_and_is_idempotent():
    downstream = RecordingConsumer()
    processor, telemetry = make_processor(downstream)
    processor.consume(spans(4))
    processor.shutdown()
    processor.shutdown()
    assert downstream.batches == [4]
    assert telemetry.snapshot()["spans_exported"] == 4
    with pytest.raises(TransientError):
        processor.consume(spans(1))


def test_transient_failures_are_retried():
    downstream = RecordingConsumer([TransientError("down"), TransientError("still down")])
    processor, telemetry = make_processor(downstream)
    processor.consume(spans(2))
    assert processor.force_flush(10)
    assert downstream.batches == [2]
    assert telemetry.snapshot()["spans_dropped"]["export_failed"] == 0
    processor.shutdown()


def test_spans_are_dropped_and_counted_when_retries_run_out_or_the_store_refuses():
    downstream = RecordingConsumer([TransientError("down")])
    processor, telemetry = make_processor(downstream, retry=RetryPolicy(max_elapsed_s=0))
    processor.consume(spans(2))
    assert processor.force_flush(10)
    downstream.failures = [PermanentError("bad")]
    processor.consume(spans(3))
    assert processor.force_flush(10)
    dropped = telemetry.snapshot()["spans_dropped"]
    assert dropped["export_failed"] == 2
    assert dropped["export_rejected"] == 3
    assert downstream.batches == []
    processor.shutdown()


@pytest.mark.parametrize(
    ("failures", "max_elapsed_s"),
    [
        ([TransientError("down"), PermanentError("bad rows")], 600),  # refused on a retry
        ([TransientError("down")], 0),  # gave up while failing; the next batch is stored at once
    ],
)
def test_health_stops_saying_the_store_fails_once_it_answers_again(failures, max_elapsed_s):
    downstream = RecordingConsumer(failures)
    processor, _ = make_processor(
        downstream, retry=RetryPolicy(initial_backoff_s=0.01, max_elapsed_s=max_elapsed_s)
    )
    for count in (2, 3):
        processor.consume(spans(count))
        assert processor.force_flush(10)
    assert downstream.failures == []
    assert downstream.batches == [3]
    assert processor.failing is None
    processor.shutdown()


def test_only_the_rows_the_store_refused_are_counted_as_dropped():
    downstream = RecordingConsumer([RowsRejected("1 of 5 refused", rejected=1)])
    processor, telemetry = make_processor(downstream)
    processor.consume(spans(5))
    assert processor.force_flush(10)
    snapshot = telemetry.snapshot()
    assert snapshot["spans_dropped"]["export_rejected"] == 1
    assert snapshot["spans_exported"] == 4
    processor.shutdown()


def test_a_bug_downstream_is_counted_and_does_not_stop_the_worker():
    downstream = RecordingConsumer([KeyError("bug")])
    processor, telemetry = make_processor(downstream)
    processor.consume(spans(2))
    assert processor.force_flush(10)
    processor.consume(spans(3))
    assert processor.force_flush(10)
    assert telemetry.snapshot()["spans_dropped"]["export_rejected"] == 2
    assert downstream.batches == [3]
    processor.shutdown()


def test_a_shutdown_stops_retrying_a_failing_store_and_counts_what_it_could_not_store():
    downstream = RecordingConsumer([TransientError("down")] * 1000)
    processor, telemetry = make_processor(downstream, retry=RetryPolicy(initial_backoff_s=0.05))
    processor.consume(spans(7))
    processor.force_flush(0.2)
    assert processor.failing == "down"
    started = time.monotonic()
    processor.shutdown(timeout_s=0.5)
    assert time.monotonic() - started < 10
    assert telemetry.snapshot()["spans_dropped"]["shutdown"] == 7


def test_the_queue_is_bounded():
    processor, telemetry = make_processor(RecordingConsumer(), max_spans=50, max_queue_spans=50)
    processor.consume(spans(40))
    with pytest.raises(TransientError, match="queue is full"):
        processor.consume(spans(20))
    snapshot = telemetry.snapshot()
    # The sender was answered 503 and still has them: refused, not lost.
    assert snapshot["spans_refused"]["queue_full"] == 20
    assert sum(snapshot["spans_dropped"].values()) == 0
    assert processor.queued_spans == 40
    processor.shutdown()


def test_the_queue_is_bounded_in_bytes_too():
    processor, telemetry = make_processor(RecordingConsumer(), memory=MemoryLimiter(1000))
    big = spans(2)
    big.source = b"x" * 800
    processor.consume(big)
    with pytest.raises(TransientError, match="bytes"):
        processor.consume(big)
    assert telemetry.snapshot()["spans_refused"]["memory_limit"] == 2
    processor.shutdown()
