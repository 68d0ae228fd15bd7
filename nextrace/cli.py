"""The ``nextrace`` command line: the one place where the packages are wired together.

Every command fails in one line: errors that nextrace raises on purpose
(:class:`contract.errors.NextraceError`) and the operating system's (a port, a
folder) print their message; anything else is a bug, and prints one line that
says how to see the traceback (``NEXTRACE_DEBUG=1``). Defaults come from the
configuration objects, so the help and the library agree.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import sys
from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer

from collector.config import (
    DEFAULT_DSN,
    BatchSettings,
    CollectorConfig,
    NextjsSettings,
    RetryPolicy,
    StoreConfig,
    WalSettings,
)
from contract.errors import NextraceError
from investigate.stores import DEMO_WORKDIR, store_to_read

VERSION = "0.1.0"
QUIET_LIBRARIES = ("httpx", "httpcore", "matplotlib")
MIB = 1024 * 1024


class ScenarioName(StrEnum):
    """The demo's scenarios (``traffic.scenarios.SCENARIOS``; a test keeps the two equal)."""

    steady = "steady"
    deploy = "deploy"
    webhook_flood = "webhook-flood"
    prefetch_storm = "prefetch-storm"
    prefetch_release = "prefetch-release"
    instances = "instances"


class NextVersion(StrEnum):
    """Next.js versions whose client router stale times the virtual browsers know
    (``instrumented_server.stale_times.STALE_TIMES``)."""

    v14 = "14"
    v15 = "15"
    v16 = "16"


class RealBrowser(StrEnum):
    """Real browsers the demo can drive."""

    chromium = "chromium"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class FsyncChoice(StrEnum):
    always = "always"
    interval = "interval"
    never = "never"


app = typer.Typer(
    help="OTLP collector, ClickHouse store and dashboards for Next.js request lifecycles.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

DsnOption = Annotated[
    str,
    typer.Option(
        "--dsn",
        envvar="NEXTRACE_DSN",
        help="Store: chdb:FOLDER (embedded ClickHouse) or http(s)://host:port[?database=NAME].",
    ),
]
PortOption = Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")]
HostOption = Annotated[str, typer.Option(help="Address to listen on.")]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        envvar="NEXTRACE_TOKEN_FILE",
        help="File holding the bearer token every request must carry "
        "(or set NEXTRACE_TOKEN). Required to listen beyond loopback.",
    ),
]
AllowUnauthenticatedOption = Annotated[
    bool,
    typer.Option(help="Listen beyond loopback without a token (only behind a boundary)."),
]
AllowedHostOption = Annotated[
    list[str] | None,
    typer.Option(
        help="A name clients may address this server by in Host, besides localhost and "
        "IP addresses (repeat for each; * for any). Default: the --host name; on 0.0.0.0, "
        "any name with a token, none without.",
    ),
]
TlsCertOption = Annotated[Path | None, typer.Option(help="PEM certificate: serve HTTPS.")]
TlsKeyOption = Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")]


COLLECT: dict[str, Any] = {f.name: f.default for f in fields(CollectorConfig)}
"""The defaults of :class:`CollectorConfig`, so that ``collect`` never repeats a literal (with
those of its parts' settings below)."""
BATCH, NEXTJS, WAL, RETRY = BatchSettings(), NextjsSettings(), WalSettings(), RetryPolicy()
DEFAULT_FSYNC = FsyncChoice(WAL.fsync)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nextrace {VERSION}")
        raise typer.Exit()


@app.callback()
def main_options(
    log_level: Annotated[
        LogLevel,
        typer.Option(
            envvar="NEXTRACE_LOG_LEVEL", help="How much the collector and the server log."
        ),
    ] = LogLevel.info,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log only warnings and errors.")
    ] = False,
    version: Annotated[  # noqa: ARG001 (read by its eager callback)
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """OTLP collector, ClickHouse store and dashboards for Next.js request lifecycles."""
    level = logging.WARNING if quiet else getattr(logging, log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level > logging.DEBUG:  # a line per HTTP request or font cache is noise to a user
        for library in QUIET_LIBRARIES:
            logging.getLogger(library).setLevel(logging.WARNING)


def _self_command() -> str:
    """How the user can run nextrace again from their shell, to paste into hints."""
    here = Path(sys.argv[0])
    found = shutil.which("nextrace")
    if here.name == "nextrace":
        if found and Path(found).resolve() == here.resolve():
            return "nextrace"
        return shlex.quote(str(here.resolve()))
    return f"{shlex.quote(sys.executable)} -m nextrace.cli"


def browser_note(origins: tuple[str, ...]) -> str:
    """What the start-up line says of the browser endpoint."""
    if not origins:
        return ""
    return f"browser spans from {', '.join(origins)} on /v1/browser/traces, "


@app.command()
def collect(
    dsn: DsnOption = DEFAULT_DSN,
    host: HostOption = COLLECT["host"],
    port: PortOption = COLLECT["port"],
    max_body_mb: Annotated[float, typer.Option(help="Largest accepted request body.")] = (
        COLLECT["max_body_bytes"] / MIB
    ),
    batch_spans: Annotated[
        int, typer.Option(help="Spans per ClickHouse insert.")
    ] = BATCH.max_spans,
    batch_timeout: Annotated[
        float, typer.Option(help="Seconds before a partial batch is sent.")
    ] = BATCH.timeout_s,
    staged_insert: Annotated[
        bool,
        typer.Option(
            help="Let ClickHouse read the OTLP bodies (1.7-1.9x the spans per CPU-second); "
            "--no-staged-insert builds every row in Python."
        ),
    ] = COLLECT["staged_insert"],
    queue_spans: Annotated[
        int, typer.Option(help="Spans buffered before answering 503.")
    ] = BATCH.max_queue_spans,
    ttl_days: Annotated[int, typer.Option(help="Drop spans older than this (0 keeps all).")] = 0,
    nextjs_wait: Annotated[
        float,
        typer.Option(help="Seconds a Next.js trace must be idle before it is normalized."),
    ] = NEXTJS.wait_s,
    nextjs_late_window: Annotated[
        float,
        typer.Option(
            help="Seconds after normalizing a Next.js trace during which late spans of it "
            "correct its rows (0: never)."
        ),
    ] = NEXTJS.late_window_s,
    nextjs_max_hold: Annotated[
        float,
        typer.Option(
            help="Seconds after which a Next.js trace whose spans keep arriving is normalized "
            "anyway (its later spans correct its rows), so that it holds the write-ahead log "
            "no longer."
        ),
    ] = NEXTJS.max_hold_s,
    cluster: Annotated[str, typer.Option(help="ClickHouse cluster for ON CLUSTER DDL.")] = "",
    token_file: TokenFileOption = None,
    allow_unauthenticated: AllowUnauthenticatedOption = False,
    allowed_host: AllowedHostOption = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    wal: Annotated[
        bool, typer.Option(help="Write each accepted request to disk before answering 200.")
    ] = WAL.enabled,
    wal_dir: Annotated[
        Path | None, typer.Option(help="Write-ahead log folder (default: beside the store).")
    ] = None,
    wal_max_mb: Annotated[
        float, typer.Option(help="Write-ahead log size; when full, senders get 503.")
    ] = WAL.max_bytes / MIB,
    wal_fsync: Annotated[
        FsyncChoice,
        typer.Option(help="always (survives power loss), interval or never (survive kill -9)."),
    ] = DEFAULT_FSYNC,
    retry_max_elapsed: Annotated[
        float, typer.Option(help="Seconds a failing store is retried before spans are dropped.")
    ] = RETRY.max_elapsed_s,
    memory_mb: Annotated[
        float, typer.Option(help="Request bytes in flight and queued before answering 503.")
    ] = COLLECT["memory_max_bytes"] / MIB,
    max_connections: Annotated[
        int, typer.Option(help="Concurrent connections; beyond them the answer is 503.")
    ] = COLLECT["max_connections"],
    max_pending_connections: Annotated[
        int,
        typer.Option(
            help="Connections that have not shown a credential yet; beyond them the oldest "
            "such connection is closed."
        ),
    ] = COLLECT["max_pending_connections"],
    max_pending_per_address: Annotated[
        int,
        typer.Option(
            help="Of those, from one address (an IPv6 /64). Behind a proxy, every sender has "
            "its address: raise it there."
        ),
    ] = COLLECT["max_pending_per_address"],
    read_timeout: Annotated[
        float, typer.Option(help="Seconds a request's headers, then its body, may take.")
    ] = COLLECT["read_timeout_s"],
    browser_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="Origin whose pages may send spans to /v1/browser/traces, for example "
            "https://shop.example.com, or https://*.shop-preview.example.com for preview "
            "deployments (repeat for each; none: the endpoint is off). "
            "NEXTRACE_BROWSER_KEY, if set, is the public key they must send as ?key=."
        ),
    ] = None,
    browser_rate: Annotated[
        float, typer.Option(help="Browser requests a second per origin (twice that at once).")
    ] = COLLECT["browser_rate"],
    cdn_max_body_mb: Annotated[
        float,
        typer.Option(
            help="Largest CDN log delivery, decompressed; set the vendor's batch size below it "
            "(Logpush: max_upload_bytes)."
        ),
    ] = COLLECT["cdn_max_body_bytes"] / MIB,
) -> None:
    """Receive OTLP/HTTP traces on /v1/traces and store them in ClickHouse.

    With NEXTRACE_VERCEL_DRAIN_SECRET set, Vercel Log Drains deliveries signed with it are
    read on /v1/cdn/vercel (NEXTRACE_VERCEL_VERIFY: the code Vercel checks the endpoint with);
    with NEXTRACE_CLOUDFLARE_LOGPUSH_TOKEN, Cloudflare Logpush deliveries bearing it, on
    /v1/cdn/cloudflare.
    """
    from collector.ingest.browser import BROWSER_KEY_ENV
    from collector.ingest.cloudflare_logpush import CLOUDFLARE_TOKEN_ENV
    from collector.ingest.vercel_drain import VERCEL_SECRET_ENV, VERCEL_VERIFY_ENV
    from collector.service import Collector
    from nextrace.listen import bind_socket

    config = CollectorConfig(
        store=StoreConfig.from_dsn(dsn, ttl_days=ttl_days, cluster=cluster),
        **_listening(
            host, port, token_file, allow_unauthenticated, allowed_host, tls_cert, tls_key
        ),
        wal=WalSettings(
            enabled=wal,
            directory=wal_dir,
            max_bytes=int(wal_max_mb * MIB),
            fsync=wal_fsync.value,
        ),
        retry=RetryPolicy(max_elapsed_s=retry_max_elapsed),
        memory_max_bytes=int(memory_mb * MIB),
        max_connections=max_connections,
        max_pending_connections=max_pending_connections,
        max_pending_per_address=max_pending_per_address,
        read_timeout_s=read_timeout,
        max_body_bytes=int(max_body_mb * MIB),
        batch=BatchSettings(
            max_spans=batch_spans, timeout_s=batch_timeout, max_queue_spans=queue_spans
        ),
        staged_insert=staged_insert,
        nextjs=NextjsSettings(
            wait_s=nextjs_wait, late_window_s=nextjs_late_window, max_hold_s=nextjs_max_hold
        ),
        browser_origins=tuple(browser_origin or ()),
        browser_key=os.environ.get(BROWSER_KEY_ENV) or None,
        browser_rate=browser_rate,
        vercel_drain_secret=os.environ.get(VERCEL_SECRET_ENV) or None,
        vercel_verify=os.environ.get(VERCEL_VERIFY_ENV) or None,
        cloudflare_logpush_token=os.environ.get(CLOUDFLARE_TOKEN_ENV) or None,
        cdn_max_body_bytes=int(cdn_max_body_mb * MIB),
    )
    from investigate.pages import store_pages

    sock = bind_socket(host, port)
    collector = Collector(config, pages=store_pages)
    try:
        collector.start(replay_in_background=True)  # /healthz answers while it replays
    except BaseException:
        sock.close()
        raise
    scheme = "https" if tls_cert else "http"
    typer.echo(
        f"nextrace collector: OTLP/HTTP on {scheme}://{host}:{sock.getsockname()[1]}/v1/traces"
        f"{' (bearer token required)' if config.token else ''}, "
        f"{browser_note(config.browser_origins)}"
        f"{'Vercel Log Drains on /v1/cdn/vercel, ' if config.vercel_drain_secret else ''}"
        f"{'Cloudflare Logpush on /v1/cdn/cloudflare, ' if config.cloudflare_logpush_token else ''}"
        f"storing to {config.store.describe()}. Ctrl-C stops it after flushing.",
        err=True,
    )
    collector.serve(sock)


def _listening(
    host: str,
    port: int,
    token_file: Path | None,
    allow_unauthenticated: bool,
    allowed_host: list[str] | None,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> dict[str, Any]:
    """The :class:`CollectorConfig` fields of where a server listens and whom it answers, from
    the options every serving command shares."""
    from collector.ingest.auth import load_token

    return {
        "host": host,
        "port": port,
        "token": load_token(token_file),
        "allow_unauthenticated": allow_unauthenticated,
        "allowed_hosts": tuple(allowed_host or ()),
        "tls_cert": tls_cert,
        "tls_key": tls_key,
    }


SERVE_UI_PORT = 4320


@app.command("serve-ui")
def serve_ui(
    dsn: DsnOption = DEFAULT_DSN,
    host: HostOption = COLLECT["host"],
    port: PortOption = SERVE_UI_PORT,
    token_file: TokenFileOption = None,
    allow_unauthenticated: AllowUnauthenticatedOption = False,
    allowed_host: AllowedHostOption = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
) -> None:
    """Serve the trace pages (/trace/ID, /slow) and /sql of a store, without ingesting: for a
    ClickHouse server that collectors elsewhere write to. Read-only; never migrates the store.
    """
    from collector.http_server import url_of
    from collector.read_only import ReadOnlyService
    from investigate.pages import store_pages
    from nextrace.listen import bind_socket

    config = CollectorConfig(
        store=_store_to_read(dsn),
        **_listening(
            host, port, token_file, allow_unauthenticated, allowed_host, tls_cert, tls_key
        ),
    )
    service = ReadOnlyService(config, pages=store_pages)
    service.start()
    try:
        sock = bind_socket(host, port)
    except BaseException:
        service.shutdown()
        raise
    url = url_of(sock, config)
    typer.echo(
        f"nextrace serve-ui: the pages of the {config.store.describe()} on {url}/slow and "
        f"{url}/trace/ID{' (bearer token required)' if config.token else ''}, read-only. "
        "Ctrl-C stops it.",
        err=True,
    )
    service.serve(sock)


@app.command(
    # A query may start with "--" (an SQL comment): it is the argument, not an option.
    context_settings={"ignore_unknown_options": True},
)
def sql(
    query: Annotated[
        str,
        typer.Argument(help="One reading statement (SELECT, SHOW, …); - or none reads stdin."),
    ] = "-",
    dsn: DsnOption = DEFAULT_DSN,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="Any ClickHouse output format (a FORMAT clause in the query wins)."
        ),
    ] = "PrettyCompact",
) -> None:
    """Run a read-only query on the store, through the running collector if it holds it."""
    from collector.admin.query import run_read_query

    if query == "-":
        if sys.stdin.isatty():
            raise NextraceError("no query: pass one as the argument, or pipe it on stdin")
        query = sys.stdin.read()
    result = run_read_query(_store_to_read(dsn), query, fmt)
    if not result:
        typer.echo("0 rows", err=True)
        return
    sys.stdout.buffer.write(result)
    sys.stdout.flush()


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="text for people, json for tools.")
]


def _store_to_read(dsn: str) -> StoreConfig:
    """The store a reading command reads (:func:`investigate.stores.store_to_read`)."""
    return store_to_read(dsn, say=lambda line: typer.echo(line, err=True))


@app.command()
def trace(
    trace_id: Annotated[str, typer.Argument(help="The trace's id (32 hexadecimal digits).")],
    dsn: DsnOption = DEFAULT_DSN,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """Show one trace as a waterfall: its spans, critical path, cause, and uncovered time."""
    from investigate.diagnosis import diagnose_stored
    from investigate.reader import open_reader
    from investigate.spans import check_trace_id
    from investigate.waterfall import as_json, render_text

    trace_id = check_trace_id(trace_id)
    with open_reader(_store_to_read(dsn)) as reader:
        diagnosis = diagnose_stored(reader, trace_id)
    _emit(as_json(diagnosis) if fmt == OutputFormat.json else render_text(diagnosis))


@app.command()
def slow(
    dsn: DsnOption = DEFAULT_DSN,
    route: Annotated[str, typer.Option(help="Only this route, e.g. /products/[id].")] = "",
    service: Annotated[str, typer.Option(help="Only this service (browser or server).")] = "",
    build: Annotated[str, typer.Option(help="Only navigations served by this build.")] = "",
    since: Annotated[
        str, typer.Option(help="Only the last 90s, 15m, 2h, 7d, … (default: all stored).")
    ] = "",
    kind: Annotated[
        str, typer.Option(help="Only this kind: document, soft, back, forward, traverse, api.")
    ] = "",
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many to show.")] = 10,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """List the slowest navigations and API requests, each with one line of cause and the parts
    of its time."""
    from investigate import slow as slowest
    from investigate.reader import open_reader

    filters = slowest.Filters(
        route=route,
        service=service,
        build=build,
        kind=kind,
        since_ns=slowest.since_ns(since) if since else 0,
        limit=limit,
    )
    with open_reader(_store_to_read(dsn)) as reader:
        found = slowest.slowest(reader, filters)
    _emit(slowest.as_json(found) if fmt == OutputFormat.json else slowest.render_text(found))


REPORT_PAGE = Path("report.html")


@app.command()
def report(
    dsn: DsnOption = DEFAULT_DSN,
    out: Annotated[
        Path | None,
        typer.Option(
            show_default=False,
            help="Where to write the plots (one self-contained HTML file). [default: "
            f"{REPORT_PAGE}; with --format json, none unless given]",
        ),
    ] = None,
    scenario: Annotated[str, typer.Option(help="A name for the run, in the header.")] = "",
    since: Annotated[
        str,
        typer.Option(
            help="From this time: ISO (2026-05-01T12:00:00Z; UTC unless it gives its offset) "
            "or back from now (90s, 15m, 2h, 7d). [default: the first span]",
            show_default=False,
        ),
    ] = "",
    until: Annotated[
        str,
        typer.Option(
            help="Up to this time, given as --since is. [default: the last span]",
            show_default=False,
        ),
    ] = "",
    slowest: Annotated[
        int, typer.Option(min=1, max=100, help="How many slowest navigations to list.")
    ] = 5,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """Print the report of a store (cache, deploys, prefetches, latency, slowest navigations)
    and write it with its plots to report.html. Without spans of the reference server's
    browsers (a real app's store), it reads the server's own rows, as the dashboards do."""
    from investigate.report import window

    asked = window(since, until)
    config = _store_to_read(dsn)
    if fmt == OutputFormat.json and out is None:
        from investigate.reader import open_reader
        from investigate.report import build_report

        with open_reader(config) as reader:
            found = build_report(reader, slowest=slowest, scenario=scenario, window=asked)
        _emit(found.as_json())
        return
    from investigate.report_html import report_and_page

    found, page = report_and_page(config, scenario, window=asked, slowest=slowest)
    page_file = out or REPORT_PAGE
    page_file.write_text(page, encoding="utf-8")
    _emit(found.as_json() if fmt == OutputFormat.json else found.render())
    typer.echo(f"Plots: {page_file}", err=True)


@app.command()
def compare(
    slow_trace: Annotated[str, typer.Argument(metavar="SLOW", help="The slow trace's id.")],
    fast_trace: Annotated[
        str | None,
        typer.Argument(
            metavar="[FAST]",
            help="A fast trace's id (default: a typical fast one of the same route and kind).",
        ),
    ] = None,
    dsn: DsnOption = DEFAULT_DSN,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """Align two traces span by span: time deltas and every difference in cache outcome."""
    from investigate import compare as comparing
    from investigate.diagnosis import diagnose_stored
    from investigate.reader import open_reader
    from investigate.spans import check_trace_id

    slow_id = check_trace_id(slow_trace)
    fast_id = check_trace_id(fast_trace) if fast_trace else None
    with open_reader(_store_to_read(dsn)) as reader:
        slow_one = diagnose_stored(reader, slow_id)
        fast_id = fast_id or comparing.typical_peer(reader, slow_one.trace)
        result = comparing.compare(slow_one, diagnose_stored(reader, fast_id))
    _emit(comparing.as_json(result) if fmt == OutputFormat.json else comparing.render_text(result))


def _emit(result: str | dict[str, Any] | list[Any]) -> None:
    import json

    typer.echo(result if isinstance(result, str) else json.dumps(result, indent=2), nl=False)
    if not isinstance(result, str):
        typer.echo()


@app.command()
def serve(
    app_file: Annotated[
        Path | None, typer.Option("--app", help="App definition (TOML); default: the shop demo.")
    ] = None,
    collector: Annotated[
        str, typer.Option(envvar="NEXTRACE_COLLECTOR", help="OTLP/HTTP collector to export to.")
    ] = f"http://{COLLECT['host']}:{COLLECT['port']}",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: PortOption = 3000,
    browser_collector: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="The collector as browsers reach it, for the pages' navigation and prefetch "
            "spans (it must allow this server's origin: collect --browser-origin). "
            "[default: --collector]",
        ),
    ] = None,
    next_version: Annotated[
        NextVersion,
        typer.Option(help="Client router stale times the pages keep, of this Next.js version."),
    ] = NextVersion.v15,
) -> None:
    """Run the reference Next.js-lifecycle server, exporting its spans over OTLP/HTTP."""
    import httpx
    import uvicorn

    from collector.config import is_loopback_host
    from instrumented_server.app import build_app
    from instrumented_server.definition import PUBLISHED_SECRET, DefinitionError, load_definition
    from instrumented_server.state import ServerState
    from nextrace.listen import bind_socket

    definition = load_definition(app_file)
    secret = os.environ.get("NEXTRACE_REVALIDATE_SECRET")
    if secret:
        definition = definition.model_copy(update={"revalidate_secret": secret})
    if definition.revalidate_secret == PUBLISHED_SECRET and not is_loopback_host(host):
        raise DefinitionError(
            f"refusing to serve on {host} with the published revalidation secret: set "
            "NEXTRACE_REVALIDATE_SECRET or revalidate_secret in your app definition"
        )
    sock = bind_socket(host, port)
    try:
        httpx.get(f"{collector}/healthz", timeout=2)
    except httpx.HTTPError:
        typer.secho(
            f"warning: no collector answers at {collector}: spans are lost until one does "
            f"(start one with `{_self_command()} collect`)",
            fg=typer.colors.YELLOW,
            err=True,
        )
    browser_endpoint = f"{(browser_collector or collector).rstrip('/')}/v1/browser/traces"
    state = ServerState.create(
        definition,
        collector_url=collector,
        browser_endpoint=browser_endpoint,
        next_version=next_version.value,
    )
    typer.echo(
        f"nextrace reference server '{definition.name}' on http://{host}:{sock.getsockname()[1]}, "
        f"exporting spans to {collector}/v1/traces. Ctrl-C stops it.",
        err=True,
    )
    server = uvicorn.Server(uvicorn.Config(build_app(state), log_level="warning"))
    # uvicorn re-raises Ctrl-C after its graceful shutdown, which flushed every span.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


def _interrupt_on_sigterm(_signum: int, _frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt  # the same clean path as Ctrl-C: children stopped, exit 130


@app.command()
def demo(
    scenario: Annotated[
        ScenarioName, typer.Option(help="Which traffic scenario to run.")
    ] = ScenarioName.deploy,
    speed: Annotated[
        float, typer.Option(min=0.01, help="Run the timeline this many times faster.")
    ] = 1.0,
    workdir: Annotated[
        Path, typer.Option(help="Where each run's store and report go.")
    ] = DEMO_WORKDIR,
    collector_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the demo's collector.")
    ] = 4318,
    server_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the demo's server.")
    ] = 3000,
    next_version: Annotated[
        NextVersion, typer.Option(help="Client router stale times of this Next.js version.")
    ] = NextVersion.v15,
    dsn: Annotated[
        str | None,
        typer.Option(
            envvar="NEXTRACE_DSN",
            show_default=False,
            help="Store the run in this ClickHouse (http(s)://user:password@host:port"
            "[?database=NAME]), whose Grafana then shows it. [default: a new embedded store "
            "in the run's folder]",
        ),
    ] = None,
    browser: Annotated[
        RealBrowser | None,
        typer.Option(
            show_default=False,
            help="Also browse the pages with real headless browsers (Debian's chromium), "
            "beside the virtual ones.",
        ),
    ] = None,
) -> None:
    """Run a traffic scenario end to end on an embedded store (or --dsn), then report what
    happened."""
    from nextrace.demo import run_demo

    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        result = run_demo(
            scenario.value,
            workdir=workdir,
            speed=speed,
            collector_port=collector_port,
            server_port=server_port,
            next_version=next_version.value,
            dsn=dsn,
            browser=browser.value if browser else None,
            say=lambda line: typer.echo(line, err=True),
        )
    except KeyboardInterrupt:
        typer.secho("interrupted: the collector and the server were stopped", err=True)
        raise typer.Exit(code=130) from None
    typer.echo(result.report.render())
    typer.echo(f"Plots: {result.run_dir / 'report.html'} (open it in a browser)")
    typer.echo(
        f"Report: {result.run_dir / 'report.txt'}\n"
        f"Grafana dashboards and provisioning: {result.run_dir / 'grafana'}\n"
        + demo_suggestions(result.store_dsn, [n.trace_id for n in result.report.slowest])
    )


def demo_suggestions(store_dsn: str, slowest: list[str]) -> str:
    """The commands the demo suggests, to paste as they are: each names the run's store with
    --dsn (a later demo run, or a `nextrace collect`, would otherwise be read), except a
    server's, whose DSN holds its password and is read through NEXTRACE_DSN."""
    query = "SELECT SpanName, count() FROM otel_traces GROUP BY ALL ORDER BY 2 DESC LIMIT 20"
    store = StoreConfig.from_dsn(store_dsn)
    embedded = store.interface == "chdb"
    where = f" --dsn {shlex.quote(store_dsn)}" if embedded else ""
    me = _self_command()
    lines = [
        f"Spans: {store.describe()}; query them with",
        f"  {me} sql{where} {shlex.quote(query)}",
        "The slowest navigations, each with its cause"
        + (", and the slowest as a waterfall:" if slowest else ":"),
        f"  {me} slow{where}",
    ]
    if slowest:
        lines.append(f"  {me} trace{where} {slowest[0]}")
    if not embedded:
        lines.append("(with NEXTRACE_DSN set to the store's DSN, as the demo was given it)")
    return "\n".join(lines)


dashboards_app = typer.Typer(
    help="Grafana dashboards kept as code.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(dashboards_app, name="dashboards")


Database = Annotated[
    str, typer.Option("--clickhouse-database", help="The database nextrace's tables are in.")
]


class ClickHouseProtocol(StrEnum):
    """How Grafana's ClickHouse plugin talks to ClickHouse."""

    http = "http"
    native = "native"


Protocol = Annotated[
    ClickHouseProtocol,
    typer.Option(
        "--clickhouse-protocol",
        help="How Grafana talks to ClickHouse: its HTTP interface or its native protocol.",
    ),
]
Tls = Annotated[
    bool,
    typer.Option(
        "--clickhouse-tls/--no-clickhouse-tls",
        help="Whether Grafana reaches ClickHouse over TLS (HTTPS, as ClickHouse Cloud needs).",
    ),
]
AlertWebhook = Annotated[
    str,
    typer.Option(
        envvar="NEXTRACE_ALERT_WEBHOOK",
        help="Where nextrace's contact point posts alerts. Without it, no contact point and "
        "no route are made, and alerts follow the organisation's own policies.",
    ),
]
RunbookUrl = Annotated[
    str,
    typer.Option(
        envvar="NEXTRACE_RUNBOOK_URL",
        help="Where docs/runbook.md is published; each rule links to its section there.",
    ),
]
PagesUrl = Annotated[
    str,
    typer.Option(
        envvar="NEXTRACE_PAGES_URL",
        help="Where users reach nextrace collect's pages (/trace, /slow): the dashboards' "
        "trace ids and routes, and each alert, link there. [default: http://127.0.0.1:4318]",
    ),
]


@dashboards_app.command("build")
def dashboards_build(
    out: Annotated[Path, typer.Option(help="Folder for dashboards/ and provisioning/.")] = Path(
        "grafana"
    ),
    clickhouse_database: Database = "otel",
    clickhouse_protocol: Protocol = ClickHouseProtocol.http,
    clickhouse_tls: Tls = False,
    alert_webhook: AlertWebhook = "",
    runbook_url: RunbookUrl = "",
    pages_url: PagesUrl = "",
) -> None:
    """Write the dashboards as Grafana JSON, with Grafana's provisioning files.

    The datasource file reads the ClickHouse host, port, user and password from Grafana's
    environment ($CLICKHOUSE_HOST, $CLICKHOUSE_PORT, $CLICKHOUSE_USER, $CLICKHOUSE_PASSWORD).
    """
    from dashboards.datasource import protocol_named
    from dashboards.files import file_access, write

    protocol = protocol_named(clickhouse_protocol.value)
    access = file_access(clickhouse_database, protocol, clickhouse_tls)
    for path in write(out, access, alert_webhook, runbook_url, pages_url):
        typer.echo(str(path))


@dashboards_app.command("provision")
def dashboards_provision(
    grafana_url: Annotated[str, typer.Option(help="Grafana's base URL, http(s)://host:port.")],
    token: Annotated[str, typer.Option(envvar="GRAFANA_TOKEN", help="A service-account token.")],
    clickhouse_host: Annotated[str, typer.Option(help="ClickHouse host as Grafana reaches it.")],
    clickhouse_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            show_default=False,
            help="ClickHouse port. [default: 8123 HTTP, 8443 HTTPS, 9000 native, 9440 with TLS]",
        ),
    ] = None,
    clickhouse_user: Annotated[str, typer.Option(help="ClickHouse user for Grafana.")] = "default",
    clickhouse_password: Annotated[
        str, typer.Option(envvar="CLICKHOUSE_PASSWORD", help="Its password.")
    ] = "",
    clickhouse_database: Database = "otel",
    clickhouse_protocol: Protocol = ClickHouseProtocol.http,
    clickhouse_tls: Tls = False,
    clickhouse_ca_cert: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="PEM file of a private CA that signed ClickHouse's."
        ),
    ] = None,
    alert_webhook: AlertWebhook = "",
    runbook_url: RunbookUrl = "",
    pages_url: PagesUrl = "",
) -> None:
    """Create or update the folder, datasource, dashboards and alert rules in a running
    Grafana; with --alert-webhook, a contact point and one route for nextrace's alerts, and
    nothing else of the organisation's policy tree changed."""
    from dashboards.datasource import ClickHouseAccess, default_port, protocol_named
    from dashboards.push import provision

    protocol = protocol_named(clickhouse_protocol.value)
    access = ClickHouseAccess(
        host=clickhouse_host,
        port=clickhouse_port or default_port(protocol, clickhouse_tls),
        username=clickhouse_user,
        password=clickhouse_password,
        database=clickhouse_database,
        protocol=protocol,
        tls=clickhouse_tls,
        ca_cert=clickhouse_ca_cert.read_text("utf-8") if clickhouse_ca_cert else "",
    )
    provision(
        grafana_url, token, access, alert_webhook, runbook_url, say=typer.echo, pages_url=pages_url
    )


def main() -> None:
    """The ``nextrace`` entry point: run a command, and fail in one line, never a traceback."""
    try:
        app()
    except NextraceError as exc:  # its message is written for the user
        _fail(str(exc).strip(), code=2)
    except OSError as exc:  # a folder or a file the user named
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}", code=2)
    except Exception as exc:
        if os.environ.get("NEXTRACE_DEBUG"):
            raise
        first_line = str(exc).strip().partition("\n")[0]
        _fail(
            f"unexpected {type(exc).__name__}: {first_line} (a bug in nextrace: rerun with "
            "NEXTRACE_DEBUG=1 for the traceback, and please report it)",
            code=1,
        )


def _fail(message: str, code: int) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
