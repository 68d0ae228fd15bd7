"""End-to-end ingest throughput, against the ceiling of a bare columnar insert.

Measures, in one run and on the same synthetic web-request traces:

- **end to end**: OTLP/HTTP protobuf requests sent to a real ``nextrace collect``
  process until every span is committed in its embedded ClickHouse store;
- **ceiling**: the same rows, already in columns, inserted with
  ``clickhouse-connect`` into an embedded store in this process, in batches of
  the same size;
- **Next.js**: end to end again, with as many traces shaped as a real Next.js
  app's (Next's own spans, scope ``next.js``: ``bench/synthetic.py``), so the
  collector groups them and derives their ``requests`` and ``cache_events``
  rows in Python, where the reference server's are derived by materialized
  views; measured until every trace is normalized.

Both are reported in spans per CPU-second of the process doing the work (so
"per core", and steady on a shared machine), with their ratio. The three are
measured ``--runs`` times, in turn, and reported as the median with the lowest
and highest run; each ratio is taken within a run. Results are printed and
written to ``bench/results/ingest.json``.

Run: ``python -m bench.ingest [--traces 20000] [--runs 3] [--out FILE]``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.synthetic import make_requests
from collector.config import StoreConfig
from collector.consumer import SpanColumns
from collector.exporter import ClickHouseSpanExporter
from collector.store import open_store
from collector.translator import translate

RESULTS = Path(__file__).parent / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def measure_ceiling(columns: SpanColumns, batch: int, folder: Path) -> dict[str, float]:
    store = open_store(StoreConfig.from_dsn(f"chdb://{folder}"))
    try:
        exporter = ClickHouseSpanExporter(store)
        total = len(columns)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for first in range(0, total, batch):
            exporter.consume(SpanColumns(columns.columns.slice(first, first + batch)))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        (count,) = store.client.query("SELECT count() FROM otel_traces").result_rows[0]
        assert count == total, f"ceiling stored {count} of {total} spans"
    finally:
        store.close()
    return {"spans_per_s": total / wall, "spans_per_cpu_s": total / cpu, "cpu_s": cpu}


def start_collector(folder: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """A ``nextrace collect`` on the embedded store ``folder``, once it answers."""
    collector = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nextrace.cli",
            "collect",
            "--port",
            str(port),
            "--dsn",
            f"chdb://{folder}",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600  # a restart replays its write-ahead log first
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return collector
        except httpx.HTTPError:
            if time.monotonic() > deadline or collector.poll() is not None:
                collector.kill()
                raise RuntimeError("the collector did not start") from None
            time.sleep(0.05)


def measure_end_to_end(
    bodies: list[bytes],
    total: int,
    batch: int,
    folder: Path,
    senders: int,
    traces: int = 0,
    extra: tuple[str, ...] = (),
) -> dict[str, float]:
    """Spans per second through a collector process (started with ``extra`` options); with
    ``traces``, until that many Next.js traces are normalized too."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    queue = str(max(batch * 10, total))
    collector = start_collector(
        folder,
        port,
        "--batch-spans",
        str(batch),
        "--queue-spans",
        queue,
        "--nextjs-wait",
        "0.5",
        *extra,
    )
    try:
        with httpx.Client(timeout=60) as client:
            cpu0, wall0 = cpu_seconds(collector.pid), time.perf_counter()

            def send(chunk: list[bytes]) -> None:
                with httpx.Client(timeout=60) as sender:
                    for body in chunk:
                        response = sender.post(
                            f"{url}/v1/traces",
                            content=body,
                            headers={"Content-Type": "application/x-protobuf"},
                        )
                        response.raise_for_status()

            chunks = [bodies[i::senders] for i in range(senders)]
            with concurrent.futures.ThreadPoolExecutor(senders) as pool:
                list(pool.map(send, chunks))
            while True:
                health = client.get(f"{url}/healthz").json()
                if health["spans_exported"] >= total and health["nextjs_traces"] >= traces:
                    break
                time.sleep(0.01)
            wall, cpu = time.perf_counter() - wall0, cpu_seconds(collector.pid) - cpu0
            committed = client.post(
                f"{url}/sql", json={"query": "SELECT count() FROM otel_traces", "format": "TSV"}
            ).text.strip()
            assert int(committed) == total, f"collector stored {committed} of {total} spans"
            if traces:
                derived = client.post(
                    f"{url}/sql",
                    json={
                        "query": "SELECT count() FROM requests WHERE Source = 'nextjs'",
                        "format": "TSV",
                    },
                ).text.strip()
                assert int(derived) == traces, f"{derived} requests rows for {traces} traces"
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
    return {"spans_per_s": total / wall, "spans_per_cpu_s": total / cpu, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=20_000, help="spans per insert")
    parser.add_argument("--senders", type=int, default=2, help="concurrent HTTP senders")
    parser.add_argument("--runs", type=int, default=3, help="measurements of each, in turn")
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest.json")
    args = parser.parse_args()

    progress(f"generating {args.traces} traces")
    requests = make_requests(args.traces)
    bodies = [r.SerializeToString() for r in requests]
    columns = SpanColumns()
    for request in requests:
        columns.extend(translate(request).spans)
    total = len(columns)
    attrs = [len(a) for a in columns.columns.span_attributes]
    progress(f"{total} spans in {len(bodies)} requests, {min(attrs)}-{max(attrs)} attributes each")

    nextjs_requests = make_requests(args.traces, scope="next.js")
    nextjs_bodies = [r.SerializeToString() for r in nextjs_requests]
    nextjs_total = sum(len(translate(r).spans) for r in nextjs_requests)
    runs: list[dict[str, dict[str, float]]] = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
            progress(f"run {run} of {args.runs}: end to end through `nextrace collect`")
            e2e = measure_end_to_end(bodies, total, args.batch, Path(tmp) / "e2e", args.senders)
            progress(f"run {run} of {args.runs}: ceiling, bare columnar inserts")
            ceiling = measure_ceiling(columns, args.batch, Path(tmp) / "ceiling")
            progress(f"run {run} of {args.runs}: end to end, as Next.js traces (normalized)")
            nextjs = measure_end_to_end(
                nextjs_bodies,
                nextjs_total,
                args.batch,
                Path(tmp) / "nextjs",
                args.senders,
                args.traces,
            )
        ratios = {
            "end_to_end_over_ceiling": e2e["spans_per_cpu_s"] / ceiling["spans_per_cpu_s"],
            "nextjs_over_end_to_end": nextjs["spans_per_cpu_s"] / e2e["spans_per_cpu_s"],
        }
        runs.append({"end_to_end": e2e, "ceiling": ceiling, "nextjs": nextjs, "ratios": ratios})

    def median(part: str, figure: str) -> float:
        return statistics.median(r[part][figure] for r in runs)

    def spread(part: str, figure: str, digits: int = 1) -> list[float]:
        values = [r[part][figure] for r in runs]
        return [round(min(values), digits), round(max(values), digits)]

    def figures(part: str) -> dict[str, float]:
        return {k: round(median(part, k), 1) for k in runs[0][part]}

    e2e, ceiling, nextjs = figures("end_to_end"), figures("ceiling"), figures("nextjs")
    ratio = median("ratios", "end_to_end_over_ceiling")
    nextjs_ratio = median("ratios", "nextjs_over_end_to_end")
    result: dict[str, Any] = {
        "benchmark": "ingest",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "runs": args.runs,
        "spans": total,
        "spans_per_trace": total / args.traces,
        "nextjs_spans": nextjs_total,
        "request_bodies": len(bodies),
        "batch_spans": args.batch,
        "end_to_end": e2e,
        "ceiling_bare_insert": ceiling,
        "end_to_end_over_ceiling": round(ratio, 3),
        "nextjs_normalized": nextjs,
        "nextjs_over_end_to_end": round(nextjs_ratio, 3),
        "spread_min_max": {
            "end_to_end_spans_per_cpu_s": spread("end_to_end", "spans_per_cpu_s"),
            "ceiling_spans_per_cpu_s": spread("ceiling", "spans_per_cpu_s"),
            "nextjs_spans_per_cpu_s": spread("nextjs", "spans_per_cpu_s"),
            "end_to_end_over_ceiling": spread("ratios", "end_to_end_over_ceiling", 3),
            "nextjs_over_end_to_end": spread("ratios", "nextjs_over_end_to_end", 3),
        },
        "target_spans_per_cpu_s": 30_000,
    }
    print(f"medians of {args.runs} run(s), lowest and highest run in brackets")
    for label, part, shown in (
        ("end to end (OTLP/HTTP -> committed)", "end_to_end", e2e),
        ("ceiling (bare columnar insert)", "ceiling", ceiling),
        ("Next.js traces, normalized too", "nextjs", nextjs),
    ):
        low, high = spread(part, "spans_per_cpu_s", 0)
        print(
            f"{label:<36} {shown['spans_per_cpu_s']:>10,.0f} spans/s per core"
            f" ({low:,.0f}-{high:,.0f})  ({shown['spans_per_s']:,.0f} spans/s wall)"
        )
    for label, key, value in (
        ("end to end / ceiling", "end_to_end_over_ceiling", ratio),
        ("Next.js normalized / end to end", "nextjs_over_end_to_end", nextjs_ratio),
    ):
        low, high = spread("ratios", key, 2)
        print(f"{label:<36} {value:>10.2f} ({low:.2f}-{high:.2f})")
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
