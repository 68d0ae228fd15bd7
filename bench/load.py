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
freshness p50, p99 and max; the collector's CPU per span (the polls included, about 1 ms of
CPU each); how many of its 2 cores it used; the rate it accepted (spans answered 200 over
the time until the last answer); refused requests (503).
Results are printed and written to ``bench/results/load.json``.

Run: ``python -m bench.load [--rates 5000,10000,20000] [--seconds 20] [--runs 3]``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.ingest import cpu_seconds, free_port, progress, start_collector
from bench.measure import write_result
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


def offer(rate: int, seconds: float, poll_ms: float, folder: Path) -> dict[str, float]:
    """Offer ``rate`` spans per second for ``seconds`` to a new collector on ``folder``."""
    count = max(1, round(rate * seconds / SPANS_PER_REQUEST))
    bodies = [r.SerializeToString() for r in make_requests(count * 50, traces_per_request=50)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    collector = start_collector(folder, port)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="5000,10000,20000", help="spans/s offered, by commas")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    runs: dict[int, list[dict[str, float]]] = {rate: [] for rate in rates}
    for index in range(1, args.runs + 1):
        for rate in rates:
            progress(f"run {index} of {args.runs}: {rate:,} spans/s for {args.seconds:g} s")
            with tempfile.TemporaryDirectory(prefix="nextrace-bench-") as tmp:
                runs[rate].append(offer(rate, args.seconds, args.poll_ms, Path(tmp) / "store"))
    summary: dict[str, Any] = {}
    print(f"medians of {args.runs} run(s), lowest and highest run in brackets")
    for rate, figures in runs.items():
        summary[str(rate)] = {
            name: {
                "median": statistics.median(f[name] for f in figures),
                "range": [min(f[name] for f in figures), max(f[name] for f in figures)],
            }
            for name in figures[0]
        }
        line = ", ".join(
            f"{name} {value['median']:g} ({value['range'][0]:g}-{value['range'][1]:g})"
            for name, value in summary[str(rate)].items()
        )
        print(f"{rate:>7,} spans/s offered: {line}")
    write_result(
        args.out,
        "load",
        {
            "runs": args.runs,
            "seconds": args.seconds,
            "poll_ms": args.poll_ms,
            "spans_per_request": SPANS_PER_REQUEST,
            "rates": summary,
        },
    )


if __name__ == "__main__":
    main()
