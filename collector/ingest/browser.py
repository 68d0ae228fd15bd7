"""Browser OTLP/HTTP receiver: ``POST /v1/browser/traces``, for spans from users' browsers.

A page's JavaScript cannot keep a secret, so this endpoint does not ask for the collector's
token. It is narrow instead, and off unless origins are listed (``--browser-origin``):

- **Origins**: only pages of a listed origin may send. A request whose ``Origin`` is not
  listed (or that has none, as no browser sends a cross-origin POST) is refused with 403.
  CORS preflights are answered for the listed origins only (Starlette's ``CORSMiddleware``,
  as the OpenTelemetry Collector's ``cors.allowed_origins``). An origin header can be forged
  outside a browser, so the checks below hold whatever it says.
- **Key**: with ``NEXTRACE_BROWSER_KEY`` set, a request must carry it as ``?key=``
  (``sendBeacon`` cannot set headers). It is public, written into the page: it names which
  apps may send, and is changed by deploying a new one. It opens this endpoint and no other.
- **Rate**: each origin has a token bucket of requests (``--browser-rate`` a second, twice
  that in a burst); beyond it the answer is 429 with ``Retry-After``.
- **Size**: bodies up to 64 KiB (``browser_max_body_bytes``), the most ``sendBeacon`` and
  ``fetch(keepalive)`` send.
- **Spans**: a page may send its own spans only. Spans under a server's instrumentation scope
  (``next.js``, ``@vercel/otel/fetch``, ``@nextrace/next``), which the collector would turn
  into request and cache rows, are dropped and counted (``server_scope_from_browser``); the
  others are encoded again without them, and that is what the write-ahead log keeps.
- **Memory**: the key being public, a body counts against the small budget of unverified
  bodies (``unauthenticated_memory_bytes``) while it is read, not against the budget of the
  senders with a token, and a browser's request does not admit its connection
  (:mod:`collector.ingest.connections`).

Everything else is the OTLP receiver's (:class:`collector.ingest.receiver.OTLPHttpReceiver`): JSON
or
protobuf, gzip, the memory budget, the write-ahead log, the answers.
"""

from __future__ import annotations

import hmac
import math
import threading
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from collector import decoder
from collector.consumer import SpanColumns, TracesConsumer
from collector.ingest.receiver import OTLPHttpReceiver
from collector.nextjs.mapping import is_nextjs
from collector.pipeline.translator import screen
from collector.pipeline.wal import KIND_JSON, KIND_PROTOBUF
from collector.telemetry import CollectorTelemetry

BROWSER_TRACES_PATH = "/v1/browser/traces"
BROWSER_KEY_ENV = "NEXTRACE_BROWSER_KEY"


class OriginRateLimiter:
    """A token bucket of requests per origin: ``rate`` a second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # origin -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, origin: str) -> float:
        """0 if ``origin`` may send now (a token is taken), else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(origin, (self._burst, now))
            tokens = min(self._burst, tokens + (now - then) * self._rate)
            if tokens >= 1:
                self._buckets[origin] = (tokens - 1, now)
                return 0.0
            self._buckets[origin] = (tokens, now)
            return (1 - tokens) / self._rate


class BrowserSpansOnly:
    """A :class:`TracesConsumer` that passes on a page's own spans and drops, counted, those
    under a server's instrumentation scope."""

    def __init__(self, downstream: TracesConsumer, telemetry: CollectorTelemetry) -> None:
        self._downstream = downstream
        self._telemetry = telemetry

    def consume(self, spans: SpanColumns) -> None:
        scopes = spans.scope_names
        kept = sum(1 for scope in scopes if not is_nextjs(scope))
        if kept < len(scopes):
            self._telemetry.drop(
                "server_scope_from_browser",
                len(scopes) - kept,
                "a browser sent spans under a server's instrumentation scope",
            )
            spans = page_spans_of(spans)
        self._downstream.consume(spans)


def page_spans_of(spans: SpanColumns) -> SpanColumns:
    """The spans of ``spans`` under a page's scopes, as a batch of its own whose ``source``
    holds them, and only them, encoded again: the write-ahead log must keep what is kept."""
    request = ExportTraceServiceRequest()
    if spans.encoded is not None:
        for body in spans.encoded:
            request.MergeFromString(body)
    else:
        kind = decoder.JSON if spans.source_kind == KIND_JSON else decoder.PROTOBUF
        request = decoder.decode(spans.source, kind)
    for resource_spans in request.resource_spans:
        pages = [s for s in resource_spans.scope_spans if not is_nextjs(s.scope.name)]
        del resource_spans.scope_spans[:]
        resource_spans.scope_spans.extend(pages)
    kept = screen(request, None).spans
    kept.source = (kept.encoded or [b""])[0]
    kept.source_kind = KIND_PROTOBUF
    return kept


class BrowserReceiver:
    """``POST /v1/browser/traces`` (see the module docstring)."""

    def __init__(
        self,
        receiver: OTLPHttpReceiver,
        telemetry: CollectorTelemetry,
        *,
        origins: tuple[str, ...],
        key: str | None,
        rate: float,
    ) -> None:
        """``receiver`` takes what passes the checks: one with browser-sized bodies, in front
        of a :class:`BrowserSpansOnly`."""
        self._otlp = receiver
        self._origins = frozenset(origins)
        self._key = key.encode() if key else None
        self._telemetry = telemetry
        self._limiter = OriginRateLimiter(rate, max(1.0, 2 * rate))
        self._cors = CORSMiddleware(
            self._checked,
            allow_origins=sorted(self._origins),
            allow_methods=["POST"],
            allow_headers=["content-type", "content-encoding"],
            max_age=600,
        )

    def routes(self) -> list[Route]:
        return [Route(BROWSER_TRACES_PATH, self._cors, methods=["POST", "OPTIONS"])]

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refusal = self._refusal(request)
        if refusal is None:
            response = await self._otlp.export(request)
        else:
            response = refusal
        await response(scope, receive, send)

    def _refusal(self, request: Request) -> Response | None:
        """Why ``request`` may not send (403, 401 or 429), or None."""
        origin = request.headers.get("origin", "")
        if origin not in self._origins:
            return self._refuse("forbidden_origin", 403, f"origin {origin!r} is not allowed")
        if self._key is not None:
            given = request.query_params.get("key", "").encode()
            if not hmac.compare_digest(given, self._key):
                return self._refuse("wrong_key", 401, "missing or wrong browser key (?key=)")
        wait_s = self._limiter.take(origin)
        if wait_s:
            response = self._refuse("rate_limited", 429, f"too many requests from {origin}")
            response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
            return response
        return None

    def _refuse(self, reason: str, status: int, detail: str) -> Response:
        self._telemetry.reject_request(reason, status, detail)
        return PlainTextResponse(detail + "\n", status)
