"""What a CDN's log says of one request, as spans the rest of the collector already reads.

A CDN answers many requests without reaching the app, so no trace of the app explains them.
The log receivers (:mod:`collector.ingest.vercel_drain`,
:mod:`collector.ingest.cloudflare_logpush`) read a
vendor's log lines (:func:`export_of`) into
:class:`CdnRequest` records, and :func:`as_export` turns them into one OTLP export, which goes
through the pipeline as any other: the write-ahead log, exactly-once inserts, and the
materialized views that make rows of spans (docs/semantic-conventions.md, "CDN logs"):

- every logged request is a ``cdn`` span (``nextrace.phase = cdn``) with ``cache.layer =
  cdn`` and the vendor's cache status as ``cache.result`` (hit, miss, stale, bypass,
  revalidated), the vendor's own value kept in ``nextrace.cdn.cache_status``: a
  ``cache_events`` row;
- a request the CDN answered without the app (a hit, a stale hit, a prerendered file) is also
  a ``request`` span, the ``cdn`` span's parent, of ``nextrace.source = cdn``: a ``requests``
  row, so prefetches the CDN served count with those the app served. A request that reached
  the app has its row from the app's own trace.

A logged trace id joins the spans to the app's trace; without one, the ids are derived from
the log line's own id, so that the same line always makes the same spans.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.consumer import SpanColumns
from collector.errors import PermanentError
from collector.nextjs.mapping import FILE_NAME
from collector.telemetry import CollectorTelemetry

CDN_SCOPE = "nextrace.cdn"
LOOKUP_SPAN = "cdn"  # the name of the span a logged request's cache lookup makes

# What each vendor's cache status means: the result, and whether the app was reached.
CACHE_RESULTS = {
    "hit": ("hit", False),
    "stream_hit": ("hit", False),  # Cloudflare
    "prerender": ("hit", False),  # Vercel: served from the build's static files
    "stale": ("stale", False),  # served stale; the refresh runs in the background
    "updating": ("stale", False),  # Cloudflare: stale while the edge refreshes it
    "miss": ("miss", True),
    "expired": ("miss", True),  # Cloudflare: in cache, but expired: fetched again
    "bypass": ("bypass", True),
    "ignored": ("bypass", True),  # Cloudflare
    "dynamic": ("bypass", True),  # Cloudflare: not eligible for the cache
    "none": ("bypass", True),
    "unknown": ("bypass", True),
    "revalidated": ("revalidated", True),
}

_HEX_TRACE = re.compile(r"^[0-9a-f]{32}$")
_HEX_SPAN = re.compile(r"^[0-9a-f]{16}$")


@dataclass
class CdnRequest:
    """One request a CDN logged. ``cache_status`` is the vendor's value as logged; ``headers``
    the request headers the log carries (lower-case names), which may say RSC or prefetch."""

    vendor: str
    log_id: str
    service: str
    timestamp_ns: int
    method: str
    host: str
    path: str  # with its query string
    status: int
    cache_status: str
    route: str = ""  # the app's route pattern, when the vendor logs it
    build_id: str = ""
    region: str = ""
    duration_ns: int = 0  # 0: the log says none (a CDN's request row of 0 has no known duration)
    response_bytes: int | None = None  # the body's, headers not counted
    ttfb_ms: int | None = None  # from the request's arrival at the edge to the first byte out
    origin_ms: int | None = None  # how long the origin took to answer the edge, if it was asked
    trace_id: str = ""  # the app's trace, when the vendor logs it
    parent_span_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return self._meaning[0]

    @property
    def reached_app(self) -> bool:
        return self._meaning[1]

    @property
    def _meaning(self) -> tuple[str, bool]:
        """The status's entry in CACHE_RESULTS; a status not known is not taken for a hit."""
        return CACHE_RESULTS.get(self.cache_status.lower(), ("bypass", True))

    def kind(self) -> tuple[str, str]:
        """(``nextrace.request.kind``, ``next.prefetch``), from the path and the headers."""
        path, _, query = self.path.partition("?")
        headers = self.headers
        if path.startswith("/_next/") or (FILE_NAME.search(path) and not path.endswith(".rsc")):
            return "static_asset", "none"
        if path.startswith("/api/"):
            return "api", "none"
        segment = path.endswith(".segment.rsc") or "next-router-segment-prefetch" in headers
        prefetch = (
            segment
            or path.endswith(".prefetch.rsc")
            or ("next-router-prefetch" in headers or headers.get("purpose") == "prefetch")
        )
        if prefetch:
            return "rsc_prefetch", "segment" if segment else "auto"
        rsc = path.endswith(".rsc") or "_rsc=" in query or headers.get("rsc") == "1"
        return ("rsc_navigation" if rsc else "document"), "none"


def parse_entries(body: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """The log entries of a delivery (a JSON array, one object, or NDJSON), and why each line
    that is not an entry could not be read."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return [], []
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # NDJSON, or a broken document: read it line by line
    if isinstance(whole, list):
        lines: list[Any] = whole
    elif isinstance(whole, dict):
        lines = [whole]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
    entries, malformed = [], []
    for line in lines:
        try:
            entry = json.loads(line) if isinstance(line, str) else line
        except json.JSONDecodeError as exc:
            malformed.append(f"not JSON: {exc}")
            continue
        if isinstance(entry, dict):
            entries.append(entry)
        else:
            malformed.append(f"not a JSON object: {type(entry).__name__}")
    return entries, malformed


SpanKey = tuple[str, str]  # (trace id, span id), in hex
StoredCheck = Callable[[Sequence[tuple[str, str, int]]], set[SpanKey]]


class RecentLines:
    """Which log lines are stored already, so that a delivery the vendor sends again (its
    answer was lost, or late) stores nothing twice. A line is known by its lookup span
    (:func:`lookup_key`), which the same line always makes.

    It remembers the lines of the last ``size`` requests acknowledged, and those the
    write-ahead log held at a start (:meth:`remember_spans`); a line it does not remember is
    looked up in the store with ``stored`` (given (trace id, span id, start ns) triples, the
    pairs the traces table holds), so that a redelivery after a restart, or to another
    collector on the same store, stores nothing either. Thread-safe. Only lines of
    acknowledged deliveries are remembered: a delivery answered 503 is stored when it comes
    again."""

    def __init__(self, size: int, stored: StoredCheck | None = None) -> None:
        self._size = size
        self._stored = stored
        self._keys: OrderedDict[SpanKey, None] = OrderedDict()
        self._lock = threading.Lock()

    def stored(self, requests: Sequence[CdnRequest]) -> set[SpanKey]:
        """The lookup keys of ``requests`` whose lines are stored already."""
        keys = [lookup_key(request) for request in requests]
        with self._lock:
            known = {key for key in keys if key in self._keys}
        unknown = [
            (*key, request.timestamp_ns)
            for key, request in zip(keys, requests, strict=True)
            if key not in known
        ]
        if unknown and self._stored is not None:
            known |= self._stored(unknown)
        return known

    def remember(self, keys: Iterable[SpanKey]) -> None:
        with self._lock:
            for key in keys:
                self._keys[key] = None
                self._keys.move_to_end(key)
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)

    def remember_spans(self, spans: SpanColumns) -> None:
        """Remember the log lines among ``spans`` (the write-ahead log's, replayed at a
        start: they may not be in the store yet)."""
        if CDN_SCOPE not in spans.scope_names:
            return
        columns = spans.columns
        self.remember(
            (columns.trace_id[i], columns.span_id[i])
            for i, scope in enumerate(spans.scope_names)
            if scope == CDN_SCOPE and columns.span_name[i] == LOOKUP_SPAN
        )


@dataclass
class Delivery:
    """What a delivery's lines made: the export, and the keys of its requests' lines, to
    remember once it is acknowledged (:class:`RecentLines`)."""

    export: ExportTraceServiceRequest
    keys: list[SpanKey]


def export_of(
    body: bytes,
    request_of: Callable[[dict[str, Any]], CdnRequest | None],
    telemetry: CollectorTelemetry,
    select: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = list,
    recent: RecentLines | None = None,
) -> Delivery:
    """The export of the requests a delivery's entries logged: ``select`` picks the entries
    that stand for one request each (a vendor may log a request several times), and
    ``request_of`` reads one (None for an entry that is not a request; ValueError, TypeError or
    KeyError for one it cannot read). Lines that are not entries, or that cannot be read, are
    counted (``malformed_log_line``) and skipped: one bad line costs only itself. A body none
    of whose lines could be read is refused with 400, naming why, and counted. A line stored
    already (``recent``), or met before in the delivery, is counted
    (``cdn_lines_redelivered``) and skipped."""
    entries, malformed = parse_entries(body)
    requests: dict[SpanKey, CdnRequest] = {}
    again = 0
    for entry in select(entries):
        try:
            found = request_of(entry)
        except (TypeError, ValueError, KeyError) as exc:
            malformed.append(f"a field missing or of the wrong type: {exc!r}")
            continue
        if found is None:
            continue
        key = lookup_key(found)
        if key in requests:
            again += 1
            continue
        requests[key] = found
    if recent is not None and requests:
        for key in recent.stored(list(requests.values())):
            del requests[key]
            again += 1
    if again:
        telemetry.cdn_lines_redelivered.inc(again)
    if malformed:
        telemetry.drop("malformed_log_line", len(malformed), malformed[0])
        if not entries:
            raise PermanentError(
                f"no log line of the delivery could be read ({len(malformed)} lines; first: "
                f"{malformed[0]}): send the vendor's NDJSON or JSON array, without prefixes "
                "or suffixes around the records",
                http_status=400,
            )
    return Delivery(as_export(requests.values()), list(requests))


def as_export(requests: Iterable[CdnRequest]) -> ExportTraceServiceRequest:
    """One OTLP export of the spans ``requests`` make (see the module docstring)."""
    export = ExportTraceServiceRequest()
    by_service: dict[str, Any] = {}
    for request in requests:
        scope_spans = by_service.get(request.service)
        if scope_spans is None:
            resource_spans = export.resource_spans.add()
            resource_spans.resource.attributes.append(_attribute("service.name", request.service))
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = CDN_SCOPE
            by_service[request.service] = scope_spans
        scope_spans.spans.extend(_spans(request))
    return export


def _ids(request: CdnRequest) -> tuple[bytes, bytes]:
    """The trace id of ``request``'s spans (the logged one, or one derived from the line's
    id) and the bytes its span ids are taken from: the same line always makes the same
    spans."""
    seed = hashlib.sha256(f"{request.vendor}:{request.log_id}".encode()).digest()
    trace_id = request.trace_id.lower()
    return (bytes.fromhex(trace_id) if _HEX_TRACE.match(trace_id) else seed[:16]), seed


def lookup_key(request: CdnRequest) -> SpanKey:
    """The (trace id, span id) of ``request``'s lookup span, in hex: what knows its line."""
    trace, seed = _ids(request)
    return trace.hex(), seed[16:24].hex()


def _spans(request: CdnRequest) -> list[Span]:
    trace, seed = _ids(request)
    parent = request.parent_span_id.lower()
    parent_id = bytes.fromhex(parent) if _HEX_SPAN.match(parent) else b""
    path = request.path.partition("?")[0]
    kind, prefetch = request.kind()
    shared: dict[str, str | int | None] = {
        "http.request.method": request.method,
        "url.path": path,
        "server.address": request.host,
        "http.response.status_code": request.status,
        "next.route": request.route,
        "nextrace.build_id": request.build_id,
        "nextrace.request.kind": kind,
        "next.prefetch": prefetch,
        "nextrace.cdn.vendor": request.vendor,
        "nextrace.cdn.region": request.region,
    }
    lookup = _span(
        trace,
        seed[16:24],
        LOOKUP_SPAN,
        request,
        {
            **shared,
            "nextrace.phase": "cdn",
            "cache.layer": "cdn",
            "cache.result": request.result,
            "cache.key": f"{request.method} {request.host}{request.path}",
            "nextrace.cdn.cache_status": request.cache_status,
            "nextrace.cdn.ttfb_ms": request.ttfb_ms,
            "nextrace.cdn.origin_ms": request.origin_ms,
        },
    )
    if request.reached_app:
        lookup.parent_span_id = parent_id
        return [lookup]
    served = _span(
        trace,
        seed[24:32],
        f"{request.method} {path}",
        request,
        {
            **shared,
            "nextrace.phase": "request",
            "nextrace.source": "cdn",
            "nextrace.request.kind_source": "cdn_log",
            "http.response.body.size": request.response_bytes,
            "nextrace.stream.ttfb_ms": request.ttfb_ms,  # the requests row's TtfbMs
        },
    )
    served.parent_span_id = parent_id
    lookup.parent_span_id = served.span_id
    return [served, lookup]


def _span(
    trace_id: bytes,
    span_id: bytes,
    name: str,
    request: CdnRequest,
    attributes: dict[str, str | int | None],
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=request.timestamp_ns,
        end_time_unix_nano=request.timestamp_ns + request.duration_ns,
        attributes=_attributes(attributes),
    )


def _attributes(values: dict[str, str | int | None]) -> list[KeyValue]:
    return [_attribute(key, value) for key, value in values.items() if value not in (None, "")]


def _attribute(key: str, value: str | int | None) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))
