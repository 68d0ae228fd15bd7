"""Freshness and cost under a steady offered load: how long an exported span takes to become
visible to a query, and what the collector spends per span, at several offered rates.

For each rate a fresh ``nextrace collect`` (its defaults: 1 s batch timer) receives the
reference server's synthetic traces in export requests of 500 spans (about what the
OpenTelemetry SDK's ``BatchSpanProcessor`` sends, 512 at most), paced evenly over
``--seconds``, from a few concurrent senders. A poller asks the collector's ``/sql`` endpoint
for ``count()`` of ``otel_traces`` every ``--poll-ms``; the batcher stores requests in the
order it acknowledged them, so a request is visible at the first poll whose count reaches
the spans acknowledged up to and including it. Its freshness is that moment less the moment
it was sent (so it includes up to one poll interval).

Reported per rate, as the median over ``--runs`` with the lowest and highest run:
freshness p50, p99 and max; the collector's CPU per span (the polls included); how many of
its 2 cores it used; the rate it accepted (spans answered 200 over the time until the last
answer); refused requests (503). With ``--busy``, a neighbour process keeps one core busy
throughout. With ``--baseline-tree``, each run offers the same load to that checkout's
collector too, in turn, and the figures' ratios (this one over it) are reported per run: the
same machine, the same minutes. Results are printed and written to
``bench/results/load.json`` (``--out``).

Run: ``python -m bench.load [--rates 5000,10000,20000] [--seconds 20] [--runs 3]
[--poll-ms 100] [--busy] [--baseline-tree ../old-checkout]``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.ingest import cpu_seconds, free_port, progress, start_collector
from bench.measure import in_turn, summarize, write_result
from bench.synthetic import make_requests

RESULTS = Path(__file__).parent / "results"
SPANS_PER_REQUEST = 500  # 50 traces of 10 spans
HEADERS = {"Content-Type": "application/x-protobuf"}


@dataclass
class Sent:
    """One export request: when it left, and how many spans it carried."""

    at: float
    spans: int


@dataclass
class Run:
    """What one offered rate gave."""

    acked: list[Sent] = field(default_factory=list)  # in the order the collector answered
    polls: list[tuple[float, int]] = field(default_factory=list)  # (when, spans visible)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def poll(url: str, run: Run, every_s: float, stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            response = client.post(
                f"{url}/sql", json={"query": "SELECT count() FROM otel_traces", "format": "TSV"}
            )
            run.polls.append((time.perf_counter(), int(response.text.strip())))
            stop.wait(every_s)


def freshness_ms(run: Run) -> list[float]:
    """Per acknowledged request, milliseconds from its send to the first poll that saw it."""
    out = []
    polls = iter(run.polls)
    seen_at, seen = next(polls)
    cumulative = 0
    for sent in run.acked:
        cumulative += sent.spans
        while seen < cumulative or seen_at < sent.at:
            seen_at, seen = next(polls)
        out.append((seen_at - sent.at) * 1000)
    return out


def offer(
    rate: int, seconds: float, poll_ms: float, folder: Path, tree: Path | None = None
) -> dict[str, float]:
    """Offer ``rate`` spans per second for ``seconds`` to a new collector on ``folder`` (of
    the source ``tree``, if given), polled every ``poll_ms``."""
    count = max(1, round(rate * seconds / SPANS_PER_REQUEST))
    bodies = [r.SerializeToString() for r in make_requests(count * 50, traces_per_request=50)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    collector = start_collector(folder, port, tree=tree)
    run = Run()
    stop = threading.Event()
    poller = threading.Thread(target=poll, args=(url, run, poll_ms / 1000, stop), daemon=True)
    sender = httpx.Client(timeout=60)  # shared by the pool's threads, as httpx allows
    try:

        def send(body: bytes) -> None:
            at = time.perf_counter()
            response = sender.post(f"{url}/v1/traces", content=body, headers=HEADERS)
            with run.lock:
                if response.status_code == 200:
                    run.acked.append(Sent(at, SPANS_PER_REQUEST))
                else:
                    run.refused += 1

        poller.start()
        cpu0, wall0 = cpu_seconds(collector.pid), time.perf_counter()
        interval = SPANS_PER_REQUEST / rate
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for index, body in enumerate(bodies):
                delay = wall0 + index * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(send, body)
        accepted_s = time.perf_counter() - wall0  # the pool waited for every answer
        total = SPANS_PER_REQUEST * len(run.acked)
        deadline = time.monotonic() + 120
        while not run.polls or run.polls[-1][1] < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {run.polls[-1][1]} of {total} spans became visible")
            time.sleep(poll_ms / 1000)
        cpu, wall = cpu_seconds(collector.pid) - cpu0, time.perf_counter() - wall0
    finally:
        sender.close()
        stop.set()
        poller.join(10)
        collector.terminate()
        collector.wait(60)
    fresh = sorted(freshness_ms(run))
    return {
        "accepted_spans_per_s": round(total / accepted_s),
        "freshness_p50_ms": round(statistics.median(fresh)),
        "freshness_p99_ms": round(fresh[min(len(fresh) - 1, int(len(fresh) * 0.99))]),
        "freshness_max_ms": round(fresh[-1]),
        "cpu_us_per_span": round(cpu / total * 1e6, 1),
        "cores_used": round(cpu / wall, 2),
        "refused_requests": run.refused,
    }


@contextlib.contextmanager
def neighbour(busy: bool) -> Iterator[None]:
    """With ``busy``, a process beside the collector that keeps one core busy."""
    if not busy:
        yield
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="5000,10000,20000", help="spans/s offered, by commas")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=100, help="how often /sql is polled")
    parser.add_argument("--busy", action="store_true", help="a neighbour keeps one core busy")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="a checkout of another release: each run offers the same load to its collector "
        "too, in turn, for same-run ratios (this one over it)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    trees: dict[str, Path | None] = {"this": None}
    if args.baseline_tree is not None:
        trees["baseline"] = args.baseline_tree.resolve()
    runs: dict[tuple[str, int], list[dict[str, float]]] = {
        (tree, rate): [] for tree in trees for rate in rates
    }
    load_before = os.getloadavg()[0]
    with neighbour(args.busy):
        for index in range(1, args.runs + 1):
            for rate in rates:
                for tree, where in in_turn(list(trees.items()), index - 1):
                    progress(
                        f"run {index} of {args.runs}: {rate:,} spans/s for {args.seconds:g} s "
                        f"({tree})"
                    )
                    with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
                        runs[(tree, rate)].append(
                            offer(rate, args.seconds, args.poll_ms, Path(tmp) / "store", where)
                        )
    summary: dict[str, Any] = {}
    baseline: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    print(f"medians of {args.runs} run(s), lowest and highest run in brackets")
    for rate in rates:
        summary[str(rate)] = summarize(runs[("this", rate)])
        line = ", ".join(
            f"{name} {value['median']:g} ({value['range'][0]:g}-{value['range'][1]:g})"
            for name, value in summary[str(rate)].items()
        )
        print(f"{rate:>7,} spans/s offered: {line}")
        if "baseline" not in trees:
            continue
        baseline[str(rate)] = summarize(runs[("baseline", rate)])
        per_run = [
            {
                name: round(this[name] / max(old[name], 1e-9), 3)
                for name in ("cpu_us_per_span", "freshness_p99_ms")
            }
            for this, old in zip(runs[("this", rate)], runs[("baseline", rate)], strict=True)
        ]
        ratios[str(rate)] = summarize(per_run)
        print(
            f"{'':>7}  over the baseline, same runs: cpu per span "
            f"{ratios[str(rate)]['cpu_us_per_span']['median']:g}, freshness p99 "
            f"{ratios[str(rate)]['freshness_p99_ms']['median']:g}"
        )
    write_result(
        args.out,
        "load",
        {
            "runs": args.runs,
            "seconds": args.seconds,
            "poll_ms": args.poll_ms,
            "busy_neighbour": args.busy,
            "load_average_before": round(load_before, 2),
            "spans_per_request": SPANS_PER_REQUEST,
            "rates": summary,
            **(
                {"baseline_tree": str(args.baseline_tree), "baseline": baseline, "ratios": ratios}
                if ratios
                else {}
            ),
        },
    )


if __name__ == "__main__":
    main()
