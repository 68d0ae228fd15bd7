"""What tracing costs the reference server: CPU per span, tracing on against tracing off.

A ``nextrace serve`` process answers a fixed mix of requests (documents, RSC navigations and
prefetches over every route of the default app) and exports its spans to a real ``nextrace
collect``. The same mix is then sent to a server started with ``OTEL_SDK_DISABLED=true``,
whose OpenTelemetry SDK makes no spans; runs alternate, so both see the same machine. The
server's CPU is read from the kernel (``/proc`` when the load starts, ``wait4``'s resource
usage once it has exited, having flushed every span), so the CPU of exporting after the
last request is counted too. Tracing CPU per span is the difference over the spans the
collector accepted; its share is that difference over the CPU with tracing on.

Also, in this process and in the same run, the CPU each encoder of export requests takes
per span: the OpenTelemetry SDK's (``encode_spans``, one protobuf object per attribute) and
the server's own (``instrumented_server/otlp_wire.py``, the same bytes), on 512 of the
server's spans, a fetch, a data-cache lookup and a render span per request.

And the floor the goal meets first: the CPU per span of the OpenTelemetry SDK alone, in this
process, a span started and ended with no processor at all, without attributes and with ten
(the server's spans carry 5 to 12, its request spans about 33).

And the server's tracing pipeline alone, in process (``bench/tracing_pipeline.py``): spans made
through its ``ServerTelemetry``, exported to the collector, CPU per span of the whole process.
With ``--baseline-tree``, another checkout's server and pipeline are measured in the same runs,
in turn, and their ratios reported.

Printed, and written to ``bench/results/server.json`` with the spread over the runs.

Run: ``PYTHONPATH=. python -m bench.server [--requests 600] [--runs 3] [--baseline-tree DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench.ingest import cpu_seconds, free_port, start_collector
from bench.measure import in_tree, in_turn, run_script, write_result
from contract import semconv
from instrumented_server.otlp_wire import OTLPWireEncoder
from instrumented_server.telemetry import ServerTelemetry

RESULTS = Path(__file__).parent / "results"
PATHS = (
    "/",
    "/about",
    "/products",
    "/products/1",
    "/products/2",
    "/dashboard",
    "/profile",
    "/blog/hello",
    "/docs/start",
    "/feed",
)
KINDS: tuple[dict[str, str], ...] = (
    {},  # a document
    {"RSC": "1"},  # a client navigation
    {"RSC": "1", "Next-Router-Prefetch": "1"},  # a prefetch
)


def start_server(
    port: int, collector_port: int, *, tracing: bool, tree: Path | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OTEL_SDK_DISABLED": "false" if tracing else "true"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nextrace.cli",
            "serve",
            "--port",
            str(port),
            "--collector",
            f"http://127.0.0.1:{collector_port}",
        ],
        **in_tree(tree, env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("the reference server did not start")
        time.sleep(0.05)


def accepted(collector_port: int) -> int:
    health = httpx.get(f"http://127.0.0.1:{collector_port}/healthz", timeout=10).json()
    return int(health["spans_accepted"])


def one_server(
    collector_port: int, requests: int, *, tracing: bool, tree: Path | None = None
) -> dict[str, float]:
    """CPU seconds of one server (of the source ``tree``, if given) answering ``requests``
    requests, and the spans it sent."""
    port = free_port()
    before = accepted(collector_port)
    server = start_server(port, collector_port, tracing=tracing, tree=tree)
    started_cpu = cpu_seconds(server.pid)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for i in range(requests):
            response = client.get(PATHS[i % len(PATHS)], headers=KINDS[i // len(PATHS) % 3])
            response.raise_for_status()
    server.send_signal(signal.SIGINT)  # a graceful stop flushes every span
    _, _, usage = os.wait4(server.pid, 0)
    server.returncode = 0
    cpu = usage.ru_utime + usage.ru_stime - started_cpu
    deadline = time.monotonic() + 60
    spans = accepted(collector_port) - before
    while tracing and time.monotonic() < deadline:
        time.sleep(0.5)  # the collector counts what arrived; wait until it stops growing
        now = accepted(collector_port) - before
        if now == spans:
            break
        spans = now
    return {"cpu_s": cpu, "spans": spans}


def tracing_cost(collector_port: int, requests: int, tree: Path | None = None) -> dict[str, Any]:
    """Tracing's CPU per span in one run: the server traced, then with its SDK disabled."""
    on = one_server(collector_port, requests, tracing=True, tree=tree)
    off = one_server(collector_port, requests, tracing=False, tree=tree)
    per_span_us = (on["cpu_s"] - off["cpu_s"]) / max(on["spans"], 1) * 1e6
    return {
        "spans": on["spans"],
        "cpu_s_tracing": round(on["cpu_s"], 3),
        "cpu_s_disabled": round(off["cpu_s"], 3),
        "tracing_us_per_span": round(per_span_us, 1),
        "tracing_share_of_cpu": round(1 - off["cpu_s"] / on["cpu_s"], 3),
    }


def pipeline_us_per_span(
    collector_port: int, baseline_tree: Path | None, repeat: int = 3, spans: int = 20_000
) -> dict[str, Any]:
    """CPU microseconds per span of the server's tracing pipeline in process
    (``bench/tracing_pipeline.py``, exporting to the collector), the median of ``repeat``
    passes: this tree's and, alternating, the baseline's, with their ratio per pass."""
    trees: dict[str, Path | None] = {"this": None}
    if baseline_tree is not None:
        trees["baseline"] = baseline_tree.resolve()
    passes: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    script = Path(__file__).with_name("tracing_pipeline.py")
    for index in range(repeat):
        for name, tree in in_turn(list(trees.items()), index):
            url = f"http://127.0.0.1:{collector_port}"
            passes[name].append(run_script(script, tree, url, str(spans)))
    result: dict[str, Any] = {
        name: {shape: statistics.median(p[shape] for p in runs) for shape in runs[0]}
        for name, runs in passes.items()
    }
    if "baseline" in passes:
        result["this_over_baseline"] = {
            shape: statistics.median(
                this[shape] / old[shape]
                for this, old in zip(passes["this"], passes["baseline"], strict=True)
            )
            for shape in passes["this"][0]
        }
    return result


def server_spans(count: int = 512) -> list[ReadableSpan]:
    """``count`` spans as the reference server makes them, through its own telemetry."""
    kept = InMemorySpanExporter()
    telemetry = ServerTelemetry("shop", lambda: "build-1", exporter=kept)
    for i in range(count // 3):
        route = PATHS[i % len(PATHS)]
        with telemetry.span(f"render route (app) {route}", "render", None, {"next.route": route}):
            pass
        with telemetry.span("fetch GET api/products", "fetch", None) as fetch:
            lookup = semconv.cache_lookup_attributes(
                layer="data",
                result="hit" if i % 4 else "miss",
                key=f"GET https://api.example/products/{i % 40}",
                scope="shared",
                age_ms=1250.5,
                source="warmup",
                tags=("products", f"product:{i % 40}"),
                route=route,
            )
            telemetry.start("data cache lookup", "cache", fetch, lookup).end()
    telemetry.shutdown()
    return list(kept.get_finished_spans())


def encoding_us_per_span(spans: list[ReadableSpan], repeat: int = 20) -> dict[str, float]:
    """CPU microseconds per span of each encoder, the best of ``repeat`` passes each."""
    wire = OTLPWireEncoder()
    assert wire.encode(spans) == encode_spans(spans).SerializeToString()
    encoders: dict[str, Callable[[], bytes]] = {
        "sdk": lambda: encode_spans(spans).SerializeToString(),
        "wire": lambda: wire.encode(spans),
    }
    best = dict.fromkeys(encoders, float("inf"))
    for _ in range(repeat):
        for name, encode in encoders.items():  # alternating, so both see the same machine
            started = time.process_time()
            encode()
            best[name] = min(best[name], time.process_time() - started)
    return {name: round(cpu / len(spans) * 1e6, 1) for name, cpu in best.items()}


def sdk_floor_us_per_span(spans: int = 5_000, repeat: int = 7) -> dict[str, float]:
    """CPU microseconds per span of the SDK's own span start and end, no processor, the best of
    ``repeat`` passes of ``spans`` spans: without attributes, and with ten."""
    tracer = TracerProvider().get_tracer("nextrace.bench")
    ten = {f"nextrace.bench.attribute_{i}": f"value {i}" for i in range(10)}
    shapes: dict[str, dict[str, str]] = {"no_attributes": {}, "ten_attributes": ten}
    best = dict.fromkeys(shapes, float("inf"))
    for _ in range(repeat):
        for name, attributes in shapes.items():
            started = time.process_time()
            for _ in range(spans):
                tracer.start_span("span", attributes=attributes).end()
            best[name] = min(best[name], time.process_time() - started)
    return {name: round(cpu / spans * 1e6, 1) for name, cpu in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="a checkout of another release: each run measures its server too, in turn, for "
        "same-run ratios (this one over it)",
    )
    parser.add_argument(
        "--pipeline-spans", type=int, default=20_000, help="spans per pass of the pipeline"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "server.json")
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
        collector_port = free_port()
        collector = start_collector(Path(tmp) / "store", collector_port)
        try:
            for index in range(args.runs):
                for which in in_turn(("this", "baseline"), index):
                    if which == "this":
                        runs.append(tracing_cost(collector_port, args.requests))
                        print(f"run {index + 1}: {json.dumps(runs[-1])}", flush=True)
                    elif args.baseline_tree is not None:
                        tree = args.baseline_tree.resolve()
                        baseline.append(tracing_cost(collector_port, args.requests, tree))
                        print(f"run {index + 1}, baseline: {json.dumps(baseline[-1])}", flush=True)
            pipeline = pipeline_us_per_span(
                collector_port, args.baseline_tree, spans=args.pipeline_spans
            )
        finally:
            collector.send_signal(signal.SIGINT)
            collector.wait(timeout=60)
    print(f"the tracing pipeline in process, CPU per span: {json.dumps(pipeline)}", flush=True)
    encoding = encoding_us_per_span(server_spans())
    print(f"encoding, CPU per span: {json.dumps(encoding)}", flush=True)
    floor = sdk_floor_us_per_span()
    print(f"the SDK alone, CPU per span: {json.dumps(floor)}", flush=True)
    per_span = [r["tracing_us_per_span"] for r in runs]
    share = [r["tracing_share_of_cpu"] for r in runs]
    result = {
        "requests": args.requests,
        "runs": runs,
        "tracing_us_per_span_median": statistics.median(per_span),
        "tracing_us_per_span_range": [min(per_span), max(per_span)],
        "tracing_share_median": statistics.median(share),
        "goal_us_per_span": 20,
        "encoding_us_per_span": encoding,
        "encoding_wire_over_sdk": round(encoding["wire"] / encoding["sdk"], 3),
        "sdk_floor_us_per_span": floor,
        "pipeline_us_per_span": pipeline,
    }
    if baseline:
        ratios = [
            round(this["tracing_us_per_span"] / old["tracing_us_per_span"], 3)
            for this, old in zip(runs, baseline, strict=True)
        ]
        old_per_span = [r["tracing_us_per_span"] for r in baseline]
        result |= {
            "baseline_tree": str(args.baseline_tree),
            "baseline_runs": baseline,
            "baseline_tracing_us_per_span_median": statistics.median(old_per_span),
            "baseline_tracing_us_per_span_range": [min(old_per_span), max(old_per_span)],
            "tracing_over_baseline_median": statistics.median(ratios),
            "tracing_over_baseline_range": [min(ratios), max(ratios)],
        }
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    write_result(args.out, "server", result)


if __name__ == "__main__":
    main()
