"""What ``/healthz`` says, against real ``nextrace collect`` processes (slow; CI runs them):
``refusing: log full`` whenever a full log answers 503 to everyone, and ``replaying N of M``
while a replay runs, during which it answers, as ``/v1/traces`` does (503 and Retry-After).

Senders and helpers are those of ``test_faults.py``: a sender retries a 503, and every span it
sends has its own id, so that what was acknowledged can be looked up in the store.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from collector.wal import KIND_PROTOBUF, WriteAheadLog
from tests.builders import make_request, make_span
from tests.collector.test_faults import (
    PB,
    SPANS_PER_REQUEST,
    Sender,
    assert_exactly_once,
    fill,
    health,
    start,
    stop,
    wait_until,
)
from tests.collector.test_wedge import mounted_tmpfs
from tests.nextrace.test_cli import free_port

pytestmark = pytest.mark.slow


def test_a_full_log_that_refuses_everyone_says_so(tmp_path: Path):
    # Not the default, and why: the log on a small disk of its own (--wal-dir), so that filling
    # that disk fills the log and nothing else. The store goes on storing: only the log
    # refuses, which /healthz used to call "ok".
    port, log = free_port(), tmp_path / "collector.log"
    with mounted_tmpfs(tmp_path / "disk", "32m") as disk:
        process = start(tmp_path / "store", port, log, "--wal-dir", str(disk / "wal"))
        try:
            with Sender(f"http://127.0.0.1:{port}/v1/traces") as sender:
                sender.wait_for(2000)
                fill(disk)
                refused = sender.refused
                wait_until(lambda: sender.refused > refused + 5, "the full log refuses new spans")
                answer = health(port)
                assert answer.status_code == 503, answer.text
                said = answer.json()["status"]
                assert said.startswith("refusing: log full ("), said
                assert re.search(r"\(\d+ of \d+ bytes in the write-ahead log, 0 bytes free", said)
                assert "store failing" not in said  # the store is fine: the log is full
                print(f"while the log is full: {said}")
                during = len(sender.acked)
                (disk / "filler").unlink()
                sender.wait_for(during + 2000)
            wait_until(
                lambda: health(port).status_code == 200 and health(port).json()["queue_spans"] == 0,
                "the collector has stored everything and is healthy again",
                detail=lambda: f"{health(port).text}\n{log.read_text()[-4000:]}",
            )
            assert_exactly_once(port, sender.acked)
            print(f"{len(sender.acked)} spans acknowledged, all stored once")
        finally:
            stop(process)


def write_log(directory: Path, records: int) -> set[int]:
    """A write-ahead log as a collector killed before it stored anything leaves it: ``records``
    requests of 100 spans, with span ids 1, 2, 3…; the ids. Written here, not sent through a
    collector, because it is 50 times faster: a long log in a fraction of a second."""
    request = make_request(
        [make_span("fault", attrs={"cache.layer": "data"}) for _ in range(SPANS_PER_REQUEST)]
    )
    spans = request.resource_spans[0].scope_spans[0].spans
    wal = WriteAheadLog(directory, fsync="never")
    wal.open()
    try:
        for record in range(records):
            for i, span in enumerate(spans):
                span.span_id = (record * SPANS_PER_REQUEST + i + 1).to_bytes(8, "big")
            wal.append(KIND_PROTOBUF, request.SerializeToString())
    finally:
        wal.close()
    return set(range(1, records * SPANS_PER_REQUEST + 1))


def test_a_long_replay_answers_healthz_with_its_progress_and_senders_with_503(tmp_path: Path):
    port, store, log = free_port(), tmp_path / "store", tmp_path / "collector.log"
    # 300,000 spans: a replay of seconds (about 4 s on 2 cores), against the tenth of a second
    # the first answer takes once the server listens.
    records = 3000
    acked = write_log(store / "nextrace-wal" / "otel", records)  # where the default puts it
    process = start(store, port, log)  # returns once /healthz answers
    try:
        seen: list[str] = []

        def healthy() -> bool:
            answer = health(port)
            seen.append(answer.json()["status"])
            return answer.status_code == 200

        first = health(port)
        assert first.status_code == 503, first.text
        assert re.fullmatch(
            rf"replaying \d+ of {records} records of the write-ahead log: "
            "new spans get 503 until it is done",
            first.json()["status"],
        ), first.text
        body = make_request([make_span("during the replay")]).SerializeToString()
        refused = httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=body, headers=PB)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        wait_until(healthy, "the replay is done and the collector healthy")
        progress = [int(m.group(1)) for s in seen if (m := re.match(r"replaying (\d+) of", s))]
        assert progress == sorted(progress)  # it goes forward
        assert health(port).json()["wal_replay"] == {
            "running": False,
            "records_done": records,
            "records_total": records,
        }
        wait_until(lambda: health(port).json()["queue_spans"] == 0, "the queue is empty")
        assert_exactly_once(port, acked)
        print(
            f"{records} records ({len(acked)} spans) replayed, all stored once; /healthz said, "
            f"in turn: {sorted(set(seen), key=seen.index)}"
        )
    finally:
        stop(process)
