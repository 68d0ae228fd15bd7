"""The trust benchmark runs and records its figures (tiny here; real runs are larger)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_benchmark_prints_and_records_its_figures(tmp_path):
    out = tmp_path / "trust.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.trust",
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
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "WAL cost" in result.stdout
    figures = json.loads(out.read_text())
    assert figures["recovery"]["spans"] > 0
    assert figures["mutations"]["server_errors"] == 0
    assert figures["keep_alive"]["median_ms"] > 0
