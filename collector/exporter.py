"""Write to ClickHouse with one columnar insert per batch."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.consumer import COLUMN_NAMES, SpanColumns
from collector.errors import PermanentError, TransientError
from collector.store import ClickHouseStore, is_transient


def _insert(store: ClickHouseStore, **insert: Any) -> None:
    """One insert, its failure sorted by what the caller should do."""
    try:
        store.client.insert(**insert)
    except ClickHouseError as exc:
        if is_transient(exc):
            raise TransientError(f"ClickHouse is unavailable: {exc}") from exc
        raise PermanentError(f"ClickHouse refused the batch: {exc}") from exc


class ClickHouseSpanExporter:
    """The last :class:`TracesConsumer` of the pipeline: inserts into ``otel_traces``.

    The insert context (column types, serializers) is built once and reused,
    so an insert costs one round trip and no per-span Python work beyond the
    driver's column serialization.
    """

    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._context = store.client.create_insert_context(
            table=store.config.traces_table,
            database=store.config.database,
            column_names=list(COLUMN_NAMES),
            column_oriented=True,
        )

    def consume(self, spans: SpanColumns) -> None:
        if not len(spans):
            return
        with self._lock:
            self._context.data = spans.columns
            try:
                _insert(self._store, context=self._context)
            finally:
                self._context.data = None


class ClickHouseRowExporter:
    """Inserts rows derived from spans into the store's other tables (``requests``…)."""

    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store

    def export(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert ``rows``; raises TransientError or PermanentError like a TracesConsumer."""
        if rows:
            _insert(
                self._store,
                table=table,
                data=rows,
                column_names=list(column_names),
                database=self._store.config.database,
            )
