"""Browser OTLP/HTTP receiver: ``POST /v1/browser/traces``, for spans from users' browsers.

A page's JavaScript cannot keep a secret, so this endpoint does not ask for the collector's
token. It is narrow instead, and off unless origins are listed (``--browser-origin``):

- **Origins**: only pages of a listed origin may send; an origin of preview deployments may
  be listed as a pattern whose first label is ``*`` (``https://*.shop-preview.example.com``:
  any one label there). A request whose ``Origin`` is not listed (or that has none, as no
  browser sends a cross-origin POST) is refused with 403.
  CORS preflights are answered for the listed origins only (Starlette's ``CORSMiddleware``,
  as the OpenTelemetry Collector's ``cors.allowed_origins``). An origin header can be forged
  outside a browser, so the checks below hold whatever it says.
- **Key**: with ``NEXTRACE_BROWSER_KEY`` set, a request must carry it as ``?key=``
  (``sendBeacon`` cannot set headers). It is public, written into the page: it names which
  apps may send, and is changed by deploying a new one. It opens this endpoint and no other.
- **Rate**: each listed origin (a pattern's origins together) has a token bucket of requests
  (``--browser-rate`` a second, twice that in a burst); beyond it the answer is 429 with
  ``Retry-After``.
- **Beacons**: ``sendBeacon`` can send a string only as ``text/plain`` without a CORS
  preflight; such a body is read as OTLP/JSON.
- **Size**: bodies up to 64 KiB (``browser_max_body_bytes``), the most ``sendBeacon`` and
  ``fetch(keepalive)`` send.
- **Spans**: a page may send what a page can know, and nothing that makes a server's rows:
  its navigations, prefetches and router-cache lookups, and the requests it made. Every other
  span is dropped and counted by reason (:func:`refusal`): under a server's instrumentation
  scope (``next.js``, ``@vercel/otel/fetch``, ``@nextrace/next``, the CDN receivers'
  ``nextrace.cdn``, the reference server's), in a server's phase (a request, a render, a
  deploy), a lookup in a cache other than the router's, or with a build id or a CDN's
  attributes. The kept spans are encoded again without them, and that is what the
  write-ahead log keeps.
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
from collections import Counter

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from collector import decoder
from collector.config import origin_pattern
from collector.consumer import SpanColumns, TracesConsumer
from collector.ingest.cdn import CDN_SCOPE
from collector.ingest.receiver import OTLPHttpReceiver
from collector.pipeline.translator import attributes_to_map, keep_spans, screen
from collector.pipeline.wal import KIND_JSON, KIND_PROTOBUF
from collector.telemetry import CollectorTelemetry
from contract import semconv
from contract.nextjs import NEXTJS_SCOPES

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


PAGE_PHASES = frozenset({"", semconv.PHASE_NAVIGATION, semconv.PHASE_PREFETCH, semconv.PHASE_CACHE})
"""The phases of a page's spans; a router-cache lookup is in ``cache``."""
SERVER_SCOPES = NEXTJS_SCOPES | {CDN_SCOPE, "nextrace.instrumented_server"}
_SERVER_PREFIXES = ("nextrace.cdn.",)  # the CDN receivers' attributes


def refusal(scope: str, attributes: dict[str, str]) -> str | None:
    """Why a page may not send a span of ``scope`` with ``attributes`` (as they would be
    stored): a drop reason, or None when it is a page's own."""
    if scope in SERVER_SCOPES:
        return "server_scope_from_browser"
    if attributes.get(semconv.PHASE, "") not in PAGE_PHASES:
        return "server_phase_from_browser"
    if attributes.get(semconv.CACHE_LAYER, "router") != "router":
        return "server_cache_from_browser"
    if semconv.BUILD_ID in attributes or any(k.startswith(_SERVER_PREFIXES) for k in attributes):
        return "server_attribute_from_browser"
    return None


class BrowserSpansOnly:
    """A :class:`TracesConsumer` that passes on a page's own spans and drops, counted by
    reason, those a page may not send (:func:`refusal`)."""

    def __init__(self, downstream: TracesConsumer, telemetry: CollectorTelemetry) -> None:
        self._downstream = downstream
        self._telemetry = telemetry

    def consume(self, spans: SpanColumns) -> None:
        request = _request_of(spans)
        dropped: Counter[str] = Counter()

        def allowed(scope: str, span: Span) -> bool:
            reason = refusal(scope, attributes_to_map(span.attributes))
            if reason is not None:
                dropped[reason] += 1
            return reason is None

        keep_spans(request, allowed)
        if dropped:
            for reason, count in dropped.items():
                self._telemetry.drop(reason, count, "a browser sent spans only a server may")
            spans = _encoded(request)
        self._downstream.consume(spans)


def _request_of(spans: SpanColumns) -> ExportTraceServiceRequest:
    """The request ``spans`` came from."""
    if spans.encoded is not None:
        request = ExportTraceServiceRequest()
        for body in spans.encoded:
            request.MergeFromString(body)
        return request
    kind = decoder.JSON if spans.source_kind == KIND_JSON else decoder.PROTOBUF
    return decoder.decode(spans.source, kind)


def _encoded(request: ExportTraceServiceRequest) -> SpanColumns:
    """The spans of ``request`` as a batch whose ``source`` holds them, and only them,
    encoded: the write-ahead log must keep what is kept."""
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
        # Each listed origin (a pattern, for preview deployments) with what its header matches.
        self._origins = [(origin, origin_pattern((origin,))) for origin in origins]
        self._key = key.encode() if key else None
        self._telemetry = telemetry
        self._limiter = OriginRateLimiter(rate, max(1.0, 2 * rate))
        self._cors = CORSMiddleware(
            self._checked,
            allow_origin_regex=origin_pattern(origins).pattern,
            allow_methods=["POST"],
            allow_headers=["content-type", "content-encoding"],
            max_age=600,
        )

    def routes(self) -> list[Route]:
        return [Route(BROWSER_TRACES_PATH, self._cors, methods=["POST", "OPTIONS"])]

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        if decoder.media_type(Headers(scope=scope).get("content-type")) == "text/plain":
            # sendBeacon sends a string as text/plain, the one type a page may send across
            # origins without a preflight: the page's OTLP/JSON.
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
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
        listed = next((o for o, pattern in self._origins if pattern.fullmatch(origin)), None)
        if listed is None:
            return self._refuse("forbidden_origin", 403, f"origin {origin!r} is not allowed")
        if self._key is not None:
            given = request.query_params.get("key", "").encode()
            if not hmac.compare_digest(given, self._key):
                return self._refuse("wrong_key", 401, "missing or wrong browser key (?key=)")
        wait_s = self._limiter.take(listed)  # one bucket a listed origin, pattern or not
        if wait_s:
            response = self._refuse("rate_limited", 429, f"too many requests from {origin}")
            response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
            return response
        return None

    def _refuse(self, reason: str, status: int, detail: str) -> Response:
        self._telemetry.reject_request(reason, status, detail)
        return PlainTextResponse(detail + "\n", status)
