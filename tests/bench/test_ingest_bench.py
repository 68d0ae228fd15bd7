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
    assert figures["end_to_end_over_ceiling"] == pytest.approx(
        figures["end_to_end"]["spans_per_cpu_s"]
        / figures["ceiling_bare_insert"]["spans_per_cpu_s"],
        rel=0.01,
    )
