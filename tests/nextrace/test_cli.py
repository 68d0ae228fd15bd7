"""The ``nextrace`` command line, run as a user would run it (slow: real processes)."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from tests.builders import make_request, make_span
from tests.support.processes import free_port, nextrace, start_collector
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def test_collect_stores_flushes_on_sigterm_and_sql_reads_through_it(tmp_path):
    port = free_port()
    # A long batch timeout: the spans can only reach the store through the shutdown flush.
    collector = start_collector(tmp_path, port, "--batch-timeout", "600")
    try:
        body = make_request([make_span(f"span-{i}") for i in range(25)]).SerializeToString()
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/traces",
            content=body,
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 200

        # The store is held by the collector, so this read goes through it.
        through = nextrace(
            "sql", "SELECT count() FROM otel_traces", "--format", "TSV", cwd=tmp_path
        )
        assert through.returncode == 0, through.stderr
        assert through.stdout == "0\n"  # accepted, still batching
        refused = nextrace("sql", "DROP TABLE otel_traces", cwd=tmp_path)
        assert refused.returncode == 2
        assert "only reading statements" in refused.stderr

        # A second collector on the same port or the same store fails clearly.
        taken = nextrace("collect", "--port", str(port), cwd=tmp_path, timeout=60)
        assert taken.returncode == 2
        assert f"port {port} on 127.0.0.1 is already in use" in taken.stderr
        locked = nextrace("collect", "--port", str(free_port()), cwd=tmp_path, timeout=60)
        assert locked.returncode == 2
        assert f"in use by process {collector.pid}" in locked.stderr
    finally:
        collector.send_signal(signal.SIGTERM)
        _, stderr = collector.communicate(timeout=60)
    assert collector.returncode == 0, stderr
    assert "25 spans stored, dropped none" in stderr

    # Now nobody holds the store: the query opens it directly.
    direct = nextrace(
        "sql",
        "SELECT count(), uniqExact(SpanName) FROM otel_traces",
        "--format",
        "TSV",
        cwd=tmp_path,
    )
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout == "25\t25\n"
    assert (tmp_path / ".nextrace" / "store").is_dir()


def test_sql_on_a_missing_store_and_bad_dsn_say_what_to_do(tmp_path):
    missing = nextrace("sql", "SELECT 1", "--dsn", f"chdb:{tmp_path / 'nothing'}", cwd=tmp_path)
    assert missing.returncode == 2
    assert "run `nextrace collect` once" in missing.stderr
    assert not (tmp_path / "nothing").exists()  # a read makes no store
    bad = nextrace("collect", "--dsn", "mysql://x", cwd=tmp_path)
    assert bad.returncode == 2
    assert "unsupported DSN" in bad.stderr


def test_sql_after_a_crashed_collector_opens_the_store_directly(tmp_path):
    collector = start_collector(tmp_path, free_port())
    collector.kill()  # no clean shutdown: its endpoint file is left behind
    collector.communicate(timeout=60)
    assert (tmp_path / ".nextrace" / "store" / "nextrace-collector.json").exists()
    result = nextrace("sql", "SELECT count() FROM otel_traces", "--format", "TSV", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0\n"


def test_trace_slow_compare_and_report_read_through_a_running_collector(tmp_path):
    port = free_port()
    collector = start_collector(tmp_path, port, "--batch-timeout", "0.2")
    start = time.time_ns() - 60 * 10**9
    traces = []
    try:
        for index, fetch_ms in enumerate((30, 300)):
            trace_id, root = bytes([index + 1]) * 16, bytes([index + 1]) * 8
            spans = [
                make_span(
                    "navigation /a",
                    trace_id=trace_id,
                    span_id=root,
                    start_ns=start + index * 10**9,
                    duration_ns=(fetch_ms + 10) * 10**6,
                    attrs={"nextrace.phase": "navigation", "next.route": "/a"},
                ),
                make_span(
                    "fetch GET api",
                    trace_id=trace_id,
                    parent=root,
                    start_ns=start + index * 10**9 + 5 * 10**6,
                    duration_ns=fetch_ms * 10**6,
                    attrs={"nextrace.phase": "fetch"},
                ),
            ]
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/traces",
                content=make_request(spans, service="browser").SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert response.status_code == 200
            traces.append(trace_id.hex())
        wait_until(
            lambda: not httpx.get(f"http://127.0.0.1:{port}/healthz").json()["queue_spans"],
            "the collector stores the spans",
        )
        fast, slow = traces

        shown = nextrace("trace", slow, "--format", "json", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        view = json.loads(shown.stdout)
        assert view["cause"] == "fetch GET api 300 ms"
        assert view["parts_ms"] == {"fetch": 300.0, "browser": 10.0}

        listed = nextrace("slow", "--route", "/a", "--since", "1h", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.index(slow) < listed.stdout.index(fast)

        compared = nextrace("compare", slow, cwd=tmp_path)  # the fast one is found
        assert compared.returncode == 0, compared.stderr
        assert f"fast {fast}" in compared.stdout
        assert "+270.0  " in compared.stdout  # the fetch's difference

        reported = nextrace("report", "--out", str(tmp_path / "r.html"), cwd=tmp_path)
        assert reported.returncode == 0, reported.stderr
        assert "spans stored: 4" in reported.stdout
        assert (tmp_path / "r.html").read_text().count("<svg") >= 5

        missing = nextrace("trace", "0" * 32, cwd=tmp_path)
        assert missing.returncode == 2
        assert missing.stderr.strip() == f"error: no span of trace {'0' * 32} is stored"
        bad_since = nextrace("slow", "--since", "yesterday", cwd=tmp_path)
        assert bad_since.returncode == 2
        assert "give a duration such as 90s" in bad_since.stderr
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.communicate(timeout=60)


def test_report_of_a_real_apps_store_and_its_reads_leave_no_folder_behind(tmp_path, captures):
    collecting, reads, scratch = tmp_path / "collecting", tmp_path / "reads", tmp_path / "tmp"
    for folder in (collecting, reads, scratch):
        folder.mkdir()
    port = free_port()
    collector = start_collector(collecting, port, "--batch-timeout", "0.2")
    try:
        run = captures / "next15-protobuf-default"  # a real Next.js 15 app: no browser span
        for meta_file in sorted((run / "raw").glob("*.meta.json")):
            meta = json.loads(meta_file.read_text())
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/traces",
                content=(run / "raw" / meta["file"]).read_bytes(),
                headers={"Content-Type": meta["content_type"]},
            )
            assert response.status_code == 200
    finally:
        collector.send_signal(signal.SIGTERM)  # stores and normalizes every trace it holds
        _, stderr = collector.communicate(timeout=60)
    assert collector.returncode == 0, stderr
    store = collecting / ".nextrace" / "store"
    kept = sorted(path.name for path in store.iterdir())
    # Reads from another folder, whose temporary files would go to `scratch`.
    env = {"TMPDIR": str(scratch)}
    dsn = f"chdb:{store}"

    reported = nextrace(
        "report", "--dsn", dsn, "--format", "json", "--out", "r.html",
        "--since", "2026-11-25T00:00:00Z", "--until", "1h",
        cwd=reads, env=env,
    )  # fmt: skip
    assert reported.returncode == 0, reported.stderr
    found = json.loads(reported.stdout)
    assert found["text_reads"] == "server rows"
    assert found["requests"] == 23  # as tests/nextrace/test_report_real.py counts them
    assert found["cache_misses"] == {"data": 4}
    assert found["navigations"] + found["prefetches"] < found["requests"]
    page = (reads / "r.html").read_text()
    assert page.count("<svg") >= 5
    assert "\n23 requests: " in page  # the text report, at its end
    listed = nextrace("slow", "--dsn", dsn, "--format", "json", cwd=reads, env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[:5] == found["slowest"]
    bad = nextrace("report", "--dsn", dsn, "--since", "yesterday", cwd=reads, env=env)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "--since 'yesterday': give an ISO time" in bad.stderr

    # Without a store, a read says so, and makes none (chDB would make its folder and a tmp).
    nowhere = nextrace("slow", cwd=reads, env=env)
    assert nowhere.returncode == 2
    assert "no store at " in nowhere.stderr
    assert sorted(path.name for path in reads.iterdir()) == ["r.html"]
    assert sorted(path.name for path in store.iterdir()) == kept
    assert list(scratch.iterdir()) == []
