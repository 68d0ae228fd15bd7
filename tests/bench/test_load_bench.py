"""The load benchmark runs and records its figures (tiny here; real runs are longer)."""

from __future__ import annotations

import json
from pathlib import Path

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
    # This checkout as its own baseline: the ratios are this tree's over itself.
    root = Path(__file__).resolve().parents[2]
    result = run_benchmark(
        "load",
        *("--rates", "3000", "--seconds", "2", "--runs", "2", "--poll-ms", "50"),
        *("--baseline-tree", str(root), "--out", str(out)),
    )
    assert "3,000 spans/s offered" in result.stdout
    assert "over the baseline, same runs: cpu per span" in result.stdout
    figures = json.loads(out.read_text())
    assert (figures["runs"], figures["poll_ms"], figures["busy_neighbour"]) == (2, 50, False)
    for part in (figures["rates"]["3000"], figures["baseline"]["3000"]):
        assert part["refused_requests"]["median"] == 0
        # The batch timer is 1 s: nothing is visible sooner than the insert after it.
        assert 0 < part["freshness_p50_ms"]["median"] <= part["freshness_p99_ms"]["median"]
        low, high = part["cpu_us_per_span"]["range"]
        assert 0 < low <= part["cpu_us_per_span"]["median"] <= high
    for ratio in figures["ratios"]["3000"].values():
        low, high = ratio["range"]
        assert 0 < low <= ratio["median"] <= high
