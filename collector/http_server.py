"""Serving a collector's Starlette app on a bound socket: uvicorn, with the connection bounds and
the clean stop every nextrace server shares (the collector, and ``nextrace serve-ui``)."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware

from collector.config import CollectorConfig
from collector.ingest.auth import BearerTokenMiddleware
from collector.ingest.connections import BoundedH11Protocol, RareAcceptErrors, connection_cap
from collector.ingest.hosts import HostCheckMiddleware, HostPolicy
from collector.telemetry import CollectorTelemetry


class _FlushingServer(uvicorn.Server):
    """A uvicorn server that returns on SIGINT/SIGTERM instead of re-raising the signal.

    uvicorn re-raises the signal once it has stopped serving, which would end
    the process before the pipeline flushes what it has already accepted. On the
    signal it calls ``on_exit`` first (the collector cancels running reads, which
    uvicorn would otherwise wait for).
    """

    on_exit: Callable[[], None] = staticmethod(lambda: None)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        threading.Thread(target=self.on_exit, daemon=True).start()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def guards(
    config: CollectorConfig, telemetry: CollectorTelemetry, *, open_paths: frozenset[str]
) -> list[Middleware]:
    """The checks every request passes first: its ``Host`` (against DNS rebinding), then the
    bearer token if ``config`` has one, except on ``open_paths`` (which check their own)."""
    hosts = HostPolicy(config.host, config.allowed_hosts, token=bool(config.token))
    middleware = [Middleware(HostCheckMiddleware, policy=hosts, telemetry=telemetry)]
    if config.token:
        middleware.append(
            Middleware(BearerTokenMiddleware, token=config.token, open_paths=open_paths)
        )
    return middleware


def url_of(sock: socket.socket, config: CollectorConfig) -> str:
    """The URL a client reaches ``sock`` at."""
    host, port = sock.getsockname()[:2]
    scheme = "https" if config.tls_cert else "http"
    return f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"


def serve_app(
    app: Starlette,
    sock: socket.socket,
    config: CollectorConfig,
    *,
    on_exit: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` on ``sock`` with ``config``'s connection bounds and TLS until SIGINT or
    SIGTERM; ``on_exit`` runs when the signal arrives (before running requests end)."""
    cap = connection_cap(config.max_connections)  # the cap decides, not the fd limit
    logging.getLogger("asyncio").addFilter(RareAcceptErrors())
    protocol = BoundedH11Protocol.configured(
        max_connections=cap,
        max_pending=config.max_pending_connections,
        max_pending_per_address=config.max_pending_per_address,
        header_timeout_s=config.read_timeout_s,
        admit_every_request=not config.token,
    )
    server = _FlushingServer(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http=protocol,
            ssl_certfile=config.tls_cert,
            ssl_keyfile=config.tls_key,
            timeout_keep_alive=30,
        )
    )
    if on_exit is not None:
        server.on_exit = on_exit
    server.run(sockets=[sock])
