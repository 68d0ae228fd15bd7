"""The write-ahead log: records come back after a restart, torn tails are cut, refused
records are not replayed, and segments go once everything in them is stored."""

from __future__ import annotations

import pytest

from collector.errors import TransientError
from collector.wal import KIND_PROTOBUF, WriteAheadLog


def reopen(path, **kwargs) -> tuple[WriteAheadLog, list[int]]:
    wal = WriteAheadLog(path, **kwargs)
    wal.open()
    return wal, [record.id for record in wal.replay()]


def test_records_come_back_after_a_restart_except_refused_ones(tmp_path):
    wal, _ = reopen(tmp_path)
    ids = [wal.append(KIND_PROTOBUF, f"body {i}".encode()) for i in range(5)]
    wal.void(ids[2])
    wal.sync()
    # No close: as after kill -9.
    again, replayed = reopen(tmp_path)
    assert replayed == [ids[0], ids[1], ids[3], ids[4]]
    assert next(r.payload for r in again.replay()) == b"body 0"
    assert again.append(KIND_PROTOBUF, b"next") == ids[-1] + 2  # ids are never reused


def test_a_torn_record_at_the_end_is_cut(tmp_path):
    wal, _ = reopen(tmp_path)
    wal.append(KIND_PROTOBUF, b"whole")
    wal.append(KIND_PROTOBUF, b"torn record")
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    segment.write_bytes(segment.read_bytes()[:-4])  # a crash in the middle of a write
    again, replayed = reopen(tmp_path)
    assert replayed == [1]
    assert again.append(KIND_PROTOBUF, b"after") == 2
    again.close()
    assert reopen(tmp_path)[1] == [1, 2]


def test_committed_records_are_not_replayed_and_their_segments_go(tmp_path):
    wal, _ = reopen(tmp_path, segment_bytes=100, max_bytes=10_000)
    ids = [wal.append(KIND_PROTOBUF, b"x" * 90) for _ in range(6)]  # a segment each
    assert len(list(tmp_path.glob("*.wal"))) >= 6
    wal.begin_batch(ids[0], ids[3])
    wal.commit_batch(ids[3])
    assert reopen(tmp_path)[1] == ids[4:]
    assert len(list(tmp_path.glob("*.wal"))) <= 3


def test_a_stage_that_still_holds_records_keeps_them(tmp_path):
    wal, _ = reopen(tmp_path, segment_bytes=100, max_bytes=10_000)
    ids = [wal.append(KIND_PROTOBUF, b"x" * 90) for _ in range(4)]
    wal.add_holder(lambda: ids[1])  # e.g. a Next.js trace still waiting
    wal.commit_batch(ids[3])
    checkpoint = WriteAheadLog(tmp_path).open()
    assert (checkpoint.committed, checkpoint.keep_from) == (ids[3], ids[1])
    assert reopen(tmp_path)[1] == ids[1:]


def test_a_full_log_refuses_with_a_transient_error(tmp_path):
    wal, _ = reopen(tmp_path, segment_bytes=100, max_bytes=300)
    wal.append(KIND_PROTOBUF, b"x" * 200)
    with pytest.raises(TransientError, match="write-ahead log is full"):
        wal.append(KIND_PROTOBUF, b"x" * 200)
    wal.commit_batch(1)
    wal.append(KIND_PROTOBUF, b"x" * 200)


def test_a_json_request_left_in_the_log_is_stored_by_the_next_start(store_config):
    import base64
    import json

    from google.protobuf import json_format
    from starlette.testclient import TestClient

    from collector.config import CollectorConfig
    from collector.service import Collector
    from tests.builders import make_request, make_span
    from tests.conftest import stored

    crashed = Collector(CollectorConfig(store=store_config, batch_timeout_s=3600))
    document = json_format.MessageToDict(make_request([make_span("from json")]))
    for holder in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId"):
            holder[key] = base64.b64decode(holder[key]).hex()
    with TestClient(crashed.start(), base_url="http://localhost:4318") as client:
        answer = client.post(
            "/v1/traces", content=json.dumps(document), headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 200
    # Never flushed, never shut down: as after kill -9. The next start replays the log.
    restarted = Collector(CollectorConfig(store=store_config, batch_timeout_s=0.1))
    restarted.start()
    try:
        assert stored(restarted, "SELECT SpanName FROM otel_traces") == [("from json",)]
        # The abandoned one flushes its copy last: the same token, so it is not stored twice.
        crashed.shutdown()
        assert stored(restarted, "SELECT SpanName FROM otel_traces") == [("from json",)]
    finally:
        crashed.shutdown()  # idempotent; no chDB connection may outlive the test
        restarted.shutdown()
