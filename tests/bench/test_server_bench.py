"""The server benchmark runs and records its figures (tiny here; real runs are larger)."""

from __future__ import annotations

import json

import pytest

from tests.bench.runner import run_benchmark


@pytest.mark.slow
def test_the_benchmark_prints_and_records_tracing_cost(tmp_path):
    out = tmp_path / "server.json"
    result = run_benchmark(
        "server",
        "--requests",
        "30",
        "--runs",
        "1",
        "--pipeline-spans",
        "1000",
        "--out",
        str(out),
    )
    (run,) = json.loads(out.read_text())["runs"]
    assert run["spans"] >= 30  # every request is traced, with its phases
    assert run["cpu_s_tracing"] > 0
    assert run["cpu_s_disabled"] > 0
    assert "tracing_us_per_span_median" in result.stdout
    encoding = json.loads(out.read_text())["encoding_us_per_span"]
    # Both encoders timed in the same run (they write the same bytes: the bench checks it).
    assert encoding["sdk"] > 0
    assert encoding["wire"] > 0
    floor = json.loads(out.read_text())["sdk_floor_us_per_span"]
    # The SDK's own cost, with attributes and without, which the goal has to clear first.
    assert floor["ten_attributes"] > floor["no_attributes"] > 0
    # The pipeline in process, through the server's own telemetry, exporting to the collector.
    pipeline = json.loads(out.read_text())["pipeline_us_per_span"]["this"]
    assert pipeline["ten_attributes"] > 0
    assert pipeline["bare"] > 0
