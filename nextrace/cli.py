"""The ``nextrace`` command line: the one place where the packages are wired together."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from collector.config import DEFAULT_DSN, CollectorConfig, StoreConfig
from collector.errors import NextraceError
from nextrace.listen import ListenError, bind_socket

if TYPE_CHECKING:
    from collector.wal import FsyncPolicy

app = typer.Typer(
    help="OTLP collector, ClickHouse store and dashboards for Next.js request lifecycles.",
    no_args_is_help=True,
    add_completion=False,
)

DsnOption = Annotated[
    str,
    typer.Option(
        "--dsn",
        envvar="NEXTRACE_DSN",
        help="Store: chdb:FOLDER (embedded ClickHouse) or http(s)://host:port[?database=NAME].",
    ),
]


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def collect(
    dsn: DsnOption = DEFAULT_DSN,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="OTLP/HTTP port.")] = 4318,
    max_body_mb: Annotated[float, typer.Option(help="Largest accepted request body.")] = 16.0,
    batch_spans: Annotated[int, typer.Option(help="Spans per ClickHouse insert.")] = 20_000,
    batch_timeout: Annotated[
        float, typer.Option(help="Seconds before a partial batch is sent.")
    ] = 1.0,
    queue_spans: Annotated[
        int, typer.Option(help="Spans buffered before answering 503.")
    ] = 200_000,
    ttl_days: Annotated[int, typer.Option(help="Drop spans older than this (0 keeps all).")] = 0,
    nextjs_wait: Annotated[
        float,
        typer.Option(help="Seconds a Next.js trace must be idle before it is normalized."),
    ] = 5.0,
    cluster: Annotated[str, typer.Option(help="ClickHouse cluster for ON CLUSTER DDL.")] = "",
    token_file: Annotated[
        Path | None,
        typer.Option(
            envvar="NEXTRACE_TOKEN_FILE",
            help="File holding the bearer token every request must carry "
            "(or set NEXTRACE_TOKEN). Required to listen beyond loopback.",
        ),
    ] = None,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(help="Listen beyond loopback without a token (only behind a boundary)."),
    ] = False,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate: serve HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    wal: Annotated[
        bool, typer.Option(help="Write each accepted request to disk before answering 200.")
    ] = True,
    wal_dir: Annotated[
        Path | None, typer.Option(help="Write-ahead log folder (default: beside the store).")
    ] = None,
    wal_max_mb: Annotated[
        float, typer.Option(help="Write-ahead log size; when full, senders get 503.")
    ] = 1024.0,
    wal_fsync: Annotated[
        str, typer.Option(help="always (survives power loss), interval or never (survive kill -9).")
    ] = "always",
    retry_max_elapsed: Annotated[
        float, typer.Option(help="Seconds a failing store is retried before spans are dropped.")
    ] = 600.0,
    memory_mb: Annotated[
        float, typer.Option(help="Request bytes in flight and queued before answering 503.")
    ] = 64.0,
    max_connections: Annotated[
        int, typer.Option(help="Concurrent connections; beyond them the answer is 503.")
    ] = 1000,
    read_timeout: Annotated[
        float, typer.Option(help="Seconds a request's headers, then its body, may take.")
    ] = 10.0,
) -> None:
    """Receive OTLP/HTTP traces on /v1/traces and store them in ClickHouse."""
    from collector.auth import load_token
    from collector.service import Collector

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = CollectorConfig(
            store=StoreConfig.from_dsn(dsn, ttl_days=ttl_days, cluster=cluster),
            host=host,
            port=port,
            token=load_token(token_file),
            allow_unauthenticated=allow_unauthenticated,
            tls_cert=tls_cert,
            tls_key=tls_key,
            wal=wal,
            wal_dir=wal_dir,
            wal_max_bytes=int(wal_max_mb * 1024 * 1024),
            wal_fsync=cast("FsyncPolicy", wal_fsync),  # checked by CollectorConfig
            retry_max_elapsed_s=retry_max_elapsed,
            memory_max_bytes=int(memory_mb * 1024 * 1024),
            max_connections=max_connections,
            read_timeout_s=read_timeout,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            batch_max_spans=batch_spans,
            batch_timeout_s=batch_timeout,
            queue_max_spans=queue_spans,
            nextjs_wait_s=nextjs_wait,
        )
        sock = bind_socket(host, port)
        collector = Collector(config)
        try:
            collector.start()
        except Exception:
            sock.close()
            raise
    except (NextraceError, ListenError) as exc:
        _fail(exc)
    scheme = "https" if tls_cert else "http"
    typer.echo(
        f"nextrace collector: OTLP/HTTP on {scheme}://{host}:{sock.getsockname()[1]}/v1/traces"
        f"{' (bearer token required)' if config.token else ''}, "
        f"storing to {config.store.describe()}. Ctrl-C stops it after flushing.",
        err=True,
    )
    collector.serve(sock)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One reading statement (SELECT, SHOW, …).")],
    dsn: DsnOption = DEFAULT_DSN,
    fmt: Annotated[
        str, typer.Option("--format", help="Any ClickHouse output format.")
    ] = "PrettyCompact",
) -> None:
    """Run a read-only query on the store, through the running collector if it holds it."""
    from collector.query import run_read_query

    try:
        result = run_read_query(StoreConfig.from_dsn(dsn), query, fmt)
    except NextraceError as exc:
        _fail(exc)
    except Exception as exc:  # ClickHouse's own message says what is wrong with the SQL
        _fail(exc)
    sys.stdout.buffer.write(result)
    sys.stdout.flush()


@app.command()
def serve(
    app_file: Annotated[
        Path | None, typer.Option("--app", help="App definition (TOML); default: the shop demo.")
    ] = None,
    collector: Annotated[
        str, typer.Option(envvar="NEXTRACE_COLLECTOR", help="OTLP/HTTP collector to export to.")
    ] = "http://127.0.0.1:4318",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
) -> None:
    """Run the reference Next.js-lifecycle server, exporting its spans over OTLP/HTTP."""
    import uvicorn

    from collector.config import is_loopback_host
    from instrumented_server.app import build_app
    from instrumented_server.definition import PUBLISHED_SECRET, DefinitionError, load_definition
    from instrumented_server.state import ServerState

    try:
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
    except (DefinitionError, ListenError) as exc:
        _fail(exc)
    state = ServerState.create(definition, collector_url=collector)
    typer.echo(
        f"nextrace reference server '{definition.name}' on http://{host}:{sock.getsockname()[1]}, "
        f"exporting spans to {collector}/v1/traces. Ctrl-C stops it.",
        err=True,
    )
    server = uvicorn.Server(uvicorn.Config(build_app(state), log_level="warning"))
    # uvicorn re-raises Ctrl-C after its graceful shutdown, which flushed every span.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


@app.command()
def demo(
    scenario: Annotated[
        str, typer.Option(help="steady, deploy, webhook-flood or prefetch-storm.")
    ] = "deploy",
    speed: Annotated[float, typer.Option(help="Run the timeline this many times faster.")] = 1.0,
    workdir: Annotated[Path, typer.Option(help="Where each run's store and report go.")] = Path(
        ".nextrace/demo"
    ),
    collector_port: Annotated[int, typer.Option(help="Port of the demo's collector.")] = 4318,
    server_port: Annotated[int, typer.Option(help="Port of the demo's server.")] = 3000,
    next_version: Annotated[
        str, typer.Option(help="Client router stale times of Next.js 14, 15 or 16.")
    ] = "15",
) -> None:
    """Run a traffic scenario end to end on an embedded store, then report what happened."""
    from nextrace.demo import DemoError, run_demo

    try:
        result = run_demo(
            scenario,
            workdir=workdir,
            speed=speed,
            collector_port=collector_port,
            server_port=server_port,
            say=lambda line: typer.echo(line, err=True),
        )
    except DemoError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.secho("interrupted: the collector and the server were stopped", err=True)
        raise typer.Exit(code=130) from None
    typer.echo(result.report.render())
    typer.echo(
        f"Report: {result.run_dir / 'report.txt'}\n"
        f"Grafana dashboards and provisioning: {result.run_dir / 'grafana'}\n"
        f"Spans: {result.store_dsn}; query them with\n"
        f"  nextrace sql --dsn '{result.store_dsn}' \"SELECT SpanName, count() FROM otel_traces "
        f'GROUP BY ALL ORDER BY 2 DESC LIMIT 20"'
    )


dashboards_app = typer.Typer(help="Grafana dashboards kept as code.", no_args_is_help=True)
app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.command("build")
def dashboards_build(
    out: Annotated[Path, typer.Option(help="Folder for dashboards/ and provisioning/.")] = Path(
        "grafana"
    ),
) -> None:
    """Write the dashboards as Grafana JSON, with Grafana's provisioning files."""
    from dashboards.provisioning import write

    for path in write(out):
        typer.echo(str(path))


@dashboards_app.command("provision")
def dashboards_provision(
    grafana_url: Annotated[str, typer.Option(help="Grafana's base URL.")],
    token: Annotated[str, typer.Option(envvar="GRAFANA_TOKEN", help="A service-account token.")],
    clickhouse_host: Annotated[str, typer.Option(help="ClickHouse host as Grafana reaches it.")],
    clickhouse_port: Annotated[int, typer.Option(help="ClickHouse HTTP port.")] = 8123,
    clickhouse_user: Annotated[str, typer.Option(help="ClickHouse user for Grafana.")] = "default",
    clickhouse_password: Annotated[
        str, typer.Option(envvar="CLICKHOUSE_PASSWORD", help="Its password.")
    ] = "",
    alert_webhook: Annotated[
        str, typer.Option(envvar="NEXTRACE_ALERT_WEBHOOK", help="Where alerts are posted.")
    ] = "http://localhost:9999/alerts",
) -> None:
    """Create or update the folder, datasource, dashboards and alerting in a running Grafana."""
    from grafana_client.client import GrafanaException

    from dashboards.provision import ClickHouseAccess, provision

    access = ClickHouseAccess(
        clickhouse_host, clickhouse_port, clickhouse_user, clickhouse_password
    )
    try:
        provision(grafana_url, token, access, alert_webhook, say=typer.echo)
    except GrafanaException as exc:
        _fail(exc)


if __name__ == "__main__":
    app()
