"""Vercel Log Drains receiver: ``POST /v1/cdn/vercel``, the requests Vercel's CDN logged.

Off unless ``NEXTRACE_VERCEL_DRAIN_SECRET`` holds the drain's secret (set in Vercel when the
drain is made). Vercel signs each delivery: ``x-vercel-signature`` is the hex HMAC-SHA1 of the
body with that secret. A delivery without a right signature is refused with 401 and nothing
of it is kept; the collector's token is not asked of Vercel, the signature stands for it.
A request without a signature at all is refused before its body is read. One with a
signature can only be checked once its body is read: until then, the body counts against
the small budget of unverified bodies (``unauthenticated_memory_bytes``), never against the
one of the senders with a token, and it is decompressed only once it is verified.
When Vercel checks the endpoint as the drain is made, it wants its verification code back in
an ``x-vercel-verify`` header: set it as ``NEXTRACE_VERCEL_VERIFY`` and every answer of this
path carries it (``GET`` answers 200 with it and nothing else).

The body is a JSON array of log entries, one entry, or NDJSON (one entry a line), as Vercel's
Log Drains reference describes. Entries with a ``proxy`` object are requests the CDN saw
(:func:`request_of`); build logs and other entries without one are skipped. Vercel repeats a
request's ``proxy`` on every entry the request made (its middleware's invocation, each line
its function printed): :func:`one_per_request` keeps one entry a ``requestId``, the one with
the cache's answer, so that a request is one CDN lookup. Vercel's own background revalidation
(``proxy.statusCode`` -1) is no user's lookup: it is recorded as what it is, a span of its own
(``nextrace.cdn.background``) that makes no request or cache row. A redirect or the firewall's
answer is no cache's: they are skipped.
A line that is not a JSON object is counted as dropped (``malformed_log_line``) and skipped;
the rest of the delivery is stored. Each request becomes spans (:mod:`collector.ingest.cdn`), which
then go the way of any OTLP export: the same limits, write-ahead log and answers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.errors import PermanentError
from collector.ingest.cdn import CdnRequest, LineReader
from collector.ingest.connections import admit
from collector.ingest.receiver import OTLPHttpReceiver

VERCEL_DRAIN_PATH = "/v1/cdn/vercel"
VERCEL_SECRET_ENV = "NEXTRACE_VERCEL_DRAIN_SECRET"
VERCEL_VERIFY_ENV = "NEXTRACE_VERCEL_VERIFY"
_SIGNATURE = re.compile(r"[0-9a-fA-F]{40}")  # a hex HMAC-SHA1


_NOT_LOOKUPS = frozenset({"redirect", "firewall"})  # sources whose entries no cache answered


def one_per_request(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of the entries with a ``proxy`` object, one a request (``requestId``, else the proxy's
    ``vercelId``, else the entry's ``id``): the first that carries the cache's answer
    (``proxy.vercelCache``), else the first. Background revalidations, redirects and the
    firewall's entries are left out; a background revalidation is one too, apart from the
    request that started it."""
    chosen: dict[str, dict[str, Any]] = {}
    for entry in entries:
        proxy = entry.get("proxy")
        if not isinstance(proxy, dict):
            continue
        if entry.get("source") in _NOT_LOOKUPS:
            continue
        key = str(entry.get("requestId") or proxy.get("vercelId") or entry.get("id") or "")
        if key and _background(proxy):
            key = f"{key}:background"
        if not key:
            chosen[f"#{len(chosen)}"] = entry  # nothing to tell it apart: its own request
            continue
        held = chosen.get(key)
        if held is None or (not held["proxy"].get("vercelCache") and proxy.get("vercelCache")):
            chosen[key] = entry
    return list(chosen.values())


def request_of(entry: dict[str, Any]) -> CdnRequest | None:
    """The request an entry logged, or None for an entry without a ``proxy`` object. Raises
    ValueError (or TypeError) for a proxy whose fields are not of their documented types."""
    proxy = entry.get("proxy")
    if not isinstance(proxy, dict):
        return None
    timestamp_ms = proxy.get("timestamp", entry.get("timestamp"))
    if not isinstance(timestamp_ms, int | float):
        raise ValueError(f"timestamp {timestamp_ms!r} is not milliseconds")
    # The request's id, not the entry's: the same for all its entries and redeliveries.
    log_id = str(
        entry.get("requestId")
        or proxy.get("vercelId")
        or entry.get("id")
        or f"{timestamp_ms}:{proxy.get('path', '/')}"
    )
    background = _background(proxy)
    return CdnRequest(
        vendor="vercel",
        log_id=f"{log_id}:background" if background else log_id,
        background=background,
        service=str(entry.get("projectName") or entry.get("projectId") or "vercel"),
        timestamp_ns=int(timestamp_ms) * 1_000_000,
        method=str(proxy.get("method", "GET")),
        host=str(proxy.get("host") or entry.get("host") or ""),
        path=str(proxy.get("path", "/")),
        status=int(proxy.get("statusCode", entry.get("statusCode", 0)) or 0),
        cache_status=str(proxy.get("vercelCache") or "NONE"),
        route=str(entry.get("path") or ""),
        build_id=str(entry.get("deploymentId") or ""),
        region=str(proxy.get("region") or ""),
        response_bytes=_bytes(proxy.get("responseByteSize")),
        trace_id=str(entry.get("traceId") or entry.get("trace.id") or ""),
        parent_span_id=str(entry.get("spanId") or entry.get("span.id") or ""),
    )


def _background(proxy: dict[str, Any]) -> bool:
    """Whether ``proxy`` logged Vercel's own background revalidation (``statusCode`` -1)."""
    return proxy.get("statusCode") == -1


def _bytes(value: Any) -> int | None:
    """A logged size in bytes; None when it was not logged."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"responseByteSize {value!r} is not a size")
    return int(value)


class VercelDrainConverter:
    """Checks a delivery's signature and reads its requests as an OTLP export (a
    :data:`collector.ingest.receiver.LogConverter`)."""

    def __init__(self, secret: str, lines: LineReader) -> None:
        self._secret = secret.encode()
        self._lines = lines

    def admit(self, request: Request) -> None:
        """Refuse a request without a signature before its body is read."""
        if not _SIGNATURE.fullmatch(request.headers.get("x-vercel-signature", "")):
            raise PermanentError("missing or wrong x-vercel-signature", 401)

    def verify(self, request: Request, raw: bytes) -> None:
        """Refuse a body that is not the one signed, as received (before decompression)."""
        signature = request.headers.get("x-vercel-signature", "")
        expected = hmac.new(self._secret, raw, hashlib.sha1).hexdigest()
        if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
            raise PermanentError("missing or wrong x-vercel-signature", 401)
        admit(request.scope)

    def __call__(self, request: Request, body: bytes) -> ExportTraceServiceRequest:
        return self._lines.read(request, body, request_of, one_per_request)

    def finished(self, request: Request, acknowledged: bool) -> None:
        self._lines.finished(request, acknowledged)


class VercelDrainReceiver:
    """``POST`` and ``GET`` ``/v1/cdn/vercel`` (see the module docstring)."""

    def __init__(self, receiver: OTLPHttpReceiver, verify: str | None) -> None:
        """``receiver`` reads deliveries with a :class:`VercelDrainConverter`."""
        self._otlp = receiver
        self._verify = verify

    def routes(self) -> list[Route]:
        return [
            Route(VERCEL_DRAIN_PATH, self._deliver, methods=["POST"]),
            Route(VERCEL_DRAIN_PATH, self._check, methods=["GET"]),
        ]

    async def _deliver(self, request: Request) -> Response:
        return self._verified(await self._otlp.export(request))

    async def _check(self, _request: Request) -> Response:
        return self._verified(Response(status_code=200))

    def _verified(self, response: Response) -> Response:
        if self._verify:
            response.headers["x-vercel-verify"] = self._verify
        return response
