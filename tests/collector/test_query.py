from __future__ import annotations

import pytest

from collector.config import StoreConfig
from collector.errors import ReadOnlyViolation, StoreError
from collector.query import check_read_only, run_read_query
from collector.service import Collector
from tests.builders import make_request, make_span
from tests.conftest import stored


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  select count() from otel_traces;",
        "-- a comment\nWITH 1 AS x SELECT x",
        "/* c */ SHOW TABLES",
        "DESCRIBE TABLE otel_traces",
        "EXPLAIN SELECT 1",
        "SELECT 'a;b'",
    ],
)
def test_reading_statements_pass(sql):
    check_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO otel_traces (TraceId) VALUES ('x')",
        "DROP TABLE otel_traces",
        "ALTER TABLE otel_traces DELETE WHERE 1",
        "SELECT 1; DROP TABLE otel_traces",
        "",
        "-- only a comment\n",
        "OPTIMIZE TABLE otel_traces",
        "SET readonly = 0",
    ],
)
def test_writing_or_multiple_statements_are_refused(sql):
    with pytest.raises(ReadOnlyViolation):
        check_read_only(sql)


def test_clickhouse_enforces_read_only_too(collector: Collector, client):
    # Even a statement that slips past the keyword check cannot write.
    assert collector.store is not None
    with pytest.raises(Exception, match="readonly"):
        collector.store.query_raw("INSERT INTO otel_traces (TraceId) VALUES ('x')", "TSV")


def test_the_collector_answers_read_queries_from_loopback(client, collector: Collector):
    body = make_request([make_span("seen")]).SerializeToString()
    client.post("/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"})
    stored(collector, "SELECT 1")
    response = client.post(
        "/sql", json={"query": "SELECT SpanName FROM otel_traces", "format": "TSV"}
    )
    assert response.status_code == 200
    assert response.text == "seen\n"
    refused = client.post("/sql", json={"query": "DROP TABLE otel_traces"})
    assert refused.status_code == 400
    assert "only reading statements" in refused.text
    bad = client.post("/sql", json={"query": "SELECT nope FROM otel_traces"})
    assert bad.status_code == 400
    assert "nope" in bad.text
    # The writer is unaffected by the read-only reads.
    client.post("/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"})
    assert stored(collector, "SELECT count() FROM otel_traces") == [(2,)]


def test_the_sql_endpoint_refuses_remote_clients(collector: Collector):
    from starlette.testclient import TestClient

    assert collector.app is not None
    with TestClient(collector.app, client=("203.0.113.9", 4000)) as remote:
        assert remote.post("/sql", json={"query": "SELECT 1"}).status_code == 403


def test_a_free_store_is_queried_directly(store_config: StoreConfig, collector: Collector):
    assert run_read_query(store_config, "SELECT count() FROM otel_traces", "TSV") == b"0\n"


def test_a_store_without_the_schema_says_how_to_create_it(chdb_path):
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=never_created")
    with pytest.raises(StoreError, match="nextrace collect"):
        run_read_query(config, "SELECT 1")
