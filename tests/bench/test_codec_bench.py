"""The codec benchmark runs and records its figures (tiny here; real runs are longer)."""

from __future__ import annotations

import json

import pytest

from tests.bench.runner import run_benchmark


@pytest.mark.slow
def test_the_benchmark_sets_each_level_and_records_cpu_against_bytes(tmp_path):
    out = tmp_path / "codec.json"
    result = run_benchmark(
        "codec",
        *("--levels", "1,9", "--rate", "2000", "--seconds", "2", "--runs", "1", "--out", str(out)),
    )
    assert "of ZSTD(9)'s; SpanAttributes" in result.stdout
    levels = json.loads(out.read_text())["levels"]
    fast, small = levels["ZSTD(1)"], levels["ZSTD(9)"]
    assert small["cpu_over_zstd9"]["median"] == 1.0
    # The level really was set: the same spans take fewer bytes at ZSTD(9) than at ZSTD(1).
    assert (
        0 < small["attribute_bytes_per_span"]["median"] < fast["attribute_bytes_per_span"]["median"]
    )
    assert fast["cpu_us_per_span"]["median"] > 0
