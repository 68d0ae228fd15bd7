"""The exporter stores a batch exactly once, even when a crash left its token without its rows,
and isolates the rows ClickHouse refuses."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from collector.config import StoreConfig
from collector.consumer import SpanColumns
from collector.errors import RowsRejected, TransientError
from collector.nextjs.rows import RequestRow
from collector.pipeline.translator import screen, translate
from collector.service import Collector
from collector.storage.exporter import (
    STAGING_FAILURES_TOLERATED,
    ClickHouseRowExporter,
    ClickHouseSpanExporter,
)
from collector.storage.store import ClickHouseStore
from collector.telemetry import CollectorTelemetry
from tests.builders import make_request, make_span
from tests.support.store_rows import count, forget_rows, request_row


def batch(count: int, first_wal: int = 1, form: str = "columns") -> SpanColumns:
    """``count`` spans with write-ahead log ids, in columns, or as the receiver makes them:
    from their OTLP body, which the exporter stores through the staging table."""
    made = [make_span(f"s{i}", attrs={"cache.layer": "data"}) for i in range(count)]
    request = make_request(made)
    spans = translate(request).spans if form == "columns" else screen(request, None).spans
    spans.wal_ids = list(range(first_wal, first_wal + count))
    return spans


FORMS = pytest.mark.parametrize("form", ["columns", "bodies"])


@FORMS
def test_a_batch_inserted_twice_is_stored_once(collector: Collector, form: str):
    assert collector.store is not None
    exporter = ClickHouseSpanExporter(collector.store, CollectorTelemetry(), staged=True)
    spans = batch(5, form=form)
    exporter.consume(spans)
    exporter.consume(spans)  # a retry after an ambiguous failure, or a replay after a crash
    assert count(collector) == 5
    exporter.consume(batch(5, first_wal=6, form=form))
    assert count(collector) == 10
    # The same spans sent again by a client are a new record of the log: stored again.
    spans.wal_ids = [11, 15]
    exporter.consume(spans)
    assert count(collector) == 15
    # The materialized views follow exactly, through the deduplicated retry too.
    assert count(collector, "SELECT count() FROM cache_events") == 15
    assert count(collector, "SELECT sum(Lookups) FROM cache_events_1m") == 15


@FORMS
def test_a_token_that_outlived_its_rows_does_not_swallow_a_replayed_batch(
    collector: Collector, form: str
):
    assert collector.store is not None
    exporter = ClickHouseSpanExporter(collector.store, CollectorTelemetry(), staged=True)
    spans = batch(5, form=form)
    exporter.consume(spans)
    forget_rows(collector)
    exporter.consume(spans)  # a plain retry with the same token: ClickHouse drops it
    assert count(collector) == 0
    spans.maybe_stored = True  # as replay marks the batch a crash interrupted
    exporter.consume(spans)
    assert count(collector) == 5
    assert count(collector, "SELECT count() FROM cache_events") == 5
    assert count(collector, "SELECT sum(Lookups) FROM cache_events_1m") == 5


@FORMS
def test_a_replayed_batch_stored_in_part_is_completed_once(collector: Collector, form: str):
    assert collector.store is not None
    exporter = ClickHouseSpanExporter(collector.store, CollectorTelemetry(), staged=True)
    spans = batch(5, form=form)
    exporter.consume(spans)
    spans.maybe_stored = True
    exporter.consume(spans)  # stored whole already: nothing twice
    assert count(collector) == 5
    forget_rows(collector, [spans.columns.span_id[1], spans.columns.span_id[3]])
    spans.maybe_stored = True
    exporter.consume(spans)
    assert count(collector, "SELECT count() FROM otel_traces") == 5
    assert count(collector, "SELECT uniqExact(SpanName) FROM otel_traces") == 5
    assert count(collector, "SELECT count() FROM cache_events") == 5


def break_parts(collector: Collector, table: str) -> list[str]:
    """Empty every file of the active parts of ``table``: what a part written while the disk
    filled up can look like once committed. Returns the parts' names."""
    assert collector.store is not None
    client = collector.store.client
    parts = client.query(
        "SELECT name, path FROM system.parts WHERE active AND database = {d:String} "
        "AND table = {t:String}",
        parameters={"d": collector.store.config.database, "t": table},
    ).result_rows
    for _, path in parts:
        for file in Path(path).iterdir():
            os.truncate(file, 0)
    client.command("SYSTEM DROP MARK CACHE")
    return [name for name, _ in parts]


@FORMS
def test_a_broken_part_is_detached_and_the_batch_it_held_stored_again(
    collector: Collector, form: str
):
    assert collector.store is not None
    exporter = ClickHouseSpanExporter(collector.store, CollectorTelemetry(), staged=True)
    spans = batch(5, form=form)
    exporter.consume(spans)
    [part] = break_parts(collector, "otel_traces")
    # The insert failed after committing the part (the disk filled up): the batch is retried.
    spans.maybe_stored = True
    with pytest.raises(TransientError, match=r"broken parts detached \(otel_traces part"):
        exporter.consume(spans)  # the check of what was stored cannot read the broken part
    detached = collector.store.client.query(
        "SELECT name FROM system.detached_parts WHERE table = 'otel_traces'"
    ).result_rows
    assert detached == [(part,)]
    exporter.consume(spans)  # the retry
    assert count(collector) == 5
    # The materialized views had these spans before the part broke: they keep them once.
    assert count(collector, "SELECT count() FROM cache_events") == 5


@FORMS
def test_a_broken_part_a_failed_insert_committed_does_not_swallow_its_retry(
    collector: Collector, form: str
):
    # On a full disk, an insert fails further down its chain of views, and the table before
    # the failure keeps a part with empty files: the engine counts its rows, and its token
    # swallowed the retry; a restart then dropped them (1,000 acknowledged spans, measured).
    assert collector.store is not None
    client = collector.store.client
    exporter = ClickHouseSpanExporter(collector.store, CollectorTelemetry(), staged=True)
    spans = batch(5, form=form)
    # A view that fails once the table's part is written, as a full disk's reservation does.
    client.command("CREATE TABLE failing (x UInt8) ENGINE = Null")
    client.command(
        "CREATE MATERIALIZED VIEW failing_mv TO failing AS "
        "SELECT throwIf(1, 'Cannot reserve 1.00 MiB, not enough space') AS x FROM otel_traces"
    )
    with pytest.raises(TransientError, match="not enough space"):
        exporter.consume(spans)
    [part] = break_parts(collector, "otel_traces")
    client.command("DROP VIEW failing_mv")
    exporter.consume(spans)  # the retry
    detached = client.query(
        "SELECT name FROM system.detached_parts WHERE table = 'otel_traces'"
    ).result_rows
    assert detached == [(part,)]
    checked = client.query(
        "CHECK TABLE otel_traces", settings={"check_query_single_value_result": 1}
    ).result_rows
    assert [list(row) for row in checked] == [[1]]  # nothing broken for a restart to drop
    assert count(collector) == 5
    assert count(collector, "SELECT count() FROM cache_events") == 5
    assert count(collector, "SELECT sum(Lookups) FROM cache_events_1m") == 5


def test_a_store_that_cannot_stage_bodies_gets_them_by_columns(
    collector: Collector, caplog: pytest.LogCaptureFixture
):
    assert collector.store is not None
    exporter = ClickHouseSpanExporter(collector.store, CollectorTelemetry(), staged=True)
    # What a server without the staged path's features does: its first statement fails.
    staging = collector.store.client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND name LIKE 'nextrace_staging_%'"
    ).result_rows
    for (name,) in staging:
        collector.store.client.command(f"DROP TABLE `{name}`")
    for first in range(1, 5 * STAGING_FAILURES_TOLERATED, 5):
        assert "from now on" not in caplog.text
        exporter.consume(batch(5, first_wal=first, form="bodies"))
        assert "the batch was stored by columns" in caplog.text
    assert "stored by columns from now on" in caplog.text
    exporter.consume(batch(5, first_wal=100, form="bodies"))
    total = 5 * (STAGING_FAILURES_TOLERATED + 1)
    assert count(collector) == total
    assert count(collector, "SELECT count() FROM cache_events") == total


def test_one_row_the_store_refuses_costs_only_itself(collector: Collector):
    assert collector.store is not None
    exporter = ClickHouseSpanExporter(collector.store, CollectorTelemetry(), staged=True)
    spans = batch(9)
    spans.columns.timestamp[4] = 2**64 + 1  # no DateTime64(9) can hold it
    with pytest.raises(RowsRejected, match="1 of 9") as refused:
        exporter.consume(spans)
    assert refused.value.rejected == 1
    assert count(collector) == 8
    with pytest.raises(RowsRejected):  # and again, exactly: the stored parts are deduplicated
        exporter.consume(spans)
    assert count(collector) == 8


def test_a_replacement_cut_short_is_completed_exactly_by_the_next(collector: Collector):
    assert collector.store is not None
    rows = ClickHouseRowExporter(collector.store)
    columns = RequestRow.columns()
    old, new = request_row(status=404), request_row(status=200)
    rows.export("requests", columns, [old.values()])
    # A replacement that stopped after cancelling the old row (a crash, a failed delete).
    collector.store.client.insert(
        "requests", [[*old.values(), -1]], column_names=[*columns, "Sign"]
    )
    changed = rows.replace("requests", columns, [old.trace_id], [old.span_id], [new.values()])
    assert changed == {old.trace_id}
    assert count(collector, "SELECT count() FROM requests") == 1
    assert count(collector, "SELECT any(StatusCode) FROM requests") == 200
    assert count(collector, "SELECT sum(Requests) FROM requests_1m") == 1
    # The same rows again change nothing.
    assert rows.replace("requests", columns, [old.trace_id], [old.span_id], [new.values()]) == set()
    assert count(collector, "SELECT count() FROM requests") == 1


class _Unreachable:
    """A client whose server is gone: what clickhouse-connect raises on a refused connection."""

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            raise OperationalError("Error HTTPConnectionPool: Connection refused")

        return call


@pytest.mark.parametrize("call", ["export", "replace", "existing_traces"])
def test_the_row_exporter_says_retry_when_clickhouse_is_unreachable(call: str, tmp_path: Path):
    config = StoreConfig.from_dsn(f"chdb://{tmp_path}/store")
    rows = ClickHouseRowExporter(ClickHouseStore(config, _Unreachable()))  # type: ignore[arg-type]
    row = request_row()
    columns = RequestRow.columns()
    calls: dict[str, Callable[[], object]] = {
        "export": lambda: rows.export("requests", columns, [row.values()]),
        "replace": lambda: rows.replace(
            "requests", columns, [row.trace_id], [row.span_id], [row.values()]
        ),
        # A replayed trace is looked up first: an outage there is retried, not dropped.
        "existing_traces": lambda: rows.existing_traces("requests", [row.trace_id]),
    }
    with pytest.raises(TransientError, match="unavailable"):
        calls[call]()
