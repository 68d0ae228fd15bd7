"""End-to-end ingest throughput, against the ceiling of a bare columnar insert, and what
normalizing real Next.js traces costs.

Measures, in one run:

- **end to end**: synthetic web-request traces (the reference server's) sent as OTLP/HTTP
  protobuf requests to a real ``nextrace collect`` process until every span is committed in
  its embedded ClickHouse store;
- **end to end, --no-staged-insert**: the same through a collector that builds every row in
  Python (``translate()``) instead of letting ClickHouse read the bodies;
- **ceilings**: the exporter alone, in this process, in batches of the same size: the rows
  already in columns (a bare columnar insert), and the bodies already screened (a bare staged
  insert, ``collector/storage/staging.py``);
- **the demo's own spans** (``bench/demo_mix.py``): the reference server's span mix, 7% of
  its spans with a list value (``cache.tags``, plain strings, which the staged insert writes),
  end to end, staged and ``--no-staged-insert``;
- **Next.js, normalized over plain**, for two workloads of real Next.js traces, each sent
  twice: under Next's own scopes, so that the collector groups each trace and derives its
  ``requests`` and ``cache_events`` rows in Python, then measured until every trace is
  normalized; and as the same spans under another scope, which the collector only stores.
  The workloads:

  - **recorded**: the export requests a real Next.js 16 app sent in the example's end-to-end
    scenario (``bench/recorded.py``), repeated with fresh ids: a real app's mix and pace, many
    small exports, 3 derived rows for about 20 spans;
  - **synthetic**: traces as heavy in derived rows as a trace gets (``bench/synthetic.py``:
    every request renders a page with two cached fetches, 3 rows for about 9 spans), sent in
    large exports.

Every figure is in spans per CPU-second of the process doing the work (so "per core", and
steady on a shared machine). Each is measured ``--runs`` times, in turn, and reported as the
median with the lowest and highest run; each ratio is taken within a run. The collector runs
with its defaults (``--nextjs-wait`` 5 s) unless told otherwise. Results are printed and
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.demo_mix import demo_requests, list_valued
from bench.measure import in_tree
from bench.recorded import recorded_requests
from bench.synthetic import make_requests
from collector.config import StoreConfig
from collector.consumer import SpanColumns
from collector.nextjs.mapping import TraceSpan, normalize_trace, trace_spans
from collector.pipeline.translator import screen, translate
from collector.storage.exporter import ClickHouseSpanExporter
from collector.storage.store import open_store
from collector.telemetry import CollectorTelemetry

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


def measure_ceiling(batches: list[SpanColumns], folder: Path) -> dict[str, float]:
    """Spans per second of the exporter alone, in this process, given ready ``batches``: by
    columns, or from their OTLP bodies (staged), whichever the batches carry."""
    store = open_store(StoreConfig.from_dsn(f"chdb://{folder}"))
    try:
        exporter = ClickHouseSpanExporter(store, CollectorTelemetry(), staged=True)
        total = sum(len(batch) for batch in batches)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for batch in batches:
            exporter.consume(batch)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        (count,) = store.client.query("SELECT count() FROM otel_traces").result_rows[0]
        assert count == total, f"ceiling stored {count} of {total} spans"
        exporter.close()
    finally:
        store.close()
    return {"spans_per_s": total / wall, "spans_per_cpu_s": total / cpu, "cpu_s": cpu}


def staged_batches(requests: list[ExportTraceServiceRequest], batch: int) -> list[SpanColumns]:
    """The requests' bodies in batches of about ``batch`` spans, as the receiver makes them."""
    batches = [SpanColumns()]
    for request in requests:
        if len(batches[-1]) >= batch:
            batches.append(SpanColumns())
        batches[-1].extend(screen(request, request.SerializeToString()).spans)
    return batches


def start_collector(
    folder: Path, port: int, *extra: str, tree: Path | None = None
) -> subprocess.Popen[bytes]:
    """A ``nextrace collect`` on the embedded store ``folder``, once it answers; with ``tree``,
    the one of that source tree (another release's checkout, for a same-run comparison)."""
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
        **in_tree(tree),
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
    requests: int = 0,
    extra: tuple[str, ...] = (),
) -> dict[str, float]:
    """Spans per second through a collector process (started with ``extra`` options); with
    ``traces``, until that many Next.js traces are normalized too, into ``requests`` rows."""
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
        *extra,
    )
    try:
        with httpx.Client(timeout=60) as client:
            cpu0, wall0 = cpu_seconds(collector.pid), time.perf_counter()

            def send(chunk: list[bytes]) -> None:
                with httpx.Client(timeout=60) as sender:
                    for body in chunk:
                        while True:
                            response = sender.post(
                                f"{url}/v1/traces",
                                content=body,
                                headers={"Content-Type": "application/x-protobuf"},
                            )
                            if response.status_code != 503:
                                break
                            # The collector holds its memory budget: wait as an OTLP exporter
                            # does, for the time it asks.
                            time.sleep(float(response.headers.get("Retry-After", "1")))
                        response.raise_for_status()

            chunks = [bodies[i::senders] for i in range(senders)]
            with concurrent.futures.ThreadPoolExecutor(senders) as pool:
                list(pool.map(send, chunks))
            while True:
                health = client.get(f"{url}/healthz").json()
                if health["spans_exported"] >= total and health["nextjs_traces"] >= traces:
                    break
                # Not faster: each /healthz costs the collector 1-2 ms of CPU, which would be
                # counted against whichever workload waits longest (--nextjs-wait).
                time.sleep(0.1)
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
                assert int(derived) == requests, f"{derived} requests rows, not {requests}"
            by_columns = health["spans_written"]["columns"]
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
    return {
        "spans_per_s": total / wall,
        "spans_per_cpu_s": total / cpu,
        "cpu_s": cpu,
        "written_by_columns": by_columns,
    }


@dataclass
class Workload:
    """Export request bodies to send; with ``traces``, the Next.js traces the collector must
    normalize from them, and the ``requests`` rows that gives."""

    bodies: list[bytes]
    spans: int
    traces: int = 0
    requests: int = 0


def workload(requests: list[ExportTraceServiceRequest], *, normalized: bool) -> Workload:
    spans = [span for request in requests for span in trace_spans(translate(request).spans.columns)]
    bodies = [request.SerializeToString() for request in requests]
    if not normalized:
        return Workload(bodies, len(spans))
    traces: dict[str, list[TraceSpan]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    rows = sum(len(normalize_trace(trace)[0]) for trace in traces.values())
    return Workload(bodies, len(spans), len(traces), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=20_000, help="spans per insert")
    parser.add_argument("--senders", type=int, default=2, help="concurrent HTTP senders")
    parser.add_argument("--runs", type=int, default=3, help="measurements of each, in turn")
    parser.add_argument(
        "--nextjs-wait", type=float, default=None, help="the collector's, if not its default"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest.json")
    args = parser.parse_args()
    extra = () if args.nextjs_wait is None else ("--nextjs-wait", str(args.nextjs_wait))

    progress(f"generating {args.traces} traces")
    requests = make_requests(args.traces)
    bodies = [r.SerializeToString() for r in requests]
    columns = SpanColumns()
    for request in requests:
        columns.extend(translate(request).spans)
    total = len(columns)
    attrs = [len(a) for a in columns.columns.span_attributes]
    progress(f"{total} spans in {len(bodies)} requests, {min(attrs)}-{max(attrs)} attributes each")
    column_batches = [
        SpanColumns(columns.columns.slice(first, first + args.batch))
        for first in range(0, total, args.batch)
    ]

    progress("preparing the demo's own spans, and the Next.js workloads, about as many each")
    demo = demo_requests(total)
    demo_load = workload(demo, normalized=False)
    demo_lists = list_valued(demo)
    plain_scope = "nextrace.bench"  # any scope the collector does not normalize
    nextjs = {
        "recorded": (
            workload(recorded_requests(total, scope=plain_scope), normalized=False),
            workload(recorded_requests(total), normalized=True),
        ),
        "synthetic": (
            workload(make_requests(args.traces, nextjs=True, scope=plain_scope), normalized=False),
            workload(make_requests(args.traces, nextjs=True), normalized=True),
        ),
    }
    for name, (_, normalized) in nextjs.items():
        progress(
            f"{name}: {normalized.spans} spans of {normalized.traces} traces in "
            f"{len(normalized.bodies)} requests, {normalized.requests} requests rows"
        )

    def send(load: Workload, folder: Path) -> dict[str, float]:
        return measure_end_to_end(
            load.bodies,
            load.spans,
            args.batch,
            folder,
            args.senders,
            load.traces,
            load.requests,
            extra,
        )

    runs: list[dict[str, dict[str, float]]] = []
    for run in range(1, args.runs + 1):
        figures: dict[str, dict[str, float]] = {}
        ratios: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
            progress(f"run {run} of {args.runs}: end to end through `nextrace collect`")
            figures["end_to_end"] = measure_end_to_end(
                bodies, total, args.batch, Path(tmp) / "e2e", args.senders
            )
            progress(f"run {run} of {args.runs}: the same, --no-staged-insert")
            figures["end_to_end_columns"] = measure_end_to_end(
                bodies,
                total,
                args.batch,
                Path(tmp) / "e2e-columns",
                args.senders,
                extra=("--no-staged-insert",),
            )
            progress(f"run {run} of {args.runs}: ceilings, the exporter alone")
            figures["ceiling"] = measure_ceiling(column_batches, Path(tmp) / "ceiling")
            figures["ceiling_staged"] = measure_ceiling(
                staged_batches(requests, args.batch), Path(tmp) / "ceiling-staged"
            )
            progress(f"run {run} of {args.runs}: the demo's spans, staged then --no-staged-insert")
            figures["demo"] = send(demo_load, Path(tmp) / "demo")
            figures["demo_columns"] = measure_end_to_end(
                demo_load.bodies,
                demo_load.spans,
                args.batch,
                Path(tmp) / "demo-columns",
                args.senders,
                extra=("--no-staged-insert", *extra),
            )
            ratios["demo_staged_over_columns"] = (
                figures["demo"]["spans_per_cpu_s"] / figures["demo_columns"]["spans_per_cpu_s"]
            )
            for name, (plain, normalized) in nextjs.items():
                progress(f"run {run} of {args.runs}: Next.js {name}, plain then normalized")
                figures[f"{name}_plain"] = send(plain, Path(tmp) / f"{name}-plain")
                figures[f"{name}_normalized"] = send(normalized, Path(tmp) / name)
                ratios[name] = (
                    figures[f"{name}_normalized"]["spans_per_cpu_s"]
                    / figures[f"{name}_plain"]["spans_per_cpu_s"]
                )
        ratios["end_to_end_over_ceiling"] = (
            figures["end_to_end"]["spans_per_cpu_s"] / figures["ceiling"]["spans_per_cpu_s"]
        )
        ratios["staged_over_columns"] = (
            figures["end_to_end"]["spans_per_cpu_s"]
            / figures["end_to_end_columns"]["spans_per_cpu_s"]
        )
        runs.append({**figures, "ratios": ratios})

    def median(part: str, figure: str) -> float:
        return statistics.median(r[part][figure] for r in runs)

    def spread(part: str, figure: str, digits: int = 1) -> list[float]:
        values = [r[part][figure] for r in runs]
        return [round(min(values), digits), round(max(values), digits)]

    def summary(part: str) -> dict[str, Any]:
        """Median figures of ``part``, with the spread of its spans per CPU-second."""
        return {
            **{k: round(median(part, k), 1) for k in runs[0][part]},
            "spread_spans_per_cpu_s": spread(part, "spans_per_cpu_s"),
        }

    def ratio(name: str) -> dict[str, Any]:
        return {"median": round(median("ratios", name), 3), "spread": spread("ratios", name, 3)}

    result: dict[str, Any] = {
        "benchmark": "ingest",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "runs": args.runs,
        "spans": total,
        "spans_per_trace": total / args.traces,
        "request_bodies": len(bodies),
        "batch_spans": args.batch,
        "nextjs_wait_s": args.nextjs_wait,
        "end_to_end": summary("end_to_end"),
        "end_to_end_no_staged_insert": summary("end_to_end_columns"),
        "staged_over_columns": ratio("staged_over_columns"),
        "ceiling_bare_insert": summary("ceiling"),
        "ceiling_staged_insert": summary("ceiling_staged"),
        "end_to_end_over_ceiling": ratio("end_to_end_over_ceiling"),
        "demo_mix": {
            "spans": demo_load.spans,
            "list_valued_spans": demo_lists,
            "staged": summary("demo"),
            "no_staged_insert": summary("demo_columns"),
            "staged_over_columns": ratio("demo_staged_over_columns"),
        },
        "nextjs": {
            name: {
                "spans": normalized.spans,
                "traces": normalized.traces,
                "request_bodies": len(normalized.bodies),
                "requests_rows": normalized.requests,
                "plain": summary(f"{name}_plain"),
                "normalized": summary(f"{name}_normalized"),
                "normalized_over_plain": ratio(name),
            }
            for name, (_, normalized) in nextjs.items()
        },
        "target_spans_per_cpu_s": 90_000,  # end to end
        "target_normalized_over_plain": 0.8,
    }
    print(f"medians of {args.runs} run(s), lowest and highest run in brackets")
    rows = [("end to end (OTLP/HTTP -> committed)", "end_to_end")]
    rows.append(("end to end, --no-staged-insert", "end_to_end_columns"))
    rows.append(("ceiling (bare columnar insert)", "ceiling"))
    rows.append(("ceiling (bare staged insert)", "ceiling_staged"))
    rows.append(("the demo's spans, staged", "demo"))
    rows.append(("the demo's spans, --no-staged-insert", "demo_columns"))
    for name in nextjs:
        rows.append((f"Next.js {name}, plain", f"{name}_plain"))
        rows.append((f"Next.js {name}, normalized", f"{name}_normalized"))
    for label, part in rows:
        low, high = spread(part, "spans_per_cpu_s", 0)
        print(
            f"{label:<36} {median(part, 'spans_per_cpu_s'):>10,.0f} spans/s per core"
            f" ({low:,.0f}-{high:,.0f})  ({median(part, 'spans_per_s'):,.0f} spans/s wall)"
        )
    for label, key in (
        ("end to end / ceiling", "end_to_end_over_ceiling"),
        ("staged / --no-staged-insert", "staged_over_columns"),
        ("demo's spans: staged / --no-staged", "demo_staged_over_columns"),
        *((f"Next.js {name}: normalized / plain", name) for name in nextjs),
    ):
        low, high = spread("ratios", key, 2)
        print(f"{label:<36} {median('ratios', key):>10.2f} ({low:.2f}-{high:.2f})")
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
