"""The collector's own endpoints: ``/healthz``, ``/metrics`` and ``POST /sql``.

``/sql`` lets other processes read an embedded store that this collector
holds (see :mod:`collector.query`). It answers loopback clients only, and
only reading statements.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from collector.errors import PermanentError
from collector.query import check_format, check_read_only
from collector.store import ClickHouseStore
from collector.telemetry import CollectorTelemetry


class AdminEndpoints:
    def __init__(
        self,
        telemetry: CollectorTelemetry,
        store: ClickHouseStore,
        health: Callable[[], dict[str, Any]],
    ) -> None:
        self._telemetry = telemetry
        self._store = store
        self._health = health

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/sql", self.sql, methods=["POST"]),
        ]

    async def healthz(self, request: Request) -> Response:
        return JSONResponse(self._health())

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self._telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    async def sql(self, request: Request) -> Response:
        if not _is_loopback(request):
            return PlainTextResponse("the SQL endpoint answers loopback clients only\n", 403)
        try:
            payload = json.loads(await request.body())
            statement = check_read_only(str(payload["query"]))
            fmt = check_format(str(payload.get("format", "PrettyCompact")))
        except (ValueError, KeyError, TypeError) as exc:
            return PlainTextResponse(f'send {{"query": "SELECT …"}}: {exc}\n', 400)
        except PermanentError as exc:
            return PlainTextResponse(f"{exc}\n", 400)
        try:
            # The driver call blocks; keep the event loop free for OTLP traffic.
            result = await asyncio.to_thread(self._store.query_raw, statement, fmt)
        except ClickHouseError as exc:
            return PlainTextResponse(f"{exc}\n", 400)
        return Response(result, media_type="text/plain; charset=utf-8")


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
