"""The write-ahead log against its faults, with real ``nextrace collect`` processes: a flipped
byte costs only its record, and a deleted segment only its records, each reported and counted;
a log on a disk smaller than a segment keeps accepting once what it holds is stored; and a
failed fsync neither loses nor duplicates an acknowledged span (slow; CI runs them)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

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
from tests.support.faults import mounted_tmpfs
from tests.support.processes import free_port
from tests.support.waiting import wait_until
from tests.support.wal_files import HEADER, flip, records_at

pytestmark = pytest.mark.slow

SPANS_PER_REQUEST = 100


@dataclass
class KilledLog:
    """A collector killed (-9) with every request it acknowledged in its log, none stored."""

    store: Path
    port: int
    out: Path
    segments: list[Path]  # oldest first, the ones that hold records
    spans_of: dict[int, set[int]]  # record id: the span ids acknowledged with it

    def restart(self) -> subprocess.Popen[bytes]:
        return start(self.store, self.port, self.out)


@pytest.fixture
def killed_log(tmp_path: Path) -> KilledLog:
    # A log of 1 MiB (--wal-max-mb): segments are an eighth of it, so that about 60 requests
    # of 5.6 KB fill three; with the default 1 GiB log, segments are 64 MiB. No insert before
    # the kill (--batch-timeout, --batch-spans): everything acknowledged is only in the log.
    store, port, out = tmp_path / "store", free_port(), tmp_path / "collector.log"
    folder = store / "nextrace-wal" / "otel"
    process = start(
        store, port, out, "--wal-max-mb", "1", "--batch-timeout", "3600", "--batch-spans", "100000"
    )
    spans_of: dict[int, set[int]] = {}
    with httpx.Client(timeout=10) as client:
        # Until three segments hold records (a fourth is begun), and at most 500 requests.
        while len(list(folder.glob("*.wal"))) < 4 and len(spans_of) < 500:
            record = len(spans_of) + 1
            ids = range(record * 1000, record * 1000 + SPANS_PER_REQUEST)
            spans = [make_span("fault", span_id=i.to_bytes(8, "big")) for i in ids]
            answer = client.post(
                f"http://127.0.0.1:{port}/v1/traces",
                content=make_request(spans).SerializeToString(),
                headers=PB,
            )
            assert answer.status_code == 200, answer.text
            spans_of[record] = set(ids)
    process.send_signal(signal.SIGKILL)
    process.wait()
    log = KilledLog(store, port, out, [], spans_of)
    log.segments = [s for s in sorted(folder.glob("*.wal")) if records_at(s)]
    assert len(log.segments) >= 3
    # Every record is the request of the same number.
    first_id, offset, size = records_at(log.segments[0])[0]
    payload = log.segments[0].read_bytes()[offset + HEADER.size : offset + size]
    request = ExportTraceServiceRequest.FromString(payload)
    assert int(request.resource_spans[0].scope_spans[0].spans[0].span_id.hex(), 16) == 1000
    assert first_id == 1
    return log


def stored_span_ids(port: int) -> set[int]:
    return {int(row[0], 16) for row in stored(port, "SELECT SpanId FROM otel_traces")}


def assert_stored_all_but(log: KilledLog, lost: set[int]) -> None:
    """Every span acknowledged is stored once, but those of the records ``lost``."""
    expected = set().union(*(ids for r, ids in log.spans_of.items() if r not in lost))
    wait_until(
        lambda: len(stored_span_ids(log.port)) >= len(expected),
        "the log is replayed",
        timeout_s=60,
        detail=lambda: f"{len(stored_span_ids(log.port))} of {len(expected)} stored",
    )
    found = stored_span_ids(log.port)
    [[spans]] = stored(log.port, "SELECT count() FROM otel_traces")
    acknowledged = sum(len(ids) for ids in log.spans_of.values())
    print(f"{acknowledged} acknowledged, {len(found)} stored, {len(lost)} records lost")
    assert found == expected
    assert int(spans) == len(found)


def test_a_flipped_byte_costs_only_its_record_in_an_older_and_in_the_newest_segment(
    killed_log: KilledLog,
):
    log = killed_log
    older, newest = log.segments[0], log.segments[-1]
    in_older, in_newest = records_at(older)[2], records_at(newest)[1]
    flip(older, in_older[1] + HEADER.size + 1000)  # a byte of a request's body
    flip(newest, in_newest[1] + 2)  # a byte of a record's length: where the next one starts
    process = log.restart()
    try:
        assert_stored_all_but(log, {in_older[0], in_newest[0]})
        snapshot = health(log.port).json()
        assert snapshot["wal_records_lost"] == 2
        assert snapshot["wal_bytes_damaged"] == in_older[2] + in_newest[2]
    finally:
        stop(process)
    text = log.out.read_text()
    for segment, (record_id, offset, size) in ((older, in_older), (newest, in_newest)):
        assert (
            f"ERROR collector.pipeline.wal: write-ahead log in {older.parent}: "
            f"segment {segment.name}: "
            f"{size} bytes at offset {offset} are damaged, record {record_id} lost "
            f"(1 of them not yet stored)"
        ) in text
    assert "crash mid-write" not in text


def test_a_deleted_segment_is_an_error_that_names_it(killed_log: KilledLog):
    log = killed_log
    middle = log.segments[1]
    ids = [record_id for record_id, _, _ in records_at(middle)]
    middle.unlink()
    process = log.restart()
    try:
        assert_stored_all_but(log, set(ids))
        assert health(log.port).json()["wal_records_lost"] == len(ids)
    finally:
        stop(process)
    assert (
        f"ERROR collector.pipeline.wal: write-ahead log in {middle.parent}: "
        f"segment {middle.name} is "
        f"missing: records {ids[0]} to {ids[-1]} are lost ({len(ids)} of them not yet stored)"
    ) in log.out.read_text()


def test_a_log_on_a_disk_smaller_than_a_segment_keeps_accepting(tmp_path: Path):
    # The log alone on a small disk (--wal-dir), of 512 KiB: smaller than a segment of the
    # default log; a store does not fit in it.
    port, store, out = free_port(), tmp_path / "store", tmp_path / "collector.log"
    disk_bytes = 512 << 10
    one_disk = disk_bytes // 8000 * SPANS_PER_REQUEST  # the Sender's requests: 8 KB, 100 spans
    with mounted_tmpfs(tmp_path / "disk", "512k") as disk:
        wal = ("--wal-dir", str(disk / "wal"))
        process = start(store, port, out, *wal)
        try:
            with Sender(f"http://127.0.0.1:{port}/v1/traces") as sender:
                sender.wait_for(2 * one_disk, timeout_s=60)
                stop(process)  # and once more after a restart, which keeps nothing stored
                process = start(store, port, out, *wal)
                sender.wait_for(len(sender.acked) + one_disk, timeout_s=60)
            wait_until(lambda: health(port).json()["queue_spans"] == 0, "everything is stored")
            print(f"small disk: {len(sender.acked)} acknowledged, {sender.refused} answers 503")
            assert_exactly_once(port, sender.acked, "a log on a small disk")
            assert health(port).json()["wal_bytes"] < disk_bytes // 2
        finally:
            stop(process)


FAIL_FSYNC_C = r"""
/* fsync and fdatasync fail with EIO, for files and folders under $FAIL_FSYNC_UNDER, while the
 * file $FAIL_FSYNC_WHILE exists: a disk that stops writing back, as the log sees it. With
 * $FAIL_FSYNC_SUFFIX, only for paths that end with it; with $FAIL_FSYNC_EVERY = N, only one
 * such call in N (the first, the N+1th...). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long calls;

static int ends_with(const char *text, const char *suffix) {
    size_t length = strlen(text), size = strlen(suffix);
    return length >= size && strcmp(text + length - size, suffix) == 0;
}

static int failing(int fd) {
    const char *under = getenv("FAIL_FSYNC_UNDER"), *flag = getenv("FAIL_FSYNC_WHILE");
    const char *suffix = getenv("FAIL_FSYNC_SUFFIX"), *every = getenv("FAIL_FSYNC_EVERY");
    char link[64], path[PATH_MAX];
    ssize_t length;
    if (under == NULL || flag == NULL || access(flag, F_OK) != 0) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    length = readlink(link, path, sizeof path - 1);
    if (length < 0) return 0;
    path[length] = '\0';
    if (strncmp(path, under, strlen(under)) != 0) return 0;
    if (suffix != NULL && !ends_with(path, suffix)) return 0;
    return __atomic_fetch_add(&calls, 1, __ATOMIC_SEQ_CST) % (every ? atol(every) : 1) == 0;
}

int fsync(int fd) {
    static int (*real)(int);
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    if (failing(fd)) { errno = EIO; return -1; }
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (failing(fd)) { errno = EIO; return -1; }
    return real(fd);
}
"""


@pytest.fixture
def fail_fsync(tmp_path: Path) -> Path:
    """The library above, built to preload."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("making fsync fail (an LD_PRELOAD library) needs a C compiler")
    source, library = tmp_path / "fail_fsync.c", tmp_path / "fail_fsync.so"
    source.write_text(FAIL_FSYNC_C)
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"], check=True
    )
    return library


FAILING_DISKS = {
    # Every sync of the log's folder fails: requests wait until their spans are stored.
    "every sync fails": ((), "requests wait until their spans are stored"),
    # One sync of a segment in two fails: the records not yet synced are written again into
    # a fresh segment, whose sync (the second) passes.
    "one segment sync in two fails": (
        ("FAIL_FSYNC_SUFFIX=.wal", "FAIL_FSYNC_EVERY=2"),
        "were written again into a fresh segment, and synced",
    ),
}


@pytest.mark.parametrize("disk", FAILING_DISKS)
def test_a_failed_fsync_neither_loses_nor_duplicates(tmp_path: Path, fail_fsync: Path, disk):
    # The log in its own folder (--wal-dir), so that only its syncs fail, not the store's.
    port, store, out = free_port(), tmp_path / "store", tmp_path / "collector.log"
    wal_dir, failing = tmp_path / "wal", tmp_path / "fsync-fails"
    how, said = FAILING_DISKS[disk]
    preload = (
        "env",
        f"LD_PRELOAD={fail_fsync}",
        f"FAIL_FSYNC_UNDER={wal_dir}",
        f"FAIL_FSYNC_WHILE={failing}",
        *how,
    )
    process = start(store, port, out, "--wal-dir", str(wal_dir), prefix=preload)
    try:
        with Sender(f"http://127.0.0.1:{port}/v1/traces") as sender:
            sender.wait_for(1000)
            failing.touch()
            before = len(sender.acked) // SPANS_PER_REQUEST + sender.refused
            wait_until(
                lambda: len(sender.acked) // SPANS_PER_REQUEST + sender.refused >= before + 10,
                "ten requests are answered while fsync fails",
            )
            failing.unlink()
            sender.wait_for(len(sender.acked) + 1000)
        wait_until(lambda: health(port).json()["queue_spans"] == 0, "everything is stored")
        print(
            f"failed fsync, {disk}: {len(sender.acked)} acknowledged, {sender.refused} answers "
            f"503, {sender.unknown} unknown"
        )
        assert_exactly_once(port, sender.acked, f"a failed fsync: {disk}")
    finally:
        stop(process)
    assert said in out.read_text()
