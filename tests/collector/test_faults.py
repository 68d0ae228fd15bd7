"""Fault injection against real ``nextrace collect`` processes: what was acknowledged is stored,
exactly once, through kill -9, a full disk and a read-only disk (slow; CI runs it); and against
a real process inserting through the exporter, killed at the one point of ClickHouse's insert
where a retry used to be swallowed.

The sender behaves like an OTLP exporter: it retries a 503 and a refused connection, and it
gives up a request whose outcome it cannot know (the connection dropped mid-request), whose
spans then count neither as acknowledged nor as lost. Every span has its own sequential id,
and every span has a cache layer, so the derived ``cache_events`` rows and their per-minute
sums must match the spans one for one too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.collector.inserter import SPANS_PER_BATCH
from tests.support.collector_process import (
    Sender,
    assert_exactly_once,
    health,
    start,
    stop,
)
from tests.support.faults import fill, mounted_tmpfs, reserve
from tests.support.processes import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    port, store, log = free_port(), tmp_path / "store", tmp_path / "collector.log"
    with Sender(f"http://127.0.0.1:{port}/v1/traces") as sender:
        for _ in range(5):
            process = start(store, port, log)
            # The kill comes after a random number of acknowledged spans, mid-stream.
            sender.wait_for(len(sender.acked) + rng.randrange(300, 6000))
            process.kill()
            process.wait()
        process = start(store, port, log)
        sender.wait_for(len(sender.acked) + 1000)
    stop(process)
    process = start(store, port, log)
    try:
        assert_exactly_once(port, sender.acked, f"seed {seed}")
    finally:
        stop(process)
    print(f"seed {seed}: {len(sender.acked)} spans acknowledged, {sender.unknown} unknown")


@pytest.fixture(scope="module")
def kill_on_rename(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``kill_on_rename.c`` built as a library to preload."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("injecting a crash at ClickHouse's part commit needs a C compiler")
    library = tmp_path_factory.mktemp("fault") / "kill_on_rename.so"
    source = Path(__file__).with_name("kill_on_rename.c")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"], check=True
    )
    return library


def inserter(mode: str, store: Path, numbers: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.collector.inserter", mode, str(store), str(numbers)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_crash_between_clickhouse_recording_a_token_and_storing_its_rows_loses_nothing(
    tmp_path: Path, kill_on_rename: Path
):
    # ClickHouse records an insert's deduplication token, then commits its part by renaming a
    # tmp_insert_ folder. A crash in between (caught by the kill -9 test, under load, once in
    # about 40 kills) leaves a token without rows, and a replay with that token stored nothing.
    # Here every round crashes exactly there, at the traces table's part, after a few batches.
    store, numbers = tmp_path / "store", tmp_path / "numbers"
    uuid = json.loads(inserter("count", store, numbers).stdout)["uuids"]["otel_traces"]
    rounds = (0, 3, 1)  # batches stored before the crash, each time
    for after in rounds:
        crashed = inserter(
            "insert",
            store,
            numbers,
            LD_PRELOAD=str(kill_on_rename),
            KILL_ON_RENAME=f"{uuid}/tmp_insert_",
            KILL_AFTER=str(after),
        )
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
        assert inserter("replay", store, numbers).returncode == 0
    found = json.loads(inserter("count", store, numbers).stdout)
    last = len(numbers.read_text().split())
    assert last == sum(after + 1 for after in rounds)  # and the batch replayed, each time
    assert found["batches"] == {str(n): SPANS_PER_BATCH for n in range(1, last + 1)}
    assert found["events"] == last * SPANS_PER_BATCH


def assert_fault_loses_nothing(port: int, log: Path, make_fault, clear_fault) -> set[int]:
    """Spans flow; the fault comes; new spans are refused with 503 while acknowledged ones
    wait; the fault goes; everything acknowledged is stored, once, and nothing was dropped.
    Returns the spans acknowledged."""

    def detail() -> str:
        return f"health: {health(port).text}\ncollector log:\n{log.read_text()[-4000:]}"

    with Sender(f"http://127.0.0.1:{port}/v1/traces") as sender:
        sender.wait_for(2000)
        make_fault()
        during, refused = len(sender.acked), sender.refused
        wait_until(lambda: sender.refused > refused + 5, "new spans are refused")
        wait_until(lambda: health(port).status_code == 503, "health says the store fails")
        assert "store failing" in health(port).json()["status"]
        clear_fault()
        sender.wait_for(during + 2000)
    wait_until(
        lambda: health(port).json()["queue_spans"] == 0 and health(port).status_code == 200,
        "the collector has stored everything and is healthy again",
        detail=detail,
    )
    assert_exactly_once(port, sender.acked, log=log)
    assert not any(health(port).json()["spans_dropped"].values())
    return sender.acked


def test_a_full_disk_loses_nothing_acknowledged(tmp_path: Path):
    port, log = free_port(), tmp_path / "collector.log"
    with mounted_tmpfs(tmp_path / "disk", "160m") as disk:
        reserve(disk, 16)  # what the test's "space returns" gives back, however the disk filled
        process = start(disk / "store", port, log, "--wal-max-mb", "32")
        try:
            acked = assert_fault_loses_nothing(
                port, log, lambda: fill(disk), (disk / "filler").unlink
            )
            # What the engine counts is not yet what its disk holds: a full disk can leave a
            # part the running engine counts and a restart finds broken (and drops).
            stop(process)
            process = start(disk / "store", port, log, "--wal-max-mb", "32")
            assert_exactly_once(port, acked, "after a restart")
        finally:
            stop(process)


def test_a_read_only_store_loses_nothing_acknowledged(tmp_path: Path):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run a collector that file permissions bind")
    port, store, log = free_port(), tmp_path / "store", tmp_path / "collector.log"
    # Root without CAP_DAC_OVERRIDE: permissions bind it as they bind any other user.
    bound = (
        "setpriv",
        "--bounding-set=-dac_override,-dac_read_search",
        "--inh-caps=-dac_override,-dac_read_search",
    )
    process = start(
        store, port, log, "--batch-spans", "2000", "--queue-spans", "10000", prefix=bound
    )
    try:
        assert_fault_loses_nothing(
            port,
            log,
            lambda: subprocess.run(["chmod", "-R", "a-w", str(store)], check=True),
            lambda: subprocess.run(["chmod", "-R", "u+w", str(store)], check=True),
        )
    finally:
        stop(process)
