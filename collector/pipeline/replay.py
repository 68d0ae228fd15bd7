"""Replay the write-ahead log into the pipeline on start, so that what was acknowledged and
not yet stored is stored, exactly once.

What a record needs depends on where the previous process stopped (see
:class:`collector.pipeline.wal.Checkpoint`):

- up to ``committed``, its spans are stored; only the Next.js normalizer may still
  need them, so it sees them again;
- in the ``batch`` that was in flight, its spans are inserted again as exactly
  that batch, with the same deduplication token: if the first insert had
  succeeded, ClickHouse stores nothing twice; and the exporter then checks that
  the store holds them all (``maybe_stored``: see :mod:`collector.storage.exporter`);
- after that, its spans go through the pipeline like new ones.

Every replayed Next.js trace is marked as replayed, so rows that the previous
process had written already are not written twice.

The log replays only into the store it was written for: the collector binds it
(:func:`collector.storage.wal_binding.bind_log_to_store`) before it replays.

A replay of a long log, or one that waits for a failing store (a full disk), can take
minutes, so it runs while the collector answers (:class:`BackgroundReplay`), on a thread of
its own, in front of the pipeline until it is done:

- new spans are refused with 503 and ``Retry-After`` (counted as refused, ``replaying``):
  replayed records must reach the batch processor before any new one, in log order, and the
  log is read as it was when it was opened;
- :meth:`BackgroundReplay.status` says how far it is (``replaying N of M records``), which
  ``/healthz`` answers with 503 until it is done.

A replay that fails keeps refusing new spans, and says why: its records stay in the log for
the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from collector import decoder
from collector.consumer import SpanColumns, TracesConsumer
from collector.errors import PermanentError, TransientError
from collector.pipeline.batcher import BatchSpanProcessor
from collector.pipeline.normalizer import NextjsTraceNormalizer
from collector.pipeline.translator import screen
from collector.pipeline.wal import KIND_JSON, Checkpoint, WalRecord, WriteAheadLog
from collector.telemetry import CollectorTelemetry

log = logging.getLogger(__name__)


PROGRESS_INTERVAL_S = 1.0
"""How often a replay reports its progress."""


Progress = Callable[[int, int], None]
"""Told ``(records done, records in all)`` by the replay, at its start, as it goes, and at
its end."""

RETRY_AFTER_S = 5


class ReplayStopped(Exception):
    """Raised into a running replay (through its progress) when the collector stops."""


class BackgroundReplay:
    """A :class:`TracesConsumer` in front of ``downstream`` that refuses spans until ``run``
    has replayed the log. ``run(progress)`` replays it (see
    :func:`collector.pipeline.replay.replay`).

    ``start`` runs it on a thread; ``run_here`` on the caller's (its errors are raised);
    ``stop`` asks it to end, at its next progress.
    """

    def __init__(
        self,
        run: Callable[[Progress], object],
        downstream: TracesConsumer,
        telemetry: CollectorTelemetry,
    ) -> None:
        self._run = run
        self._downstream = downstream
        self._telemetry = telemetry
        self.done = 0  # records replayed so far
        self.total: int | None = None  # records to replay, once the replay has counted them
        self.error: BaseException | None = None
        self._finished = threading.Event()
        self._replayed = threading.Event()  # finished, and completely: new spans may come
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return not self._finished.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._replay, name="nextrace-replay", daemon=True)
        self._thread.start()

    def run_here(self) -> None:
        """Replay on this thread; whatever the replay raises is raised here."""
        try:
            self._run(self._progress)
        except BaseException as exc:
            self.error = exc
            raise
        else:
            self._replayed.set()
        finally:
            self._finished.set()

    def stop(self, timeout_s: float) -> bool:
        """Ask the replay to end and wait for it at most ``timeout_s``; whether it ended. One
        that waits for a failing store ends only once the batch processor stops."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.running

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """:meth:`stop`, waiting at most a second: a replay left waiting for a failing store
        ends once the batch processor stops, which shuts down after it."""
        self.stop(min(timeout_s, 1.0))

    def status(self) -> str | None:
        """What ``/healthz`` says of the replay: None once it is done."""
        if self.error is not None:
            return (
                f"the write-ahead log could not be replayed ({self.error}): new spans are "
                "refused; fix that and restart the collector (the log keeps its records)"
            )
        if not self.running:
            return None
        if self.total is None:
            return "replaying the write-ahead log (counting its records): new spans get 503"
        return (
            f"replaying {self.done} of {self.total} records of the write-ahead log: "
            "new spans get 503 until it is done"
        )

    def consume(self, spans: SpanColumns) -> None:
        if not self._replayed.is_set():
            self._telemetry.refuse("replaying", len(spans))
            raise TransientError(
                "the collector is replaying its write-ahead log "
                f"({self.done} of {self.total if self.total is not None else '?'} records); "
                "retry later",
                retry_after_s=RETRY_AFTER_S,
            )
        self._downstream.consume(spans)

    def _progress(self, done: int, total: int) -> None:
        if self._stopping.is_set():
            raise ReplayStopped
        self.done, self.total = done, total

    def _replay(self) -> None:
        try:
            self._run(self._progress)
        except ReplayStopped:
            log.info("replay of the write-ahead log stopped: the rest waits for the next start")
        except Exception as exc:  # the collector goes on answering, and says so
            self.error = exc
            log.exception("the write-ahead log could not be replayed; new spans are refused")
        else:
            self._replayed.set()
        finally:
            self._finished.set()


def replay(
    wal: WriteAheadLog,
    checkpoint: Checkpoint,
    processor: BatchSpanProcessor,
    normalizer: NextjsTraceNormalizer,
    progress: Progress | None = None,
    replayed: Callable[[SpanColumns], None] | None = None,
) -> int:
    """Feed every record the previous process left into the pipeline; the spans replayed.

    ``replayed`` is shown the spans of every record, stored or not (the CDN receivers'
    memory of the lines stored: a line the log holds may not be in the store yet).

    ``progress`` is called with (records replayed so far, records to replay): at the start,
    every :data:`PROGRESS_INTERVAL_S` while it runs, and at the end, once the pipeline has
    taken them all.
    """
    started = time.monotonic()
    total = wal.to_replay

    def report(done: int) -> None:
        if progress is not None:
            progress(done, max(total, done))

    report(0)
    reported = started
    in_flight = SpanColumns(maybe_stored=True)
    records = spans_total = 0
    for record in wal.replay():
        records += 1
        if time.monotonic() - reported >= PROGRESS_INTERVAL_S:
            report(records - 1)
            reported = time.monotonic()
        spans = _spans(record, wal.id)
        if spans is None:
            continue
        spans_total += len(spans)
        normalizer.observe(spans, replayed=True)
        if replayed is not None:
            replayed(spans)
        if record.id <= checkpoint.committed:
            continue
        if checkpoint.batch and record.id <= checkpoint.batch[1]:
            in_flight.extend(spans)
            continue
        if len(in_flight):
            _hand_on(processor, _as_batch(in_flight, checkpoint, wal), alone=True)
            in_flight = SpanColumns(maybe_stored=True)
        _hand_on(processor, spans, alone=False)
    if len(in_flight):
        _hand_on(processor, _as_batch(in_flight, checkpoint, wal), alone=True)
    report(records)
    if records:
        log.info(
            "replayed %d request(s), %d span(s), from the write-ahead log in %.1f s",
            records,
            spans_total,
            time.monotonic() - started,
        )
    return spans_total


def _as_batch(in_flight: SpanColumns, checkpoint: Checkpoint, wal: WriteAheadLog) -> SpanColumns:
    """The batch a crash interrupted, with the token it was inserted with: the range the
    checkpoint names, even when a damaged or missing record leaves its ends out, and without
    the log's id for a batch of an earlier release, whose tokens named none."""
    if checkpoint.batch is not None:
        in_flight.wal_ids = [checkpoint.batch[0], *in_flight.wal_ids, checkpoint.batch[1]]
        if checkpoint.batch == wal.legacy_batch:
            in_flight.wal_log = ""
    return in_flight


def _spans(record: WalRecord, log_id: str) -> SpanColumns | None:
    kind = decoder.JSON if record.kind == KIND_JSON else decoder.PROTOBUF
    try:
        request = decoder.decode(record.payload, kind)
        spans = screen(request, record.payload if kind == decoder.PROTOBUF else None).spans
    except PermanentError as exc:  # it decoded when it was received: the log is damaged
        log.error("write-ahead log record %d cannot be decoded (%s): skipped", record.id, exc)
        return None
    spans.wal_ids, spans.wal_log = [record.id], log_id
    spans.source = record.payload
    return spans


def _hand_on(processor: BatchSpanProcessor, spans: SpanColumns, *, alone: bool) -> None:
    """Give ``spans`` to the batch processor, waiting while its queue is full; ``alone``
    makes them one batch of their own (the batch that was in flight)."""
    if alone:
        _drain(processor)
    while True:
        try:
            processor.consume(spans)
            break
        except TransientError:
            if processor.stopping:  # it will take nothing more: the rest waits for a restart
                raise ReplayStopped from None
            processor.force_flush(timeout_s=1.0)
    if alone:
        _drain(processor)


def _drain(processor: BatchSpanProcessor) -> None:
    while not processor.force_flush(timeout_s=30.0):
        if processor.stopping:
            raise ReplayStopped
        log.warning("replay is waiting for the store to take what the write-ahead log holds")
