"""The collector, wired: receiver -> Next.js normalizer -> batch processor -> ClickHouse exporter.

This module is the one place where the stages meet. Read
:meth:`Collector.start` to see the architecture.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware

from collector.admin import AdminEndpoints
from collector.auth import BearerTokenMiddleware
from collector.batcher import BatchSpanProcessor
from collector.config import CollectorConfig, is_loopback_host
from collector.exporter import ClickHouseRowExporter, ClickHouseSpanExporter
from collector.normalizer import NextjsTraceNormalizer
from collector.query import ENDPOINT_FILE, write_endpoint
from collector.receiver import OTLPHttpReceiver
from collector.self_stats import CollectorStatsWriter, instance_name
from collector.store import ClickHouseStore, open_store
from collector.telemetry import CollectorTelemetry

log = logging.getLogger(__name__)

GC_GEN0_THRESHOLD = 200_000


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector run rarely.

    Decoding a request allocates one dict per span and per event and many
    short lists; none of them form cycles, yet with the default thresholds the
    collector spends about half its CPU time in GC passes over batches waiting
    for export (measured by bench/ingest.py).
    """
    gc.collect()
    gc.freeze()  # objects alive at start-up never need scanning again
    gc.set_threshold(GC_GEN0_THRESHOLD, 50, 100)


class _FlushingServer(uvicorn.Server):
    """A uvicorn server that returns on SIGINT/SIGTERM instead of re-raising the signal.

    uvicorn re-raises the signal once it has stopped serving, which would end
    the process before the pipeline flushes what it has already accepted.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class Collector:
    """One collector instance. ``start`` then ``serve`` (or use ``app`` directly);
    ``shutdown`` flushes everything accepted and is idempotent."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.telemetry = CollectorTelemetry()
        self.store: ClickHouseStore | None = None
        self.processor: BatchSpanProcessor | None = None
        self.normalizer: NextjsTraceNormalizer | None = None
        self.stats: CollectorStatsWriter | None = None
        self.app: Starlette | None = None
        self._started_at = time.time()
        self._shut_down = False

    def start(self) -> Starlette:
        config = self.config
        self.store = open_store(config.store)
        exporter = ClickHouseSpanExporter(self.store)
        self.processor = BatchSpanProcessor(
            exporter,
            self.telemetry,
            max_batch_spans=config.batch_max_spans,
            timeout_s=config.batch_timeout_s,
            max_queue_spans=config.queue_max_spans,
            max_retries=config.export_max_retries,
            retry_backoff_s=config.export_retry_backoff_s,
        )
        self.processor.start()
        self.normalizer = NextjsTraceNormalizer(
            self.processor,
            ClickHouseRowExporter(self.store),
            self.telemetry,
            wait_s=config.nextjs_wait_s,
            max_traces=config.nextjs_max_traces,
        )
        self.normalizer.start()
        receiver = OTLPHttpReceiver(
            self.normalizer, self.telemetry, max_body_bytes=config.max_body_bytes
        )
        self.stats = CollectorStatsWriter(
            self.telemetry, self.store, instance_name(config.port), config.stats_interval_s
        )
        self.stats.start()
        if config.token:
            sql_mode = "token"
        else:
            sql_mode = "loopback" if is_loopback_host(config.host) else "off"
        admin = AdminEndpoints(self.telemetry, self.store, self.health, sql_mode=sql_mode)
        middleware = [Middleware(BearerTokenMiddleware, token=config.token)] if config.token else []
        self.app = Starlette(routes=receiver.routes() + admin.routes(), middleware=middleware)
        return self.app

    def health(self) -> dict[str, Any]:
        snapshot = self.telemetry.snapshot()
        return {
            "status": "ok" if not self._shut_down else "stopped",
            "store": self.config.store.describe(),
            "uptime_s": round(time.time() - self._started_at, 1),
            **snapshot,
        }

    def serve(self, sock: socket.socket) -> None:
        """Serve on ``sock`` until SIGINT/SIGTERM, then shut down cleanly."""
        assert self.app is not None, "call start() first"
        tune_garbage_collector()  # a process-wide setting: only for a collector process
        host, port = sock.getsockname()[:2]
        scheme = "https" if self.config.tls_cert else "http"
        url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
        if self.config.store.interface == "chdb" and self.config.store.path is not None:
            write_endpoint(self.config.store.path, url)
        server = _FlushingServer(
            uvicorn.Config(
                self.app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ssl_certfile=self.config.tls_cert,
                ssl_keyfile=self.config.tls_key,
            )
        )
        log.info(
            "collector listening on %s%s, storing to %s",
            url,
            "/v1/traces",
            self.config.store.describe(),
        )
        try:
            server.run(sockets=[sock])
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        if self.normalizer is not None:
            self.normalizer.shutdown()
        if self.processor is not None:
            self.processor.shutdown()
        if self.stats is not None:
            self.stats.shutdown()  # after the flush: the last snapshot counts every span
        if self.store is not None:
            self.store.close()
        path = self.config.store.path
        if self.config.store.interface == "chdb" and path is not None:
            with contextlib.suppress(OSError):
                (path / ENDPOINT_FILE).unlink()
        snapshot = self.telemetry.snapshot()
        log.info(
            "collector stopped: %d spans stored, dropped %s",
            snapshot["spans_exported"],
            {k: v for k, v in snapshot["spans_dropped"].items() if v} or "none",
        )
