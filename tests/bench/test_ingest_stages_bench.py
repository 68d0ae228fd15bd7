"""The ingest breakdown runs and records each step (tiny here; real runs are larger)."""

from __future__ import annotations

import json

import pytest

from tests.bench.runner import run_benchmark


@pytest.mark.slow
def test_the_breakdown_prints_and_records_every_step(tmp_path):
    out = tmp_path / "ingest_stages.json"
    result = run_benchmark(
        "ingest_stages",
        "--traces",
        "200",
        "--batch",
        "1000",
        "--runs",
        "2",
        "--repeat",
        "1",
        "--out",
        str(out),
    )
    figures = json.loads(out.read_text())
    assert figures["spans"] == 2000
    assert set(figures["steps"]) == {"staging", "flattening", "writing", "views", "rest"}
    for name in figures["steps"]:
        assert f"  {name} " in result.stdout
    # Staging is timed on its own; the other steps are differences, which a run this small
    # may leave below zero.
    assert figures["steps"]["staging"]["us_per_span"] > 0
    low, high = figures["end_to_end"]["range"]
    assert 0 < low <= figures["end_to_end"]["us_per_span"] <= high
