"""What ``/healthz`` says, against real ``nextrace collect`` processes (slow; CI runs them):
``refusing: log full`` whenever a full log answers 503 to everyone, and ``replaying N of M``
while a replay runs, during which it answers, as ``/v1/traces`` does (503 and Retry-After).

Senders and helpers are those of ``test_faults.py``: a sender retries a 503, and every span it
sends has its own id, so that what was acknowledged can be looked up in the store.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from collector.config import BatchSettings, WalSettings
from collector.pipeline.wal import KIND_PROTOBUF, WriteAheadLog
from tests.builders import make_request, make_span
from tests.support.collector_process import (
    PB,
    SPANS_PER_REQUEST,
    Sender,
    assert_exactly_once,
    health,
    start,
    stop,
)
from tests.support.faults import fill, mounted_tmpfs
from tests.support.processes import free_port
from tests.support.waiting import wait_until

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
    wal = WriteAheadLog(directory, WalSettings(fsync="never"))
    wal.open()
    try:
        for record in range(records):
            for i, span in enumerate(spans):
                span.span_id = (record * SPANS_PER_REQUEST + i + 1).to_bytes(8, "big")
            wal.append(KIND_PROTOBUF, request.SerializeToString())
    finally:
        wal.close()
    return set(range(1, records * SPANS_PER_REQUEST + 1))


def test_a_replay_held_by_a_failing_store_answers_healthz_with_its_progress_and_503(
    tmp_path: Path,
):
    # The replay is held on purpose, not caught while it happens to run: its spans table
    # cannot be written (its folder read-only, as in test_faults.py's read-only store), so no
    # insert passes, and the log holds more records than the default queue and one batch take,
    # so the replay cannot end before the store takes some.
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("needs setpriv to run, as root, a collector that file permissions bind")
    # Root without CAP_DAC_OVERRIDE: permissions bind it as they bind any other user.
    drop = "-dac_override,-dac_read_search"
    bound = ("setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}") if os.geteuid() == 0 else ()
    port, store, log = free_port(), tmp_path / "store", tmp_path / "collector.log"
    stop(start(store, port, log))  # the store made, with its tables, and the log bound to it
    held_back = BatchSettings.max_queue_spans + BatchSettings.max_spans
    records = held_back // SPANS_PER_REQUEST + 800
    acked = write_log(store / "nextrace-wal" / "otel", records)  # where the default puts it
    spans_table = (store / "data" / "otel" / "otel_traces").resolve()
    spans_table.chmod(0o555)
    process = start(store, port, log, prefix=bound)  # returns once /healthz answers
    try:
        wait_until(
            lambda: "store failing" in health(port).json()["status"],
            "the store fails to take the replayed spans",
            detail=lambda: f"{health(port).text}\n{log.read_text()[-4000:]}",
        )
        held = health(port)
        assert held.status_code == 503, held.text
        said = held.json()["status"]
        progress = re.search(
            rf"replaying (\d+) of {records} records of the write-ahead log: "
            "new spans get 503 until it is done",
            said,
        )
        assert progress, said
        done = int(progress[1])
        assert done < records, said  # held: the rest waits for the store
        assert held.json()["wal_replay"] == {
            "running": True,
            "records_done": done,
            "records_total": records,
        }
        body = make_request([make_span("during the replay")]).SerializeToString()
        refused = httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=body, headers=PB)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        spans_table.chmod(0o755)  # the store takes spans again: the replay goes on
        wait_until(
            lambda: health(port).status_code == 200,
            "the replay is done and the collector healthy",
            detail=lambda: f"{health(port).text}\n{log.read_text()[-4000:]}",
        )
        assert health(port).json()["wal_replay"] == {
            "running": False,
            "records_done": records,
            "records_total": records,
        }
        wait_until(lambda: health(port).json()["queue_spans"] == 0, "the queue is empty")
        assert_exactly_once(port, acked)
        print(
            f"{records} records ({len(acked)} spans) replayed, all stored once; while the store "
            f"failed, /healthz said: {said}"
        )
    finally:
        spans_table.chmod(0o755)
        stop(process)
