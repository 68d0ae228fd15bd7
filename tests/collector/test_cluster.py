"""The schema on a cluster: every statement, rewritten from the same .sql files, is one
ClickHouse's own parser accepts, and together they make the tables the dashboards read into
Distributed tables over replicated local ones, with the views on the local tables.

No cluster can run here; the embedded engine parses what it cannot run (``formatQuery``),
and the single-server schema, which it does run, says which tables there must be."""

from __future__ import annotations

import re
from typing import Any

import pytest

from collector.config import StoreConfig
from collector.storage.cluster import LOCAL_SUFFIX
from collector.storage.migrations import cluster_schema, load_sql, migrations, planned_statements
from tests.conftest import stored

CLUSTER = StoreConfig.from_dsn("http://u:p@clickhouse:8123?database=otel", cluster="traces")


def plan(config: StoreConfig, *, stores_spans: bool = False) -> list[str]:
    """Every statement a fresh store runs, in order (a migration that copies spans runs on a
    cluster only while it stores none)."""
    schema = cluster_schema(config) if config.cluster else None
    templates = [load_sql("create_database.sql"), load_sql("schema_migrations.sql")]
    done = []
    for template in templates:
        done += planned_statements(config, template, schema=schema)
    for migration in migrations():
        copying = bool(migration.single_node and config.cluster)
        if copying and stores_spans:
            continue
        done += planned_statements(config, migration.template, copies_spans=copying, schema=schema)
    return done


def parsed(collector: Any, statement: str) -> str:
    """The statement as ClickHouse's parser reads it back, in one line."""
    (row,) = stored(collector, f"SELECT formatQuerySingleLine({quote(statement)})")
    return str(row[0])


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.fixture(scope="module")
def cluster_plan() -> list[str]:
    return plan(CLUSTER)


def test_every_statement_on_a_cluster_is_one_clickhouse_parses(collector, cluster_plan):
    for statement in cluster_plan:
        text = parsed(collector, statement)
        if re.match(r"(CREATE|ALTER|DROP|EXCHANGE|RENAME)\b", text):
            assert "ON CLUSTER traces" in text, text[:120]


def test_the_parser_refuses_what_a_cluster_would_refuse(collector):
    with pytest.raises(Exception, match="Syntax error"):
        parsed(collector, "CREATE TABLE `otel`.`t` ON CLUSTER `traces` AS ENGINE = Distributed(")


def test_every_table_of_one_server_is_a_distributed_table_over_a_replicated_one(
    collector, cluster_plan
):
    single = {
        name
        for (name,) in stored(
            collector,
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine LIKE '%MergeTree' AND NOT startsWith(name, '.')",
        )
    }
    assert {"otel_traces", "requests", "cache_events", "lifecycle_spans"} <= single
    distributed = {}
    local = set()
    for statement in cluster_plan:
        found = re.match(
            r"CREATE TABLE IF NOT EXISTS `otel`\.`(\w+)` ON CLUSTER `traces` AS "
            r"`otel`\.`(\w+)` ENGINE = Distributed\(`traces`, `otel`, `(\w+)`, (.+)\)$",
            statement,
        )
        if found:
            name, source, target, key = found.groups()
            assert source == target == name + LOCAL_SUFFIX
            distributed[name] = key
        created = re.match(r"CREATE TABLE IF NOT EXISTS `otel`\.`(\w+)` ON CLUSTER", statement)
        if created and "ENGINE = Distributed" not in statement:
            assert re.search(r"ENGINE = Replicated\w*MergeTree", statement), statement[:200]
            local.add(created.group(1))
    assert set(distributed) == single  # the names the dashboards, alerts and commands read
    assert local == {name + LOCAL_SUFFIX for name in single}
    # All spans of a trace, and the rows derived from them, on one shard.
    for name in ("otel_traces", "otel_traces_trace_id_ts", "requests", "cache_events"):
        assert distributed[name] == "cityHash64(TraceId)", name
    assert distributed["lifecycle_spans"] == "cityHash64(TraceId)"


def test_materialized_views_on_a_cluster_read_and_write_local_tables(cluster_plan):
    views = [s for s in cluster_plan if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) >= 8
    for view in views:
        tables = re.findall(r"`otel`\.`(\w+)`", view)
        name, *read_and_written = tables
        assert name.endswith("_mv")
        assert read_and_written, view[:200]
        assert all(t.endswith(LOCAL_SUFFIX) for t in read_and_written), (name, read_and_written)


def test_a_column_change_keeps_the_distributed_table_in_step(cluster_plan):
    # Migration 0021 adds Phase to the spans: the Distributed table is made again after it,
    # from the local table, so that panels reading Phase through it find the column.
    added = next(
        i
        for i, s in enumerate(cluster_plan)
        if s.startswith("ALTER TABLE `otel`.`otel_traces_local`") and "ADD COLUMN" in s
    )
    dropped, created = cluster_plan[added + 1 : added + 3]
    assert dropped == "DROP TABLE IF EXISTS `otel`.`otel_traces` ON CLUSTER `traces` SYNC"
    assert created.startswith("CREATE TABLE IF NOT EXISTS `otel`.`otel_traces` ON CLUSTER")


def test_a_fresh_cluster_gets_the_layout_sorted_by_trace_without_copying(cluster_plan):
    copied = [s for s in cluster_plan if "INSERT INTO `otel`.`otel_traces_sorted_by_trace`" in s]
    assert copied == []  # nothing to copy on a cluster that stores no span
    exchange = [s for s in cluster_plan if s.startswith("EXCHANGE TABLES")]
    assert exchange == [
        "EXCHANGE TABLES `otel`.`otel_traces_local` AND `otel`.`otel_traces_sorted_by_trace` "
        "ON CLUSTER `traces`"
    ]
    # A cluster that stores spans skips the copying migration, as before.
    assert not any("sorted_by_trace" in s for s in plan(CLUSTER, stores_spans=True))


def test_one_server_runs_the_files_as_written(collector):
    single = StoreConfig.from_dsn("http://u:p@clickhouse:8123?database=otel")
    statements = plan(single)
    assert not any(LOCAL_SUFFIX + "`" in s or "Distributed(" in s for s in statements)
    for statement in statements:
        parsed(collector, statement)
