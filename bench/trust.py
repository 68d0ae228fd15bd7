"""What trust costs and what it bounds: the write-ahead log, recovery, memory, hostile bodies.

Measured in one run, on real ``nextrace collect`` processes and the synthetic traces of
``bench/ingest.py``:

- **WAL cost**: end-to-end ingest (spans per CPU-second of the collector) with the
  write-ahead log (``fsync=always``, the default) against without it, alternating,
  ``--runs`` times; the ratio of each pair, its median and its spread;
- **recovery**: a collector that cannot store (its batch never comes due) fills a
  ``--wal-mb`` write-ahead log until senders get 503, is killed with SIGKILL, and
  restarts: seconds until it answers again and until every span is stored;
- **memory**: 96 one-span requests with a 15 MB attribute from 4 senders that retry on
  503; the collector's peak resident set (``VmHWM``) against its resident set when idle;
- **mutations**: ``--bodies`` damaged SDK-encoded bodies through an in-process
  collector: answers by status (no 5xx allowed) and bodies per second;
- **keep-alive**: the median time of 200 small requests on one keep-alive connection
  (44 ms each when ``TCP_NODELAY`` was missing).

Printed, and written to ``bench/results/trust.json`` (``--parts`` measures some again and
keeps the others' figures).

Run: ``python -m bench.trust [--traces 10000] [--runs 5] [--bodies 100000] [--wal-mb 64]``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import random
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.ingest import RESULTS, free_port, measure_end_to_end, progress, start_collector
from bench.measure import in_turn
from bench.synthetic import make_requests
from collector.config import WalSettings
from tests.builders import make_request, make_span
from tests.otlp_corpus import corpus, mutate

PB = {"Content-Type": "application/x-protobuf"}
PARTS = ("wal_cost", "recovery", "memory", "keep_alive", "mutations")


def health(port: int) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).json()
    return result


def wal_cost(traces: int, runs: int, tmp: Path) -> dict[str, Any]:
    requests = make_requests(traces)
    bodies = [r.SerializeToString() for r in requests]
    total = sum(len(s.spans) for r in requests for rs in r.resource_spans for s in rs.scope_spans)
    pairs = []
    for run in range(runs):
        progress(f"WAL cost, run {run + 1} of {runs}")
        figures = {}
        for wal in in_turn((True, False), run):
            extra = () if wal else ("--no-wal",)
            folder = tmp / f"{'on' if wal else 'off'}{run}"
            figures[wal] = measure_end_to_end(bodies, total, 20_000, folder, 2, extra=extra)
        pairs.append((figures[True]["spans_per_cpu_s"], figures[False]["spans_per_cpu_s"]))
    ratios = [on / off for on, off in pairs]
    return {
        "spans": total,
        "with_wal_spans_per_cpu_s": [round(on) for on, _ in pairs],
        "without_wal_spans_per_cpu_s": [round(off) for _, off in pairs],
        "ratio_with_over_without": [round(r, 3) for r in ratios],
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
        "cost_median_percent": round(100 * (1 - statistics.median(ratios)), 1),
        "target_cost_percent": 20,
    }


def recovery(wal_mb: int, tmp: Path) -> dict[str, Any]:
    port = free_port()
    folder = tmp / "recovery"
    hold = ("--batch-timeout", "3600", "--batch-spans", "1000000", "--queue-spans", "1000000")
    process = start_collector(
        folder, port, "--wal-max-mb", str(wal_mb), "--memory-mb", "4096", *hold
    )
    bodies = [r.SerializeToString() for r in make_requests(2000)]
    acked = 0
    with httpx.Client(timeout=60) as client:
        for body in iter(lambda: random.choice(bodies), None):
            answer = client.post(f"http://127.0.0.1:{port}/v1/traces", content=body, headers=PB)
            if answer.status_code == 503:
                break
            acked += 1
    spans = health(port)["spans_accepted"]
    wal_bytes = health(port)["wal_bytes"]
    progress(f"recovery: {spans} spans in a full {wal_mb} MB log; SIGKILL, then restart")
    process.send_signal(signal.SIGKILL)
    process.wait()
    started = time.perf_counter()
    process = start_collector(folder, port, "--wal-max-mb", str(wal_mb))
    try:
        answering = time.perf_counter() - started
        while health(port)["spans_exported"] < spans:
            time.sleep(0.05)
        stored = time.perf_counter() - started
        [[count]] = [
            line.split("\t")
            for line in httpx.post(
                f"http://127.0.0.1:{port}/sql",
                json={"query": "SELECT count() FROM otel_traces", "format": "TSV"},
                timeout=60,
            ).text.splitlines()
        ]
        assert int(count) == spans, f"{count} of {spans} acknowledged spans after recovery"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
    return {
        "wal_mb": wal_mb,
        "wal_bytes": wal_bytes,
        "requests_acknowledged": acked,
        "spans": spans,
        "seconds_until_answering": round(answering, 2),
        "seconds_until_all_stored": round(stored, 2),
        "replayed_spans_per_s": round(spans / stored),
    }


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def memory_ceiling(tmp: Path, budget_mb: int) -> dict[str, Any]:
    port = free_port()
    process = start_collector(tmp / f"memory{budget_mb}", port, "--memory-mb", str(budget_mb))
    idle = rss_kib(process.pid, "VmRSS")
    big = make_request([make_span("big", attrs={"payload": "x" * 15_000_000})])
    body = big.SerializeToString()
    refused = 0

    def send(count: int) -> int:
        retries = 0
        with httpx.Client(timeout=120) as client:
            for _ in range(count):
                while (
                    client.post(
                        f"http://127.0.0.1:{port}/v1/traces", content=body, headers=PB
                    ).status_code
                    == 503
                ):
                    retries += 1
                    time.sleep(0.2)
        return retries

    try:
        progress("memory: 96 requests with a 15 MB attribute, 4 senders")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            refused = sum(pool.map(send, [24] * 4))
        while health(port)["spans_exported"] < 96:
            time.sleep(0.1)
        peak = rss_kib(process.pid, "VmHWM")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
    return {
        "requests": 96,
        "attribute_bytes": 15_000_000,
        "memory_budget_mb": budget_mb,
        "answers_503_retried": refused,
        "idle_rss_mb": round(idle / 1024),
        "peak_rss_mb": round(peak / 1024),
    }


def mutations(bodies: int) -> dict[str, Any]:
    from starlette.testclient import TestClient

    from collector.config import CollectorConfig, StoreConfig
    from collector.service import Collector

    with tempfile.TemporaryDirectory(prefix="nextrace-fuzz-") as folder:
        collector = Collector(
            CollectorConfig(
                store=StoreConfig.from_dsn(f"chdb://{folder}"), wal=WalSettings(fsync="never")
            )
        )
        app = collector.start()
        rng = random.Random(7)
        seeds = corpus(40)
        statuses: dict[str, int] = {}
        started = time.perf_counter()
        with TestClient(app, base_url="http://localhost:4318") as client:
            for sent in range(bodies):
                body, headers = rng.choice(seeds)
                code = client.post("/v1/traces", content=mutate(body, rng), headers=headers)
                statuses[str(code.status_code)] = statuses.get(str(code.status_code), 0) + 1
                if sent and sent % 20_000 == 0:
                    progress(f"mutations: {sent} bodies, {statuses}")
        elapsed = time.perf_counter() - started
        collector.shutdown()
        snapshot = collector.telemetry.snapshot()
    server_errors = sum(n for code, n in statuses.items() if code.startswith("5"))
    assert server_errors == 0, statuses
    return {
        "bodies": bodies,
        "answers": statuses,
        "server_errors": server_errors,
        "spans_received": snapshot["spans_received"],
        "spans_stored": snapshot["spans_exported"],
        "spans_dropped": snapshot["spans_dropped"],
        "bodies_per_s": round(bodies / elapsed),
    }


def keep_alive(tmp: Path) -> dict[str, Any]:
    port = free_port()
    process = start_collector(tmp / "keepalive", port)
    body = make_request([make_span("small")]).SerializeToString()
    try:
        times = []
        with httpx.Client(timeout=30) as client:
            for _ in range(200):
                started = time.perf_counter()
                client.post(f"http://127.0.0.1:{port}/v1/traces", content=body, headers=PB)
                times.append(time.perf_counter() - started)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
    return {
        "requests": 200,
        "median_ms": round(1000 * statistics.median(times), 2),
        "p90_ms": round(1000 * sorted(times)[179], 2),
        "before_tcp_nodelay_ms": 44,
    }


def report(part: str, figures: Any) -> None:
    if part == "wal_cost":
        print(
            f"WAL cost: with/without {figures['ratio_with_over_without']}, median "
            f"{figures['ratio_median']} ({figures['cost_median_percent']}% of throughput; "
            "target at most 20%)"
        )
    elif part == "recovery":
        print(
            f"recovery after SIGKILL with a full {figures['wal_mb']} MB log "
            f"({figures['spans']} spans): answering in {figures['seconds_until_answering']} s, "
            f"all stored in {figures['seconds_until_all_stored']} s"
        )
    elif part == "memory":
        for budget in figures:
            print(
                f"memory: 96 x 15 MB attributes: peak RSS {budget['peak_rss_mb']} MB "
                f"(idle {budget['idle_rss_mb']} MB, budget {budget['memory_budget_mb']} MB)"
            )
    elif part == "keep_alive":
        print(f"keep-alive: median {figures['median_ms']} ms per request (44 ms before)")
    else:
        print(f"mutations: {figures['bodies']} bodies, answers {figures['answers']}, no 5xx")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bodies", type=int, default=100_000)
    parser.add_argument("--wal-mb", type=int, default=64)
    parser.add_argument(
        "--memory-mb", type=int, nargs="*", default=[64, 256], help="budgets (none: skip)"
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="measure only these; the others keep their figures in --out",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "trust.json")
    args = parser.parse_args()
    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    with tempfile.TemporaryDirectory(prefix="nextrace-trust-") as folder:
        tmp = Path(folder)
        measures: dict[str, Callable[[], Any]] = {
            "wal_cost": lambda: wal_cost(args.traces, args.runs, tmp),
            "recovery": lambda: recovery(args.wal_mb, tmp),
            "memory": lambda: [memory_ceiling(tmp, budget) for budget in args.memory_mb],
            "keep_alive": lambda: keep_alive(tmp),
            "mutations": lambda: mutations(args.bodies),
        }
        for part in args.parts:
            progress(f"measuring {part}")
            result[part] = measures[part]()
            result[f"{part}_when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            report(part, result[part])
    result.update(benchmark="trust", python=platform.python_version(), cores=os.cpu_count())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
