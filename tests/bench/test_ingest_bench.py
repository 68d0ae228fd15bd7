"""The ingest benchmark runs and records its figures (tiny here; real runs are larger)."""

from __future__ import annotations

import json

import pytest

from tests.bench.runner import run_benchmark


@pytest.mark.slow
def test_the_benchmark_prints_and_records_its_figures(tmp_path):
    out = tmp_path / "ingest.json"
    result = run_benchmark(
        "ingest",
        "--traces",
        "200",
        "--batch",
        "1000",
        "--runs",
        "1",
        "--nextjs-wait",
        "0.5",
        "--out",
        str(out),
    )
    assert "end to end / ceiling" in result.stdout
    assert "Next.js recorded: normalized / plain" in result.stdout
    assert "Next.js synthetic: normalized / plain" in result.stdout
    assert "the demo's spans, staged" in result.stdout
    figures = json.loads(out.read_text())
    assert figures["spans"] == 2000
    # One span in ten (the data-cache lookup) holds a list of tags, plain strings, which the
    # staged insert writes: no row is made in Python.
    assert figures["end_to_end"]["written_by_columns"] == 0
    assert figures["end_to_end_no_staged_insert"]["written_by_columns"] == 2000
    demo = figures["demo_mix"]
    assert demo["spans"] >= 2000
    assert demo["staged"]["written_by_columns"] == 0  # its lists are tags too
    assert 0.05 * demo["spans"] <= demo["list_valued_spans"] <= 0.1 * demo["spans"]
    assert demo["no_staged_insert"]["written_by_columns"] == demo["spans"]
    assert figures["runs"] == 1
    ratios = [figures["end_to_end_over_ceiling"], demo["staged_over_columns"]]
    for part in (figures["end_to_end"], figures["ceiling_bare_insert"]):
        low, high = part["spread_spans_per_cpu_s"]
        assert 0 < low <= part["spans_per_cpu_s"] <= high
    for name in ("recorded", "synthetic"):
        nextjs = figures["nextjs"][name]
        # About as many spans as the reference workload.
        assert 0.9 * 2000 <= nextjs["spans"] <= 1.1 * 2000
        assert nextjs["traces"] > 0
        assert nextjs["requests_rows"] > 0
        assert nextjs["normalized"]["spans_per_cpu_s"] > 0
        ratios.append(nextjs["normalized_over_plain"])
    # Each ratio is the median of the runs' own ratios, within the lowest and highest.
    for ratio in ratios:
        low, high = ratio["spread"]
        assert 0 < low <= ratio["median"] <= high
