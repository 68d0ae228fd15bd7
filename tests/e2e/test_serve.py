"""`nextrace serve` exports its spans over OTLP to `nextrace collect`, into ClickHouse (slow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.support.processes import free_port, nextrace, start_collector
from tests.support.waiting import answers, wait_until

pytestmark = pytest.mark.slow


def wait_for_warmup(collector_port: int) -> None:
    """Until a finished warm-up span is stored (its job has filled the cache)."""
    query = "SELECT count() FROM otel_traces WHERE SpanAttributes['nextrace.phase'] = 'warmup'"

    def finished() -> bool:
        answer = httpx.post(
            f"http://127.0.0.1:{collector_port}/sql", json={"query": query, "format": "TSV"}
        )
        return answer.status_code == 200 and answer.text.strip() != "0"

    wait_until(finished, "a warm-up finishes")


def test_served_requests_arrive_in_the_store_with_their_phases(tmp_path):
    from tests.instrumented_server.conftest import SECRET, TEST_APP

    app_file = tmp_path / "app.toml"
    app_file.write_text(TEST_APP)
    collector_port, server_port = free_port(), free_port()
    collector = start_collector(tmp_path, collector_port)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nextrace.cli",
            "serve",
            "--app",
            str(app_file),
            "--port",
            str(server_port),
            "--collector",
            f"http://127.0.0.1:{collector_port}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100"},  # spans leave at once
    )
    base = f"http://127.0.0.1:{server_port}"
    try:
        wait_until(
            lambda: server.poll() is not None or answers(f"{base}/about"), "the server answers"
        )
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        with httpx.Client(base_url=base, timeout=10) as client:
            client.get("/products/1")
            client.get("/products/1", headers={"rsc": "1", "next-router-prefetch": "1"})
            client.post(
                "/api/revalidate",
                json={"tag": "product-1", "expire": 0},
                headers={"x-revalidate-secret": SECRET},
            )
            wait_for_warmup(collector_port)  # the job runs in the background
            client.get("/products/1")
    finally:
        server.send_signal(signal.SIGINT)  # shutdown flushes the batch span processor
        server.communicate(timeout=60)
    try:

        def committed() -> bool:
            health = httpx.get(f"http://127.0.0.1:{collector_port}/healthz").json()
            return bool(health["spans_exported"] and not health["queue_spans"])

        wait_until(committed, "the collector commits its batch")
        result = nextrace(
            "sql",
            "SELECT SpanAttributes['nextrace.phase'] AS phase, count() FROM otel_traces "
            "WHERE ServiceName = 'test-shop' GROUP BY phase ORDER BY phase",
            "--format",
            "TSV",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        phases = dict(line.split("\t") for line in result.stdout.strip().split("\n"))
        for phase in (
            "request",
            "cdn",
            "middleware",
            "route",
            "render",
            "cache",
            "fetch",
            "stream",
            "prefetch",
            "revalidate",
            "warmup",
        ):
            assert int(phases.get(phase, 0)) > 0, (phase, phases)
        hit = nextrace(
            "sql",
            "SELECT SpanAttributes['cache.entry.source'], "
            "SpanAttributes['cache.entry.source_trace_id'] IN (SELECT TraceId FROM otel_traces "
            "WHERE SpanAttributes['nextrace.phase'] = 'warmup') "
            "FROM otel_traces WHERE SpanAttributes['cache.layer'] = 'data' "
            "AND SpanAttributes['cache.result'] = 'hit' ORDER BY Timestamp DESC LIMIT 1",
            "--format",
            "TSV",
            cwd=tmp_path,
        )
        assert hit.stdout == "warmup\t1\n", hit.stdout + hit.stderr
        events = nextrace(
            "sql",
            "SELECT Layer, countIf(Route != '') > 0 FROM cache_events "
            "WHERE Layer IN ('data', 'full_route') GROUP BY Layer ORDER BY Layer",
            "--format",
            "TSV",
            cwd=tmp_path,
        )
        assert events.stdout == "data\t1\nfull_route\t1\n", events.stdout + events.stderr
        names = nextrace(
            "sql",
            "SELECT DISTINCT SpanName FROM otel_traces WHERE SpanKind = 'Server' ORDER BY SpanName",
            "--format",
            "TSV",
            cwd=tmp_path,
        )
        assert "GET /products/[id]" in names.stdout.split("\n")
        assert "RSC GET /products/[id]" in names.stdout.split("\n")
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.communicate(timeout=60)


def test_serve_reports_a_bad_app_definition(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n')
    result = nextrace("serve", "--app", str(bad), "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2
    assert "mistake(s)" in result.stderr
    assert "revalidate_secret" in result.stderr


def test_serve_refuses_the_published_secret_beyond_loopback(tmp_path):
    result = nextrace("serve", "--host", "0.0.0.0", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2
    assert "published revalidation secret" in result.stderr
    assert "change-me" not in result.stderr  # the message never prints a secret


def test_the_collector_refuses_to_listen_beyond_loopback_without_a_token(tmp_path):
    result = nextrace("collect", "--host", "0.0.0.0", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2
    assert "without a token" in result.stderr
    assert "Traceback" not in result.stderr
