"""Where the embedded engine's CPU goes under steady traffic: the staged insert of one batch a
second, by the engine's threads, with and without the materialized views.

In one process, on an embedded store of its own (the collector's schema, merges running), the
exporter's staged insert (``collector/storage/staging.py``) stores ``--batches`` batches of
10,000 of the synthetic spans of ``bench.load``, one a second, as the collector's 1 s batch
timer makes them at 10,000 spans/s; then waits 3 s for the merges they started. The CPU of
each of the process's threads is read from ``/proc`` before and after, and summed by kind:

- **calling**: the thread that inserts: the bodies parsed into the staging table, the query
  that finds the spans only Python writes (and their rows, made in Python: none on these
  spans), and the part of the ``INSERT … SELECT`` the engine runs on its caller's thread;
- **query threads** (``ThreadPool``): the rest of the insert, writing ``otel_traces`` and,
  through the views, every derived table;
- **merges** (``MergeMutate``): the merges of the parts the inserts wrote;
- **other**: the engine's background schedulers;
- **ended_threads**: threads that ended before the second reading (the engine's pools shrink
  when idle): the process's CPU less its live threads'.

Each thread is counted by its own difference and named by its name at the end.

Each figure is CPU microseconds per span. Two stores are measured: **views**, the collector's
schema, and **no views**, the same with every materialized view dropped: the difference is what
the derived tables cost, inserts and merges. This leaves out what the collector does besides
the engine (HTTP, screening, the write-ahead log, polls: ``bench.load`` measures it all).

Each store is measured in a process of its own (``python bench/engine_steady.py STORE
BATCHES`` prints one JSON object), alternating; with ``--baseline-tree``, another checkout's
too, in turn, with this one's ratio to it per run. Medians of ``--runs``, with the lowest and
highest run; printed, and written to ``bench/results/engine_steady.json``.

Run: ``PYTHONPATH=. python -m bench.engine_steady [--batches 20] [--runs 3]
[--baseline-tree DIR]``
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
BATCH_SPANS = 10_000
KINDS = {"ThreadPool": "query_threads", "MergeMutate": "merges"}
STORES = ("views", "no_views")


def _threads() -> dict[str, tuple[str, float]]:
    """Each live thread of this process: its id, name and CPU seconds so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        fields = stat.rsplit(")", 1)[1].split()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        out[task.name] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return out


def _process_cpu() -> float:
    """CPU seconds of this process, its ended threads included."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _by_kind(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]], process: float
) -> dict[str, float]:
    """CPU seconds between two snapshots by kind of thread, each thread counted by its own
    difference and its name at the end (the engine's threads take a job's name while they run
    it); ``ended_threads``: the process's CPU ``process`` less the live threads'."""
    mine = str(os.getpid())  # the main thread's id is the process's
    out: dict[str, float] = collections.defaultdict(float)
    for tid, (name, cpu) in after.items():
        kind = "calling" if tid == mine else KINDS.get(name, "other")
        out[kind] += cpu - before.get(tid, (name, 0.0))[1]
    out["ended_threads"] = max(0.0, process - sum(out.values()))
    return out


def measure(store_kind: str, batches: int) -> dict[str, float]:
    """CPU microseconds per span by kind of thread, for ``batches`` paced batches into a new
    store of ``store_kind``: run in a process of its own."""
    from bench.ingest import staged_batches
    from bench.synthetic import make_requests
    from collector.config import StoreConfig
    from collector.storage.staging import StagedProtobufInsert
    from collector.storage.store import open_store

    with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as folder:
        store = open_store(StoreConfig.from_dsn(f"chdb://{folder}/store"))
        if store_kind == "no_views":
            for (view,) in store.client.query(
                "SELECT name FROM system.tables WHERE database = currentDatabase() "
                "AND engine = 'MaterializedView'"
            ).result_rows:
                store.client.command(f"DROP VIEW `{view}`")
        requests = make_requests(batches * BATCH_SPANS // 10, traces_per_request=50)
        work = staged_batches(requests, BATCH_SPANS)[:batches]
        insert = StagedProtobufInsert(store)
        before, process_before, started = _threads(), _process_cpu(), time.monotonic()
        for index, batch in enumerate(work):
            assert batch.encoded is not None
            insert.insert(batch.encoded, {"insert_deduplicate": 0}, batch.rows_at)
            time.sleep(max(0.0, started + index + 1 - time.monotonic()))  # one a second
        time.sleep(3)  # the merges the last inserts started
        used = _by_kind(before, _threads(), _process_cpu() - process_before)
        insert.close()
        store.close()
    spans = sum(len(batch) for batch in work)
    figures = {kind: seconds / spans * 1e6 for kind, seconds in used.items()}
    figures["total"] = sum(figures.values())
    return {kind: round(value, 2) for kind, value in figures.items()}


def main() -> None:
    # Here, not at the top: the script itself runs with another tree's modules too.
    from bench.ingest import progress
    from bench.measure import in_turn, run_script, summarize, write_result

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-tree", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / "engine_steady.json")
    args = parser.parse_args()
    trees: dict[str, Path | None] = {"this": None}
    if args.baseline_tree is not None:
        trees["baseline"] = args.baseline_tree.resolve()
    runs: dict[tuple[str, str], list[dict[str, float]]] = collections.defaultdict(list)
    load_before = os.getloadavg()[0]
    for index in range(args.runs):
        for store_kind in STORES:
            for tree, where in in_turn(list(trees.items()), index):
                progress(f"run {index + 1} of {args.runs}: {store_kind} ({tree})")
                script = Path(__file__)
                runs[(tree, store_kind)].append(
                    run_script(script, where, store_kind, str(args.batches))
                )
    figures: dict[str, Any] = {
        "batches": args.batches,
        "batch_spans": BATCH_SPANS,
        "runs": args.runs,
        "load_average_before": round(load_before, 2),
    }
    for tree in trees:
        figures[tree] = {kind: summarize(runs[(tree, kind)]) for kind in STORES}
        for kind in STORES:
            line = ", ".join(
                f"{name} {value['median']:g} ({value['range'][0]:g}-{value['range'][1]:g})"
                for name, value in figures[tree][kind].items()
            )
            print(f"{tree:>8} {kind:>8}: {line}")
    if "baseline" in trees:
        figures["baseline_tree"] = str(args.baseline_tree)
        figures["this_over_baseline"] = {
            kind: summarize(
                [
                    {"total": round(this["total"] / old["total"], 3)}
                    for this, old in zip(
                        runs[("this", kind)], runs[("baseline", kind)], strict=True
                    )
                ]
            )["total"]
            for kind in STORES
        }
        print("this over the baseline, same runs:", figures["this_over_baseline"])
    write_result(args.out, "engine_steady", figures)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in STORES:
        print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
    else:
        main()
