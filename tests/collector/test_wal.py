"""The write-ahead log: records come back after a restart, torn tails are cut, refused
records are not replayed, a damaged record or a missing segment costs only its own records
and is reported, a second user is refused, and segments are sized to their disk and go once
everything in them is stored, even the one being written."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from collector.config import BatchSettings, WalSettings
from collector.errors import ConfigError, TransientError
from collector.pipeline.wal import KIND_PROTOBUF, MAX_SEGMENT_BYTES, WriteAheadLog, segment_size
from tests.support.faults import mounted_tmpfs
from tests.support.wal_files import HEADER, flip, records_at


def reopen(path: Path, **kwargs) -> tuple[WriteAheadLog, list[int]]:
    wal = WriteAheadLog(path, WalSettings(**kwargs))
    wal.open()
    return wal, [record.id for record in wal.replay()]


def crash(wal: WriteAheadLog) -> None:
    """Leave the log as ``kill -9`` would, as far as a reader of its files can tell: what was
    written is in the files and the lock is released; no checkpoint or trim is written.
    ``close`` also fsyncs the segment being written, which a kill does not; a kill leaves
    those bytes in the page cache, where the next open reads them just the same."""
    wal.close()


def eight_records_in_three_segments(path: Path) -> list[Path]:
    """Records 1-8 of 100 bytes, three to a segment, none stored; the segments, oldest first."""
    wal, _ = reopen(path, segment_bytes=300, max_bytes=100_000)
    for i in range(1, 9):
        wal.append(KIND_PROTOBUF, f"body {i}".encode().ljust(100 - HEADER.size, b"."))
    crash(wal)
    segments = sorted(path.glob("*.wal"))
    assert [[r[0] for r in records_at(s)] for s in segments] == [[1, 2, 3], [4, 5, 6], [7, 8]]
    return segments


def test_records_come_back_after_a_restart_except_refused_ones(tmp_path):
    wal, _ = reopen(tmp_path)
    ids = [wal.append(KIND_PROTOBUF, f"body {i}".encode()) for i in range(5)]
    wal.void(ids[2])
    assert wal.sync()
    crash(wal)
    again, replayed = reopen(tmp_path)
    assert replayed == [ids[0], ids[1], ids[3], ids[4]]
    assert again.to_replay == again.unstored == 4
    assert next(r.payload for r in again.replay()) == b"body 0"
    assert again.append(KIND_PROTOBUF, b"next") == ids[-1] + 2  # ids are never reused
    assert not again.damage


def test_a_torn_record_at_the_end_is_cut(tmp_path):
    wal, _ = reopen(tmp_path)
    wal.append(KIND_PROTOBUF, b"whole")
    wal.append(KIND_PROTOBUF, b"torn record")
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    segment.write_bytes(segment.read_bytes()[:-4])  # a crash in the middle of a write
    again, replayed = reopen(tmp_path)
    assert replayed == [1]
    assert [d.torn for d in again.damage] == [True]
    assert again.records_lost == again.bytes_damaged == 0  # never acknowledged: no loss
    assert again.append(KIND_PROTOBUF, b"after") == 2
    again.close()
    assert reopen(tmp_path)[1] == [1, 2]


def test_records_after_a_damaged_one_are_read_in_an_older_and_in_the_newest_segment(tmp_path):
    older, _, newest = eight_records_in_three_segments(tmp_path)
    flip(older, 100 + HEADER.size + 20)  # a byte of record 2's body
    flip(newest, 1)  # a byte of record 7's length: where the next record starts is lost
    wal, replayed = reopen(tmp_path, segment_bytes=300, max_bytes=100_000)
    assert replayed == [1, 3, 4, 5, 6, 8]
    assert [(d.segment, d.offset, d.size, d.lost, d.torn) for d in wal.damage] == [
        (older.name, 100, 100, range(2, 3), False),
        (newest.name, 0, 100, range(7, 8), False),
    ]
    assert (wal.records_lost, wal.bytes_damaged) == (2, 200)
    assert wal.append(KIND_PROTOBUF, b"after") == 9


def test_a_damaged_last_record_is_reported_not_taken_for_a_crash(tmp_path):
    _, _, newest = eight_records_in_three_segments(tmp_path)
    flip(newest, 100 + HEADER.size + 5)  # record 8 is whole, but its checksum fails
    wal, replayed = reopen(tmp_path, segment_bytes=300, max_bytes=100_000)
    assert replayed == [1, 2, 3, 4, 5, 6, 7]
    [damage] = wal.damage
    assert (damage.lost.start, damage.exact, damage.torn) == (8, False, False)
    assert (wal.records_lost, wal.bytes_damaged) == (1, 100)
    assert "record 8 and perhaps more" in damage.describe()
    crash(wal)
    assert reopen(tmp_path)[0].damage == []  # cut off, so that appends start on a boundary


def test_a_missing_segment_is_an_error_that_names_it(tmp_path, caplog):
    first, middle, _ = eight_records_in_three_segments(tmp_path)
    middle.unlink()
    wal, replayed = reopen(tmp_path, segment_bytes=300, max_bytes=100_000)
    assert replayed == [1, 2, 3, 7, 8]
    [missing] = wal.damage
    assert (missing.segment, missing.lost, missing.missing) == (middle.name, range(4, 7), True)
    assert wal.records_lost == 3
    assert f"segment {middle.name} is missing: records 4 to 6 are lost" in caplog.text
    crash(wal)
    first.unlink()  # the records from the checkpoint's keep_from (1) on are needed
    wal, replayed = reopen(tmp_path)
    assert [(d.segment, d.lost) for d in wal.damage] == [(first.name, range(1, 7))]
    assert replayed == [7, 8]


def test_committed_records_are_not_replayed_and_their_segments_go(tmp_path):
    wal, _ = reopen(tmp_path, segment_bytes=100, max_bytes=10_000)
    ids = [wal.append(KIND_PROTOBUF, b"x" * 90) for _ in range(6)]  # a segment each
    assert len(list(tmp_path.glob("*.wal"))) >= 6
    wal.begin_batch(ids[0], ids[3])
    wal.commit_batch(ids[3])
    crash(wal)
    assert reopen(tmp_path)[1] == ids[4:]
    assert len(list(tmp_path.glob("*.wal"))) <= 3


def test_a_stage_that_still_holds_records_keeps_them(tmp_path):
    wal, _ = reopen(tmp_path, segment_bytes=100, max_bytes=10_000)
    ids = [wal.append(KIND_PROTOBUF, b"x" * 90) for _ in range(4)]
    wal.add_holder(lambda: ids[1])  # e.g. a Next.js trace still waiting
    wal.commit_batch(ids[3])
    crash(wal)
    again = WriteAheadLog(tmp_path, WalSettings())
    checkpoint = again.open()
    assert (checkpoint.committed, checkpoint.keep_from) == (ids[3], ids[1])
    assert [record.id for record in again.replay()] == ids[1:]


def test_the_segment_being_written_goes_once_a_quarter_of_it_is_stored(tmp_path):
    wal, _ = reopen(tmp_path, segment_bytes=4000, max_bytes=100_000)
    ids = [wal.append(KIND_PROTOBUF, b"x" * 500) for _ in range(2)]  # a quarter of a segment
    wal.commit_batch(ids[0])
    assert wal.size_bytes > 0  # half of it is not stored yet
    wal.commit_batch(ids[1])
    assert wal.size_bytes == 0
    assert [p.name for p in tmp_path.glob("*.wal")] == [f"{ids[1] + 1:020d}.wal"]


def test_a_log_that_holds_only_stored_records_is_emptied_when_it_opens(tmp_path):
    # A log that filled with stored records once answered 503 to everything, restarts too.
    wal, _ = reopen(tmp_path, segment_bytes=4000, max_bytes=4000)
    ids = [wal.append(KIND_PROTOBUF, b"x" * 900) for _ in range(4)]
    with pytest.raises(TransientError):
        wal.append(KIND_PROTOBUF, b"x" * 900)
    crash(wal)
    (tmp_path / "checkpoint.json").write_text(
        f'{{"committed": {ids[-1]}, "batch": null, "keep_from": {ids[-1] + 1}}}'
    )
    again, replayed = reopen(tmp_path, segment_bytes=4000, max_bytes=4000)
    assert (replayed, again.size_bytes) == ([], 0)
    assert again.append(KIND_PROTOBUF, b"x" * 900) == ids[-1] + 1


def test_a_full_log_refuses_with_a_transient_error_and_says_so(tmp_path):
    wal, _ = reopen(tmp_path, segment_bytes=100, max_bytes=300)
    wal.append(KIND_PROTOBUF, b"x" * 200)
    assert not wal.refusing
    with pytest.raises(TransientError, match="write-ahead log is full"):
        wal.append(KIND_PROTOBUF, b"x" * 200)
    assert wal.refusing
    wal.commit_batch(1)
    wal.append(KIND_PROTOBUF, b"x" * 200)
    assert not wal.refusing


def test_segments_are_sized_to_the_log_and_to_its_disk(tmp_path):
    stats = os.statvfs(tmp_path)
    disk = stats.f_blocks * stats.f_frsize
    assert segment_size(1 << 30, tmp_path) == min(MAX_SEGMENT_BYTES, disk // 8)
    assert segment_size(1 << 20, tmp_path) == min(128 << 10, disk // 8)


def test_a_second_user_of_a_log_is_refused_in_one_line(tmp_path):
    wal, _ = reopen(tmp_path)
    with pytest.raises(ConfigError) as refused:
        WriteAheadLog(tmp_path, WalSettings()).open()
    message = str(refused.value)
    assert "\n" not in message
    assert f"the write-ahead log in {tmp_path} is in use by another collector (pid " in message
    assert "give each collector its own --wal-dir" in message
    wal.close()
    reopen(tmp_path)[0].close()


def test_a_json_request_left_in_the_log_is_stored_by_the_next_start(store_config):
    import base64
    import json

    from google.protobuf import json_format
    from starlette.testclient import TestClient

    from collector.config import CollectorConfig
    from collector.service import Collector
    from tests.builders import make_request, make_span
    from tests.conftest import stored

    crashed = Collector(CollectorConfig(store=store_config, batch=BatchSettings(timeout_s=3600)))
    document = json_format.MessageToDict(make_request([make_span("from json")]))
    for holder in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId"):
            holder[key] = base64.b64decode(holder[key]).hex()
    with TestClient(crashed.start(), base_url="http://localhost:4318") as client:
        answer = client.post(
            "/v1/traces", content=json.dumps(document), headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 200
    # Never flushed, never shut down: as after kill -9, which releases the log's lock.
    assert crashed.wal is not None
    crash(crashed.wal)
    restarted = Collector(CollectorConfig(store=store_config, batch=BatchSettings(timeout_s=0.1)))
    restarted.start()
    try:
        assert stored(restarted, "SELECT SpanName FROM otel_traces") == [("from json",)]
        # The abandoned one flushes its copy last: the same token, so it is not stored twice.
        crashed.shutdown()
        assert stored(restarted, "SELECT SpanName FROM otel_traces") == [("from json",)]
    finally:
        crashed.shutdown()  # idempotent; no chDB connection may outlive the test
        restarted.shutdown()


def test_a_batch_waits_until_its_checkpoint_is_written_and_a_failed_commit_is_carried_on(
    tmp_path,
):
    """A restart must know every batch that may have reached the store, or it would replay its
    records in other ranges, under other deduplication tokens, and store them twice."""
    wal, _ = reopen(tmp_path, segment_bytes=300, max_bytes=100_000)
    for _ in range(4):
        wal.append(KIND_PROTOBUF, b"x" * 50)
    blocker = tmp_path / "checkpoint.tmp"  # where the checkpoint is written first
    blocker.mkdir()
    with pytest.raises(TransientError, match="checkpoint"):
        wal.begin_batch(1, 2)  # the batch processor retries it, the store has seen nothing
    blocker.rmdir()
    wal.begin_batch(1, 2)
    blocker.mkdir()
    wal.commit_batch(2)  # stored, but the checkpoint on disk still says batch 1-2 in flight
    blocker.rmdir()
    wal.begin_batch(3, 4)
    crash(wal)
    wal = WriteAheadLog(tmp_path, WalSettings(segment_bytes=300, max_bytes=100_000))
    checkpoint = wal.open()
    # Records 1-2 are known as stored; 3-4 come back as the batch in flight, with its token.
    assert (checkpoint.committed, checkpoint.batch) == (2, (3, 4))
    assert [record.id for record in wal.replay()] == [3, 4]
    wal.close()


def test_the_log_leaves_room_on_its_disk_for_the_store_beside_it(tmp_path):
    """A log that took the last free byte would wait for a store that waits for space."""
    with mounted_tmpfs(tmp_path / "disk", "8m") as disk:
        wal, _ = reopen(disk / "wal")
        reserve = 1 << 20  # an eighth of the 8 MiB disk
        filler = disk / "store-data"
        stats = os.statvfs(disk)
        filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - reserve - 100_000))
        wal.append(KIND_PROTOBUF, b"x" * 50_000)  # leaves more than the reserve free
        with pytest.raises(TransientError, match="nearly full"):
            wal.append(KIND_PROTOBUF, b"x" * 50_000)
        assert wal.refusing
        filler.unlink()  # the store took what the log held, or an operator made room
        wal.append(KIND_PROTOBUF, b"x" * 50_000)
        assert not wal.refusing
        wal.close()


def test_a_log_that_refused_says_it_no_longer_does_once_there_is_room(tmp_path):
    """Behind a load balancer that follows readiness, nobody sends to a refusing collector:
    it must not wait for a request to find out that the store made room."""
    wal, _ = reopen(tmp_path, segment_bytes=100, max_bytes=300)
    wal.append(KIND_PROTOBUF, b"x" * 200)
    with pytest.raises(TransientError, match="write-ahead log is full"):
        wal.append(KIND_PROTOBUF, b"x" * 200)
    assert wal.refusing
    wal.commit_batch(1)  # the store took it; no request comes
    assert not wal.refusing
    wal.close()


def test_checkpoints_are_written_on_a_full_disk(tmp_path):
    """A batch waits for its checkpoint, and the store frees the disk only by taking batches:
    a checkpoint that needed a free block would wedge the log on a full disk."""
    with mounted_tmpfs(tmp_path / "disk", "8m") as disk:
        wal, _ = reopen(disk / "wal")
        for _ in range(3):
            wal.append(KIND_PROTOBUF, b"x" * 50)
        wal.begin_batch(1, 1)
        wal.commit_batch(1)
        filler = disk / "filler"
        with open(filler, "wb") as handle, contextlib.suppress(OSError):
            while True:  # every free block, whatever the reserve
                handle.write(b"\0" * 65536)
                handle.flush()
        assert os.statvfs(disk).f_bavail == 0
        wal.begin_batch(2, 3)  # would raise "cannot write the write-ahead log's checkpoint"
        wal.commit_batch(3)
        crash(wal)
        filler.unlink()
        wal = WriteAheadLog(disk / "wal", WalSettings())
        checkpoint = wal.open()
        assert (checkpoint.committed, checkpoint.batch) == (3, None)
        wal.close()
