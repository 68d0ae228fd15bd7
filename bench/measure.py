"""What the benchmarks share: timing a piece of work, and summarizing repeated timings."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def timed(work: Callable[[], Any]) -> float:
    """Milliseconds ``work`` took, by the wall clock."""
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p95 (the nearest rank) of timings in milliseconds."""
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
    }


def across_runs(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per name, the median over the runs of p50 and p95, and the lowest and highest p50."""
    return {
        name: {
            "p50_ms_median": statistics.median(r[name]["p50_ms"] for r in runs),
            "p50_ms_range": [
                min(r[name]["p50_ms"] for r in runs),
                max(r[name]["p50_ms"] for r in runs),
            ],
            "p95_ms_median": statistics.median(r[name]["p95_ms"] for r in runs),
        }
        for name in runs[0]
    }


def write_result(path: Path, benchmark: str, figures: dict[str, Any]) -> None:
    """Write ``figures`` to ``path`` as JSON, after what every result says: which benchmark,
    when, on which Python and how many cores."""
    result = {
        "benchmark": benchmark,
        "when": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        **figures,
    }
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(f"written to {path}")


def in_tree(tree: Path | None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``subprocess.Popen`` options that run ``python -m nextrace.cli`` from the source ``tree``
    (another release's checkout, for a same-run comparison), or from this one (None), with
    ``env`` (default: this process's)."""
    base = dict(os.environ if env is None else env)
    if tree is None:
        return {"env": base}
    return {"cwd": tree, "env": {**base, "PYTHONPATH": str(tree)}}
