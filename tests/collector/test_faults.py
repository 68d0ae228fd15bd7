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

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.builders import make_request, make_span
from tests.collector.harness import health, mounted_tmpfs
from tests.collector.inserter import SPANS_PER_BATCH
from tests.nextrace.test_cli import free_port

pytestmark = pytest.mark.slow

SPANS_PER_REQUEST = 100
PB = {"Content-Type": "application/x-protobuf"}


class Sender:
    """A steady stream of spans with ids 1, 2, 3…; ``acked`` holds those answered 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: set[int] = set()
        self.refused = 0  # answers 503
        self.unknown = 0  # requests whose outcome could not be known
        self._next = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                ids = range(self._next, self._next + SPANS_PER_REQUEST)
                self._next += SPANS_PER_REQUEST
                spans = [
                    make_span("fault", span_id=i.to_bytes(8, "big"), attrs={"cache.layer": "data"})
                    for i in ids
                ]
                self._send(client, make_request(spans).SerializeToString(), ids)
                self._stop.wait(0.01)

    def _send(self, client: httpx.Client, body: bytes, ids: range) -> None:
        for _ in range(2000):
            if self._stop.is_set():
                return
            try:
                answer = client.post(self.url, content=body, headers=PB)
            except httpx.ConnectError:  # nobody listening: the request never arrived
                self._stop.wait(0.05)
                continue
            except httpx.HTTPError:  # it may or may not have arrived: do not count it
                self.unknown += 1
                return
            if answer.status_code == 200:
                self.acked.update(ids)
                return
            assert answer.status_code == 503, answer.text
            self.refused += 1
            self._stop.wait(0.05)

    def wait_for(self, acked: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.acked) < acked:
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {acked} acknowledged"
            time.sleep(0.01)


def start(
    store: Path, port: int, log: Path, *extra: str, prefix: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """A collector on ``store``; its log goes to a file (a full pipe would block it)."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "nextrace.cli",
                "collect",
                "--dsn",
                f"chdb:{store}",
                "--port",
                str(port),
                "--batch-timeout",
                "0.2",
                *extra,
            ],
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"collector exited:\n{log.read_text()[-3000:]}"
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the collector did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(120) == 0


def stored(port: int, sql: str) -> list[list[str]]:
    answer = httpx.post(
        f"http://127.0.0.1:{port}/sql", json={"query": sql, "format": "TSV"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return [line.split("\t") for line in answer.text.splitlines()]


def assert_exactly_once(port: int, acked: set[int], run: str = "") -> None:
    """Every acknowledged span stored once; ``run`` (a seed) goes into any failure message."""
    ids = {int(row[0], 16) for row in stored(port, "SELECT SpanId FROM otel_traces")}
    missing = acked - ids
    assert not missing, (
        f"{run}: {len(missing)} acknowledged spans missing, e.g. {sorted(missing)[:5]}"
    )
    [[spans, distinct, events, minutes]] = stored(
        port,
        "SELECT count(), uniqExact(SpanId), (SELECT count() FROM cache_events), "
        "(SELECT sum(Lookups) FROM cache_events_1m) FROM otel_traces",
    )
    assert spans == distinct, f"{int(spans) - int(distinct)} spans stored twice"
    assert events == spans, "cache_events rows doubled or lost"
    assert minutes == spans, "per-minute sums doubled or lost"


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


def fill(disk: Path) -> None:
    """Take every free byte of ``disk`` with ``disk/filler``."""
    chunk = b"\0" * (1 << 20)
    with open(disk / "filler", "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(chunk)
            out.flush()


def wait_until(condition, what: str, timeout_s: float = 120, detail=lambda: "") -> None:
    """Poll ``condition``; on timeout, fail with ``what`` and what ``detail()`` tells."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}\n{detail()}"
        time.sleep(0.05)


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
    assert_exactly_once(port, sender.acked)
    assert not any(health(port).json()["spans_dropped"].values())
    return sender.acked


def test_a_full_disk_loses_nothing_acknowledged(tmp_path: Path):
    port, log = free_port(), tmp_path / "collector.log"
    with mounted_tmpfs(tmp_path / "disk", "160m") as disk:
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
