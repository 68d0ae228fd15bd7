"""A store's read-only endpoints without ingest: what ``nextrace serve-ui`` serves.

Beside a ClickHouse server that collectors elsewhere write to (or an embedded store no
collector holds), it serves ``/healthz``, ``/metrics``, ``POST /sql`` and the pages, behind the
collector's own guards (:mod:`collector.admin.endpoints`), and never changes the store: it
opens it without migrating, and refuses one whose schema is older than this release's.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette

from collector.admin.endpoints import AdminEndpoints, Page
from collector.admin.query import announce, owning_collector, withdraw
from collector.config import CollectorConfig
from collector.errors import StoreError
from collector.http_server import guards, serve_app, url_of
from collector.storage.store import ClickHouseStore, open_store
from collector.telemetry import CollectorTelemetry


class ReadOnlyService:
    """``start`` then ``serve``; ``shutdown`` closes the store, and is idempotent."""

    def __init__(
        self, config: CollectorConfig, *, pages: Callable[[ClickHouseStore], Mapping[str, Page]]
    ) -> None:
        """``config``: the store, and how to listen (its ingest settings are not used);
        ``pages``: the pages to serve from the store, by route path."""
        self.config = config
        self._pages = pages
        self.telemetry = CollectorTelemetry()
        self.store: ClickHouseStore | None = None
        self.app: Starlette | None = None
        self._started_at = time.time()
        self._shut_down = False

    def start(self) -> Starlette:
        """Open the store and return the app. StoreError if a collector holds the embedded
        store (it serves the same pages), or the store cannot be read."""
        config = self.config
        holder = owning_collector(config.store)
        if holder is not None:
            raise StoreError(
                f"the collector at {holder} holds the {config.store.describe()} and serves "
                f"its pages itself: open {holder}/slow"
            )
        self.store = open_store(config.store, migrate=False)
        admin = AdminEndpoints(
            self.telemetry,
            self.store,
            self.health,
            sql_mode=AdminEndpoints.mode_for(config),
            pages=self._pages(self.store),
        )
        self.app = Starlette(
            routes=admin.routes(), middleware=guards(config, self.telemetry, open_paths=frozenset())
        )
        return self.app

    def health(self) -> dict[str, Any]:
        return {
            "status": "stopped" if self._shut_down else "ok",
            "store": self.config.store.describe(),
            "uptime_s": round(time.time() - self._started_at, 1),
            "ingest": False,
        }

    def serve(self, sock: socket.socket) -> None:
        """Serve on ``sock`` until SIGINT/SIGTERM, then close the store."""
        assert self.app is not None, "call start() first"
        assert self.store is not None
        # The commands read a held embedded store through its holder's /sql: this one.
        announce(self.config.store, url_of(sock, self.config))
        try:
            serve_app(self.app, sock, self.config, on_exit=self.store.stop_reads)
        finally:
            self.shutdown()

    def shutdown(self, timeout_s: float = 30.0) -> None:  # noqa: ARG002 (Component's signature)
        if self._shut_down:
            return
        self._shut_down = True
        withdraw(self.config.store)
        if self.store is not None:
            self.store.close()
