"""The trust benchmark runs and records its figures (tiny here; real runs are larger)."""

from __future__ import annotations

import json

import pytest

from tests.bench.runner import run_benchmark


@pytest.mark.slow
def test_the_benchmark_prints_and_records_its_figures(tmp_path):
    out = tmp_path / "trust.json"
    result = run_benchmark(
        "trust",
        "--traces",
        "200",
        "--runs",
        "1",
        "--bodies",
        "300",
        "--wal-mb",
        "4",
        "--memory-mb",
        "--out",
        str(out),
        timeout=600,
    )
    assert "WAL cost" in result.stdout
    figures = json.loads(out.read_text())
    recovery = figures["recovery"]
    # Every acknowledged request (500 spans each) was stored after the kill -9 and restart,
    # once: the benchmark counts the store's rows against the collector's acceptances.
    assert recovery["spans"] == 500 * recovery["requests_acknowledged"] > 0
    assert figures["mutations"]["server_errors"] == 0  # no mutated body broke the collector
    assert figures["keep_alive"]["requests"] == 200
