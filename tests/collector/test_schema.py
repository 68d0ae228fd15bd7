"""The stored schema matches the contrib exporter's, and migrations keep data."""

from __future__ import annotations

import uuid

import pytest

from collector.config import StoreConfig
from collector.consumer import COLUMN_NAMES
from collector.pipeline.translator import translate
from collector.storage.migrations import apply_migrations, migrations, render
from collector.storage.store import connect, open_store
from tests.builders import insert_spans, make_request, make_span
from tests.support.schema_dump import SCHEMA, TTL_DAYS, created, migrated_schema

WARMUP_ATTRS = {
    "nextrace.phase": "warmup",
    "nextrace.build_id": "build-7",
    "nextrace.warmup.trigger": "deploy",
    "nextrace.warmup.outcome": "ok",
    "cache.key": "not the warm-up's own",
}

# Column types of otel_traces as the OpenTelemetry Collector contrib exporter creates it.
EXPORTER_COLUMNS = {
    "Timestamp": "DateTime64(9)",
    "TraceId": "String",
    "SpanId": "String",
    "ParentSpanId": "String",
    "TraceState": "String",
    "SpanName": "LowCardinality(String)",
    "SpanKind": "LowCardinality(String)",
    "ServiceName": "LowCardinality(String)",
    "ResourceAttributes": "Map(LowCardinality(String), String)",
    "ScopeName": "String",
    "ScopeVersion": "String",
    "SpanAttributes": "Map(LowCardinality(String), String)",
    "Duration": "UInt64",
    "StatusCode": "LowCardinality(String)",
    "StatusMessage": "String",
    "Events.Timestamp": "Array(DateTime64(9))",
    "Events.Name": "Array(LowCardinality(String))",
    "Events.Attributes": "Array(Map(LowCardinality(String), String))",
    "Links.TraceId": "Array(String)",
    "Links.SpanId": "Array(String)",
    "Links.TraceState": "Array(String)",
    "Links.Attributes": "Array(Map(LowCardinality(String), String))",
}


def test_otel_traces_has_the_exporter_columns_and_types(store_config: StoreConfig):
    store = open_store(store_config)
    try:
        described = store.client.query("DESCRIBE TABLE otel_traces").result_rows
        # What a writer writes and SELECT * returns is the exporter's table; nextrace's own
        # columns are MATERIALIZED, computed by the store from those.
        assert {row[0]: row[1] for row in described if row[2] == ""} == EXPORTER_COLUMNS
        assert {row[0]: row[2] for row in described if row[2] != ""} == {
            "Phase": "MATERIALIZED",
            "NextSpanType": "MATERIALIZED",
        }
        assert set(COLUMN_NAMES) == set(EXPORTER_COLUMNS)
        lookup = store.client.query("DESCRIBE TABLE otel_traces_trace_id_ts").result_rows
        assert [(r[0], r[1]) for r in lookup] == [
            ("TraceId", "String"),
            ("Start", "DateTime"),
            ("End", "DateTime"),
        ]
    finally:
        store.close()


def test_the_lookup_view_records_each_trace_time_range(store_config: StoreConfig):
    store = open_store(store_config)
    try:
        trace = bytes.fromhex("11" * 16)
        t0 = 1_800_000_000_000_000_000
        request = make_request(
            [
                make_span("a", trace_id=trace, start_ns=t0),
                make_span("b", trace_id=trace, start_ns=t0 + 5_000_000_000),
            ]
        )
        store.client.insert(
            "otel_traces",
            translate(request).spans.columns,
            column_names=list(COLUMN_NAMES),
            column_oriented=True,
        )
        rows = store.client.query(
            "SELECT TraceId, toUnixTimestamp(min(Start)), toUnixTimestamp(max(End)) "
            "FROM otel_traces_trace_id_ts GROUP BY TraceId"
        ).result_rows
        assert rows == [("11" * 16, 1_800_000_000, 1_800_000_005)]
    finally:
        store.close()


def test_spans_written_as_the_exporter_writes_them_get_their_phase_and_lifecycle_rows(
    store_config: StoreConfig,
):
    store = open_store(store_config)
    try:
        spans = [
            make_span("warmup deploy", attrs=WARMUP_ATTRS),
            make_span("render", attrs={"nextrace.phase": "render", "next.route": "/a"}),
            make_span("no phase"),
        ]
        insert_spans(store.client, spans)
        assert store.client.query(
            "SELECT SpanName, Phase FROM otel_traces ORDER BY SpanName"
        ).result_rows == [
            ("no phase", ""),
            ("render", "render"),
            ("warmup deploy", "warmup"),
        ]
        ((phase, build, attributes),) = store.client.query(
            "SELECT Phase, BuildId, Attributes FROM lifecycle_spans"
        ).result_rows
        assert (phase, build) == ("warmup", "build-7")
        assert attributes == {  # the warm-up's own attributes only
            "nextrace.warmup.trigger": "deploy",
            "nextrace.warmup.outcome": "ok",
        }
    finally:
        store.close()


def test_an_older_store_gets_the_phase_column_and_lifecycle_rows(chdb_path):
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=before_phase")
    client = connect(config)
    try:
        apply_migrations(client, config, up_to=20)  # before the Phase column
        insert_spans(client, [make_span("warmup deploy", attrs=WARMUP_ATTRS)], config.database)
    finally:
        client.close()
    store = open_store(config)
    try:
        assert store.client.query("SELECT Phase FROM otel_traces").result_rows == [("warmup",)]
        assert store.client.query(
            "SELECT Phase, Attributes['nextrace.warmup.outcome'] FROM lifecycle_spans"
        ).result_rows == [("warmup", "ok")]
        assert apply_migrations(store.client, config) == []  # backfilled once
        assert store.client.query("SELECT count() FROM lifecycle_spans").result_rows == [(1,)]
    finally:
        store.close()


def test_migrations_run_once_and_a_reopened_store_keeps_its_data(store_config: StoreConfig):
    store = open_store(store_config)
    insert_spans(store.client, [make_span("kept")])
    versions = store.client.query(
        "SELECT Version FROM nextrace_schema_migrations ORDER BY Version"
    ).result_rows
    assert [v[0] for v in versions] == [m.version for m in migrations()]
    assert apply_migrations(store.client, store_config) == []
    store.close()
    reopened = open_store(store_config)
    try:
        assert reopened.client.query("SELECT SpanName FROM otel_traces").result_rows == [("kept",)]
        assert reopened.client.query(
            "SELECT count() FROM nextrace_schema_migrations"
        ).result_rows == [(len(migrations()),)]
    finally:
        reopened.close()


def test_a_ttl_is_written_into_the_table(chdb_path):
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=ttl_check", ttl_days=3)
    store = open_store(config)
    try:
        ddl = store.client.query("SHOW CREATE TABLE otel_traces").result_rows[0][0]
        assert "TTL toDateTime(Timestamp) + toIntervalDay(3)" in ddl
    finally:
        store.close()


def _older_store_with_spans(chdb_path, database: str, spans: int) -> StoreConfig:
    """A store at the schema before 0028 (sorted as the exporter sorts), holding ``spans``
    spans of 4 traces, two of them cache lookups."""
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database={database}")
    client = connect(config)
    try:
        apply_migrations(client, config, up_to=27)
        batch = [
            make_span(
                f"span {i}",
                trace_id=bytes([i % 4 + 1]) * 16,
                attrs={"cache.layer": "data", "cache.result": "hit"} if i < 2 else {},
            )
            for i in range(spans)
        ]
        insert_spans(client, batch, config.database)
    finally:
        client.close()
    return config


def _sorting_key(store) -> str:
    return str(
        store.client.query(
            "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() "
            "AND name = 'otel_traces'"
        ).result_rows[0][0]
    )


@pytest.mark.parametrize("crashed_after", [0, 3, 4], ids=["whole", "after-copy", "after-exchange"])
def test_an_older_store_is_sorted_by_trace_keeping_every_span_once(chdb_path, crashed_after):
    config = _older_store_with_spans(chdb_path, f"sorting_{crashed_after}", spans=40)
    if crashed_after:  # the first statements of 0028 ran, then the process died
        (migration,) = [m for m in migrations() if m.version == 28]
        client = connect(config)
        try:
            for statement in render(migration.template, config).split(";\n")[:crashed_after]:
                client.command(statement)
        finally:
            client.close()
    store = open_store(config)
    try:
        assert _sorting_key(store) == "toStartOfFifteenMinutes(Timestamp), TraceId, Timestamp"
        assert store.client.query(
            "SELECT name, compression_codec FROM system.columns WHERE database = "
            "currentDatabase() AND table = 'otel_traces' AND name LIKE '%Attributes' ORDER BY name"
        ).result_rows == [
            ("Events.Attributes", "CODEC(ZSTD(1))"),
            ("Links.Attributes", "CODEC(ZSTD(1))"),
            ("ResourceAttributes", "CODEC(ZSTD(6))"),
            ("SpanAttributes", "CODEC(ZSTD(6))"),  # 0040
        ]
        assert store.client.query(
            "SELECT name FROM system.data_skipping_indices WHERE database = currentDatabase() "
            "AND table = 'otel_traces'"
        ).result_rows == [("idx_duration",)]
        assert store.client.query(
            "SELECT count(), uniqExact(SpanId), uniqExact(TraceId) FROM otel_traces"
        ).result_rows == [(40, 40, 4)]
        assert store.client.query("SHOW TABLES LIKE '%sorted_by_trace%'").result_rows == []
        # The materialized views follow the table: a span stored now has its cache event.
        insert_spans(
            store.client, [make_span("later", attrs={"cache.layer": "cdn", "cache.result": "miss"})]
        )
        assert store.client.query(
            "SELECT Layer, count() FROM cache_events GROUP BY Layer ORDER BY Layer"
        ).result_rows == [("cdn", 1), ("data", 2)]
    finally:
        store.close()


@pytest.mark.parametrize("ttl_days", [0, 7])
def test_a_new_store_made_from_schema_sql_is_the_store_the_migrations_make(chdb_path, ttl_days):
    # A new store is made from schema.sql; an existing one is brought up by the migrations.
    # Both must give every table and view the same SHOW CREATE, or the two kinds of stores
    # would answer the dashboards differently.
    made = {}
    for way in ("migrations", "schema"):
        database = f"s_{way}_{ttl_days}_{uuid.uuid4().hex[:8]}"
        config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database={database}", ttl_days=ttl_days)
        client = connect(config)
        applied = apply_migrations(client, config, from_schema=way == "schema")
        assert applied == [m.name for m in migrations()]  # every migration recorded
        made[way] = {
            name: sql.replace(f"{database}.", "DB.")
            for name, sql in created(client, database).items()
        }
        client.command(f"DROP DATABASE `{database}` SYNC")
    assert made["schema"] == made["migrations"]


def test_schema_sql_is_written_from_the_migrations(chdb_path):
    config = StoreConfig.from_dsn(
        f"chdb://{chdb_path}?database=s_dump_{uuid.uuid4().hex[:8]}", ttl_days=TTL_DAYS
    )
    assert SCHEMA.read_text(encoding="utf-8") == migrated_schema(config), (
        "collector/sql/schema.sql is out of date: run `python -m tests.support.schema_dump`"
    )
    connect(config).command(f"DROP DATABASE `{config.database}` SYNC")
