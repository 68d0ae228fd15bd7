"""The steady engine benchmark runs and records its figures (tiny here; real runs are longer)."""

from __future__ import annotations

import json

import pytest

from tests.bench.runner import run_benchmark


@pytest.mark.slow
def test_the_benchmark_records_each_kind_of_thread_with_and_without_views(tmp_path):
    out = tmp_path / "engine_steady.json"
    result = run_benchmark("engine_steady", "--batches", "2", "--runs", "1", "--out", str(out))
    assert "no_views" in result.stdout
    figures = json.loads(out.read_text())["this"]
    for store in ("views", "no_views"):
        # the inserting thread parses the bodies, the engine's threads write the tables
        assert figures[store]["calling"]["median"] > 0
        assert figures[store]["query_threads"]["median"] > 0
        assert figures[store]["total"]["median"] >= figures[store]["calling"]["median"]
