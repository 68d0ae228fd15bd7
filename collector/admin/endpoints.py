"""The collector's own endpoints: ``/healthz``, ``/metrics``, ``POST /sql`` and read-only pages.

``/sql`` lets other processes read an embedded store that this collector
holds (see :mod:`collector.admin.query`); :meth:`ClickHouseStore.read` decides which
statements run. A web page in the developer's browser must not reach it, so it
takes ``Content-Type: application/json`` only (never a CORS "simple request"),
refuses any request with an ``Origin`` header, and, without a token, answers
only loopback clients that name a loopback host (against DNS rebinding). Its
body is bounded. Without a token it is off unless the collector listens on
loopback.

The pages (``nextrace collect`` serves the trace view's, :mod:`investigate.pages`) are
``GET`` only, behind the same guard but the content type, and read in the same queue as
``/sql``. Nothing in them runs or loads (their ``Content-Security-Policy``), and they are not
kept.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from collector import decoder
from collector.admin.query import QueryValue, check_format, check_parameters
from collector.config import CollectorConfig, is_loopback_host
from collector.errors import PermanentError, QueryFailed, StoreError
from collector.ingest.receiver import read_body
from collector.storage.store import ClickHouseStore
from collector.telemetry import CollectorTelemetry

SQL_MAX_BODY_BYTES = 64 * 1024
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
Page = Callable[[Mapping[str, str], Mapping[str, str]], tuple[int, str]]
"""A read-only page: its HTTP status and HTML from the request's path parameters and query,
read from the store on a thread of its own."""
T = TypeVar("T")


class AdminEndpoints:
    """``/healthz``, ``/metrics`` and ``/sql``. ``sql_mode`` is ``"token"`` (a token guards
    every endpoint), ``"loopback"`` (no token, listening on loopback) or ``"off"``."""

    def __init__(
        self,
        telemetry: CollectorTelemetry,
        store: ClickHouseStore,
        health: Callable[[], dict[str, Any]],
        *,
        sql_mode: str = "loopback",
        pages: Mapping[str, Page] | None = None,
    ) -> None:
        """``pages``: read-only pages by route path (``/trace/{trace_id}``)."""
        self._pages = dict(pages or {})
        self._telemetry = telemetry
        self._store = store
        self._health = health
        self._sql_mode = sql_mode
        self._reads_running = 0  # running, or waiting for their turn
        # Reads run one at a time (ClickHouseStore.read); the others wait here, on the event
        # loop, not on threads of the pool that the write-ahead log's syncs also run on.
        self._read_turn = asyncio.Lock()

    @staticmethod
    def mode_for(config: CollectorConfig) -> str:
        """The ``sql_mode`` of a server listening as ``config`` says."""
        if config.token:
            return "token"
        return "loopback" if is_loopback_host(config.host) else "off"

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/sql", self.sql, methods=["POST"]),
            *(Route(path, self._page(page), methods=["GET"]) for path, page in self._pages.items()),
        ]

    async def healthz(self, _request: Request) -> Response:
        health = {**self._health(), "reads_running": self._reads_running}
        return JSONResponse(health, 200 if health["status"] == "ok" else 503)

    async def metrics(self, _request: Request) -> Response:
        return Response(generate_latest(self._telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    async def sql(self, request: Request) -> Response:
        refusal = self._sql_refusal(request)
        if refusal is not None:
            return refusal
        try:
            body = await read_body(request, SQL_MAX_BODY_BYTES)
            payload = json.loads(body)
            statement = str(payload["query"])
            fmt = check_format(str(payload.get("format", "PrettyCompact")))
            parameters = check_parameters(payload.get("parameters", {}))
        except PermanentError as exc:
            return PlainTextResponse(f"{exc}\n", exc.http_status)
        except (ValueError, KeyError, TypeError) as exc:
            return PlainTextResponse(f'send {{"query": "SELECT …"}}: {exc}\n', 400)
        if (busy := self._too_many_reads()) is not None:
            return busy
        try:
            result = await self._read_until_disconnect(request, statement, fmt, parameters)
        except QueryFailed as exc:
            return PlainTextResponse(f"{exc}\n", 400)
        except PermanentError as exc:
            return PlainTextResponse(f"refused: {exc}\n", 400)
        except StoreError as exc:
            return PlainTextResponse(f"{exc}\n", 503)
        return Response(result, media_type="text/plain; charset=utf-8")

    def _page(self, page: Page) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            refusal = self._refusal(request, "the pages")
            if refusal is not None:
                return refusal
            if (busy := self._too_many_reads()) is not None:
                return busy
            path, query = dict(request.path_params), dict(request.query_params)
            try:
                status, text = await self._in_turn(lambda: page(path, query))
            except PermanentError as exc:
                return PlainTextResponse(f"refused: {exc}\n", 400)
            except StoreError as exc:
                return PlainTextResponse(f"{exc}\n", 503)
            return HTMLResponse(text, status, headers=PAGE_HEADERS)

        return endpoint

    def _too_many_reads(self) -> Response | None:
        """The answer to a read while as many as the collector queues run or wait, or None."""
        waiting_max = self._store.config.read_limits.max_waiting_reads
        if self._reads_running <= waiting_max:
            return None
        self._telemetry.requests_rejected.labels("reads_waiting").inc()
        return PlainTextResponse(
            f"{self._reads_running} reads are running or waiting, the most this collector "
            "queues: retry later\n",
            503,
            headers={"Retry-After": "1"},
        )

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """A read's turn: reads run one at a time (see __init__), counted while they run or
        wait (``/healthz``'s ``reads_running``, :meth:`_too_many_reads`)."""
        self._reads_running += 1
        try:
            async with self._read_turn:
                yield
        finally:
            self._reads_running -= 1

    async def _in_turn(self, read: Callable[[], T]) -> T:
        """``read`` on a thread once it is its turn."""
        async with self._turn():
            return await asyncio.to_thread(read)

    async def _read_until_disconnect(
        self, request: Request, statement: str, fmt: str, parameters: dict[str, QueryValue]
    ) -> bytes:
        """Run the read on a thread once it is its turn (the driver blocks; OTLP traffic must
        not wait), and cancel it in ClickHouse if the client goes away first."""
        tag = f"r{uuid.uuid4().hex}"
        async with self._turn():
            reading = asyncio.ensure_future(
                asyncio.to_thread(self._store.read, statement, fmt, tag, parameters)
            )
            left = False
            while True:
                done, _ = await asyncio.wait({reading}, timeout=0.25)
                if done:
                    return reading.result()
                # Cancel until it ends: the read may reach ClickHouse after a first attempt.
                left = left or await request.is_disconnected()
                if left:
                    await asyncio.to_thread(self._store.cancel_reads, tag)

    def _sql_refusal(self, request: Request) -> Response | None:
        """Why ``/sql`` will not answer this request, or None if it will."""
        refusal = self._refusal(request, "the SQL endpoint")
        if refusal is not None:
            return refusal
        if decoder.media_type(request.headers.get("content-type")) != decoder.JSON:
            return PlainTextResponse(
                'send Content-Type: application/json and {"query": "SELECT …"}\n', 415
            )
        return None

    def _refusal(self, request: Request, what: str) -> Response | None:
        """Why a read of the store (``what``: the SQL endpoint, the pages) will not answer
        this request, or None if it will: off beyond loopback without a token, never
        cross-origin, and without a token only for loopback clients addressed as such."""
        if self._sql_mode == "off":
            return PlainTextResponse(
                f"{what}: off, since this collector listens beyond loopback without a "
                "token (start it with NEXTRACE_TOKEN or --token-file to read it)\n",
                403,
            )
        if "origin" in request.headers:
            return PlainTextResponse(f"{what}: cross-origin requests are refused\n", 403)
        if self._sql_mode == "loopback":
            host = request.headers.get("host", "").rsplit(":", 1)[0].lower()
            client = request.client.host if request.client else ""
            if not is_loopback_host(client) or host not in _LOOPBACK_NAMES:
                return PlainTextResponse(
                    f"{what}: without a token, only loopback clients are answered, "
                    "addressed as localhost, 127.0.0.1 or [::1]\n",
                    403,
                )
        return None
