"""The ingest benchmark runs and records its figures (tiny here; real runs are larger)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_benchmark_prints_and_records_its_figures(tmp_path):
    out = tmp_path / "ingest.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ingest",
            "--traces",
            "300",
            "--batch",
            "1000",
            "--runs",
            "2",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "end to end / ceiling" in result.stdout
    assert "Next.js normalized / end to end" in result.stdout
    figures = json.loads(out.read_text())
    assert figures["spans"] == 3000
    assert figures["end_to_end"]["spans_per_cpu_s"] > 0
    assert figures["ceiling_bare_insert"]["spans_per_cpu_s"] > 0
    assert figures["nextjs_normalized"]["spans_per_cpu_s"] > 0
    assert figures["runs"] == 2
    # Each ratio is the median of the runs' own ratios, within the lowest and highest.
    for ratio in ("end_to_end_over_ceiling", "nextjs_over_end_to_end"):
        low, high = figures["spread_min_max"][ratio]
        assert 0 < low <= figures[ratio] <= high, ratio
    low, high = figures["spread_min_max"]["end_to_end_spans_per_cpu_s"]
    assert low <= figures["end_to_end"]["spans_per_cpu_s"] <= high
