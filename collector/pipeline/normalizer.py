"""A pipeline stage that turns real Next.js traces into request and cache rows.

Like the OpenTelemetry Collector's ``groupbytrace`` processor, it gathers the
spans of each Next.js trace (recognised by its instrumentation scope) until no
span of that trace has arrived for ``wait_s``, because Next.js exports a
request's spans as they end, across several export requests. It then applies
:func:`collector.nextjs.mapping.normalize_trace` and inserts the rows into
``requests`` and ``cache_events`` (:mod:`collector.nextjs.rows`). Every span is passed
downstream unchanged first: the raw spans are stored whatever happens here. Spans of
any other source (the reference server, a browser) are only passed on: theirs carry
nextrace's own attributes, and materialized views fill the same tables from them.

Late spans correct the rows. Next.js exports a request's spans as they end, and
a proxy's outer request span ends before the inner one, so the rest of a request
can arrive after its trace was normalized. The spans of every trace normalized
in the last ``late_window_s`` are kept: a span of such a trace reopens it, and
once it is idle again its rows are derived anew from all its spans and *replace*
the rows written before (:meth:`RowExporter.replace`), counted as corrected. A
span later than that window, or one whose trace was released from the bound
below, starts a new group, as in ``groupbytrace``; it is counted as late.

A trace that never goes idle (its spans keep arriving) is not held past ``max_hold_s``: it
is normalized with the spans it has, kept like any normalized trace, and its next span
reopens it, so its rows are corrected as above (counted in ``nextjs_released_busy``). A
held trace keeps the write-ahead log's records from its first one on
(:meth:`oldest_wal_record`); the bound keeps one trace from pinning the log, and so from
filling it, for longer than ``max_hold_s`` plus one write of its rows.

Bounded: at most ``max_traces`` traces wait; when a new one would exceed that,
the oldest is handed to the worker early, and counted. At most ``max_traces``
traces wait for the worker too (when the store is slow); beyond that the oldest
are dropped, and counted: their raw spans are stored all the same. At most
``max_traces`` normalized traces keep their spans for corrections. All writes
happen on the worker thread, never in the caller's. Lifecycle: ``start``,
``force_flush``, ``shutdown`` (idempotent).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from collector.clock import SYSTEM_CLOCK, Clock
from collector.config import NextjsSettings, RetryPolicy
from collector.consumer import SpanColumns, TracesConsumer
from collector.nextjs.mapping import (
    FETCH_CACHE_REASON,
    FETCH_SPAN_FIX,
    FETCH_TAGS,
    MiddlewarePasses,
    TraceSpan,
    handler_facts,
    handler_fills,
    hides_data_cache,
    is_handler_lookup,
    is_nextjs,
    normalize_trace,
    revalidated_targets,
    trace_spans,
)
from collector.nextjs.miss_reasons import CacheHistory, LookupFacts, revalidate_s, tags
from collector.nextjs.rows import CacheEventRow, RequestRow
from collector.retry import Outcome, call_with_retry
from collector.telemetry import CollectorTelemetry
from contract import semconv
from contract.nextjs import FETCH

log = logging.getLogger(__name__)


class RowExporter(Protocol):
    """Where derived rows go (:class:`collector.storage.exporter.ClickHouseRowExporter`). Raises
    TransientError or PermanentError like a TracesConsumer."""

    def export(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None: ...

    def existing_traces(self, table: str, trace_ids: Sequence[str]) -> set[str]: ...

    def replace(
        self,
        table: str,
        column_names: Sequence[str],
        trace_ids: Sequence[str],
        span_ids: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> set[str]:
        """Make ``rows`` the rows of ``table`` derived from the spans ``span_ids`` of the
        traces ``trace_ids``; the traces whose rows changed."""


class _Group:
    """The spans of one trace so far; ``first_wal`` is the oldest write-ahead log record they
    came from since the trace (re)opened, ``opened`` when that was, ``replayed`` whether any
    came from a replay of that log, ``correcting`` whether rows of the trace were written
    before (they are replaced), ``normalized_at`` when it was last handed to the worker."""

    __slots__ = (
        "correcting",
        "first_wal",
        "last_seen",
        "normalized_at",
        "opened",
        "replayed",
        "spans",
    )

    def __init__(self) -> None:
        self.spans: list[TraceSpan] = []
        self.opened = 0.0
        self.last_seen = 0.0
        self.first_wal: int | None = None
        self.replayed = False
        self.correcting = False
        self.normalized_at = 0.0


class NextjsTraceNormalizer:
    """A :class:`TracesConsumer` in front of ``downstream`` (see the module docstring)."""

    def __init__(
        self,
        downstream: TracesConsumer,
        rows: RowExporter,
        telemetry: CollectorTelemetry,
        settings: NextjsSettings,
        *,
        retry: RetryPolicy,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._downstream = downstream
        self._rows = rows
        self._telemetry = telemetry
        self._wait_s = settings.wait_s
        self._max_hold_s = settings.max_hold_s
        self._max_traces = settings.max_traces
        self._late_window_s = settings.late_window_s
        self._retry = retry
        self._groups: OrderedDict[str, _Group] = OrderedDict()  # oldest activity first
        # Recently normalized traces, oldest first: their ids (to count late spans), and the
        # groups whose spans are kept for a correction.
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._kept: OrderedDict[str, _Group] = OrderedDict()
        self._ready: deque[_Group] = deque()  # released early, for the worker
        # Being written, each with the oldest log record its rows come from: held until they
        # are written, while the trace may reopen and hold the records of its next spans.
        self._writing: list[tuple[_Group, int | None]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._history = CacheHistory()  # lookups seen, to tell why a cache missed
        self._passes = MiddlewarePasses()  # Next 15's middleware passes, by request
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="nextrace-normalizer", daemon=True
            )
            self._thread.start()

    def consume(self, spans: SpanColumns) -> None:
        self._downstream.consume(spans)  # raw spans first: a refusal here is the caller's 503
        self.observe(spans)

    def observe(self, spans: SpanColumns, *, replayed: bool = False) -> None:
        """Group the Next.js spans of ``spans`` without passing them on (a replay of the
        write-ahead log uses this for spans that are stored already)."""
        traces, scopes = spans.trace_ids, spans.scope_names
        # A trace with a Next.js span, here or before: its other spans (a revalidation's, a
        # warm-up's, in any order in the batch) belong to its group too. Membership reads
        # need no lock; changes take it below.
        groups, kept = self._groups, self._kept
        present = set(traces)
        wanted = {t for t in present if t in groups or t in kept} | {
            t for t, scope in zip(traces, scopes, strict=True) if is_nextjs(scope)
        }
        if not wanted:
            return  # and the batch's columns are never built
        columns = spans.columns
        if len(wanted) < len(present):
            columns = columns.take([i for i, t in enumerate(traces) if t in wanted])
        arrived: dict[str, list[TraceSpan]] = {}
        for span in trace_spans(columns):
            arrived.setdefault(span.trace_id, []).append(span)
        if not arrived:
            return
        record = spans.wal_ids[0] if spans.wal_ids else None
        now = self._clock.monotonic()
        with self._lock:
            for trace_id, new in arrived.items():
                group = groups.get(trace_id)
                if group is None:
                    if trace_id in self._seen:
                        self._telemetry.nextjs_late_spans.inc(len(new))
                    normalized = kept.pop(trace_id, None)
                    # A trace whose spans are still kept reopens, to be derived anew. It
                    # holds the log's records from this one on (those of its rows so far are
                    # held until they are written), so that a trace that never goes idle pins
                    # no record for long: a replay after a crash skips a trace whose rows
                    # exist, whichever records it held.
                    group = groups[trace_id] = normalized or _Group()
                    group.correcting = normalized is not None
                    group.opened = now
                    if len(groups) > self._max_traces:
                        self._release_oldest()
                group.spans.extend(new)
                group.last_seen = now
                group.replayed = group.replayed or replayed
                if group.first_wal is None:
                    group.first_wal = record
                groups.move_to_end(trace_id)

    def oldest_wal_record(self) -> int | None:
        """The oldest write-ahead log record whose Next.js spans are not yet normalized."""
        with self._lock:
            held = [g.first_wal for g in (*self._groups.values(), *self._ready)]
            held += [first_wal for _, first_wal in self._writing]
        return min([record for record in held if record is not None], default=None)

    def _release_oldest(self) -> None:
        """Hand the oldest waiting trace to the worker now (the lock is held)."""
        oldest_id, oldest = self._groups.popitem(last=False)
        self._remember({oldest_id: oldest}, keep_spans=False)
        self._ready.append(oldest)
        self._telemetry.nextjs_released_early.inc()
        if len(self._ready) > self._max_traces:
            dropped = self._ready.popleft()
            self._telemetry.drop_nextjs_trace(dropped.spans[0].trace_id, "the store is too slow")
        self._wake.set()

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Normalize every waiting trace now, complete or not; False if the store kept failing
        for ``timeout_s`` (those rows are counted as dropped)."""
        with self._lock:
            ready = [*self._ready, *self._groups.values()]
            self._ready.clear()
            self._remember(self._groups)
            self._groups.clear()
            writing = self._start_writing(ready)
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.start()
        try:
            self._normalize(writing, deadline)
        finally:
            timer.cancel()
        return not deadline.is_set()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.force_flush(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            # Each cycle writes its rows in one insert per table, and an insert has a cost of
            # its own whatever its size (25 to 40 ms of CPU on the embedded store; at a steady
            # 4,000 spans a second, cycles every 0.25 s took twice the CPU of cycles every 1 s).
            # Twice a wait and twice a hold at least, so that neither runs over by much.
            self._clock.sleep(self._wake, min(2.0, self._wait_s / 2, self._max_hold_s / 2))
            self._wake.clear()
            try:
                self._normalize(self._take_due(), self._stop)
            except Exception:  # a bug here must not end normalization for good
                log.exception("Next.js normalization failed")

    def _take_due(self) -> list[tuple[_Group, int | None]]:
        """Traces released early, then those idle for ``wait_s``, then those held for
        ``max_hold_s`` though their spans still arrive."""
        done: dict[str, _Group] = {}
        now = self._clock.monotonic()
        idle_since, held_since = now - self._wait_s, now - self._max_hold_s
        with self._lock:
            ready = list(self._ready)
            self._ready.clear()
            while self._groups:  # oldest activity first: the idle ones lead
                trace_id, group = next(iter(self._groups.items()))
                if group.last_seen > idle_since:
                    break
                del self._groups[trace_id]
                ready.append(group)
                done[trace_id] = group
            busy = [t for t, group in self._groups.items() if group.opened <= held_since]
            for trace_id in busy:
                group = self._groups.pop(trace_id)
                ready.append(group)
                done[trace_id] = group
            if busy:
                self._telemetry.nextjs_released_busy.inc(len(busy))
            self._remember(done)
            return self._start_writing(ready)

    def _start_writing(self, groups: list[_Group]) -> list[tuple[_Group, int | None]]:
        """Note ``groups`` as being written (the lock is held): the records they hold are held
        until they are, and the groups themselves hold none until more spans reopen them."""
        writing = [(group, group.first_wal) for group in groups]
        for group in groups:
            group.first_wal = None
        self._writing.extend(writing)
        return writing

    def _remember(self, groups: dict[str, _Group], *, keep_spans: bool = True) -> None:
        """Note ``groups`` as normalized (the lock is held): their spans are kept for
        ``late_window_s``, their ids for ``max_traces`` traces."""
        now = self._clock.monotonic()
        seen, kept = self._seen, self._kept
        for trace_id, group in groups.items():
            group.normalized_at = now
            seen[trace_id] = None
            seen.move_to_end(trace_id)
            if keep_spans:
                kept[trace_id] = group  # not there: a reopened trace left it
        while len(seen) > self._max_traces:
            seen.popitem(last=False)
        expired = now - self._late_window_s
        while kept and (
            len(kept) > self._max_traces or next(iter(kept.values())).normalized_at <= expired
        ):
            kept.popitem(last=False)

    def _normalize(self, writing: list[tuple[_Group, int | None]], stop: threading.Event) -> None:
        """Derive and write the rows of the groups of ``writing`` (see :meth:`_start_writing`);
        ``stop`` ends the retries of a failing store."""
        if not writing:
            return
        groups = [group for group, _ in writing]
        try:
            requests: list[RequestRow] = []
            events: list[CacheEventRow] = []
            replayed: list[str] = []
            correcting: dict[str, list[TraceSpan]] = {}
            facts: dict[str, LookupFacts] = {}  # fetch span id -> what it says of its entry
            for group in groups:
                with self._lock:  # late spans may be reopening the group meanwhile
                    # A replay, or a sender's retry, can bring a span twice.
                    group.spans = list({span.span_id: span for span in group.spans}.values())
                    spans = list(group.spans)
                    if group.replayed:
                        replayed.append(spans[0].trace_id)
                    if group.correcting:
                        correcting[spans[0].trace_id] = spans
                try:
                    trace_requests, trace_events = normalize_trace(spans, self._passes)
                    if hides_data_cache(spans):
                        self._telemetry.fetch_spans_missing(spans[0].service, FETCH_SPAN_FIX)
                except Exception:  # a trace we cannot read must not stop the others
                    log.exception("could not normalize Next.js trace %s", spans[0].trace_id)
                    continue
                requests.extend(trace_requests)
                events.extend(trace_events)
                self._learn(spans, _origin(trace_requests), facts)
            with self._write_lock:
                events = self._history.explain(events, facts)
                for kind, rows in ((RequestRow, requests), (CacheEventRow, events)):
                    fresh = [row for row in rows if row.trace_id not in correcting]
                    self._write(kind, fresh, replayed, stop)
                if correcting:
                    self._correct(correcting, requests, events, stop)
            self._telemetry.nextjs_traces.inc(len(groups) - len(correcting))
        finally:
            with self._lock:
                written = {id(entry) for entry in writing}
                self._writing = [entry for entry in self._writing if id(entry) not in written]

    def _learn(self, spans: list[TraceSpan], origin: str, facts: dict[str, LookupFacts]) -> None:
        """Note what ``spans`` tell the cache history: revalidations (``@nextrace/next``'s
        ``traceRevalidations`` and the cache handlers') and, per fetch and cache handler's
        lookup, its entry's revalidate time and tags, and that a miss stores it
        for ``origin``."""
        fills: dict[tuple[str, str], TraceSpan] | None = None  # read once, if a lookup needs it
        for span in spans:
            attributes = span.attributes
            if attributes.get(semconv.PHASE) == semconv.PHASE_REVALIDATE:
                with self._write_lock:
                    for target in revalidated_targets(attributes):
                        self._history.revalidated(
                            span.service,
                            attributes.get(semconv.REVALIDATE_KIND, ""),
                            target,
                            span.start_ns,
                        )
            elif span.span_type == FETCH:
                facts[span.span_id] = LookupFacts(
                    revalidate_s(attributes.get(FETCH_CACHE_REASON, "")),
                    tags(attributes.get(FETCH_TAGS, "")),
                    origin,
                )
            elif is_handler_lookup(span):
                if fills is None:
                    fills = handler_fills(spans)
                facts[span.span_id] = handler_facts(span, fills, origin)

    def _correct(
        self,
        traces: dict[str, list[TraceSpan]],
        requests: list[RequestRow],
        events: list[CacheEventRow],
        stop: threading.Event,
    ) -> None:
        """Replace the rows of ``traces``, derived before some of their spans arrived, by
        ``requests`` and ``events`` (derived from all of them)."""
        # The spans the rows come from: rows that other spans of the trace fed through the
        # materialized views (a browser's, say) are not this stage's to replace.
        span_ids = [
            span.span_id for spans in traces.values() for span in spans if is_nextjs(span.scope)
        ]
        corrected: set[str] = set()
        for kind, rows in ((RequestRow, requests), (CacheEventRow, events)):
            mine = [row.values() for row in rows if row.trace_id in traces]
            corrected |= self._replace(kind, list(traces), span_ids, mine, stop)
        self._telemetry.nextjs_traces_corrected.inc(len(corrected))

    def _replace(
        self,
        kind: type[RequestRow | CacheEventRow],
        trace_ids: list[str],
        span_ids: list[str],
        rows: list[list[Any]],
        stop: threading.Event,
    ) -> set[str]:
        """:meth:`RowExporter.replace`, retrying; the traces whose rows changed."""
        changed: set[str] = set()

        def replace() -> None:
            changed.update(
                self._rows.replace(kind.TABLE, kind.columns(), trace_ids, span_ids, rows)
            )

        self._retrying(replace, kind.TABLE, len(rows), stop, what=f"correction of {kind.TABLE}")
        return changed

    def _write(
        self,
        kind: type[RequestRow | CacheEventRow],
        rows: Sequence[RequestRow | CacheEventRow],
        replayed: list[str],
        stop: threading.Event,
    ) -> None:
        """Insert ``rows``, retrying; a replayed trace whose rows exist already is skipped."""
        table = kind.TABLE

        def insert() -> None:
            todo = rows
            if replayed:
                stored = self._rows.existing_traces(table, replayed)
                todo = [row for row in rows if row.trace_id not in stored]
            self._rows.export(table, kind.columns(), [row.values() for row in todo])

        if rows:
            self._retrying(insert, table, len(rows), stop, what=f"insert into {table}")

    def _retrying(
        self, call: Callable[[], None], table: str, rows: int, stop: threading.Event, what: str
    ) -> None:
        """``call`` under the retry policy; if it never succeeds, its ``rows`` rows of
        ``table`` are counted as dropped with the reason."""
        attempt = call_with_retry(call, self._retry, stop, what=what)
        if attempt.outcome is not Outcome.DONE:
            self._telemetry.drop_rows(table, rows, attempt.reason)


def _origin(requests: list[RequestRow]) -> str:
    """Who the entries a trace's misses store are for: a warm-up, a prefetch, or a request."""
    kinds = {row.kind for row in requests}
    if "warmup" in kinds:
        return "warmup"
    return "prefetch" if kinds == {"rsc_prefetch"} else "request"
