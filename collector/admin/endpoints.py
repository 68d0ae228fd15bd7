"""The collector's own endpoints: ``/healthz``, ``/metrics`` and ``POST /sql``.

``/sql`` lets other processes read an embedded store that this collector
holds (see :mod:`collector.admin.query`); :meth:`ClickHouseStore.read` decides which
statements run. A web page in the developer's browser must not reach it, so it
takes ``Content-Type: application/json`` only (never a CORS "simple request"),
refuses any request with an ``Origin`` header, and, without a token, answers
only loopback clients that name a loopback host (against DNS rebinding). Its
body is bounded. Without a token it is off unless the collector listens on
loopback.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from collector import decoder
from collector.admin.query import QueryValue, check_format, check_parameters
from collector.config import is_loopback_host
from collector.errors import PermanentError, QueryFailed, StoreError
from collector.ingest.receiver import read_body
from collector.storage.store import ClickHouseStore
from collector.telemetry import CollectorTelemetry

SQL_MAX_BODY_BYTES = 64 * 1024
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


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
    ) -> None:
        self._telemetry = telemetry
        self._store = store
        self._health = health
        self._sql_mode = sql_mode
        self._reads_running = 0  # running, or waiting for their turn
        # Reads run one at a time (ClickHouseStore.read); the others wait here, on the event
        # loop, not on threads of the pool that the write-ahead log's syncs also run on.
        self._read_turn = asyncio.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/sql", self.sql, methods=["POST"]),
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
        waiting_max = self._store.config.read_limits.max_waiting_reads
        if self._reads_running > waiting_max:
            self._telemetry.requests_rejected.labels("reads_waiting").inc()
            return PlainTextResponse(
                f"{self._reads_running} reads are running or waiting, the most this collector "
                "queues: retry later\n",
                503,
                headers={"Retry-After": "1"},
            )
        try:
            result = await self._read_until_disconnect(request, statement, fmt, parameters)
        except QueryFailed as exc:
            return PlainTextResponse(f"{exc}\n", 400)
        except PermanentError as exc:
            return PlainTextResponse(f"refused: {exc}\n", 400)
        except StoreError as exc:
            return PlainTextResponse(f"{exc}\n", 503)
        return Response(result, media_type="text/plain; charset=utf-8")

    async def _read_until_disconnect(
        self, request: Request, statement: str, fmt: str, parameters: dict[str, QueryValue]
    ) -> bytes:
        """Run the read on a thread once it is its turn (the driver blocks; OTLP traffic must
        not wait), and cancel it in ClickHouse if the client goes away first."""
        tag = f"r{uuid.uuid4().hex}"
        self._reads_running += 1
        try:
            async with self._read_turn:
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
        finally:
            self._reads_running -= 1

    def _sql_refusal(self, request: Request) -> Response | None:
        """Why ``/sql`` will not answer this request, or None if it will."""
        if self._sql_mode == "off":
            return PlainTextResponse(
                "the SQL endpoint is off: this collector listens beyond loopback without a "
                "token (start it with NEXTRACE_TOKEN or --token-file to use it)\n",
                403,
            )
        if "origin" in request.headers:
            return PlainTextResponse("the SQL endpoint refuses cross-origin requests\n", 403)
        if self._sql_mode == "loopback":
            host = request.headers.get("host", "").rsplit(":", 1)[0].lower()
            client = request.client.host if request.client else ""
            if not is_loopback_host(client) or host not in _LOOPBACK_NAMES:
                return PlainTextResponse(
                    "without a token the SQL endpoint answers loopback clients only, "
                    "addressed as localhost, 127.0.0.1 or [::1]\n",
                    403,
                )
        if decoder.media_type(request.headers.get("content-type")) != decoder.JSON:
            return PlainTextResponse(
                'send Content-Type: application/json and {"query": "SELECT …"}\n', 415
            )
        return None
