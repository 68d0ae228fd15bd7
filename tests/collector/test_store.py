"""The embedded store's one-process rule turns into a clear message."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from collector.config import StoreConfig
from collector.errors import StoreError
from collector.pipeline.translator import translate
from collector.storage.exporter import ClickHouseSpanExporter
from collector.storage.migrations import apply_migrations
from collector.storage.store import connect, open_store, store_owner_pid
from collector.telemetry import CollectorTelemetry
from tests.builders import make_request, make_span


@pytest.mark.slow
def test_a_store_held_by_another_process_names_that_process(tmp_path):
    path = tmp_path / "held"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, clickhouse_connect
            client = clickhouse_connect.get_client(interface="chdb", path={str(path)!r})
            print("open", flush=True)
            sys.stdin.read()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        assert store_owner_pid(path) == holder.pid
        # This test process has its own store open already, so probe from a fresh one.
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                textwrap.dedent(f"""
                from collector.config import StoreConfig
                from collector.storage.store import open_store
                open_store(StoreConfig.from_dsn("chdb://{path}"))
            """),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert probe.returncode != 0
        assert f"is in use by process {holder.pid}" in probe.stderr
        assert "StoreLockedError" in probe.stderr
    finally:
        holder.communicate("", timeout=60)
    assert store_owner_pid(path) is None


def test_an_unreachable_server_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(
            StoreError, match=f"cannot reach the ClickHouse server http://127.0.0.1:{port}"
        ):
            open_store(StoreConfig.from_dsn(f"http://127.0.0.1:{port}"))


def test_a_server_that_refuses_connections_is_a_transient_failure_and_bad_rows_are_not():
    # The error the driver raises when a ClickHouse server is down is retried while the
    # write-ahead log holds the spans; an error about the rows themselves is not.
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    from collector.storage.store import is_permanent

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(OperationalError) as refused:
            clickhouse_connect.get_client(host="127.0.0.1", port=port, connect_timeout=2)
    assert not is_permanent(refused.value)
    for transient in (243, 1001, 242, 252, 999):  # disk full, EACCES, read-only, parts, unknown
        assert not is_permanent(DatabaseError(f"Code: {transient}. DB::Exception: x"))
    assert is_permanent(DatabaseError("Code: 252. Too many partitions for single INSERT block"))
    assert is_permanent(DatabaseError("Code: 6. DB::Exception: Cannot parse text"))


def test_only_a_broken_part_that_an_error_names_is_detached(tmp_path):
    store = open_store(StoreConfig.from_dsn(f"chdb://{tmp_path}/store"))
    try:
        ClickHouseSpanExporter(store, CollectorTelemetry(), staged=True).consume(
            translate(make_request([make_span("a")])).spans
        )
        [(name, path)] = store.client.query(
            "SELECT name, path FROM system.parts WHERE active AND table = 'otel_traces'"
        ).result_rows
        sound = Exception(f"Code: 33. Cannot read all data from file {path}data.bin")
        assert store.detach_broken_parts(sound) == []  # CHECK TABLE finds it sound
        assert store.detach_broken_parts(Exception("Code: 210. Connection refused")) == []
        for file in Path(path).iterdir():
            os.truncate(file, 0)
        assert store.detach_broken_parts(sound) == [f"otel_traces part {name} (1 rows)"]
        assert store.client.query("SELECT count() FROM otel.otel_traces").result_rows == [(0,)]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("table", "read"),
    [
        ("otel_traces", "SELECT groupArraySorted(9)(SpanName) FROM otel.otel_traces"),
        ("cache_events_1m", "SELECT sum(Lookups) FROM otel.cache_events_1m"),  # a view's table
    ],
)
def test_a_broken_merged_part_gives_back_the_parts_it_was_merged_from(tmp_path, table, read):
    # A full disk can commit a merge's part with empty files. Its rows came from batches the
    # write-ahead log may have let go: they must come back, not go with the broken part.
    store = open_store(StoreConfig.from_dsn(f"chdb://{tmp_path}/store"))
    try:
        exporter = ClickHouseSpanExporter(store, CollectorTelemetry(), staged=True)
        for name in ("a", "b", "c"):
            span = make_span(name, attrs={"cache.layer": "data"})
            exporter.consume(translate(make_request([span])).spans)
        before = store.client.query(read).result_rows
        store.client.command(f"OPTIMIZE TABLE otel.{table} FINAL")
        [(name, path, level, rows)] = store.client.query(
            "SELECT name, path, level, rows FROM system.parts WHERE active AND table = {t:String}",
            parameters={"t": table},
        ).result_rows
        assert level > 0  # made by the merge
        for file in Path(path).iterdir():
            os.truncate(file, 0)
        named = Exception(f"Code: 33. Cannot read all data from file {path}data.bin")
        assert store.detach_broken_parts(named) == [f"{table} part {name} ({rows} rows)"]
        assert store.client.query(read).result_rows == before
    finally:
        store.close()


def test_a_reader_of_an_older_schema_is_told_to_migrate_it_first(chdb_path):
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=older_schema")
    client = connect(config)
    try:
        apply_migrations(client, config, up_to=20)
    finally:
        client.close()
    with pytest.raises(StoreError, match=r"schema version 20, older .* run `nextrace collect`"):
        open_store(config, migrate=False)
    open_store(config).close()  # what the collector does on start
    open_store(config, migrate=False).close()
