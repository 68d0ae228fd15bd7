"""Running a benchmark module as a user does, tiny, for the tests of its output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(
    module: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m bench.<module> ARGS`` from the repository root, which must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result
