"""Store spans straight from their OTLP request bodies: ClickHouse parses the protobuf and
flattens it into ``otel_traces`` rows, so that Python never reads an attribute.

For each batch, under one lock:

1. this exporter's own ``Memory`` staging table is emptied, and the bodies go in as one row
   (``FORMAT ProtobufSingle``: bodies of a message whose only field is repeated, one after
   another, are that message with all their items), read with ``sql/otlp_trace.proto``: the
   embedded engine reads the file in place, a server gets its text with the insert
   (``format_schema_source = 'string'``), so that it needs no schema file;
2. ``sql/staged_spans_unsupported.sql`` names the spans that hold a value only
   :func:`collector.pipeline.translator.translate` writes exactly (a map value, a list of
   other than plain strings, a key twice in one map); the caller makes their rows in Python,
   and only theirs, which go to a second staging table;
3. ``INSERT INTO otel_traces SELECT …`` (``sql/staged_spans_insert.sql``) stores every span,
   the others from the bodies and those from their rows, with the caller's settings (the
   batch's deduplication token). This is one insert into the traces table, so every
   materialized view fires as for a columnar insert, and a batch is far below
   ``min_insert_block_size_rows``, so it is one block with one token.

The receiver has already rejected, and counted, the spans no store could hold; the bodies
here hold only spans that can be stored.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.config import StoreConfig
from collector.consumer import COLUMN_NAMES, Columns
from collector.storage.migrations import load_sql, render
from collector.storage.store import ClickHouseStore

log = logging.getLogger(__name__)

STAGING_PREFIX = "nextrace_staging_"


def _schema_settings(config: StoreConfig) -> dict[str, str]:
    """Where ClickHouse finds ``sql/otlp_trace.proto``: read in place by the embedded engine; a
    server gets the text with each insert, and keeps it in its own schema folder."""
    schema = resources.files("collector") / "sql" / "otlp_trace.proto"
    if config.interface == "chdb" and isinstance(schema, Path):
        # Sent as a string, the embedded engine would cache it in the working directory.
        return {"format_schema": str(schema)}
    return {"format_schema": schema.read_text(encoding="utf-8"), "format_schema_source": "string"}


def drop_leftover_staging_tables(store: ClickHouseStore) -> list[str]:
    """Drop the staging tables that collectors killed before their shutdown left in an
    embedded store, and return their names. Only for an embedded store, which one process
    opens at a time, and before this process's exporter makes its own."""
    database = store.config.database
    leftovers = [
        name
        for (name,) in store.client.query(
            "SELECT name FROM system.tables WHERE database = {db:String} "
            "AND startsWith(name, {prefix:String})",
            parameters={"db": database, "prefix": STAGING_PREFIX},
        ).result_rows
    ]
    for name in leftovers:
        store.client.command(f"DROP TABLE IF EXISTS `{database}`.`{name}`")
    return leftovers


# The predicate of a batch in which every span is staged: the insert needs no filter.
_NONE_UNSUPPORTED = "((rs, span) -> false) AS unsupported_span"


def _sql_text(name: str) -> str:
    """``sql/<name>`` without its comment lines, to be placed inside another statement."""
    lines = load_sql(name).splitlines()
    # Ends with a newline: what follows the placeholder must not join a last line's comment.
    return "".join(f"{line}\n" for line in lines if not line.lstrip().startswith("--"))


def _rendered(name: str, config: StoreConfig, names: dict[str, str], **fragments: str) -> str:
    """``sql/<name>`` rendered with the identifiers ``names``, after each of its ``${key}``
    placeholders named in ``fragments`` is replaced by that SQL text (the predicate, the
    key-value type), which is not an identifier and is not validated as one."""
    text = load_sql(name)
    for key, fragment in fragments.items():
        text = text.replace(f"${{{key}}}", fragment)
    return render(text, config, names)


class StagingFailed(Exception):
    """The bodies of a batch could not be put in the staging table; nothing was stored."""


class StagedProtobufInsert:
    """Stores batches of OTLP request bodies through a staging table of its own (see the
    module docstring) into the store's traces table, or into ``table`` (a table of its shape,
    for the benchmark's breakdown). ``close`` drops the staging table; it is idempotent."""

    def __init__(self, store: ClickHouseStore, *, table: str | None = None) -> None:
        self._store = store
        self._lock = threading.RLock()
        config = replace(store.config, traces_table=table) if table else store.config
        # A table per exporter: collectors that share a server must not read each other's.
        staging = f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
        extra = {"staging": staging}
        self._staging = f"`{store.config.database}`.`{staging}`"
        self._rows_table = f"{staging}_rows"
        predicate = _sql_text("staged_spans_predicate.sql")
        insert = "staged_spans_insert.sql"
        self._insert_sql = _rendered(insert, config, extra, unsupported=predicate)
        # Most batches hold no span that needs rows from Python: the predicate is evaluated
        # once for them, in the staging query, not again in the insert.
        self._insert_all_sql = _rendered(insert, config, extra, unsupported=_NONE_UNSUPPORTED)
        self._unsupported_sql = _rendered(
            "staged_spans_unsupported.sql", config, extra, unsupported=predicate
        )
        self._format_settings = {
            **_schema_settings(store.config),
            "format_schema_message_name": "ExportTraceServiceRequest",
            "input_format_protobuf_oneof_presence": 1,
        }
        key_values = _sql_text("staging_key_values.sql")
        tables = _rendered("staging_table.sql", config, extra, key_values=key_values)
        for statement in tables.split(";\n"):
            store.client.command(statement)
        self._closed = False

    def insert(
        self,
        bodies: Sequence[bytes],
        settings: dict[str, Any],
        rows_of: Callable[[list[int]], Columns],
    ) -> int:
        """Store the spans of ``bodies`` with the insert ``settings`` (the batch's token), and
        return how many were stored from rows Python made: ``rows_of(positions)``, the rows of
        the spans at those positions of the batch.

        :class:`StagingFailed`, having stored nothing, when the bodies could not be staged.
        A ClickHouseError of the ``INSERT … SELECT`` itself is raised as it is: that insert
        may have stored the batch, or part of it.
        """
        with self._lock:
            positions = self.stage(bodies)
            if positions:
                rows = rows_of(positions)
                try:
                    self._store.client.insert(
                        self._rows_table,
                        rows.lists(),
                        database=self._store.config.database,
                        column_names=COLUMN_NAMES,
                        column_oriented=True,
                    )
                except ClickHouseError as exc:
                    raise StagingFailed(f"rows made in Python could not be staged: {exc}") from exc
            # One thread reads both parts one after the other, so that they are squashed into
            # one block: with more, each part was a block, a part and a token of its own.
            insert = self._insert_sql if positions else self._insert_all_sql
            self._store.client.command(insert, settings={**settings, "max_threads": 1})
            return len(positions)

    def stage(self, bodies: Sequence[bytes]) -> list[int]:
        """Steps 1 and 2 of :meth:`insert`: put ``bodies`` in the staging table (and empty the
        rows table), and return the positions of the spans that need rows made in Python.
        :class:`StagingFailed` when they could not be staged."""
        client = self._store.client
        with self._lock:
            try:
                # Emptied first, so that no failure can leave rows for the next batch.
                client.command(f"TRUNCATE TABLE {self._staging}")
                client.command(
                    f"TRUNCATE TABLE `{self._store.config.database}`.`{self._rows_table}`"
                )
                client.raw_insert(
                    self._staging,
                    None,
                    insert_block=b"".join(bodies),
                    settings=self._format_settings,
                    fmt="ProtobufSingle",
                )
                result = client.query(self._unsupported_sql).result_rows
            except ClickHouseError as exc:
                raise StagingFailed(f"OTLP request bodies could not be staged: {exc}") from exc
            return [int(position) for row in result for position in row[0]]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            database = self._store.config.database
            for table in (self._staging, f"`{database}`.`{self._rows_table}`"):
                try:
                    self._store.client.command(f"DROP TABLE IF EXISTS {table}")
                except ClickHouseError as exc:  # the store may be gone already
                    log.debug("staging table %s not dropped: %s", table, exc)
