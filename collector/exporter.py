"""Write batches of spans to ClickHouse with one columnar insert each."""

from __future__ import annotations

import threading

from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.consumer import COLUMN_NAMES, SpanColumns
from collector.errors import PermanentError, TransientError
from collector.store import ClickHouseStore, is_transient


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
                self._store.client.insert(context=self._context)
            except ClickHouseError as exc:
                if is_transient(exc):
                    raise TransientError(f"ClickHouse is unavailable: {exc}") from exc
                raise PermanentError(f"ClickHouse refused the batch: {exc}") from exc
            finally:
                self._context.data = None
