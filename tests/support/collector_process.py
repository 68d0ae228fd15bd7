"""A collector under test as its users run it: its own process (``nextrace collect``) on a
chDB store, a steady sender of spans, and what it answers and stores."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.builders import make_request, make_span
from tests.support.waiting import wait_until

SPANS_PER_REQUEST = 100


PB = {"Content-Type": "application/x-protobuf"}


class Sender:
    """A steady stream of spans with ids 1, 2, 3…; ``acked`` holds those answered 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: set[int] = set()
        self.refused = 0  # answers 503
        self.unknown = 0  # requests whose outcome could not be known
        self._next = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                ids = range(self._next, self._next + SPANS_PER_REQUEST)
                self._next += SPANS_PER_REQUEST
                spans = [
                    make_span("fault", span_id=i.to_bytes(8, "big"), attrs={"cache.layer": "data"})
                    for i in ids
                ]
                self._send(client, make_request(spans).SerializeToString(), ids)
                self._stop.wait(0.01)

    def _send(self, client: httpx.Client, body: bytes, ids: range) -> None:
        for _ in range(2000):
            if self._stop.is_set():
                return
            try:
                answer = client.post(self.url, content=body, headers=PB)
            except httpx.ConnectError:  # nobody listening: the request never arrived
                self._stop.wait(0.05)
                continue
            except httpx.HTTPError:  # it may or may not have arrived: do not count it
                self.unknown += 1
                return
            if answer.status_code == 200:
                self.acked.update(ids)
                return
            assert answer.status_code == 503, answer.text
            self.refused += 1
            self._stop.wait(0.05)

    def wait_for(self, acked: int, timeout_s: float = 120) -> None:
        wait_until(
            lambda: len(self.acked) >= acked,
            f"{acked} spans are acknowledged",
            timeout_s,
            detail=lambda: f"only {len(self.acked)} are",
        )


def start(
    store: Path, port: int, log: Path, *extra: str, prefix: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """A collector on ``store``; its log goes to a file (a full pipe would block it)."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "nextrace.cli",
                "collect",
                "--dsn",
                f"chdb:{store}",
                "--port",
                str(port),
                "--batch-timeout",
                "0.2",
                *extra,
            ],
            stdout=out,
            stderr=out,
        )
    try:
        wait_until(lambda: _answers(process, port, log), "the collector answers /healthz")
    except AssertionError:
        process.kill()
        raise
    return process


def _answers(process: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    """Whether the collector ``process`` answers on ``port``; fails if it has ended."""
    assert process.poll() is None, f"collector exited:\n{log.read_text()[-3000:]}"
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(120) == 0


def stored(port: int, sql: str) -> list[list[str]]:
    answer = httpx.post(
        f"http://127.0.0.1:{port}/sql", json={"query": sql, "format": "TSV"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return [line.split("\t") for line in answer.text.splitlines()]


def assert_exactly_once(port: int, acked: set[int], run: str = "", log: Path | None = None) -> None:
    """Every acknowledged span stored once; ``run`` (a seed) goes into any failure message,
    and so does the end of the collector's ``log``, which says what its inserts met."""
    said = f"\n{run}\ncollector log:\n{log.read_text()[-6000:]}" if log is not None else run
    ids = {int(row[0], 16) for row in stored(port, "SELECT SpanId FROM otel_traces")}
    missing = acked - ids
    assert not missing, (
        f"{len(missing)} acknowledged spans missing, e.g. {sorted(missing)[:5]}{said}"
    )
    [[spans, distinct, events, minutes]] = stored(
        port,
        "SELECT count(), uniqExact(SpanId), (SELECT count() FROM cache_events), "
        "(SELECT sum(Lookups) FROM cache_events_1m) FROM otel_traces",
    )
    assert spans == distinct, f"{int(spans) - int(distinct)} spans stored twice{said}"
    assert events == spans, f"cache_events rows doubled or lost: {events} for {spans}{said}"
    assert minutes == spans, f"per-minute sums doubled or lost: {minutes} for {spans}{said}"


def health(port: int, token: str | None = None) -> httpx.Response:
    """The answer of the collector on ``port`` to ``/healthz`` (with ``token``, if it has
    one). The timeout is generous: a test asks whether it answers and what, never how fast."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"http://127.0.0.1:{port}/healthz", headers=headers, timeout=30)
