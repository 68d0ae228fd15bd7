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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.requests import Request

from collector.consumer import SpanColumns
from collector.errors import PermanentError, TransientError
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
    background: bool = False  # the CDN's own refresh of an entry, not a user's request
    # How it joined the app's trace: "logged" (the line logged its trace id), "time_path"
    # (:func:`join_to_app`), or "" (a trace of its own).
    joined_by: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return self._meaning[0]

    @property
    def reached_app(self) -> bool:
        return self._meaning[1] and not self.background

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


# Which lines a store holds: given the lookup span ids and the lines' time range, those stored.
StoredCheck = Callable[[Sequence[str], int, int], set[str]]


class AppRequestLike(Protocol):
    """A request the app's own trace holds (see :func:`join_to_app`)."""

    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def parent_span_id(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def route(self) -> str: ...


# The app's requests of some services and paths that started in a time range.
FindAppRequests = Callable[[Sequence[str], Sequence[str], int, int], Sequence[AppRequestLike]]
# How far apart a CDN's logged start and the app's request start may be to be joined: the edge
# asks the origin within its own request, and Logpush's unix and rfc3339 times are whole
# seconds.
JOIN_WINDOW_NS = 2_000_000_000


class RecentLines:
    """Which log lines are stored already, so that a delivery the vendor sends again (its
    answer was lost, or late) stores nothing twice. A line is known by its lookup span's id
    (:func:`lookup_key`), which depends on the line alone.

    It remembers the lines of the last ``size`` requests acknowledged, and those the
    write-ahead log held at a start (:meth:`remember_spans`); a line it does not remember is
    looked up in the store with ``stored``, so that a redelivery after a restart, or to
    another collector on the same store, stores nothing either. Thread-safe. Only lines of
    acknowledged deliveries are remembered: a delivery answered 503 is stored when it comes
    again."""

    def __init__(self, size: int, stored: StoredCheck | None = None) -> None:
        self._size = size
        self._stored = stored
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._claimed: set[str] = set()  # lines of deliveries not yet answered
        self._lock = threading.Lock()

    def claim(self, keys: Sequence[str]) -> None:
        """Hold ``keys`` while their delivery is stored. Raises TransientError (a 503) if
        another delivery being stored holds one, or has stored one since they were looked up
        (:meth:`stored`): the vendor sent it again before the first was answered, and it is
        asked to send it once more, when the first's fate is known."""
        with self._lock:
            if not self._claimed.isdisjoint(keys) or any(key in self._keys for key in keys):
                raise TransientError(
                    "lines of this delivery are being stored from another request; retry later"
                )
            self._claimed.update(keys)

    def release(self, keys: Sequence[str]) -> None:
        """Let ``keys`` go: their delivery was answered (and, if acknowledged, remembered)."""
        with self._lock:
            self._claimed.difference_update(keys)

    def stored(self, requests: Mapping[str, CdnRequest]) -> set[str]:
        """Which of ``requests``, by key, have their lines stored already. Raises
        TransientError if the store cannot say."""
        with self._lock:
            known = {key for key in requests if key in self._keys}
        unknown = [key for key in requests if key not in known]
        if unknown and self._stored is not None:
            times = [requests[key].timestamp_ns for key in unknown]
            known |= self._stored(unknown, min(times), max(times))
        return known

    def remember(self, keys: Iterable[str]) -> None:
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
        span_ids = spans.columns.span_id
        self.remember(
            span_ids[i] for i, scope in enumerate(spans.scope_names) if scope == CDN_SCOPE
        )


def join_to_app(requests: Sequence[CdnRequest], find: FindAppRequests) -> None:
    """Join each of ``requests`` that reached the app and logged no trace id to the app's
    request of the same service and path that started nearest its logged start, within
    :data:`JOIN_WINDOW_NS` (``joined_by`` ``time_path``): its lookup span goes into that
    trace beside the request, as a logged ``traceparent`` would put it. Each app request is
    joined once, and its route (the app's template) is the line's; a line with none near stays
    in a trace of its own."""
    loose = [r for r in requests if r.reached_app and not r.trace_id]
    if not loose:
        return
    times = [r.timestamp_ns for r in loose]
    found = find(
        [r.service for r in loose],
        [r.path.partition("?")[0] for r in loose],
        min(times) - JOIN_WINDOW_NS,
        max(times) + JOIN_WINDOW_NS,
    )
    taken: set[tuple[str, str]] = set()
    for request in loose:
        path = request.path.partition("?")[0]
        near = [
            app
            for app in found
            if app.service == request.service
            and app.path == path
            and abs(app.start_ns - request.timestamp_ns) <= JOIN_WINDOW_NS
            and (app.trace_id, app.span_id) not in taken
        ]
        if not near:
            continue
        app = min(near, key=lambda a: abs(a.start_ns - request.timestamp_ns))
        taken.add((app.trace_id, app.span_id))
        request.trace_id, request.parent_span_id = app.trace_id, app.parent_span_id
        request.route = app.route or request.route  # the template, not the logged path
        request.joined_by = "time_path"


@dataclass
class Delivery:
    """What a delivery's lines made: the export, the keys of its requests' lines, and how many
    lines were stored already; remembered and counted once it is acknowledged
    (:meth:`finished`)."""

    export: ExportTraceServiceRequest
    keys: list[str]
    redelivered: int = 0

    def finished(
        self, acknowledged: bool, recent: RecentLines, telemetry: CollectorTelemetry
    ) -> None:
        """The delivery was answered: if ``acknowledged`` (on disk, about to get 200), its
        lines are stored and remembered, and those it sent again are counted
        (``cdn_lines_redelivered``); either way they are no longer claimed."""
        if acknowledged:
            recent.remember(self.keys)
            if self.redelivered:
                telemetry.cdn_lines_redelivered.inc(self.redelivered)
        recent.release(self.keys)


@dataclass(frozen=True)
class LineReader:
    """What every CDN receiver reads a delivery's lines with (:func:`export_of`): where it
    counts, which lines are stored already (``recent``), and the app's requests that lines
    without a trace id are joined to (``find``)."""

    telemetry: CollectorTelemetry
    recent: RecentLines
    find: FindAppRequests | None = None

    def read(
        self,
        request: Request,
        body: bytes,
        request_of: Callable[[dict[str, Any]], CdnRequest | None],
        select: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    ) -> ExportTraceServiceRequest:
        """The export of the delivery ``request`` brought, its lines claimed
        (:meth:`RecentLines.claim`); what it made is kept on the request for
        :meth:`finished`."""
        delivery = export_of(body, request_of, self.telemetry, select, self.recent, self.find)
        self.recent.claim(delivery.keys)
        request.state.cdn_delivery = delivery
        return delivery.export

    def finished(self, request: Request, acknowledged: bool) -> None:
        """The delivery ``request`` brought was answered (:meth:`Delivery.finished`)."""
        delivery: Delivery | None = getattr(request.state, "cdn_delivery", None)
        if delivery is not None:  # None: it was refused before its lines were claimed
            delivery.finished(acknowledged, self.recent, self.telemetry)


def export_of(
    body: bytes,
    request_of: Callable[[dict[str, Any]], CdnRequest | None],
    telemetry: CollectorTelemetry,
    select: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = list,
    recent: RecentLines | None = None,
    find: FindAppRequests | None = None,
) -> Delivery:
    """The export of the requests a delivery's entries logged: ``select`` picks the entries
    that stand for one request each (a vendor may log a request several times), and
    ``request_of`` reads one (None for an entry that is not a request; ValueError, TypeError or
    KeyError for one it cannot read). Lines that are not entries, or that cannot be read, are
    counted (``malformed_log_line``) and skipped: one bad line costs only itself. A body none
    of whose lines could be read is refused with 400, naming why, and counted. A line stored
    already (``recent``), or met before in the delivery, is skipped, and counted once the
    delivery is acknowledged. With ``find``, lines that logged no trace id are
    joined to the app's requests (:func:`join_to_app`)."""
    entries, malformed = parse_entries(body)
    requests: dict[str, CdnRequest] = {}
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
        for key in recent.stored(requests):
            del requests[key]
            again += 1
    if malformed:
        telemetry.drop("malformed_log_line", len(malformed), malformed[0])
        if not entries:
            raise PermanentError(
                f"no log line of the delivery could be read ({len(malformed)} lines; first: "
                f"{malformed[0]}): send the vendor's NDJSON or JSON array, without prefixes "
                "or suffixes around the records",
                http_status=400,
            )
    if find is not None:
        join_to_app(list(requests.values()), find)
    return Delivery(as_export(requests.values()), list(requests), again)


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


# What only a user's request has, not a background revalidation's span.
_A_USERS_REQUEST = frozenset(
    {"http.response.status_code", "nextrace.request.kind", "next.prefetch"}
)


def _seed(request: CdnRequest) -> bytes:
    """What the ids of ``request``'s spans are taken from: its line's id alone, so that the
    same line always makes the same spans."""
    return hashlib.sha256(f"{request.vendor}:{request.log_id}".encode()).digest()


def lookup_key(request: CdnRequest) -> str:
    """The span id of ``request``'s lookup span (or background revalidation's), in hex: what
    knows its line."""
    return _seed(request)[16:24].hex()


def _spans(request: CdnRequest) -> list[Span]:
    seed = _seed(request)
    trace_id = request.trace_id.lower()
    trace = bytes.fromhex(trace_id) if _HEX_TRACE.match(trace_id) else seed[:16]
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
    if request.background:  # no user's request, no cache lookup: no row of either
        attributes = {k: v for k, v in shared.items() if k not in _A_USERS_REQUEST}
        attributes["nextrace.cdn.background"] = "true"
        return [_span(trace, seed[16:24], f"background revalidation {path}", request, attributes)]
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
            "nextrace.cdn.joined_by": request.joined_by
            or ("logged" if _HEX_TRACE.match(trace_id) else ""),
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
