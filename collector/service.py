"""The collector, wired: receiver -> Next.js normalizer -> batch processor -> ClickHouse exporter.

This module is the one place where the stages meet. Read
:meth:`Collector.start` to see the architecture.
"""

from __future__ import annotations

import functools
import gc
import logging
import shutil
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from starlette.applications import Starlette

from collector.admin.endpoints import AdminEndpoints, Page
from collector.admin.query import announce, withdraw
from collector.admin.self_stats import CollectorStatsWriter, instance_name
from collector.clock import SYSTEM_CLOCK, Clock
from collector.config import CollectorConfig
from collector.consumer import Component, TracesConsumer
from collector.errors import TransientError
from collector.http_server import guards, serve_app, url_of
from collector.ingest import cloudflare_logpush
from collector.ingest.browser import BROWSER_TRACES_PATH, BrowserReceiver, BrowserSpansOnly
from collector.ingest.cdn import LineReader, RecentLines
from collector.ingest.cloudflare_logpush import CLOUDFLARE_LOGPUSH_PATH, LogpushConverter
from collector.ingest.receiver import OTLPHttpReceiver
from collector.ingest.vercel_drain import (
    VERCEL_DRAIN_PATH,
    VercelDrainConverter,
    VercelDrainReceiver,
)
from collector.memory import MemoryLimiter
from collector.pipeline.batcher import BatchSpanProcessor
from collector.pipeline.normalizer import NextjsTraceNormalizer
from collector.pipeline.replay import BackgroundReplay, replay
from collector.pipeline.wal import WriteAheadLog
from collector.pipeline.wal_stage import WriteAheadStage
from collector.storage.cdn_lookups import AppRequest, CdnLookups
from collector.storage.exporter import ClickHouseRowExporter, ClickHouseSpanExporter
from collector.storage.staging import drop_leftover_staging_tables
from collector.storage.store import ClickHouseStore, connect
from collector.storage.wal_binding import bind_log_to_store
from collector.telemetry import CollectorTelemetry

log = logging.getLogger(__name__)

_C = TypeVar("_C", bound=Component)

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


def _log_full(wal: WriteAheadLog) -> str:
    """What ``/healthz`` says while the log refuses new records for lack of space."""
    try:
        disk = f"{shutil.disk_usage(wal.directory).free} bytes free on its disk"
    except OSError as exc:
        disk = f"its disk cannot be read: {exc}"
    return (
        f"refusing: log full ({wal.size_bytes} of {wal.max_bytes} bytes in the write-ahead "
        f"log, {disk}): new spans get 503 until the store takes what the log holds or the "
        "disk has room"
    )


class Collector:
    """One collector instance. ``start`` then ``serve`` (or use ``app`` directly);
    ``shutdown`` flushes everything accepted and is idempotent."""

    def __init__(
        self,
        config: CollectorConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        pages: Callable[[ClickHouseStore], Mapping[str, Page]] | None = None,
    ) -> None:
        """``clock``: where the stages read time (a test passes one it moves itself);
        ``pages``: the read-only pages to serve from the store, by route path (``nextrace
        collect`` gives the trace view's)."""
        self.config = config
        self._pages = pages
        self.clock = clock
        self.telemetry = CollectorTelemetry()
        self.store: ClickHouseStore | None = None
        self.exporter: ClickHouseSpanExporter | None = None
        # One memory of the CDN log lines stored, for every vendor; what it does not remember,
        # it looks up in the store.
        self.cdn_lines = RecentLines(config.cdn_recent_lines, stored=self._stored_lines)
        self.cdn_lookups: CdnLookups | None = None
        self.processor: BatchSpanProcessor | None = None
        self.normalizer: NextjsTraceNormalizer | None = None
        self.stats: CollectorStatsWriter | None = None
        self.wal: WriteAheadLog | None = None
        self.replaying: BackgroundReplay | None = None
        self.memory = MemoryLimiter(config.memory_max_bytes)
        self.unverified = MemoryLimiter(config.unauthenticated_memory_bytes, "unverified bodies")
        self.app: Starlette | None = None
        self._components: list[Component] = []  # in the order they started
        self._started_at = time.time()
        self._shut_down = False

    def start(self, *, replay_in_background: bool = False) -> Starlette:
        """Open the store and the log, wire the stages, and return the app.

        The log left by a previous process is replayed before this returns, or, with
        ``replay_in_background``, while the app answers: senders get 503 and ``/healthz``
        says ``replaying N of M`` until it is done (:mod:`collector.pipeline.replay`).
        """
        try:
            store, pipeline = self._start_stages()
        except BaseException:
            self._stop_components(timeout_s=1.0)
            raise
        config = self.config
        receiver_for = functools.partial(
            OTLPHttpReceiver,
            telemetry=self.telemetry,
            body_timeout_s=config.read_timeout_s,
            memory=self.memory,
            before_ack=self.wal.sync_async if self.wal is not None else None,
        )
        receiver = receiver_for(pipeline, max_body_bytes=config.max_body_bytes)
        admin = AdminEndpoints(
            self.telemetry,
            store,
            self.health,
            sql_mode=AdminEndpoints.mode_for(config),
            pages=self._pages(store) if self._pages is not None else None,
        )
        routes = receiver.routes() + admin.routes()
        open_paths: frozenset[str] = frozenset()
        cdn_reader = LineReader(self.telemetry, self.cdn_lines, self._app_requests)
        if config.browser_origins:
            browser = BrowserReceiver(
                receiver_for(
                    BrowserSpansOnly(pipeline, self.telemetry),
                    max_body_bytes=config.browser_max_body_bytes,
                    unauthenticated=self.unverified,  # the browser key is public
                ),
                self.telemetry,
                origins=config.browser_origins,
                key=config.browser_key,
                rate=config.browser_rate,
            )
            routes += browser.routes()
            open_paths |= {BROWSER_TRACES_PATH}  # its own checks, not the token
        if config.vercel_drain_secret:
            drain = VercelDrainReceiver(
                receiver_for(
                    pipeline,
                    max_body_bytes=config.cdn_max_body_bytes,
                    converter=VercelDrainConverter(config.vercel_drain_secret, cdn_reader),
                    unauthenticated=self.unverified,  # until its signature is checked
                ),
                config.vercel_verify,
            )
            routes += drain.routes()
            open_paths |= {VERCEL_DRAIN_PATH}  # signed by Vercel instead
        if config.cloudflare_logpush_token:
            logpush = LogpushConverter(config.cloudflare_logpush_token, cdn_reader)
            routes += cloudflare_logpush.routes(
                receiver_for(pipeline, max_body_bytes=config.cdn_max_body_bytes, converter=logpush)
            )
            open_paths |= {CLOUDFLARE_LOGPUSH_PATH}  # its own token instead
        self.app = Starlette(
            routes=routes, middleware=guards(config, self.telemetry, open_paths=open_paths)
        )
        if self.replaying is not None:
            self._components.append(self.replaying)
            if replay_in_background:
                self.replaying.start()
            else:
                self.replaying.run_here()
        return self.app

    def _start_stages(self) -> tuple[ClickHouseStore, TracesConsumer]:
        """Start the long-lived parts, each before the parts that depend on it; the store,
        and the stage the receivers hand spans to."""
        config = self.config
        self.store = store = self._started(ClickHouseStore(config.store, connect(config.store)))
        if config.store.interface == "chdb":
            drop_leftover_staging_tables(store)
        self.cdn_lookups = CdnLookups(store)
        if config.wal.enabled:
            self.wal = self._started(WriteAheadLog(config.wal_path, config.wal))
            bind_log_to_store(self.wal, store, self.telemetry)
        # Before the stages whose spans it counts, so that it stops after them.
        self.stats = self._started(
            CollectorStatsWriter(
                self.telemetry, self.store, instance_name(config.port), config.stats_interval_s
            )
        )
        self.exporter = self._started(
            ClickHouseSpanExporter(store, self.telemetry, staged=config.staged_insert)
        )
        # One retry policy for every stage that writes to the store: spans and derived rows.
        self.processor = self._started(
            BatchSpanProcessor(
                self.exporter,
                self.telemetry,
                config.batch,
                memory=self.memory,
                retry=config.retry,
                wal=self.wal,
                clock=self.clock,
            )
        )
        self.normalizer = self._started(
            NextjsTraceNormalizer(
                self.processor,
                ClickHouseRowExporter(self.store),
                self.telemetry,
                config.nextjs,
                retry=config.retry,
                clock=self.clock,
            )
        )
        if self.wal is None:
            return store, self.normalizer
        self.wal.add_holder(self.normalizer.oldest_wal_record)
        wal, processor, normalizer = self.wal, self.processor, self.normalizer
        cdn_lines = self.cdn_lines
        self.replaying = BackgroundReplay(
            lambda progress: replay(
                wal,
                wal.recovered,
                processor,
                normalizer,
                progress=progress,
                replayed=cdn_lines.remember_spans,
            ),
            WriteAheadStage(self.wal, self.normalizer, self.telemetry),
            self.telemetry,
        )
        return store, self.replaying  # refuses new spans until the log is replayed

    def _stored_lines(self, span_ids: Sequence[str], first_ns: int, last_ns: int) -> set[str]:
        if self.cdn_lookups is None:
            raise TransientError("the collector is not started")
        return self.cdn_lookups.stored_lines(span_ids, first_ns, last_ns)

    def _app_requests(
        self, services: Sequence[str], paths: Sequence[str], first_ns: int, last_ns: int
    ) -> list[AppRequest]:
        if self.cdn_lookups is None:
            return []
        return self.cdn_lookups.app_requests(services, paths, first_ns, last_ns)

    def _started(self, component: _C) -> _C:
        """``component``, started; it is shut down with the others, in reverse order."""
        self._components.append(component)
        component.start()
        return component

    def _stop_components(self, timeout_s: float) -> None:
        """Shut every part down, the last started first, each within ``timeout_s``."""
        while self._components:
            self._components.pop().shutdown(timeout_s)

    def health(self) -> dict[str, Any]:
        """Counters, and ``status``: ``ok``, ``stopped``, or what is wrong, each thing in a
        part of its own, ``; ``-separated (``/healthz`` answers 503 unless ``ok``)."""
        snapshot = self.telemetry.snapshot()
        wrong: list[str] = []
        failing = self.processor.failing if self.processor is not None else None
        replaying = self.replaying.status() if self.replaying is not None else None
        if replaying:
            wrong.append(replaying)
        if self.wal is not None and self.wal.refusing:
            wrong.append(_log_full(self.wal))
        elif self.wal is not None and self.wal.size_bytes > 0.9 * self.wal.max_bytes:
            wrong.append(
                f"write-ahead log nearly full ({self.wal.size_bytes} of {self.wal.max_bytes} "
                "bytes): new spans may soon get 503"
            )
        if failing:
            wrong.append(f"store failing, spans wait and are retried: {failing}")
        status = "stopped" if self._shut_down else "; ".join(wrong) or "ok"
        wal: dict[str, Any] = {}
        if self.wal is not None:
            wal = {"wal_bytes": self.wal.size_bytes, "wal_fsync": self.wal.fsync}
        if self.replaying is not None:
            wal["wal_replay"] = {
                "running": self.replaying.running,
                "records_done": self.replaying.done,
                "records_total": self.replaying.total,
            }
        held = {
            "memory_bytes": self.memory.used_bytes,
            "unverified_bytes": self.unverified.used_bytes,
        }
        return {
            "status": status,
            "store": self.config.store.describe(),
            "uptime_s": round(time.time() - self._started_at, 1),
            **wal,
            **held,
            **snapshot,
        }

    def serve(self, sock: socket.socket) -> None:
        """Serve on ``sock`` until SIGINT/SIGTERM, then shut down cleanly."""
        assert self.app is not None, "call start() first"
        tune_garbage_collector()  # a process-wide setting: only for a collector process
        url = url_of(sock, self.config)
        announce(self.config.store, url)
        log.info(
            "collector listening on %s%s, storing to %s",
            url,
            "/v1/traces",
            self.config.store.describe(),
        )
        try:
            serve_app(
                self.app,
                sock,
                self.config,
                on_exit=self.store.stop_reads if self.store is not None else None,
            )
        finally:
            self.shutdown()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Flush and stop every stage, each within ``timeout_s``; idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        # The replay and the normalizer first, the store last; the statistics after every
        # stage that counts spans, so that their final snapshot counts every span.
        self._stop_components(timeout_s)
        withdraw(self.config.store)
        snapshot = self.telemetry.snapshot()
        log.info(
            "collector stopped: %d spans stored, dropped %s%s",
            snapshot["spans_exported"],
            {k: v for k, v in snapshot["spans_dropped"].items() if v} or "none",
            f"; {lost} acknowledged request(s) lost to a damaged write-ahead log"
            if (lost := snapshot["wal_records_lost"])
            else "",
        )
