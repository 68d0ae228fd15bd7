"""The report's header says what the reference server's SDK dropped, when a demo ran one."""

from __future__ import annotations

import datetime as dt

import pytest

from instrumented_server.telemetry import ServerTelemetry
from investigate.report import Report

SUMMARY = {
    "first_span": dt.datetime(2026, 1, 1, 12, 0, 0),
    "last_span": dt.datetime(2026, 1, 1, 12, 0, 30),
    "time_zone": "UTC",
    "spans_stored": 1000,
    "spans_dropped": 3,
}


def test_the_header_gives_the_servers_drops_under_the_collectors() -> None:
    report = Report(summary=SUMMARY, server_spans_dropped={"queue_full": 334, "export_failed": 12})
    assert report.header_lines()[1:] == [
        "window: 2026-01-01 12:00:00 to 12:00:30 UTC (30 s); spans stored: 1000, "
        "spans dropped by the collector: 3",
        "spans dropped by the reference server's OpenTelemetry SDK: 346 (334 with its queue "
        "full, 12 in failed exports)",
    ]


def test_a_report_without_a_reference_server_says_nothing_of_one() -> None:
    assert not any("reference server" in line for line in Report(summary=SUMMARY).header_lines())


def test_with_the_sdks_own_metrics_off_the_header_says_queue_drops_are_not_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "false")
    telemetry = ServerTelemetry("shop", lambda: "build-1", collector_url="http://127.0.0.1:9")
    try:
        dropped = telemetry.spans_dropped()
    finally:
        telemetry.shutdown()
    assert dropped == {"queue_full": None, "export_failed": 0}
    line = Report(summary=SUMMARY, server_spans_dropped=dropped).header_lines()[-1]
    assert line == (
        "spans dropped by the reference server's OpenTelemetry SDK: 0 in failed exports; "
        "those dropped with its queue full are not counted "
        "(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=false)"
    )
