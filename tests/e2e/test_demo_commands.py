"""`nextrace demo` as a user drives it: its store, real Chromium sessions, the commands it
suggests, a taken port (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from collector.config import StoreConfig
from collector.storage.store import open_store
from nextrace.demo import DemoError, run_demo
from nextrace.listen import bind_socket
from tests.support.demo import processes_using
from tests.support.processes import free_port, nextrace

pytestmark = pytest.mark.slow


def test_a_run_goes_to_the_store_it_is_given(tmp_path):
    shared = tmp_path / "shared-store"  # as a ClickHouse server that Grafana reads would be
    result = run_demo(
        "steady",
        workdir=tmp_path / "runs",
        speed=6,
        collector_port=free_port(),
        server_port=free_port(),
        dsn=f"chdb:{shared}",
        say=lambda _: None,
    )
    assert result.store_dsn == f"chdb:{shared}"
    assert not (result.run_dir / "store").exists()
    store = open_store(StoreConfig.from_dsn(result.store_dsn), migrate=False)
    try:
        (count,) = store.client.query("SELECT count() FROM otel_traces").result_rows[0]
    finally:
        store.close()
    assert count > 0
    assert result.report.render()  # the report read the store it was given


def test_real_chromium_sessions_browse_beside_the_virtual_browsers(tmp_path):
    lines: list[str] = []
    result = run_demo(
        "steady",
        workdir=tmp_path,
        speed=3,
        collector_port=free_port(),
        server_port=free_port(),
        browser="chromium",
        say=lines.append,
    )
    assert any("Chromium sessions browsing" in line for line in lines)
    assert not processes_using(result.run_dir)  # every Chromium closed
    store = open_store(StoreConfig.from_dsn(result.store_dsn), migrate=False)
    try:
        counts = dict(
            ((scope, phase), count)
            for scope, phase, count in store.client.query(
                "SELECT ScopeName, SpanAttributes['nextrace.phase'], count() FROM otel_traces "
                "WHERE ServiceName = 'browser' GROUP BY ALL"
            ).result_rows
        )
        # Real navigations that asked the server share their trace with the server's spans.
        (joined,) = store.client.query(
            "SELECT count() FROM otel_traces WHERE ServiceName != 'browser' "
            "AND SpanAttributes['nextrace.phase'] = 'request' AND TraceId IN (SELECT TraceId "
            "FROM otel_traces WHERE ScopeName = '@nextrace/next/browser' "
            "AND SpanAttributes['nextrace.phase'] = 'navigation')"
        ).result_rows[0]
    finally:
        store.close()
    for phase in ("navigation", "prefetch"):
        assert counts.get(("@nextrace/next/browser", phase), 0) > 0, (phase, counts)
        assert counts.get(("nextrace.browser", phase), 0) > 0, (phase, counts)
    assert joined > 0


def test_the_commands_the_demo_suggests_work_when_pasted(tmp_path):
    demo_run = subprocess.run(
        [
            sys.executable, "-m", "nextrace.cli", "demo", "--scenario", "steady",
            "--speed", "10", "--collector-port", str(free_port()),
            "--server-port", str(free_port()),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert demo_run.returncode == 0, demo_run.stderr
    assert not processes_using(tmp_path)  # nothing left running
    lines = demo_run.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("The slowest navigations"))
    slow_line, trace_line = lines[at + 1].strip(), lines[at + 2].strip()
    assert " slow --dsn " in slow_line
    assert " trace --dsn " in trace_line
    # Pasted in another folder, with a scratch folder for any temporary file.
    elsewhere, scratch = tmp_path / "elsewhere", tmp_path / "tmp"
    elsewhere.mkdir()
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    pasted = [
        subprocess.run(
            ["bash", "-c", line],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for line in (slow_line, trace_line)
    ]
    for result in pasted:
        assert result.returncode == 0, result.stderr
    listed, shown = (result.stdout for result in pasted)
    slowest = trace_line.rsplit(" ", 1)[1]
    assert listed.split("\n", 1)[0].endswith(f"trace {slowest}")
    assert "cause: " in listed
    assert shown.startswith(f"trace {slowest}")
    assert "\ncause: " in shown
    # Without --dsn, in the demo's folder, the latest run's store is read, and none is made.
    bare = nextrace("slow", "--format", "json", cwd=tmp_path, env={"TMPDIR": str(scratch)})
    assert bare.returncode == 0, bare.stderr
    assert "reading the latest demo run's store" in bare.stderr
    assert json.loads(bare.stdout)[0]["trace_id"] == slowest
    assert not (tmp_path / ".nextrace" / "store").exists()
    assert list(elsewhere.iterdir()) == []
    assert list(scratch.iterdir()) == []


def test_a_taken_port_is_a_clear_error(tmp_path):
    port = free_port()
    held = bind_socket("127.0.0.1", port)
    try:
        with pytest.raises(DemoError, match=f"port {port} on 127.0.0.1 is already in use"):
            run_demo("steady", workdir=tmp_path, collector_port=port, server_port=free_port())
    finally:
        held.close()
    with pytest.raises(DemoError, match="unknown scenario"):
        run_demo("nope", workdir=tmp_path)
