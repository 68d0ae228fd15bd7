"""Write to ClickHouse with one insert per batch, exactly once, one bad row costing only itself.

A batch that carries its OTLP bodies is inserted from them (:mod:`collector.storage.staging`:
ClickHouse parses and flattens them); any other batch, and every retry, with one columnar
insert. Both are one block under the same token, so everything below holds for both.

Exactly once: a batch that came through the write-ahead log is inserted with an
``insert_deduplication_token`` named after its log and record range
(``wal-LOG-FIRST-LAST``: logs writing to one store never share a token),
and the dependent materialized views deduplicate with it
(``deduplicate_blocks_in_dependent_materialized_views``; the tables keep a
``non_replicated_deduplication_window``). A retry after an ambiguous failure,
or a replay after a crash, inserts nothing twice.

Nothing lost either: ClickHouse writes a block's token to the table's
deduplication log *before* it commits the block's part, so a crash between the
two leaves a token whose rows were never stored, and a retry with that token
would be swallowed. So a batch that an earlier insert may have stored
(``SpanColumns.maybe_stored``: after a failed insert, or the batch a crash
interrupted) is inserted again as the failed insert was (same token, same spans: a no-op
where it was stored, which lets the materialized views it had not reached catch up), or,
after a crash, the spans the store holds are inserted again with the batch's token; spans
still missing get a token of their own, and that insert is the one repeated if it fails in
turn. Repeating any other insert stores twice: spans stored under a token of their own
(in the table, not yet its views), inserted again with the batch's token, were stored
twice on a full disk (1,200 spans).

A full disk can leave broken parts, with empty files, that the engine counts as stored
(their token would swallow the retry, and a restart drops them), or that make every read of
their table fail. After a failed insert, the store detaches the broken parts it committed or
named (:meth:`collector.storage.store.ClickHouseStore.detach_broken_parts_since` and
:meth:`~collector.storage.store.ClickHouseStore.detach_broken_parts`), which forgets their
blocks' tokens, so that the repeated insert stores them again, once.

One bad row: when ClickHouse refuses a batch because of its rows (see
:func:`collector.storage.store.is_permanent`), the batch is ordered by time and split in
halves, recursively, until the rows that cannot be stored are alone; the rest
is stored. Each part has a token derived from its place in the split, so the
isolation is exact on a retry too.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from clickhouse_connect.driver.insert import InsertContext

from collector.consumer import COLUMN_NAMES, SpanColumns
from collector.errors import PartsDetached, PermanentError, RowsRejected, TransientError
from collector.storage.migrations import load_sql, render
from collector.storage.staging import StagedProtobufInsert, StagingFailed
from collector.storage.store import ClickHouseStore, is_permanent
from collector.telemetry import CollectorTelemetry

log = logging.getLogger(__name__)

_CHECK_SPANS = 2000  # spans whose ids one query of _missing sends
STAGING_FAILURES_TOLERATED = 3
"""Batches in a row that cannot be staged (and are stored by columns) before the exporter
stops trying."""


@contextmanager
def _failure_sorted(store: ClickHouseStore, *, refusable: bool = False) -> Iterator[None]:
    """Raise a ClickHouse error as what the caller should do about it: PermanentError when
    ``refusable`` (an insert) and ClickHouse refused the rows themselves, else TransientError,
    once any broken part the error names is detached, so that the retry can succeed.
    """
    try:
        yield
    except ClickHouseError as exc:
        if refusable and is_permanent(exc):
            raise PermanentError(f"ClickHouse refused the rows: {exc}") from exc
        detached = store.detach_broken_parts(exc)
        if detached:
            raise PartsDetached(f"broken parts detached ({', '.join(detached)}): {exc}") from exc
        raise TransientError(f"ClickHouse is unavailable: {exc}") from exc


def _token_settings(token: str | None) -> dict[str, Any]:
    """The settings of an insert deduplicated by ``token`` (none without one)."""
    if not token:
        return {}
    return {
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }


def _insert(store: ClickHouseStore, token: str | None, context: InsertContext, data: Any) -> None:
    """One insert of ``data`` through ``context`` (which is left empty after), its failure
    sorted by what the caller should do."""
    context.settings = _token_settings(token)  # the driver ignores settings= next to a context
    context.data = data
    try:
        with _failure_sorted(store, refusable=True):
            store.client.insert(context=context)
    finally:
        context.data = None


def batch_token(spans: SpanColumns) -> str | None:
    """The deduplication token of a batch from the write-ahead log, None for others:
    ``wal-<log id>-<first record>-<last record>``; ``wal-<first>-<last>`` for a batch of a log
    whose tokens named none (one an earlier release wrote, see
    :attr:`collector.pipeline.wal.WriteAheadLog.legacy_batch`). The parts of a split batch derive
    their tokens from it."""
    wal_range = spans.wal_range
    if not wal_range:
        return None
    log_id = f"{spans.wal_log}-" if spans.wal_log else ""
    return f"wal-{log_id}{wal_range[0]}-{wal_range[1]}"


class ClickHouseSpanExporter:
    """The last :class:`TracesConsumer` of the pipeline: inserts into ``otel_traces``.

    ``consume`` stores every span, raises :class:`TransientError` (nothing to count: retry
    the same batch), or stores all it can and raises :class:`RowsRejected` with the count of
    spans that can never be stored.
    """

    def __init__(
        self, store: ClickHouseStore, telemetry: CollectorTelemetry, *, staged: bool
    ) -> None:
        """``staged``: store batches that carry their OTLP bodies through
        :class:`StagedProtobufInsert` (1.7 to 1.9 times the columnar path end to end in
        ``bench.ingest``), Python making the rows of only the spans that need it. The spans
        stored each way are counted in ``telemetry`` (``spans_written``)."""
        self._store = store
        self._telemetry = telemetry
        self._lock = threading.Lock()
        self._staged = StagedProtobufInsert(store) if staged else None
        self._staging_failures = 0  # batches in a row whose bodies could not be staged
        self._unchecked_since: float | None = None  # a failed insert's start, see _watched
        self._stored_sql = render(load_sql("stored_span_ids.sql"), store.config)
        self._context = store.client.create_insert_context(
            table=store.config.traces_table,
            database=store.config.database,
            column_names=list(COLUMN_NAMES),
            column_oriented=True,
        )

    def consume(self, spans: SpanColumns) -> None:
        if not len(spans):
            return
        token = batch_token(spans)
        by_columns = len(spans)
        try:
            self._check_parts()
            if token and spans.maybe_stored:
                self._insert_again(spans, token)
            else:
                made = self._insert_staged(spans, token)
                if made is None:
                    self._insert(spans, token)
                else:
                    by_columns = made
        except TransientError as exc:
            # The first insert is repeated as it was; so is the whole batch once broken parts
            # are detached, which forgets their tokens (and only theirs).
            as_first = not spans.maybe_stored or isinstance(exc, PartsDetached)
            if token and spans.redo is None and as_first:
                spans.redo = (token, None)
            spans.maybe_stored = True  # the insert may have stored some parts before it failed
            raise
        except PermanentError:
            pass
        else:
            self._written(len(spans), by_columns)
            return
        times = spans.columns.timestamp
        ordered = spans.take(sorted(range(len(spans)), key=times.__getitem__))
        rejected, first = self._isolate(ordered, token, "")
        self._written(len(spans) - rejected, len(spans) - rejected)
        if rejected:
            raise RowsRejected(
                f"{rejected} of {len(spans)} spans refused by ClickHouse, the rest stored; "
                f"first: {first}",
                rejected,
            )

    def _written(self, spans: int, by_columns: int) -> None:
        """Count ``spans`` stored, ``by_columns`` of them from rows Python made."""
        written = self._telemetry.spans_written
        written.labels("columns").inc(by_columns)
        written.labels("staged").inc(spans - by_columns)

    def _isolate(self, spans: SpanColumns, token: str | None, path: str) -> tuple[int, str]:
        """Store what can be stored of ``spans``: (spans refused, the first refusal)."""
        mid = len(spans) // 2
        rejected, first = 0, ""
        halves = (range(mid), range(mid, len(spans)))
        for part, rows in zip("01", halves, strict=True):
            half = spans.take(list(rows))
            sub_token = f"{token}:{path}{part}" if token else None
            try:
                self._insert(half, sub_token)
            except PermanentError as exc:
                if len(half) == 1:
                    count, why = 1, str(exc)
                else:
                    count, why = self._isolate(half, token, path + part)
                rejected += count
                first = first or why
        return rejected, first

    def _insert_again(self, spans: SpanColumns, token: str) -> None:
        """Insert a batch that an earlier insert may have stored, in part or whole, and store
        each span once (see the module docstring).

        After a failure seen (``spans.redo``), the insert that failed is repeated first, as it
        was: where it was stored its token makes it a no-op, and where it was not, in the table
        or in a materialized view further down (ClickHouse fills them one after the other), it
        is stored now. After a crash, what the last insert was is unknown: the table is asked
        which spans it holds, and those are inserted again with the batch's token, for the
        views. Spans the table still lacks (a crash left the token recorded without its rows)
        get a token of their own.
        """
        if spans.redo is not None:
            redo_token, positions = spans.redo
            self._insert(spans if positions is None else spans.take(positions), redo_token)
            missing = self._missing(spans)
        else:
            missing = self._missing(spans)
            absent = set(missing)
            stored = [i for i in range(len(spans)) if i not in absent]
            if stored:
                spans.redo = (token, stored)
                self._insert(spans.take(stored), token)
        log.info(
            "batch %s, inserted again: %d of %d spans were stored",
            token,
            len(spans) - len(missing),
            len(spans),
        )
        if missing:
            own = f"{token}:{uuid.uuid4().hex}"
            spans.redo = (own, missing)
            self._insert(spans.take(missing), own)
        spans.redo = None

    def _missing(self, spans: SpanColumns) -> list[int]:
        """Positions of the spans of ``spans`` that the traces table does not hold."""
        columns = spans.columns
        keys = list(zip(columns.trace_id, columns.span_id, strict=True))
        stored: set[tuple[str, str]] = set()
        # In parts, so that a server's query parameters stay far below its URL size limit.
        for start in range(0, len(keys), _CHECK_SPANS):
            part = range(start, min(start + _CHECK_SPANS, len(keys)))
            times = [columns.timestamp[i] for i in part]
            with _failure_sorted(self._store):
                result = self._store.client.query(
                    self._stored_sql,
                    parameters={
                        "first_ns": min(times),
                        "last_ns": max(times),
                        "trace_ids": sorted({keys[i][0] for i in part}),
                        "span_ids": sorted({keys[i][1] for i in part}),
                    },
                )
            stored.update((trace_id, span_id) for trace_id, span_id in result.result_rows)
        return [i for i, key in enumerate(keys) if key not in stored]

    def _insert(self, spans: SpanColumns, token: str | None) -> None:
        with self._lock, self._watched():
            _insert(self._store, token, self._context, spans.columns)

    @contextmanager
    def _watched(self) -> Iterator[None]:
        """An insert: if it fails, the parts committed since it began are checked before the
        exporter inserts anything else (:meth:`_check_parts`)."""
        started = time.time()
        try:
            yield
        except TransientError:
            if self._unchecked_since is None:
                self._unchecked_since = started
            raise

    def _check_parts(self) -> None:
        """Detach the broken parts committed since a failed insert began (see
        :meth:`collector.storage.store.ClickHouseStore.detach_broken_parts_since`). Raises
        TransientError while they cannot be checked: until they are, a retry's token could be
        swallowed by a broken part's."""
        with self._lock, _failure_sorted(self._store):
            if self._unchecked_since is not None:
                self._store.detach_broken_parts_since(self._unchecked_since)
                self._unchecked_since = None

    def _insert_staged(self, spans: SpanColumns, token: str | None) -> int | None:
        """Store a batch from its OTLP bodies, and return how many of its spans were stored
        from rows Python made; None, having stored nothing, when it has no bodies. Raises like
        :meth:`_insert`.

        When the bodies cannot be staged and the columnar insert then succeeds, the fault is
        the staged path's own: a server without ``format_schema_source``, or a body that
        ClickHouse reads more strictly than the receiver did. After
        :data:`STAGING_FAILURES_TOLERATED` such batches in a row, the staged path is turned
        off, with a warning, and every later batch is stored by columns.
        """
        staged = self._staged
        if staged is None or spans.encoded is None:
            return None
        try:
            with self._watched(), _failure_sorted(self._store, refusable=True):
                by_columns = staged.insert(spans.encoded, _token_settings(token), spans.rows_at)
        except StagingFailed as exc:
            self._insert(spans, token)
            self._staging_failures += 1
            log.warning("%s; the batch was stored by columns", exc)
            if self._staging_failures >= STAGING_FAILURES_TOLERATED:
                log.warning("spans are stored by columns from now on")
                self._staged = None
                staged.close()
            return len(spans)
        self._staging_failures = 0
        return by_columns

    def start(self) -> None:
        """Nothing to start: inserts run on the thread that calls :meth:`consume`."""

    def shutdown(self, timeout_s: float = 30.0) -> None:  # noqa: ARG002 (Component's signature)
        self.close()

    def close(self) -> None:
        """Drop what the exporter keeps in the store (the staging table); idempotent."""
        if self._staged is not None:
            self._staged.close()


class ClickHouseRowExporter:
    """Inserts rows derived from spans into the store's other tables (``requests``…)."""

    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        # One insert context per table and columns: without one, the driver asks the
        # server for the table's structure before every insert.
        self._contexts: dict[tuple[str, tuple[str, ...]], InsertContext] = {}

    def export(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert ``rows``; raises TransientError or PermanentError like a TracesConsumer.

        Rows start with ``Timestamp, TraceId, SpanId``. The token is a digest of their trace
        and span ids, so a retry of the same rows is stored once.
        """
        if rows:
            ids = hashlib.blake2b(digest_size=16)
            for row in rows:
                ids.update(f"{row[1]}{row[2]}".encode())
            self._insert_rows(table, column_names, rows, f"{table}-{ids.hexdigest()}")

    def replace(
        self,
        table: str,
        column_names: Sequence[str],
        trace_ids: Sequence[str],
        span_ids: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> set[str]:
        """Make ``rows`` the rows of ``table`` derived from the spans ``span_ids`` of the
        traces ``trace_ids``, replacing the rows stored for them; return the traces whose rows
        changed. Raises like :meth:`export`.

        Only traces whose rows differ are touched. Their stored rows are first inserted again
        with ``Sign`` -1, so that the per-minute tables, which sum ``Sign``, subtract them;
        then every row of theirs derived from ``span_ids`` is deleted (the old rows, their
        cancellations, and what a replacement cut short left), and ``rows`` inserted. Each
        step starts from what is stored, so the next replacement completes one that failed
        half-way, exactly.
        """
        stored = self._stored_rows(table, column_names, trace_ids, span_ids)
        wanted = Counter(tuple(row) for row in rows)
        changed = {
            trace_id
            for trace_id in {row[1] for row in (*stored, *wanted)}
            if _of_trace(stored, trace_id) != _of_trace(wanted, trace_id)
        }
        if not changed:
            return changed
        cancel = [[*row, -count] for row, count in stored.items() if row[1] in changed]
        nonce = uuid.uuid4().hex  # each attempt starts from what is stored: no token reused
        if cancel:
            self._insert_rows(table, [*column_names, "Sign"], cancel, f"{table}-{nonce}-cancel")
        self._delete(table, sorted(changed), span_ids)
        fresh = [list(row) for row in rows if row[1] in changed]
        if fresh:
            self._insert_rows(table, column_names, fresh, f"{table}-{nonce}-rows")
        return changed

    def _stored_rows(
        self,
        table: str,
        column_names: Sequence[str],
        trace_ids: Sequence[str],
        span_ids: Sequence[str],
    ) -> Counter[tuple[Any, ...]]:
        """The rows of ``table`` derived from ``span_ids`` of ``trace_ids``, net of their
        cancellations, as ``export`` takes them (``Timestamp`` in nanoseconds), counted."""
        _check_derived(table)
        selected = ", ".join(
            "toUnixTimestamp64Nano(Timestamp)" if name == "Timestamp" else f"`{name}`"
            for name in column_names
        )
        with _failure_sorted(self._store):
            result = self._store.client.query(
                f"SELECT {selected}, sum(Sign) AS net "
                f"FROM `{self._store.config.database}`.`{table}` "
                "WHERE TraceId IN {traces:Array(String)} AND SpanId IN {spans:Array(String)} "
                "GROUP BY ALL HAVING net != 0",
                parameters={"traces": list(trace_ids), "spans": list(span_ids)},
            )
        return Counter({tuple(row[:-1]): int(row[-1]) for row in result.result_rows})

    def _delete(self, table: str, trace_ids: Sequence[str], span_ids: Sequence[str]) -> None:
        with _failure_sorted(self._store):
            self._store.client.command(
                f"DELETE FROM `{self._store.config.database}`.`{table}` "
                "WHERE TraceId IN {traces:Array(String)} AND SpanId IN {spans:Array(String)}",
                parameters={"traces": list(trace_ids), "spans": list(span_ids)},
            )

    def _insert_rows(
        self,
        table: str,
        column_names: Sequence[str],
        rows: Sequence[Sequence[Any]],
        token: str,
    ) -> None:
        with self._lock:
            key = (table, tuple(column_names))
            context = self._contexts.get(key)
            if context is None:
                with _failure_sorted(self._store):
                    context = self._store.client.create_insert_context(
                        table=table,
                        database=self._store.config.database,
                        column_names=list(column_names),
                    )
                self._contexts[key] = context
            _insert(self._store, token, context, rows)

    def existing_traces(self, table: str, trace_ids: Sequence[str]) -> set[str]:
        """Which of ``trace_ids`` have rows in ``table`` (``requests`` or ``cache_events``)."""
        _check_derived(table)
        if not trace_ids:
            return set()
        with _failure_sorted(self._store):
            result = self._store.client.query(
                f"SELECT DISTINCT TraceId FROM `{self._store.config.database}`.`{table}` "
                "WHERE TraceId IN {ids:Array(String)}",
                parameters={"ids": list(trace_ids)},
            )
        return {row[0] for row in result.result_rows}


def _check_derived(table: str) -> None:
    if table not in ("requests", "cache_events"):
        raise ValueError(f"not a derived table: {table!r}")


def _of_trace(rows: Counter[tuple[Any, ...]], trace_id: str) -> Counter[tuple[Any, ...]]:
    """The rows of ``trace_id`` (rows start ``Timestamp, TraceId``), with their counts."""
    return Counter({row: count for row, count in rows.items() if row[1] == trace_id})
