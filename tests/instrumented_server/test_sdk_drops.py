"""`nextrace serve` counts the spans its OpenTelemetry SDK drops, in `/healthz` and in the
demo's report (slow: real servers).

A stand-in OTLP receiver in this process keeps the id of every span it accepts. It can hold
exports (a collector that does not answer) or refuse them with 401 (a collector the server has
no token for). Every span the server makes after a marker is accounted for: received by the
stand-in, or counted dropped by the server, never both, never neither.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from investigate.report import Report
from nextrace.demo import server_spans_dropped
from tests.instrumented_server.conftest import TEST_APP
from tests.support.processes import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

# A tiny SDK queue (OTEL_BSP_MAX_QUEUE_SIZE; the default is 2048) so that a few dozen
# requests overflow it, with batches smaller than the queue (the SDK requires it).
QUEUE, BATCH = 8, 4
HELD = QUEUE + BATCH  # spans the SDK can keep while an export hangs: its queue and one batch
FLOOD = 60  # requests, one span each (a static asset's server span), well above HELD


class StandIn(ThreadingHTTPServer):
    """An OTLP/HTTP receiver: ``accepted`` maps the id of each span it answered 200 for to
    its name, ``refused`` holds those it answered 401 for. While ``open`` is clear, every
    export waits for it (at most a minute)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.accepted: dict[bytes, str] = {}
        self.refused: set[bytes] = set()
        self.refusing = False
        self.open = threading.Event()
        self.open.set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def names(self, prefix: str) -> int:
        with self.lock:
            return sum(name.startswith(prefix) for name in self.accepted.values())


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def do_GET(self) -> None:  # `nextrace serve` checks that a collector answers
        self._answer(200)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.open.wait(60)
        spans = {
            span.span_id: span.name
            for resource in ExportTraceServiceRequest.FromString(body).resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        }
        with self.server.lock:
            if self.server.refusing:
                self.server.refused.update(spans)
            else:
                self.server.accepted.update(spans)
        self._answer(401 if self.server.refusing else 200)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.open.set()  # lets a held export finish
        server.shutdown()
        server.server_close()


@contextmanager
def reference_server(tmp_path: Path, collector: str) -> Iterator[str]:
    """`nextrace serve` of the test app with a tiny SDK queue, exporting to ``collector``."""
    app_file = tmp_path / "app.toml"
    app_file.write_text(TEST_APP)
    port = free_port()
    log = tmp_path / "server.log"
    command = ["serve", "--app", str(app_file), "--port", str(port), "--collector", collector]
    env = {
        **os.environ,
        "OTEL_BSP_MAX_QUEUE_SIZE": str(QUEUE),
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": str(BATCH),
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # spans leave at once, not after 5 s
        # A held export must not time out (10 s by default) on a slow machine: it would then
        # count as failed, although the stand-in receives it once it lets it through.
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "120",
    }
    env.pop("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", None)  # the default users get
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "nextrace.cli", *command],
            cwd=tmp_path,
            stderr=stderr,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert server.poll() is None, log.read_text()
        try:
            return bool(httpx.get(f"{base}/healthz", timeout=5))
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, "the reference server answers", 60, log.read_text)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def dropped(base: str) -> dict[str, int]:
    health = httpx.get(f"{base}/healthz", timeout=5)
    assert health.status_code == 200, f"/healthz answered {health.status_code}"
    counts = health.json()["spans_dropped"]
    assert None not in counts.values(), counts  # the SDK's own metrics are on by default
    return {reason: int(count) for reason, count in counts.items()}


def after_a_marker(base: str, receiver: StandIn) -> dict[str, int]:
    """Once the stand-in has a marker span, every span made before it (the prerender's at
    start) was either received or counted dropped: the SDK exports in order. What it dropped
    so far."""
    httpx.get(f"{base}/_next/static/marker.js", timeout=10)
    wait_until(lambda: receiver.names("GET /_next/static/marker") == 1, "the marker arrives")
    return dropped(base)


def flood(base: str, name: str, requests: int) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(requests):
            assert client.get(f"/_next/static/{name}-{i}.js").status_code == 200


def test_spans_dropped_with_a_full_queue_are_counted_and_reported(tmp_path: Path) -> None:
    with stand_in() as receiver, reference_server(tmp_path, receiver.url) as base:
        before = after_a_marker(base, receiver)
        receiver.open.clear()  # the collector stops answering
        flood(base, "flood", FLOOD)

        def lost() -> int:
            return dropped(base)["queue_full"] - before["queue_full"]

        # At most HELD spans wait while an export hangs: every other one is dropped.
        wait_until(lambda: lost() >= FLOOD - HELD, "the full queue drops spans", 30)
        receiver.open.set()

        def received() -> int:
            return receiver.names("GET /_next/static/flood-")

        wait_until(
            lambda: received() + lost() >= FLOOD,
            "every span is received or counted dropped",
            30,
            lambda: f"received {received()}, dropped {lost()} of {FLOOD}",
        )
        after = dropped(base)
        assert received() + lost() == FLOOD, (received(), lost())
        assert FLOOD - HELD <= lost() < FLOOD
        assert after["export_failed"] == before["export_failed"] == 0
        line = f"{after['queue_full']} ({after['queue_full']} with its queue full, 0 in failed"
        assert line in _report_line(base)


def test_spans_in_exports_the_collector_refuses_are_counted_and_reported(
    tmp_path: Path,
) -> None:
    with stand_in() as receiver, reference_server(tmp_path, receiver.url) as base:
        before = after_a_marker(base, receiver)
        receiver.refusing = True  # 401, as a collector answers a sender without its token
        flood(base, "refused", 10)

        def counted() -> dict[str, int]:
            now = dropped(base)
            return {reason: now[reason] - before[reason] for reason in now}

        wait_until(
            lambda: sum(counted().values()) >= 10,
            "every span is counted dropped",
            30,
            lambda: f"refused {len(receiver.refused)}, counted {counted()}",
        )
        assert sum(counted().values()) == 10, counted()  # each one once
        assert counted()["export_failed"] == len(receiver.refused) > 0
        assert receiver.names("GET /_next/static/refused-") == 0
        after = dropped(base)
        line = f"{after['queue_full']} with its queue full, {after['export_failed']} in failed"
        assert line in _report_line(base)


def _report_line(base: str) -> str:
    """The demo's report line about the server, from what the demo reads of its /healthz."""
    window = {"first_span": dt.datetime(2026, 1, 1), "last_span": dt.datetime(2026, 1, 1)}
    report = Report(
        summary={**window, "time_zone": "UTC", "spans_stored": 0, "spans_dropped": 0},
        server_spans_dropped=server_spans_dropped(base),
    )
    lines = [line for line in report.header_lines() if "reference server" in line]
    assert len(lines) == 1, report.header_lines()
    assert lines[0].startswith("spans dropped by the reference server's OpenTelemetry SDK: ")
    return lines[0]
