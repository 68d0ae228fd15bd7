"""A write-ahead log that cannot wedge, against real ``nextrace collect`` processes (slow; CI
runs them): a full disk with the log beside the store, through a crash and a restart; and a
Next.js trace that never goes idle, which the normalizer used to hold, with the log behind it,
for as long as its spans kept coming.

Senders and helpers are those of ``test_faults.py``: a sender retries a 503, and every span it
sends has its own id, so that what was acknowledged can be looked up in the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.builders import make_request, make_span
from tests.support.collector_process import (
    PB,
    Sender,
    assert_exactly_once,
    health,
    start,
    stop,
    stored,
)
from tests.support.faults import fill, mounted_tmpfs, reserve
from tests.support.processes import free_port
from tests.support.spans import request_spans
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def status(port: int) -> str:
    answer: str = health(port).json()["status"]
    return answer


def test_a_restart_on_a_full_disk_says_why_it_waits_and_recovers_when_space_returns(
    tmp_path: Path,
):
    # The log is beside the store (the default), on one disk. The disk fills while spans
    # flow; the collector crashes; it restarts on the disk still full, with acknowledged
    # requests in its log that the store cannot take yet. It used to wait in its replay,
    # answering nothing while a TCP probe passed.
    url_port = free_port()
    log = tmp_path / "collector.log"
    with mounted_tmpfs(tmp_path / "disk", "160m") as disk:
        reserve(disk, 16)  # what the test's "space returns" gives back, however the disk filled
        store = disk / "store"
        process = start(store, url_port, log)
        try:
            with Sender(f"http://127.0.0.1:{url_port}/v1/traces") as sender:
                sender.wait_for(2000)
                fill(disk)
                refused = sender.refused
                wait_until(lambda: sender.refused > refused + 5, "the full disk refuses new spans")
                process.kill()
                process.wait()
                acked_before = len(sender.acked)
                process = start(store, url_port, log)  # returns once /healthz answers
                wait_until(
                    lambda: "replaying" in status(url_port) and "store failing" in status(url_port),
                    "/healthz says the replay waits for the failing store",
                    timeout_s=60,
                )
                answer = health(url_port)
                assert answer.status_code == 503
                print(f"while the disk is full: {answer.json()['status']}")
                (disk / "filler").unlink()  # space returns
                sender.wait_for(acked_before + 2000)
            wait_until(
                lambda: (
                    health(url_port).status_code == 200
                    and health(url_port).json()["queue_spans"] == 0
                ),
                "the collector has stored everything and is healthy again",
                detail=lambda: f"{health(url_port).text}\n{log.read_text()[-4000:]}",
            )
            assert_exactly_once(url_port, sender.acked, log=log)
            assert not any(health(url_port).json()["spans_dropped"].values())
            stop(process)  # what the disk holds, not only what the running engine counts
            process = start(store, url_port, log)
            assert_exactly_once(url_port, sender.acked, "after a restart")
            print(
                f"{len(sender.acked)} spans acknowledged ({acked_before} before the crash), "
                f"all stored once; {sender.refused} answers 503"
            )
        finally:
            stop(process)


def collect_once(store: Path, port: int) -> subprocess.CompletedProcess[str]:
    """``nextrace collect`` on ``store``, expected to end at start."""
    command = ("-m", "nextrace.cli", "collect", f"--dsn=chdb:{store}", f"--port={port}")
    return subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=120)


def test_a_store_that_cannot_start_on_a_full_disk_says_so_in_one_line(tmp_path: Path):
    # A new store (or one a release must migrate) on a full disk: its schema cannot be written.
    # The collector used to end with "unexpected DatabaseError ... (a bug in nextrace ...)".
    port, log = free_port(), tmp_path / "collector.log"
    with mounted_tmpfs(tmp_path / "disk", "20m") as disk:
        fill(disk)
        store = disk / "store"
        ended = collect_once(store, port)
        assert ended.returncode != 0
        said = ended.stderr.strip().splitlines()
        assert said[-1].startswith(f"error: the embedded chDB store at {store}"), said
        assert "its disk is full" in said[-1]
        assert said[-1].endswith("Free space on it and start the collector again"), said
        assert not any("Traceback" in line for line in said)
        # Space returns. The first start left the store's metadata files empty, and chDB then
        # refused to start ("Empty query (in file metadata/otel.sql)"): they are repaired.
        (disk / "filler").unlink()
        stop(start(store, port, log))
        repaired = [line for line in log.read_text().splitlines() if "after a full disk" in line]
        print("\n".join(repaired))
        assert repaired


def test_metadata_a_full_disk_emptied_is_written_again_or_named(tmp_path: Path):
    # What the full disk above leaves, made by hand on a store holding spans: an empty database
    # file is written again (its folder names its UUID), and the spans are all there; an empty
    # file of a table that holds rows is not guessed at, but named, in one line.
    port, store, log = free_port(), tmp_path / "store", tmp_path / "collector.log"
    process = start(store, port, log)
    try:
        body = make_request([make_span("kept") for _ in range(10)]).SerializeToString()
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=body, headers=PB)
        assert answer.status_code == 200
    finally:
        stop(process)
    (store / "metadata" / "otel.sql").write_bytes(b"")
    process = start(store, port, log)
    try:
        assert stored(port, "SELECT count() FROM otel_traces WHERE SpanName = 'kept'") == [["10"]]
    finally:
        stop(process)
    assert "wrote the empty metadata file of database otel" in log.read_text()
    [table] = (store / "metadata" / "otel").glob("otel_traces.sql")
    table.write_bytes(b"")
    ended = collect_once(store, port)
    assert ended.returncode != 0
    said = ended.stderr.strip().splitlines()[-1]
    assert said.startswith(f"error: the embedded store {store} cannot start: a full disk left"), (
        said
    )
    assert f"{table.resolve()}" in said
    assert "restore the store's folder from a backup" in said


def nextjs_export(spans: list[Span], service: str = "shop") -> bytes:
    return make_request(spans, service, scope="next.js").SerializeToString()


def test_a_next_js_trace_that_never_goes_idle_neither_fills_the_log_nor_loses_its_rows(
    tmp_path: Path,
):
    # One Next.js trace gets a request every few hundred spans of other traffic, so it never
    # goes idle for the 5 s the normalizer waits (the default). Held until idle, it kept every
    # log record from its first span on: a 64 MB log filled in 40 s and refused everything.
    # Not the defaults, and why: the default 1 GiB log would take minutes of traffic to fill,
    # and the default hold of 30 s would need a log holding more than 30 s of it. A 2 MiB log
    # and a 0.5 s hold keep the proportion (a log of a few times what a hold lets in, at the
    # most the sender can send: 100 spans per 10 ms, about 0.8 MB/s) in a test of seconds.
    port, store, log = free_port(), tmp_path / "store", tmp_path / "collector.log"
    process = start(store, port, log, "--wal-max-mb", "2", "--nextjs-max-hold", "0.5")
    url = f"http://127.0.0.1:{port}/v1/traces"
    trace = os.urandom(16)
    paths: list[str] = []
    try:
        with Sender(url) as sender, httpx.Client(timeout=30) as client:
            # One and a half logs' worth of other traffic (about 80 bytes a span), acknowledged
            # while the trace stays busy: the log could not take it if the trace pinned it. A
            # 503 now and then (the store a second behind on a busy machine, the log full for
            # that long) is retried, by the sender as by Next.js's exporter; what is asserted
            # is that acknowledged spans keep coming, where a pinned log refused them all.
            trace_refused = 0

            def export(body: bytes) -> bool:
                nonlocal trace_refused
                answer = client.post(url, content=body, headers=PB)
                assert answer.status_code in (200, 503), (len(paths), answer.text)
                trace_refused += answer.status_code == 503
                return answer.status_code == 200

            while len(sender.acked) < 3 * (1 << 20) // 80:
                (render, fetch), (request,) = request_spans(f"/p/{len(paths)}", trace_id=trace)
                for part in ([render, fetch], [request]):  # as Next.js exports a request
                    body = nextjs_export(part)
                    wait_until(
                        lambda body=body: export(body),
                        f"the trace's export {len(paths)} is acknowledged",
                        timeout_s=60,
                        detail=lambda: health(port).text,
                    )
                    more = len(sender.acked) + 300
                    wait_until(
                        lambda more=more: len(sender.acked) >= more,
                        f"300 more spans are acknowledged after {len(sender.acked)}: the "
                        "busy trace does not pin the log",
                        timeout_s=60,
                        detail=lambda: health(port).text,
                    )
                paths.append(f"/p/{len(paths)}")
        requests = len(paths)
        trace_id = trace.hex()

        def rows() -> list[list[str]]:
            return stored(
                port,
                "SELECT (SELECT count() FROM requests WHERE TraceId = {t}), "
                "(SELECT uniqExact(Path) FROM requests WHERE TraceId = {t}), "
                "(SELECT count() FROM cache_events WHERE TraceId = {t}), "
                "(SELECT sum(Requests) FROM requests_1m WHERE ServiceName = 'shop'), "
                "(SELECT sum(Lookups) FROM cache_events_1m WHERE ServiceName = 'shop')".replace(
                    "{t}", f"'{trace_id}'"
                ),
            )

        expected = [[str(requests)] * 5]
        wait_until(
            lambda: rows() == expected,
            f"the trace's rows are its {requests} requests, once each",
            timeout_s=60,
            detail=lambda: f"{rows()} != {expected}\n{health(port).text}",
        )
        [[cancelled]] = stored(
            port,
            "SELECT (SELECT countIf(Sign != 1) FROM requests) "
            "+ (SELECT countIf(Sign != 1) FROM cache_events)",
        )
        assert cancelled == "0"  # no cancellation left behind by a correction
        [[paths_stored]] = stored(
            port, f"SELECT groupArray(Path) FROM requests WHERE TraceId = '{trace_id}'"
        )
        assert sorted(paths_stored.strip("[]").replace("'", "").split(",")) == sorted(paths)
        counters = health(port).json()
        assert counters["nextjs_released_busy"] > 0
        assert counters["nextjs_traces_corrected"] > 0
        fault_ids = {
            int(row[0], 16)
            for row in stored(port, "SELECT SpanId FROM otel_traces WHERE ServiceName != 'shop'")
        }
        assert not sender.acked - fault_ids, "acknowledged spans missing"
        [[spans, distinct]] = stored(
            port, "SELECT count(), uniqExact(SpanId) FROM otel_traces WHERE ServiceName != 'shop'"
        )
        assert spans == distinct
        print(
            f"{len(sender.acked)} spans acknowledged ({sender.refused} answers 503, and "
            f"{trace_refused} to the trace's exports); the trace's {requests} "
            f"requests derived, released {counters['nextjs_released_busy']} times while busy, "
            f"corrected {counters['nextjs_traces_corrected']} times"
        )
    finally:
        stop(process)
