"""The load benchmark runs and records its figures (tiny here; real runs are longer)."""

from __future__ import annotations

import json

import pytest

from bench.load import Run, Sent, freshness_ms
from tests.bench.runner import run_benchmark


def test_a_request_is_fresh_at_the_first_poll_that_counts_it_and_every_one_before():
    run = Run(
        acked=[Sent(at=1.0, spans=500), Sent(at=1.5, spans=500), Sent(at=3.0, spans=500)],
        # Counts are cumulative in the order of the answers: the second request is visible
        # once 1,000 spans are (2.6), not at the 2.2 poll that shows only the first.
        polls=[(1.2, 0), (2.0, 500), (2.2, 500), (2.6, 1000), (2.9, 1000), (3.4, 1500)],
    )
    assert [round(ms) for ms in freshness_ms(run)] == [1000, 1100, 400]


@pytest.mark.slow
def test_the_benchmark_prints_and_records_its_figures(tmp_path):
    out = tmp_path / "load.json"
    result = run_benchmark(
        "load",
        *("--rates", "1000,3000", "--seconds", "2", "--runs", "2", "--out", str(out)),
    )
    assert "3,000 spans/s offered" in result.stdout
    figures = json.loads(out.read_text())
    assert figures["runs"] == 2
    for rate in ("1000", "3000"):
        fresh = figures["rates"][rate]
        assert fresh["refused_requests"]["median"] == 0
        # The batch timer is 1 s: nothing is visible sooner than the insert after it.
        assert 0 < fresh["freshness_p50_ms"]["median"] <= fresh["freshness_p99_ms"]["median"]
        low, high = fresh["cpu_us_per_span"]["range"]
        assert 0 < low <= fresh["cpu_us_per_span"]["median"] <= high
