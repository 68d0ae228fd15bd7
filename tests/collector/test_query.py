from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.admin.query import run_read_query
from collector.config import CollectorConfig, StoreConfig
from collector.errors import ReadOnlyViolation, StoreError
from collector.service import Collector
from tests.builders import make_request, make_span
from tests.conftest import stored


@pytest.fixture(scope="module")
def probed(chdb_path) -> Iterator[Collector]:
    """One collector for the probes, which only read (a fresh one per probe costs ~1 s)."""
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=t_probes_{uuid.uuid4().hex[:8]}")
    instance = Collector(CollectorConfig(store=config))
    instance.start()
    yield instance
    instance.shutdown()


def read(collector: Collector, sql: str) -> bytes:
    assert collector.store is not None
    return collector.store.read(sql, "TSV")


@pytest.mark.parametrize(
    ("sql", "answer"),
    [
        ("SELECT 1", b"1\n"),
        ("  select count() from otel_traces;", b"0\n"),
        ("-- a comment\nWITH 1 AS x SELECT x", b"1\n"),
        ("WITH t AS (SELECT 2 AS y) SELECT y FROM t", b"2\n"),
        ("SELECT 'a;b'", b"a;b\n"),
        ("SELECT 'INTO OUTFILE file(x)'", b"INTO OUTFILE file(x)\n"),
        ("SELECT count() FROM numbers(10)", b"10\n"),
        ("EXISTS TABLE otel_traces", b"1\n"),
    ],
)
def test_reading_statements_run(probed: Collector, sql, answer):
    assert read(probed, sql) == answer


@pytest.mark.parametrize(
    "sql",
    [
        "/* c */ SHOW TABLES",
        "DESCRIBE TABLE otel_traces",
        "EXPLAIN SELECT 1",
        "SHOW CREATE TABLE requests",
    ],
)
def test_describing_statements_run(probed: Collector, sql):
    assert read(probed, sql)


# Every probe of the trust review (file write, file read, SSRF, settings) and the classic
# writes: each is refused, and the message says why.
@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT 'x' INTO OUTFILE '{out}' APPEND", "INTO OUTFILE"),
        ("SELECT 'x' INTO OUTFILE '{out}' TRUNCATE FORMAT RawBLOB", "INTO OUTFILE"),
        ("SHOW TABLES INTO OUTFILE '{out}'", "INTO OUTFILE"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file()"),
        ("SELECT file('/etc/passwd')", "function file()"),
        ("SELECT * FROM file('/proc/self/environ', 'RawBLOB')", "table function file()"),
        ("DESCRIBE TABLE file('/etc/passwd', 'CSV')", "table function file()"),
        (
            "SELECT * FROM url(concat('http://127.0.0.1:9/x?d=', (SELECT base64Encode(line) "
            "FROM file('/etc/hostname', 'LineAsString'))), 'LineAsString')",
            "table function url()",
        ),
        ("SELECT 1 FROM otel_traces WHERE 1 IN (SELECT 1 FROM s3('http://127.0.0.1:9/b'))", "s3()"),
        ("SELECT * FROM remote('127.0.0.1:9000', system.one)", "remote()"),
        ("SELECT * FROM mysql('127.0.0.1:3306', 'd', 't', 'u', 'p')", "mysql()"),
        ("SELECT * FROM postgresql('127.0.0.1:5432', 'd', 't', 'u', 'p')", "postgresql()"),
        ("SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'TSV')", "hdfs()"),
        ("SELECT * FROM system.users", "not in the store's database"),
        ("SELECT dictGet('d', 'a', 1)", "dictGet()"),
        ("SELECT getServerSetting('tcp_port')", "getServerSetting()"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS"),
        ("SELECT count() FROM numbers(10) SETTINGS max_execution_time = 1000", "SETTINGS"),
        ("SET readonly = 0", "only reading statements"),
        ("INSERT INTO otel_traces (TraceId) VALUES ('x')", "only reading statements"),
        ("DROP TABLE otel_traces", "only reading statements"),
        ("ALTER TABLE otel_traces DELETE WHERE 1", "only reading statements"),
        ("OPTIMIZE TABLE otel_traces", "only reading statements"),
        ("SHOW PROCESSLIST", "only reading statements"),
    ],
)
def test_statements_that_reach_outside_the_store_are_refused(probed: Collector, tmp_path, sql, why):
    out = tmp_path / "written"
    with pytest.raises(ReadOnlyViolation, match=why):
        read(probed, sql.format(out=out))
    assert not out.exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE otel_traces",
        "SELECT 1; SELECT * FROM file('/etc/passwd')",
        "",
        "-- only a comment\n",
    ],
)
def test_anything_but_one_statement_is_refused_before_it_runs(probed: Collector, sql):
    with pytest.raises(Exception, match=r"Multi-statements|Empty query|SYNTAX_ERROR"):
        read(probed, sql)
    assert read(probed, "EXISTS TABLE otel_traces") == b"1\n"


def test_a_statement_is_checked_with_its_parameters_every_time_they_differ(probed: Collector):
    """The checks of statements are remembered (a dashboard asks the same ones over and over),
    by text and parameters: a table named by a parameter is checked for each value."""
    assert probed.store is not None
    sql = "SELECT count() FROM {table:Identifier}"

    def count(table: str) -> bytes:
        assert probed.store is not None
        return probed.store.read(sql, "TSV", parameters={"table": table})

    for _ in range(2):
        assert count("otel_traces") == b"0\n"
        with pytest.raises(ReadOnlyViolation, match="not in the store's database"):
            count("system.users")
        with pytest.raises(ReadOnlyViolation, match="INTO OUTFILE"):
            read(probed, "SELECT 1 INTO OUTFILE '/tmp/never-written'")
    assert not Path("/tmp/never-written").exists()


def test_the_reader_limits_cannot_be_lifted(store_config: StoreConfig):
    from dataclasses import replace

    from collector.config import ReadLimits
    from collector.storage.store import open_store

    limits = ReadLimits(max_execution_time_s=1, max_result_rows=5)
    store = open_store(replace(store_config, read_limits=limits))
    try:
        started = time.monotonic()
        with pytest.raises(Exception, match=r"TIMEOUT_EXCEEDED|Timeout exceeded"):
            store.read("SELECT count() FROM numbers(400000000000)", "TSV")
        assert time.monotonic() - started < 30
        with pytest.raises(Exception, match=r"TOO_MANY_ROWS|Limit for result"):
            store.read("SELECT number FROM numbers(100)", "TSV")
        # The writer's session is not read-only.
        store.client.command("CREATE TABLE probe (a UInt8) ENGINE = Memory")
    finally:
        store.close()


def test_a_quadratic_statement_check_is_gone(client: TestClient):
    # 64 KB of escaped quotes froze the event loop for 11 s under the old regex check.
    started = time.monotonic()
    answer = client.post("/sql", json={"query": "SELECT '" + "\\'" * 15_000 + "'"})
    assert answer.status_code in (200, 400)
    assert time.monotonic() - started < 5


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


def test_values_reach_a_read_query_as_parameters_never_as_text(client, collector: Collector):
    body = make_request([make_span("seen"), make_span("other")]).SerializeToString()
    client.post("/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"})
    stored(collector, "SELECT 1")
    query = "SELECT SpanName FROM otel_traces WHERE SpanName IN {names:Array(String)}"
    sent = {"query": query, "format": "TSV", "parameters": {"names": ["seen", "x' OR 1=1"]}}
    assert client.post("/sql", json=sent).text == "seen\n"
    for parameters, why in (
        ({"names": {"nested": 1}}, "is not a string, number or list"),
        ({"bad name": "x"}, "invalid query parameter name"),
        (["names"], "must be an object"),
    ):
        refused = client.post("/sql", json={**sent, "parameters": parameters})
        assert refused.status_code == 400
        assert why in refused.text


def test_a_web_page_cannot_reach_the_sql_endpoint(client: TestClient):
    query = '{"query": "SELECT 1"}'
    # A CORS "simple request" (text/plain) from a page in the developer's browser.
    simple = client.post("/sql", content=query, headers={"Content-Type": "text/plain"})
    assert simple.status_code == 415
    page = client.post(
        "/sql", json={"query": "SELECT 1"}, headers={"Origin": "https://evil.example"}
    )
    assert page.status_code == 403
    assert "cross-origin" in page.text
    # DNS rebinding: the page's own host name resolving to 127.0.0.1.
    rebound = client.post("/sql", json={"query": "SELECT 1"}, headers={"Host": "evil.example:4318"})
    assert rebound.status_code == 403
    big = client.post("/sql", json={"query": "SELECT '" + "x" * 70_000 + "'"})
    assert big.status_code == 413
    assert (
        client.post(
            "/sql", json={"query": "SELECT 1"}, headers={"Host": "localhost:4318"}
        ).status_code
        == 200
    )


def test_the_sql_endpoint_refuses_remote_clients(collector: Collector):
    assert collector.app is not None
    with TestClient(
        collector.app, base_url="http://localhost:4318", client=("203.0.113.9", 4000)
    ) as remote:
        assert remote.post("/sql", json={"query": "SELECT 1"}).status_code == 403


def test_a_free_store_is_queried_directly(store_config: StoreConfig, collector: Collector):
    assert run_read_query(store_config, "SELECT count() FROM otel_traces", "TSV") == b"0\n"


def test_a_store_without_the_schema_says_how_to_create_it(chdb_path):
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=never_created")
    with pytest.raises(StoreError, match="nextrace collect"):
        run_read_query(config, "SELECT 1")


def test_without_a_token_the_sql_endpoint_is_off_beyond_loopback(store_config: StoreConfig):
    config = CollectorConfig(store=store_config, host="0.0.0.0", allow_unauthenticated=True)
    instance = Collector(config)
    try:
        app = instance.start()
        with TestClient(app, base_url="http://127.0.0.1:4318", client=("127.0.0.1", 4000)) as local:
            answer = local.post("/sql", json={"query": "SELECT 1"})
        assert answer.status_code == 403
        assert "off" in answer.text
    finally:
        instance.shutdown()
