"""Reads never cross: a read that fails, is cancelled or is refused for its size leaves nothing
for the next one, in this process and through a real collector's ``/sql`` under concurrency;
no answer is over the result limit, whatever its blocks; settings and system tables are
closed while every dashboard query still runs; and one read fits in the collector's pod
beside the collector's own memory.

Every read uses the limits users get (:class:`collector.config.ReadLimits`); the two tests that
cannot say why.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import json
import select
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml

from bench.queries import alert_queries, dashboard_queries
from collector.config import CollectorConfig, ReadLimits, StoreConfig
from collector.errors import QueryFailed, ReadOnlyViolation
from collector.storage.store import ClickHouseStore, _read_at_most, connect, open_store
from tests.support.collector_process import start, stop
from tests.support.processes import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]

# Reads that fail after ClickHouse has written part of their answer, and what they wrote:
# with the old store, the next read on the session received it before its own rows.
FAILING = {
    "row limit": "SELECT number FROM numbers(3000000)",  # 5,841,112 bytes written, then stopped
    "error mid-way": "SELECT throwIf(number = 900000, 'stop') FROM numbers(1000000)",  # 1,439,001
    "result limit": "SELECT repeat('x', 1000) FROM numbers(70000)",  # 70 MB, few bytes in memory
    "memory limit": "SELECT groupArray(number) FROM numbers(200000000)",
}
# Reads one answer block at a time, 0.65 s a block, until cancelled (or the row limit).
SLOW = "SELECT number FROM numbers(100000000) WHERE sleepEachRow(0.00001) = 0"
BLOCK_ROWS = 65409  # numbers() makes blocks of max_block_size rows


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[ClickHouseStore]:
    """One store for the module's reads (opening one costs about a second)."""
    config = StoreConfig.from_dsn(f"chdb://{chdb_path}?database=t_reads_{uuid.uuid4().hex[:8]}")
    opened = open_store(config)
    yield opened
    opened.close()
    client = connect(config)
    try:
        client.command(f"DROP DATABASE IF EXISTS `{config.database}` SYNC")
    finally:
        client.close()


@pytest.mark.parametrize("kind", FAILING)
def test_a_failed_read_leaves_nothing_for_the_next_one(store: ClickHouseStore, kind):
    with pytest.raises(QueryFailed):
        store.read(FAILING[kind], "TSV")
    assert store.read("SELECT 42", "TSV") == b"42\n"


def test_a_cancelled_read_leaves_nothing_for_the_next_one(store: ClickHouseStore):
    failed: list[BaseException] = []

    def read() -> None:
        try:
            store.read(SLOW, "TSV", tag="slow")
        except QueryFailed as exc:
            failed.append(exc)

    reading = threading.Thread(target=read)
    reading.start()

    def rows_read() -> int:
        rows = store.client.query(
            "SELECT sum(read_rows) FROM system.processes WHERE query LIKE '%nextrace-read:slow%'"
            " AND query NOT LIKE '%system.processes%'"
        ).result_rows
        return int(rows[0][0] or 0)

    # Four blocks read: the first ones are in the answer, as a cancel finds them.
    wait_until(lambda: rows_read() >= 4 * BLOCK_ROWS, "the slow read wrote rows", 60)
    while reading.is_alive():
        store.cancel_reads("slow")
        reading.join(0.2)
    assert failed, "the read was not cancelled"
    assert store.read("SELECT 42", "TSV") == b"42\n"


def test_concurrent_reads_each_get_exactly_their_own_answer(store: ClickHouseStore):
    failing = [FAILING["row limit"], FAILING["error mid-way"]]

    def reader(number: int) -> list[bytes]:
        answers = []
        for turn in range(3):
            with pytest.raises(QueryFailed):
                store.read(failing[(number + turn) % 2], "TSV")
            answers.append(store.read(f"SELECT {number * 100 + turn}", "TSV"))
        return answers

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = dict(zip(range(4), pool.map(reader, range(4)), strict=True))
    assert answers == {n: [f"{n * 100 + t}\n".encode() for t in range(3)] for n in range(4)}


def test_no_answer_is_over_the_result_limit_whatever_its_blocks(store: ClickHouseStore):
    limit = store.config.read_limits.max_result_bytes
    # Two blocks of one constant: a few bytes in memory, so ClickHouse's own limit passes them.
    with pytest.raises(QueryFailed, match="over the read limit of 64 MiB"):
        store.read(FAILING["result limit"], "TSV")
    # One block of 100 MB: under the default memory limit it cannot even be written.
    with pytest.raises(QueryFailed):
        store.read("SELECT repeat(repeat('x', 100), 1000000)", "TSV")
    # Exactly the limit passes; a byte more does not.
    at_limit = f"SELECT repeat('x', 1023) FROM numbers({limit // 1024})"  # 1,024 bytes a row
    assert len(store.read(at_limit, "TSV")) == limit
    with pytest.raises(QueryFailed, match="over the read limit"):
        store.read(f"{at_limit} UNION ALL SELECT ''", "TSV")


def test_a_single_block_over_the_result_limit_is_refused(store_config: StoreConfig):
    # Not the default memory limit: under it a block of 100 MB fails before the result check,
    # which this test is about. ClickHouse's own max_result_bytes never cuts the last block.
    roomy = replace(store_config, read_limits=ReadLimits(max_memory_bytes=1 << 30))
    opened = open_store(roomy)
    try:
        with pytest.raises(QueryFailed, match="over the read limit of 64 MiB"):
            opened.read("SELECT repeat(repeat('x', 100), 1000000)", "TSV")
        assert opened.read("SELECT 42", "TSV") == b"42\n"
    finally:
        opened.close()


def test_a_servers_answer_is_read_no_further_than_the_limit():
    # No ClickHouse server runs here: this is the reading of the answer the driver streams
    # from one, over an answer of 65 MiB.
    answer = io.BytesIO(b"x" * (65 << 20))
    with pytest.raises(QueryFailed, match="over the read limit of 64 MiB"):
        _read_at_most(answer, 64 << 20)
    assert answer.tell() <= (64 << 20) + (1 << 20)
    assert _read_at_most(io.BytesIO(b"1\n"), 64 << 20) == b"1\n"


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT getSetting('max_memory_usage')", "getSetting()"),
        ("SELECT getSettingOrDefault('max_threads', 0)", "getSettingOrDefault()"),
        ("SHOW SETTINGS LIKE '%'", "SHOW SETTINGS is not allowed"),
        ("SHOW CHANGED SETTINGS LIKE '%'", "SHOW CHANGED SETTINGS is not allowed"),
        ("SHOW TABLES FROM system", "SHOW TABLES FROM system is not allowed"),
        ("show tables in system like '%'", "SHOW TABLES FROM system is not allowed"),
        ("SHOW TABLES FROM INFORMATION_SCHEMA", "SHOW TABLES FROM INFORMATION_SCHEMA"),
        ("SHOW TABLES FROM system FORMAT JSONEachRow", "SHOW TABLES FROM system"),
        ("SHOW DATABASES", "SHOW DATABASES is not allowed"),
        ("SHOW DICTIONARIES", "SHOW DICTIONARIES is not allowed"),
        ("SHOW CLUSTERS", "SHOW CLUSTERS is not allowed"),
        ("SHOW FULL TABLES FROM system", "SHOW FULL TABLES is not allowed"),
        ("SHOW CREATE TABLE system.one", "system.one is not in the store's database"),
        ("EXISTS TABLE system.one", "system.one is not in the store's database"),
        ("EXISTS system.one FORMAT TSV", "system.one is not in the store's database"),
        ("DESCRIBE TABLE system.settings", "system.settings is not in the store's database"),
        ("SELECT hasColumnInTable('system', 'one', 'dummy')", "hasColumnInTable()"),
    ],
)
def test_settings_and_system_tables_are_closed_in_one_line(store: ClickHouseStore, sql, why):
    with pytest.raises(ReadOnlyViolation, match=why) as refused:
        store.read(sql, "TSV")
    assert "\n" not in str(refused.value)


def test_the_stores_own_tables_and_the_sessions_own_names_stay_open(store: ClickHouseStore):
    database = store.config.database
    assert b"otel_traces\n" in store.read("SHOW TABLES", "TSV")
    assert b"otel_traces\n" in store.read(f"SHOW TABLES FROM {database} LIKE 'otel%'", "TSV")
    assert store.read("SELECT currentDatabase()", "TSV") == f"{database}\n".encode()
    assert store.read(f"EXISTS TABLE {database}.otel_traces", "TSV") == b"1\n"
    assert store.read("SHOW CREATE TABLE otel_traces", "TSV").startswith(b"CREATE TABLE")
    assert json.loads(store.read("SHOW TABLES FORMAT JSONEachRow", "TSV").splitlines()[0])


def test_every_dashboard_and_alert_query_runs_through_the_guard(store: ClickHouseStore):
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    queries = [*dashboard_queries(end, "1h"), *alert_queries(end)]
    assert len(queries) > 40
    for query in queries:
        store.read(query.sql, "JSONCompact")  # refused or failing: an exception names it


def pod_memory() -> tuple[int, int]:
    """The memory limit of the shipped collector pod, and the collector's own measured peak
    in it, in bytes."""
    (workload,) = [
        document
        for document in yaml.safe_load_all((ROOT / "deploy/kubernetes/collector.yaml").read_text())
        if document["kind"] == "StatefulSet"
    ]
    (container,) = [
        c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == "collector"
    ]
    limit = kubernetes_bytes(container["resources"]["limits"]["memory"])
    budget_mb = CollectorConfig.memory_max_bytes >> 20  # the manifest does not change it
    assert not any(arg.startswith("--memory-mb") for arg in container["args"])
    # The collector's own peak at that budget, measured with an embedded store (whose engine
    # is in the process) and 96 requests of 15 MB: bench/trust.py.
    trust = json.loads((ROOT / "bench/results/trust.json").read_text())
    (measured,) = [m for m in trust["memory"] if m["memory_budget_mb"] == budget_mb]
    return limit, measured["peak_rss_mb"] << 20


def test_one_read_fits_in_the_collectors_pod_beside_the_collector():
    limit, collector_bytes = pod_memory()
    read_bytes = ReadLimits().resident_bytes()
    assert collector_bytes + read_bytes <= limit, (
        f"the collector ({collector_bytes >> 20} MiB) and one read ({read_bytes >> 20} MiB) "
        f"do not fit in the pod's {limit >> 20} MiB"
    )


def kubernetes_bytes(quantity: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


# Real collectors


def resident_mib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) >> 10
    raise AssertionError(f"no {field} for {pid}")


def post(url: str, sql: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(url, json={"query": sql, "format": "TSV"}, timeout=timeout)


@pytest.fixture
def collector_url(tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    port = free_port()
    process = start(tmp_path / "store", port, tmp_path / "log")
    try:
        yield f"http://127.0.0.1:{port}/sql", tmp_path / "store", process.pid
    finally:
        stop(process)


@pytest.mark.slow
def test_through_a_real_collector_no_read_sees_another_reads_rows(collector_url):
    url, store_path, _ = collector_url
    # A read cancelled because its client left, after it wrote a few blocks.
    with pytest.raises(httpx.ReadTimeout):
        post(url, SLOW, timeout=2)
    assert post(url, "SELECT 42").text == "42\n"
    # Four clients, each failing a read and then asking for its own number, and two
    # `nextrace sql` commands, which go through the collector that holds the store.
    failing = list(FAILING.values())
    mixed: list[str] = []

    def client(number: int) -> list[str]:
        answers = []
        for turn in range(4):
            refused = post(url, failing[(number + turn) % len(failing)])
            assert refused.status_code == 400, refused.text
            mixed.append(refused.text)
            answers.append(post(url, f"SELECT {number * 100 + turn}").text)
        return answers

    def command(number: int) -> str:
        sql = ["sql", f"SELECT {number}", "--dsn", f"chdb:{store_path}", "--format", "TSV"]
        done = subprocess.run(
            [sys.executable, "-m", "nextrace.cli", *sql],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        clients = pool.map(client, range(4))
        commands = pool.map(command, (1001, 1002))
        answers = dict(zip(range(4), clients, strict=True))
        printed = list(commands)
    assert answers == {n: [f"{n * 100 + t}\n" for t in range(4)] for n in range(4)}
    assert printed == ["1001\n", "1002\n"]
    assert all(len(text) < 1000 for text in mixed)  # errors, with none of the rows


@pytest.mark.slow
def test_reads_waiting_for_their_turn_are_bounded(collector_url):
    url, _, _ = collector_url
    base = url.removesuffix("/sql")
    most = ReadLimits().max_waiting_reads + 1  # the one running, and those waiting
    body = json.dumps({"query": "SELECT count() FROM numbers(1000000000000)"}).encode()
    address = base.removeprefix("http://")
    request = (
        f"POST /sql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    # Each client stays until the test closes its connection, however long the machine takes
    # to start them all; a read that ends first (at the 30 s execution limit) gives its place
    # to a new one.
    def open_read() -> socket.socket:
        host, port = address.split(":")
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(request)
        return sock

    def answered(sock: socket.socket) -> bool:
        poller = select.poll()  # select() takes no descriptor above 1023, and a suite has more
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))

    def running() -> int:
        return int(httpx.get(f"{base}/healthz", timeout=30).json()["reads_running"])

    reads = [open_read() for _ in range(most)]
    try:

        def all_running() -> bool:
            for i, sock in enumerate(reads):
                if answered(sock):  # its read is over
                    sock.close()
                    reads[i] = open_read()
            return running() == most

        wait_until(all_running, f"{most} reads running or waiting", 120)
        refused = post(url, "SELECT 1")
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "1"
    finally:
        for sock in reads:
            sock.close()  # the clients leave: their reads are cancelled, or never start
    wait_until(lambda: running() == 0, "the abandoned reads were cancelled", 60)
    assert post(url, "SELECT 42").text == "42\n"


@pytest.mark.slow
def test_reads_inside_the_limits_add_no_more_than_the_pod_allows_for_them(collector_url):
    url, _, pid = collector_url
    assert post(url, "SELECT 1").text == "1\n"
    idle = resident_mib(pid, "VmRSS")
    limit, collector_bytes = pod_memory()
    room = (limit - collector_bytes) >> 20  # for reads, beside the collector at its peak
    heavy = [
        *FAILING.values(),
        "SELECT number, repeat('x', 100) FROM numbers(900000) FORMAT JSONCompact",
        "SELECT count() FROM (SELECT number FROM numbers(50000000) GROUP BY number)",
        "SELECT repeat(repeat('x', 100), 1000000)",
        "SELECT repeat('x', 1000) FROM numbers(100000)",  # 100 MB written
    ]
    for sql in heavy * 2:  # each kind twice: what a read leaves behind must not add up
        post(url, sql)
    # The bound is the pod's room for reads (1,043 MiB), what an OOM kill depends on, not
    # ReadLimits.resident_bytes() (840 MiB), the estimate the pod is sized with: how far the
    # engine writes ahead of a slow reader, and when the allocator gives memory back, depend
    # on the machine. Measured: 505 MiB over rest on an idle machine, up to 718 beside a busy
    # process; 1,832 before the limits were sized.
    grown = resident_mib(pid, "VmHWM") - idle
    print(f"reads took the collector {grown} MiB over its {idle} MiB at rest, of {room} MiB")
    assert grown <= room, f"reads took the collector {grown} MiB over its {idle} MiB at rest"
    # And what they held is given back: 47 MiB over rest was left after them (1,351 before
    # the limits were sized, when nothing was). The bound: one read's memory limit.
    wait_until(
        lambda: resident_mib(pid, "VmRSS") - idle <= ReadLimits().max_memory_bytes >> 20,
        "the reads' memory is given back",
        60,
        detail=lambda: f"{resident_mib(pid, 'VmRSS')} MiB resident, {idle} at rest",
    )
    assert post(url, "SELECT 42").text == "42\n"
