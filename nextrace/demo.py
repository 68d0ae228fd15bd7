"""``nextrace demo``: collector, reference server and virtual browsers, then the report.

Runs the same commands a user would (``nextrace collect`` and ``nextrace serve``, as child
processes on loopback), drives a scenario with virtual browsers from this process, stops
everything so that every span is flushed and committed, and then answers an SRE's questions
from the stored spans. Child processes are always stopped, even on Ctrl-C or an error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from collector.config import StoreConfig
from contract.errors import NextraceError
from dashboards.files import write as write_grafana
from instrumented_server.definition import AppDefinition, dump_definition, load_definition
from instrumented_server.payloads import BROWSER_SERVICE
from investigate.report import Report
from investigate.report_html import report_and_page
from investigate.stores import DEMO_WORKDIR
from nextrace.listen import ListenError, bind_socket
from traffic.real_browser import browse_with_chromium
from traffic.router_cache import STALE_TIMES
from traffic.scenarios import SCENARIOS, Scenario, ScenarioRun, run_scenario

Say = Callable[[str], None]


class DemoError(NextraceError):
    """The demo cannot run or went wrong; the message says why."""


@dataclass
class DemoResult:
    run_dir: Path
    store_dsn: str
    report: Report
    run: ScenarioRun


def _check_port(host: str, port: int) -> None:
    sock = bind_socket(host, port)
    sock.close()


def _wait_until(check: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, stderr = process.communicate()
            raise DemoError(f"{what} exited at start:\n{stderr.strip()}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError(f"{what} did not start within 90 s")


@contextmanager
def _child(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "nextrace.cli", *args],
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _stop(process: subprocess.Popen[str], sig: int, what: str) -> None:
    """Stop a child gracefully (it flushes on this signal) and check that it did."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"{what} did not stop within 60 s") from exc
    if process.returncode not in (0, -sig, 128 + sig):
        raise DemoError(f"{what} failed ({process.returncode}):\n{stderr.strip()}")


REAL_SESSIONS = 2


@contextmanager
def _real_sessions(
    browser: str | None, origin: str, scenario: Scenario, speed: float, run_dir: Path, say: Say
) -> Iterator[None]:
    """Real Chromium sessions on ``origin`` for as long as the scenario runs, if asked."""
    if browser is None:
        yield
        return
    until = time.monotonic() + scenario.duration_s / speed
    with concurrent.futures.ThreadPoolExecutor(REAL_SESSIONS) as pool:
        sessions = [
            pool.submit(
                browse_with_chromium,
                origin,
                "/",
                until,
                run_dir / f"chromium-{index}",
                random.Random(index),
                think_time_s=scenario.think_time_s / speed,
            )
            for index in range(REAL_SESSIONS)
        ]
        say(f"  {REAL_SESSIONS} Chromium sessions browsing {origin}")
        yield
        for session in sessions:
            done = session.result()
            say(f"  a Chromium session: {done.navigations} navigations, {done.backs} back")


def run_demo(
    scenario_name: str = "deploy",
    *,
    workdir: Path = DEMO_WORKDIR,
    speed: float = 1.0,
    collector_port: int = 4318,
    server_port: int = 3000,
    next_version: str = "15",
    dsn: str | None = None,
    browser: str | None = None,
    say: Say = print,
) -> DemoResult:
    """Run ``scenario_name`` against a collector and the reference server started here, then
    report on the store: a new embedded one in the run's folder, or the one ``dsn`` names
    (a ClickHouse server, whose Grafana then shows the run). With ``browser="chromium"``,
    :data:`REAL_SESSIONS` headless Chromium sessions browse the pages beside the virtual
    browsers (``traffic/real_browser.py``)."""
    if not speed > 0:
        raise DemoError(f"speed must be positive, not {speed}")
    if scenario_name not in SCENARIOS:
        raise DemoError(f"unknown scenario {scenario_name!r}: choose from {sorted(SCENARIOS)}")
    if browser not in (None, "chromium"):
        raise DemoError(f"unknown browser {browser!r}: the demo drives chromium")
    if next_version not in STALE_TIMES:
        raise DemoError(
            f"unknown Next.js version {next_version!r}: choose from {sorted(STALE_TIMES)}"
        )
    scenario = replace(SCENARIOS[scenario_name], next_version=next_version)
    given = StoreConfig.from_dsn(dsn) if dsn else None  # a wrong DSN fails before anything runs
    try:
        _check_port("127.0.0.1", collector_port)
        _check_port("127.0.0.1", server_port)
    except ListenError as exc:
        raise DemoError(str(exc)) from exc

    run_dir = (workdir / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario.name}").resolve()
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise DemoError(f"cannot create the run folder {run_dir}: {exc.strerror}") from exc
    store_dsn = dsn or f"chdb://{run_dir / 'store'}"
    store = given or StoreConfig.from_dsn(store_dsn)
    app_file = run_dir / "app.json"
    definition = scenario.app(load_definition())
    dump_definition(definition, app_file)
    collector_url = f"http://127.0.0.1:{collector_port}"
    server_url = f"http://127.0.0.1:{server_port}"

    say(
        f"nextrace demo: scenario '{scenario.name}' ({scenario.description}), "
        f"{scenario.duration_s / speed:.0f} s; files in {run_dir}"
    )
    # Real browsers send their spans to the collector, from the server's pages' origin.
    origins = ["--browser-origin", server_url] if browser else []
    with _child(
        ["collect", "--port", str(collector_port), "--batch-timeout", "0.5", *origins],
        run_dir,
        env={"NEXTRACE_DSN": store_dsn},  # not on the command line: it may hold a password
    ) as collector:
        _wait_until(
            lambda: httpx.get(f"{collector_url}/healthz").status_code == 200,
            collector,
            "the collector",
        )
        say(f"  collector on {collector_url}, {store.describe()}")
        with _child(
            [
                "serve",
                "--app",
                str(app_file),
                "--port",
                str(server_port),
                "--collector",
                collector_url,
                "--next-version",
                next_version,
            ],
            run_dir,
        ) as server:
            _wait_until(
                lambda: httpx.get(f"{server_url}/favicon.ico").status_code == 200,
                server,
                "the reference server",
            )
            say(f"  reference server on {server_url}")
            with _real_sessions(browser, server_url, scenario, speed, run_dir, say):
                run = _browse(scenario, definition, server_url, collector_url, speed, say)
            dropped_by_server = server_spans_dropped(server_url)
            _stop(server, signal.SIGINT, "the reference server")  # flushes its spans
        _wait_for_commit(collector_url)
        _stop(collector, signal.SIGTERM, "the collector")  # flushes and commits the rest
    say("  all spans committed; querying the store")
    report, page = report_and_page(store, scenario.name, dropped_by_server)
    (run_dir / "report.txt").write_text(report.render(), encoding="utf-8")
    (run_dir / "report.html").write_text(page, encoding="utf-8")
    write_grafana(run_dir / "grafana")
    return DemoResult(run_dir, store_dsn, report, run)


def _browse(
    scenario: Scenario,
    definition: AppDefinition,
    server_url: str,
    collector_url: str,
    speed: float,
    say: Say,
) -> ScenarioRun:
    provider = TracerProvider(resource=Resource.create({"service.name": BROWSER_SERVICE}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector_url}/v1/traces"))
    )

    def progress(elapsed: float, run: ScenarioRun) -> None:
        b = run.budget
        events = f", events so far: {len(run.events)}" if scenario.events else ""
        say(
            f"  {elapsed:5.1f} s: {b.navigations} navigations, {b.prefetches} prefetches, "
            f"{b.requests} requests{events}"
        )

    try:
        run = asyncio.run(
            run_scenario(
                scenario,
                server_url,
                definition,
                provider.get_tracer("nextrace.browser"),
                speed=speed,
                progress=progress,
            )
        )
    finally:
        provider.shutdown()  # flushes the browsers' spans to the collector
    return run


def server_spans_dropped(server_url: str) -> dict[str, int | None]:
    """What the reference server's ``/healthz`` says its OpenTelemetry SDK dropped so far."""
    try:
        dropped: dict[str, int | None] = httpx.get(f"{server_url}/healthz").json()["spans_dropped"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise DemoError(
            f"the reference server's /healthz did not say what its SDK dropped ({exc!r}): "
            "run the demo again"
        ) from exc
    return dropped


def _wait_for_commit(collector_url: str) -> None:
    """Wait until the collector has nothing left in its queue."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = httpx.get(f"{collector_url}/healthz").json()
        if not health["queue_spans"]:
            return
        time.sleep(0.2)
    raise DemoError("the collector did not commit its queue within 60 s")
