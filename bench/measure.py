"""What the benchmarks share: timing a piece of work, and summarizing repeated timings."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


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


def in_turn(items: Sequence[T], run: int) -> list[T]:
    """``items`` in their order on runs 0, 2, 4…, reversed on the others: in a same-run
    comparison, neither always goes first (a drift of the machine favours none)."""
    return list(items)[:: 1 if run % 2 == 0 else -1]


def run_script(script: Path, tree: Path | None, *args: str) -> Any:
    """The JSON the last line of ``python SCRIPT ARGS`` says, the script run with the modules
    of the source ``tree`` (this checkout for None); RuntimeError with its errors if it fails."""
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        check=False,
        **in_tree(tree or ROOT),
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(runs: Sequence[Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """Per figure of the runs, its median over them with the lowest and highest run (a run
    without the figure counts 0)."""
    names = dict.fromkeys(name for run in runs for name in run)  # in the order they come
    return {
        name: {
            "median": statistics.median(run.get(name, 0) for run in runs),
            "range": [min(run.get(name, 0) for run in runs), max(run.get(name, 0) for run in runs)],
        }
        for name in names
    }
