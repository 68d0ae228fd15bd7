"""Replay the write-ahead log into the pipeline on start, so that what was acknowledged and
not yet stored is stored, exactly once.

What a record needs depends on where the previous process stopped (see
:class:`collector.wal.Checkpoint`):

- up to ``committed``, its spans are stored; only the Next.js normalizer may still
  need them, so it sees them again;
- in the ``batch`` that was in flight, its spans are inserted again as exactly
  that batch, with the same deduplication token: if the first insert had
  succeeded, ClickHouse stores nothing twice; and the exporter then checks that
  the store holds them all (``maybe_stored``: see :mod:`collector.exporter`);
- after that, its spans go through the pipeline like new ones.

Every replayed Next.js trace is marked as replayed, so rows that the previous
process had written already are not written twice.
"""

from __future__ import annotations

import logging
import time

from collector import decoder
from collector.batcher import BatchSpanProcessor
from collector.consumer import SpanColumns
from collector.errors import PermanentError, TransientError
from collector.normalizer import NextjsTraceNormalizer
from collector.translator import screen
from collector.wal import KIND_JSON, Checkpoint, WalRecord, WriteAheadLog

log = logging.getLogger(__name__)


def replay(
    wal: WriteAheadLog,
    checkpoint: Checkpoint,
    processor: BatchSpanProcessor,
    normalizer: NextjsTraceNormalizer,
) -> int:
    """Feed every record the previous process left into the pipeline; the spans replayed."""
    started = time.monotonic()
    in_flight = SpanColumns(maybe_stored=True)
    records = spans_total = 0
    for record in wal.replay():
        spans = _spans(record)
        if spans is None:
            continue
        records += 1
        spans_total += len(spans)
        normalizer.observe(spans, replayed=True)
        if record.id <= checkpoint.committed:
            continue
        if checkpoint.batch and record.id <= checkpoint.batch[1]:
            in_flight.extend(spans)
            continue
        if len(in_flight):
            _hand_on(processor, in_flight, alone=True)
            in_flight = SpanColumns(maybe_stored=True)
        _hand_on(processor, spans, alone=False)
    if len(in_flight):
        _hand_on(processor, in_flight, alone=True)
    if records:
        log.info(
            "replayed %d request(s), %d span(s), from the write-ahead log in %.1f s",
            records,
            spans_total,
            time.monotonic() - started,
        )
    return spans_total


def _spans(record: WalRecord) -> SpanColumns | None:
    kind = decoder.JSON if record.kind == KIND_JSON else decoder.PROTOBUF
    try:
        request = decoder.decode(record.payload, kind)
        spans = screen(request, record.payload if kind == decoder.PROTOBUF else None).spans
    except PermanentError as exc:  # it decoded when it was received: the log is damaged
        log.error("write-ahead log record %d cannot be decoded (%s): skipped", record.id, exc)
        return None
    spans.wal_ids = [record.id]
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
            processor.force_flush(timeout_s=1.0)
    if alone:
        _drain(processor)


def _drain(processor: BatchSpanProcessor) -> None:
    while not processor.force_flush(timeout_s=30.0):
        log.warning("replay is waiting for the store to take what the write-ahead log holds")
