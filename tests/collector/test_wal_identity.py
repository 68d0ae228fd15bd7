"""A log with an identity: every log names itself in its inserts' tokens, so that several logs
writing to one store lose and duplicate nothing; it is bound to the store it writes to, and
refuses, in one line, to replay another store's requests; and it is locked against a second
collector.

The in-process tests run several logs in one process, on one embedded store; the slow ones run
real ``nextrace collect`` processes, one after another on one store (chDB lets one process
open a store folder at a time), as after a reset log, a moved ``--wal-dir`` or a pod with a new
volume."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.testclient import TestClient

from collector.config import BatchSettings, CollectorConfig, StoreConfig, WalSettings
from collector.consumer import SpanColumns
from collector.errors import ConfigError
from collector.pipeline.translator import screen
from collector.pipeline.wal import KIND_PROTOBUF, WriteAheadLog
from collector.service import Collector
from collector.storage.exporter import ClickHouseSpanExporter, batch_token
from collector.storage.wal_binding import is_listed
from collector.telemetry import CollectorTelemetry
from tests.builders import make_request, make_span
from tests.conftest import database_of_its_own, stored
from tests.support import collector_process
from tests.support.collector_process import Sender, assert_exactly_once, health, start, stop
from tests.support.processes import free_port
from tests.support.waiting import wait_until

PB = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def other_store(chdb_path: Path) -> Iterator[StoreConfig]:
    """A second store: another database of the shared embedded engine."""
    with database_of_its_own(chdb_path) as config:
        yield config


def body(name: str, count: int = 3) -> bytes:
    return make_request([make_span(f"{name} {i}") for i in range(count)]).SerializeToString()


def post(collector: Collector, content: bytes) -> None:
    assert collector.app is not None
    with TestClient(collector.app, base_url="http://localhost:4318") as client:
        assert client.post("/v1/traces", content=content, headers=PB).status_code == 200


def count(collector: Collector, sql: str = "SELECT count(), uniqExact(SpanId) FROM otel_traces"):
    return stored(collector, sql)[0]


def test_a_log_keeps_the_id_it_was_made_with_and_names_it_in_its_tokens(tmp_path):
    first = WriteAheadLog(tmp_path / "a", WalSettings())
    first.open()
    made = first.id
    first.close()
    again = WriteAheadLog(tmp_path / "a", WalSettings())
    again.open()
    other = WriteAheadLog(tmp_path / "b", WalSettings())
    other.open()
    assert again.id == made != other.id
    assert len(made) == 16
    spans = SpanColumns(wal_ids=[3, 4], wal_log=made)
    assert batch_token(spans) == f"wal-{made}-3-4"
    spans.wal_log = ""  # a log an earlier release wrote, whose tokens named none
    assert batch_token(spans) == "wal-3-4"
    again.close()
    other.close()


def test_two_logs_writing_to_one_store_at_once_lose_and_duplicate_nothing(store_config, tmp_path):
    # One request per batch (batch_max_spans: a request's spans), in both logs: their batches
    # cover the same record ranges, which, with tokens naming no log, made every batch of one
    # log a duplicate of the other's.
    logs = [
        Collector(
            CollectorConfig(
                store=store_config,
                wal=WalSettings(directory=tmp_path / name),
                batch=BatchSettings(max_spans=3, max_queue_spans=3000, timeout_s=3600),
            )
        )
        for name in ("a", "b")
    ]
    try:
        for collector in logs:
            collector.start()
        for i in range(10):
            for name, collector in zip("ab", logs, strict=True):
                post(collector, body(f"{name}{i}"))
        for collector in logs:
            count(collector)  # flushed: every acknowledged span is where it will stay
        stored_spans, distinct = count(logs[0])
        assert (stored_spans, distinct) == (60, 60), f"{60 - stored_spans} of 60 spans lost"
    finally:
        for collector in logs:
            collector.shutdown()


def test_a_log_holding_requests_for_one_store_refuses_to_replay_into_another(
    store_config, other_store, tmp_path
):
    wal_dir = tmp_path / "wal"
    first = Collector(
        CollectorConfig(
            store=store_config,
            wal=WalSettings(directory=wal_dir),
            batch=BatchSettings(timeout_s=3600),
        )
    )
    restarted = None
    try:
        first.start()
        post(first, body("acknowledged for the first store"))
        assert first.wal is not None
        log_id = first.wal.id
        first.wal.close()  # as kill -9 leaves it: the request is in the log, not stored
        second = Collector(CollectorConfig(store=other_store, wal=WalSettings(directory=wal_dir)))
        with pytest.raises(ConfigError) as refused:
            second.start()
        second.shutdown()
        message = str(refused.value)
        assert "\n" not in message
        assert f"the write-ahead log in {wal_dir} (log {log_id}) holds 1 request(s)" in message
        assert other_store.describe() in message
        assert "Start the collector with the store the log was written for" in message
        # The store it was written for takes it.
        restarted = Collector(
            CollectorConfig(store=store_config, wal=WalSettings(directory=wal_dir))
        )
        restarted.start()
        assert count(restarted) == (3, 3)
        first.shutdown()  # its copy, with the same token: stored once
        assert count(restarted) == (3, 3)
    finally:
        first.shutdown()
        if restarted is not None:
            restarted.shutdown()


def test_a_log_stored_in_full_moves_to_another_store_under_a_new_id(
    store_config, other_store, tmp_path
):
    wal_dir = tmp_path / "wal"
    first = Collector(
        CollectorConfig(
            store=store_config,
            wal=WalSettings(directory=wal_dir),
            batch=BatchSettings(timeout_s=0.1),
        )
    )
    first.start()
    try:
        post(first, body("first"))
        assert count(first) == (3, 3)
        assert first.wal is not None
        former = first.wal.id
    finally:
        first.shutdown()
    moved = Collector(
        CollectorConfig(
            store=other_store,
            wal=WalSettings(directory=wal_dir),
            batch=BatchSettings(timeout_s=0.1),
        )
    )
    moved.start()
    try:
        assert moved.wal is not None
        assert moved.store is not None
        assert moved.wal.id != former
        assert is_listed(moved.store, moved.wal.id)
        assert not is_listed(moved.store, former)
        post(moved, body("moved"))
        assert count(moved) == (3, 3)
    finally:
        moved.shutdown()


def test_a_log_an_earlier_release_wrote_is_adopted_with_its_batch_in_flight(
    collector, store_config, tmp_path
):
    # An earlier release's log: no log.json, its batch in flight inserted (before the crash)
    # with a token that names no log, wal-1-1.
    wal_dir = tmp_path / "old"
    content = body("from an earlier release")
    wal = WriteAheadLog(wal_dir, WalSettings())
    wal.open()
    wal.append(KIND_PROTOBUF, content)
    wal.close()
    (wal_dir / "log.json").unlink()
    (wal_dir / "checkpoint.json").write_text('{"committed": 0, "batch": [1, 1], "keep_from": 1}')
    spans = screen(ExportTraceServiceRequest.FromString(content), content).spans
    spans.wal_ids = [1]
    ClickHouseSpanExporter(collector.store, CollectorTelemetry(), staged=True).consume(spans)
    assert count(collector) == (3, 3)
    adopted = Collector(
        CollectorConfig(
            store=store_config,
            wal=WalSettings(directory=wal_dir),
            batch=BatchSettings(timeout_s=0.1),
        )
    )
    adopted.start()
    try:
        assert count(adopted) == (3, 3)  # the same token: not stored twice
        assert adopted.wal is not None
        assert adopted.wal.bound
        post(adopted, body("after the upgrade"))
        assert count(adopted) == (6, 6)
    finally:
        adopted.shutdown()


# -- real processes ------------------------------------------------------------------------


@pytest.mark.slow
def test_two_logs_one_store_lose_and_duplicate_nothing(tmp_path):
    # Two collectors, each with its own log, on one store, one after the other (chDB lets one
    # process open a store folder at a time), and the first again. One request per insert
    # (--batch-spans 100, a request's spans): the batches of both logs then cover the same
    # record ranges, which with tokens naming no log made the second log's batches duplicates.
    port, store, out = free_port(), tmp_path / "store", tmp_path / "collector.log"
    one_per_batch = ("--batch-spans", "100")
    process = None
    try:
        with Sender(f"http://127.0.0.1:{port}/v1/traces") as sender:
            for wal_dir in ("a", "b", "a"):
                if process is not None:
                    stop(process)
                wal = ("--wal-dir", str(tmp_path / wal_dir))
                process = start(store, port, out, *wal, *one_per_batch)
                sender.wait_for(len(sender.acked) + 1500)
        wait_until(lambda: health(port).json()["queue_spans"] == 0, "everything is stored")
        print(f"two logs: {len(sender.acked)} spans acknowledged, {sender.unknown} unknown")
        assert_exactly_once(port, sender.acked, "two logs, one store")
        assert collector_process.stored(port, "SELECT count() FROM nextrace_wal_logs") == [["2"]]
    finally:
        if process is not None:
            stop(process)


@pytest.mark.slow
def test_a_reset_log_loses_nothing_sent_after_it(tmp_path):
    # The log beside the store (the default), deleted between two runs: the new log's record
    # ids start again at 1. One request per insert, as in the test above, so that the two runs'
    # batches cover the same record ranges.
    port, store, out = free_port(), tmp_path / "store", tmp_path / "collector.log"
    one_per_batch = ("--batch-spans", "100")
    process = None
    try:
        with Sender(f"http://127.0.0.1:{port}/v1/traces") as sender:
            process = start(store, port, out, *one_per_batch)
            sender.wait_for(1500)
            stop(process)
            shutil.rmtree(store / "nextrace-wal")
            process = start(store, port, out, *one_per_batch)
            sender.wait_for(len(sender.acked) + 1500)
        wait_until(lambda: health(port).json()["queue_spans"] == 0, "everything is stored")
        print(f"reset log: {len(sender.acked)} spans acknowledged, {sender.unknown} unknown")
        assert_exactly_once(port, sender.acked, "a reset log")
    finally:
        if process is not None:
            stop(process)


@pytest.mark.slow
def test_a_second_collector_on_a_log_in_use_is_refused_in_one_line(tmp_path):
    wal_dir, out = tmp_path / "wal", tmp_path / "first.log"
    first = start(tmp_path / "one", free_port(), out, "--wal-dir", str(wal_dir))
    second_port = free_port()
    second = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nextrace.cli",
            "collect",
            "--dsn",
            f"chdb:{tmp_path / 'two'}",
            "--port",
            str(second_port),
            "--wal-dir",
            str(wal_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def serving() -> bool:
            try:
                httpx.get(f"http://127.0.0.1:{second_port}/healthz", timeout=1)
            except httpx.HTTPError:
                return False
            return True

        wait_until(lambda: second.poll() is not None or serving(), "the second one is decided")
        assert second.poll() is not None, "the second collector serves from the same log"
        errors = second.communicate(timeout=30)[1].strip().splitlines()
        assert second.returncode == 2
        assert errors[-1] == (
            f"error: the write-ahead log in {wal_dir} is in use by another collector "
            f"(pid {first.pid}): give each collector its own --wal-dir"
        )
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
        stop(first)
